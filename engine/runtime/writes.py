"""One transaction's writes, buffered: many steps, a few statements.

A worker applies a batch of events (finished agent calls, fired timers) in one transaction. Each
step's effects land here first and go to the database at the end as one ``executemany`` per table,
with statements built once at import (SQLAlchemy then only looks them up in its compiled cache).
The batch commits or rolls back as a whole, so every step in it is still all-or-nothing.

A variable's value is written once per change: its current value in ``wf_variables`` and the change in
``wf_variable_history`` (the audit; the value it replaced is the previous version's row, not stored again).
The instance row's ``state`` holds tokens and position only: a step that does not change a variable writes
none of it (a 1 MB document is not rewritten at every step). :func:`load_states` puts the variables back.

Order matters where a later step undoes an earlier one in the same batch: a cancelled timer that was
armed in this batch is simply never inserted; row-keyed deletes run before inserts; tokens are
written as the difference between the state loaded and the state reached.

Tokens are rows of their own (``wf_tokens``: node, status and parent as columns, the rest as JSON in
``data``), and the instance row's ``state`` holds everything else. A step writes only the tokens the core
marked touched (``InstanceState.touched``) and deletes those that are gone, so moving one token of a
10,000-instance multi-instance activity writes one token row, not the other 9,999.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from engine.model.values import dumps as _typed_dumps
from engine.model.values import loads
from engine.runtime.history import ActivityBuffer
from engine.runtime.prepared import Prepared, pipelined
from engine.runtime.tables import (
    IncidentRow,
    InstanceRow,
    JobRow,
    SubscriptionRow,
    TaskExecutionRow,
    TokenRow,
    VariableHistoryRow,
    VariableRow,
)
from engine.semantics.state import InstanceState, Token, token_data

INST, T, V, H = InstanceRow.__table__, TokenRow.__table__, VariableRow.__table__, VariableHistoryRow.__table__
J, S, INC, X = JobRow.__table__, SubscriptionRow.__table__, IncidentRow.__table__, TaskExecutionRow.__table__

# Cancellable jobs are keyed (instance, kind, ref): a timer by its id, an activity's work by its token.
CANCELLABLE = ("timer", "work")

_DELETE_JOB = Prepared(delete(J).where(J.c.instance_id == bindparam("i"), J.c.kind == bindparam("k"),
                                       J.c.ref == bindparam("r")))
_DELETE_ENDED_JOBS = Prepared(delete(J).where(J.c.instance_id == bindparam("i"),
                                              or_(*(J.c.kind == kind for kind in CANCELLABLE))))
_DELETE_ENDED_SUBS = Prepared(delete(S).where(S.c.instance_id == bindparam("i")))
_DELETE_SUB = Prepared(delete(S).where(S.c.id == bindparam("s")))
_DELETE_TOKEN = Prepared(delete(T).where(T.c.instance_id == bindparam("i"), T.c.token_id == bindparam("t")))
_UPDATE_TOKEN = Prepared(update(T).where(T.c.instance_id == bindparam("i"), T.c.token_id == bindparam("t"))
                         .values(node_id=bindparam("n"), status=bindparam("st"), parent=bindparam("p"),
                                 data=bindparam("d")))
_UPDATE_VARIABLE = Prepared(update(V).where(V.c.instance_id == bindparam("i"), V.c.name == bindparam("nm"))
                            .values(value=bindparam("v"), version=bindparam("ver")))
_VARIABLES = (select(V.c.instance_id, V.c.name, V.c.value, V.c.version).where(V.c.instance_id.in_(bindparam("ids",
              expanding=True))))
_TOKENS = (select(T.c.instance_id, T.c.token_id, T.c.node_id, T.c.status, T.c.parent, T.c.data)
           .where(T.c.instance_id.in_(bindparam("ids", expanding=True))))
_UPDATE_INSTANCE = Prepared(update(INST).where(INST.c.id == bindparam("i")).values(
    state=bindparam("state"), status=bindparam("status"), steps=bindparam("steps"), rev=bindparam("rev"),
    ended_at=bindparam("ended_at"), error=bindparam("error")))
_INSERT_JOB, _INSERT_SUB, _INSERT_INCIDENT, _INSERT_EXECUTION = (Prepared(insert(J)), Prepared(insert(S)),
                                                                 Prepared(insert(INC)), Prepared(insert(X)))
_INSERT_HISTORY, _INSERT_VARIABLE, _INSERT_TOKEN, _INSERT_INSTANCE = (Prepared(insert(H)), Prepared(insert(V)),
                                                                      Prepared(insert(T)), Prepared(insert(INST)))


def dumps(value: Any) -> str:
    """JSON text of a row's value; typed variables are tagged (see :mod:`engine.model.values`)."""
    return _typed_dumps(value)


def load_states(conn: Connection, rows: dict[str, Any], writes: Writes | None = None) -> dict[str, InstanceState]:
    """The states of instance rows (``id`` and ``state`` columns), with their variables read from
    ``wf_variables`` and their tokens from ``wf_tokens`` (in the order the core made them), one query each;
    ``writes`` learns each variable's stored version (no second read when a step changes it). A state stored
    before variables left it is read the same way (the variables table was always kept with it); one stored
    before tokens had rows of their own carries them in its JSON (its ``wf_tokens`` rows were their mirror):
    they are marked touched, so the next write completes their rows."""
    states: dict[str, InstanceState] = {}
    need: list[str] = []
    for instance_id, row in rows.items():
        data = loads(row.state)
        state = states[instance_id] = InstanceState.from_dict(data)
        state.variables = {}
        if "tokens" in data:
            state.touched.update(state.tokens)
        else:
            need.append(instance_id)
    if states:
        for r in conn.execute(_VARIABLES, {"ids": list(states)}):
            states[r.instance_id].variables[r.name] = loads(r.value)
            if writes is not None:
                writes.versions[(r.instance_id, r.name)] = r.version
    if writes is not None:
        writes.versioned.update(states)
    if need:
        found: dict[str, list[Token]] = {}
        for r in conn.execute(_TOKENS, {"ids": need}):
            found.setdefault(r.instance_id, []).append(
                Token(id=r.token_id, node=r.node_id, status=r.status, parent=r.parent, **loads(r.data or "{}")))
        for instance_id, tokens in found.items():
            tokens.sort(key=lambda t: (len(t.id), t.id))  # t1, t2, ..., t10: creation order
            states[instance_id].tokens.update((t.id, t) for t in tokens)
    return states


class Writes:
    """The buffered rows of one transaction (see the module docstring for the ordering rules)."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any] | None] = []
        self._job_at: dict[tuple[str, str, str], int] = {}
        self.job_deletes: list[dict[str, str]] = []
        self.subs: dict[str, dict[str, Any]] = {}
        self.sub_deletes: list[str] = []
        self.ended: list[str] = []
        self.incidents: list[dict[str, Any]] = []
        self.executions: list[dict[str, Any]] = []
        self.changes: list[tuple[str, str, Any, Any, str | None, str | None, datetime]] = []
        self.instances: dict[str, dict[str, Any]] = {}
        self.created: dict[str, dict[str, Any]] = {}  # new instances: inserted whole, no stored variables
        self.tokens_before: dict[str, set[str]] = {}  # the token ids stored when the instance was loaded
        self.tokens_after: dict[str, dict[str, Token]] = {}
        self.touched: dict[str, set[str]] = {}  # the tokens the core added or changed, per instance
        self.activities = ActivityBuffer()  # the activity history's rows (engine.runtime.history)
        self.versions: dict[tuple[str, str], int] = {}  # stored variable versions of the loaded instances
        self.versioned: set[str] = set()  # instances whose variable versions are known (load_states)
        self.started: list[tuple[str, int, str | None]] = []  # start_many's starts: name, version, ended status

    # --- what steps call ------------------------------------------------------------------------

    def create(self, instance_id: str, row: dict[str, Any]) -> None:
        self.created[instance_id] = row

    def add_job(self, row: dict[str, Any]) -> None:
        if row["kind"] in CANCELLABLE:
            self._job_at[(row["instance_id"], row["kind"], row["ref"])] = len(self.jobs)
        self.jobs.append(row)

    def cancel_job(self, instance_id: str, kind: str, ref: str) -> None:
        at = self._job_at.pop((instance_id, kind, ref), None)
        if at is not None:  # armed in this very batch: never written
            self.jobs[at] = None
        self.job_deletes.append({"i": instance_id, "k": kind, "r": ref})

    def subscribe(self, row: dict[str, Any]) -> None:
        self.subs[row["id"]] = row

    def unsubscribe(self, sub_id: str) -> None:
        if self.subs.pop(sub_id, None) is None:
            self.sub_deletes.append(sub_id)

    def instance_ended(self, instance_id: str) -> None:
        """Its timers, work and subscriptions go: stored ones by one delete, buffered ones are dropped."""
        self.ended.append(instance_id)
        for key in [k for k in self._job_at if k[0] == instance_id]:
            self.jobs[self._job_at.pop(key)] = None
        for sub_id in [s for s, row in self.subs.items() if row["instance_id"] == instance_id]:
            del self.subs[sub_id]

    def loaded(self, instance_id: str, state: InstanceState) -> None:
        """Remember which tokens are stored, once per instance, to write only what changed."""
        if instance_id not in self.tokens_before:
            self.tokens_before[instance_id] = set(state.tokens)

    def stepped(self, instance_id: str, state: InstanceState, values: dict[str, Any]) -> None:
        self.tokens_after[instance_id] = state.tokens
        self.touched.setdefault(instance_id, set()).update(state.touched)
        state.touched.clear()
        self.instances[instance_id] = values

    # --- the end of the transaction -------------------------------------------------------------

    def flush(self, conn: Connection) -> None:
        """Write everything (on PostgreSQL in one pipeline: one round trip, see ``prepared.pipelined``)."""
        with pipelined(conn):
            self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        if self.job_deletes:
            _DELETE_JOB.executemany(conn, self.job_deletes)
        if self.ended:
            _DELETE_ENDED_JOBS.executemany(conn, [{"i": i} for i in self.ended])
            _DELETE_ENDED_SUBS.executemany(conn, [{"i": i} for i in self.ended])
        if self.sub_deletes:
            _DELETE_SUB.executemany(conn, [{"s": s} for s in self.sub_deletes])
        jobs = [j for j in self.jobs if j is not None]
        if jobs:
            _INSERT_JOB.executemany(conn, jobs)
        if self.subs:
            _INSERT_SUB.executemany(conn, list(self.subs.values()))
        if self.incidents:
            _INSERT_INCIDENT.executemany(conn, self.incidents)
        if self.executions:
            _INSERT_EXECUTION.executemany(conn, self.executions)
        self.activities.flush(conn)
        if self.changes:
            self._flush_variables(conn)
        self._flush_tokens(conn)
        if self.created:
            _INSERT_INSTANCE.executemany(conn, [{**row, **self.instances[i]} for i, row in self.created.items()])
        updates = [{"i": i, **v} for i, v in self.instances.items() if i not in self.created]
        if updates:
            _UPDATE_INSTANCE.executemany(conn, updates)

    def _flush_tokens(self, conn: Connection) -> None:
        deletes, inserts, updates = [], [], []
        for instance_id, after in self.tokens_after.items():
            before = self.tokens_before.get(instance_id, set())
            for token_id in before - after.keys():
                deletes.append({"i": instance_id, "t": token_id})
            for token_id in self.touched.get(instance_id, ()):
                token = after.get(token_id)
                if token is None:
                    continue  # added and removed within the transaction, or removed: deleted above
                data = dumps(token_data(token))
                if token_id in before:
                    updates.append({"i": instance_id, "t": token.id, "n": token.node, "st": token.status,
                                    "p": token.parent, "d": data})
                else:
                    inserts.append({"instance_id": instance_id, "token_id": token.id, "node_id": token.node,
                                    "status": token.status, "parent": token.parent, "data": data})
        if deletes:
            _DELETE_TOKEN.executemany(conn, deletes)
        if updates:
            _UPDATE_TOKEN.executemany(conn, updates)
        if inserts:
            _INSERT_TOKEN.executemany(conn, inserts)

    def _flush_variables(self, conn: Connection) -> None:
        """Each change is a history row with the next version number; the current value is upserted."""
        unknown = sorted({c[0] for c in self.changes} - self.created.keys() - self.versioned)
        if unknown:  # not loaded through load_states (none on the engine's paths): read their versions
            self.versions.update(((r.instance_id, r.name), r.version) for r in conn.execute(
                select(V.c.instance_id, V.c.name, V.c.version).where(V.c.instance_id.in_(unknown))))
        versions = self.versions
        stored = set(versions)
        history: list[dict[str, Any]] = []
        latest: dict[tuple[str, str], str] = {}
        for instance_id, name, _old, new, node_id, actor, at in self.changes:
            key = (instance_id, name)
            versions[key] = versions.get(key, 0) + 1
            latest[key] = text = dumps(new)  # serialised once for both rows
            history.append({"instance_id": instance_id, "name": name, "version": versions[key],
                            "old_value": None, "new_value": text,  # the old value: the previous version's row
                            "node_id": node_id, "actor": actor, "at": at})
        _INSERT_HISTORY.executemany(conn, history)
        inserts = [{"instance_id": k[0], "name": k[1], "value": v, "version": versions[k]}
                   for k, v in latest.items() if k not in stored]
        updates = [{"i": k[0], "nm": k[1], "v": v, "ver": versions[k]} for k, v in latest.items() if k in stored]
        if inserts:
            _INSERT_VARIABLE.executemany(conn, inserts)
        if updates:
            _UPDATE_VARIABLE.executemany(conn, updates)


def rewrite_tokens(conn: Connection, instance_id: str, state: InstanceState) -> None:
    """Write every token of ``state`` again (a migration renamed nodes inside them); their rows exist."""
    rows = [{"i": instance_id, "t": t.id, "n": t.node, "st": t.status, "p": t.parent, "d": dumps(token_data(t))}
            for t in state.tokens.values()]
    if rows:
        _UPDATE_TOKEN.executemany(conn, rows)
    state.touched.clear()


def guard_jobs(conn: Connection, job_ids: list[int], owner: str) -> set[int]:
    """Remove claimed jobs this worker still holds; the ones it lost (lease expired) are not its to finish."""
    if not job_ids:
        return set()
    rows = conn.execute(_GUARD_JOBS, {"ids": job_ids, "owner": owner})
    return {r.id for r in rows}


_GUARD_JOBS = delete(J).where(and_(J.c.id.in_(bindparam("ids", expanding=True)), J.c.lock_owner == bindparam("owner"))
                              ).returning(J.c.id)

