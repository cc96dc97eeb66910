"""Moving running instances from one version of a definition to another, with a dry run first.

A migration plan maps the nodes of version N to those of version M: identity by id by default,
explicit ``{old_id: new_id}`` pairs otherwise (an explicit pair wins over identity). For each running
instance the plan says what would happen, or why it is refused:

- every token must sit on a node that has a counterpart **of the same kind** in the same sub-process;
- every armed wait (a boundary timer or message, a message catch, the targets an event-based gateway
  races, a user task's SLA timer, a retry backoff) must point at a counterpart of the same kind; a
  subscription keeps its message name, so the counterpart must wait for the same message;
- a token waiting at a join must have arrived by a flow that exists in M;
- a variable that has a value must keep its declared type.

Applying a plan migrates each instance in its **own transaction** (the instance row locked, the plan
checked again on the locked state, so a step that moved the instance meanwhile cannot be overwritten):
the state's node ids, the token mirror, subscriptions, open human tasks and job payloads are renamed,
the instance's version changes, and a ``wf_migrations`` row records who did it, when and the mapping.
What is **not** touched is the point of the design: timer jobs keep their due time (a migration never
re-fires or re-arms a timer; camunda-bpm-platform #3713), human tasks keep their assignee, candidate
groups and SLA due time, subscriptions stay open. Migrating back with the inverse mapping restores the
original version's position. Boundary events that M adds to an activity that is already running are
not armed until that activity is entered again (a warning in the plan), as in Camunda 7.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.model.definition import ProcessDefinition
from engine.runtime.db import is_sqlite
from engine.runtime.tables import (
    HumanTaskRow,
    InstanceRow,
    JobRow,
    MigrationRow,
    SubscriptionRow,
    TaskAuditRow,
    TokenRow,
    VariableRow,
)
from engine.runtime.writes import dumps, load_states, rewrite_tokens
from engine.security import guard
from engine.semantics import InstanceState
from engine.semantics.state import JOIN

if TYPE_CHECKING:
    import pandas as pd

    from engine.runtime.engine import Engine

INST, T, S, HT, J, V = (InstanceRow.__table__, TokenRow.__table__, SubscriptionRow.__table__,
                        HumanTaskRow.__table__, JobRow.__table__, VariableRow.__table__)
TA, MIG = TaskAuditRow.__table__, MigrationRow.__table__
SPECIAL_WAITS = frozenset({"@sla", "@retry"})  # waits on the activity itself, not on another node

# Statements built once (building a SQLAlchemy statement costs more than running it on SQLite).
_READ = select(INST.c.state, INST.c.rev, INST.c.definition_version, INST.c.status).where(INST.c.id == bindparam("i"))
_MOVE_INSTANCE = update(INST).where(INST.c.id == bindparam("i")).values(
    definition_version=bindparam("b_version"), state=bindparam("b_state"), rev=bindparam("b_rev"))
_MOVE_TOKENS = update(T).where(T.c.instance_id == bindparam("i"), T.c.node_id == bindparam("old")).values(
    node_id=bindparam("new"))
_MOVE_SUBSCRIPTIONS = update(S).where(S.c.instance_id == bindparam("i"), S.c.node_id == bindparam("old")).values(
    node_id=bindparam("new"))
_MOVE_TASKS = update(HT).where(HT.c.instance_id == bindparam("i"), HT.c.node_id == bindparam("old"),
                               HT.c.status == "open").values(node_id=bindparam("new")).returning(HT.c.id)
_JOBS = select(J.c.id, J.c.payload).where(J.c.instance_id == bindparam("i"))
_RECORD = insert(MIG)
_TASK_AUDIT = insert(TA)
_JOB_PAYLOAD = update(J).where(J.c.id == bindparam("b_id")).values(payload=bindparam("b_payload"))


@dataclass
class InstancePlan:
    """What migrating one instance would do: ``moves`` old node -> new node for its tokens, the
    ``refusals`` that stop it (empty: it can migrate) and ``warnings`` that do not."""

    instance_id: str
    business_key: str | None
    moves: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals


@dataclass
class MigrationPlan:
    """A dry run: per running instance of ``name`` v``source``, what moving it to v``target`` does."""

    name: str
    source: int
    target: int
    mapping: dict[str, str]
    instances: list[InstancePlan]

    @property
    def migratable(self) -> list[str]:
        return [p.instance_id for p in self.instances if p.ok]

    @property
    def refused(self) -> list[str]:
        return [p.instance_id for p in self.instances if not p.ok]

    def __repr__(self) -> str:
        return (f"MigrationPlan({self.name} v{self.source} -> v{self.target}: {len(self.migratable)} can migrate, "
                f"{len(self.refused)} refused)")

    def to_frame(self) -> pd.DataFrame:
        """``instance_id, business_key, action (migrate | refused), moves, reasons, warnings``."""
        import pandas as pd

        return pd.DataFrame([{"instance_id": p.instance_id, "business_key": p.business_key,
                              "action": "migrate" if p.ok else "refused",
                              "moves": ", ".join(f"{a} -> {b}" for a, b in p.moves.items()),
                              "reasons": "; ".join(p.refusals), "warnings": "; ".join(p.warnings)}
                             for p in self.instances],
                            columns=["instance_id", "business_key", "action", "moves", "reasons", "warnings"])

    def _repr_html_(self) -> str:
        head = (f"<p><b>{self.name}</b> v{self.source} → v{self.target}: {len(self.migratable)} can migrate, "
                f"{len(self.refused)} refused</p>")
        return head + self.to_frame().to_html(index=False, max_rows=50)


def _mapping_for(source: ProcessDefinition, target: ProcessDefinition,
                 explicit: Mapping[str, str] | None) -> dict[str, str]:
    """Identity for ids in both, then the explicit pairs (checked: both ends must exist)."""
    old_ids = {n.id for n in source.all_nodes()}
    new_ids = {n.id for n in target.all_nodes()}
    mapping = {i: i for i in old_ids & new_ids}
    for old, new in (explicit or {}).items():
        if old not in old_ids:
            raise EngineError(f"mapping names {old!r}, which is not a node of {source.id!r} v{source.version}")
        if new not in new_ids:
            raise EngineError(f"mapping maps {old!r} to {new!r}, which is not a node of {target.id!r} "
                              f"v{target.version}")
        mapping[old] = new
    return mapping


def _check_instance(plan: InstancePlan, state: InstanceState, source: ProcessDefinition,
                    target: ProcessDefinition, mapping: dict[str, str]) -> None:
    src_scope, dst_scope = source.index.scope_of, target.index.scope_of
    dst_flows = {f.id for f in target.all_flows()}

    def counterpart(old: str, what: str) -> str | None:
        new = mapping.get(old)
        if new is None:
            plan.refusals.append(f"{what} at {old!r} has no counterpart in v{target.version}")
            return None
        kind_old, kind_new = source.node(old).kind, target.node(new).kind
        if kind_old != kind_new:
            plan.refusals.append(f"{what} at {old!r} ({kind_old}) maps to {new!r}, a {kind_new} in "
                                 f"v{target.version}")
            return None
        scope_old = src_scope.get(old)
        expected = mapping.get(scope_old) if scope_old is not None else None
        if dst_scope.get(new) != expected:
            plan.refusals.append(f"{what} at {old!r} maps to {new!r}, which lies in another sub-process")
            return None
        return new

    for token in state.tokens.values():
        new = counterpart(token.node, "a token")
        if new is None:
            continue
        if new != token.node:
            plan.moves[token.node] = new
        if token.status == JOIN and token.via is not None and token.via not in dst_flows:
            plan.refusals.append(f"a token waits at join {token.node!r} having arrived by flow {token.via!r}, "
                                 f"which v{target.version} does not have")
        armed = set()
        for wait_id, aim in token.waits.items():
            if aim in SPECIAL_WAITS or aim == token.node:
                continue
            aimed = counterpart(aim, f"a wait ({wait_id})")
            armed.add(aim)
            if aimed is None:
                continue
            old_message = getattr(source.node(aim), "message", None)
            new_message = getattr(target.node(aimed), "message", None)
            if old_message != new_message:
                plan.refusals.append(f"the subscription to {old_message!r} at {aim!r} cannot be carried: "
                                     f"{aimed!r} in v{target.version} waits for {new_message!r}")
        if token.waits or token.status == "work":
            kept = {mapping.get(b) for b in armed}
            for boundary in target.boundaries(new):
                if boundary.id not in kept:
                    plan.warnings.append(f"boundary {boundary.id!r} on {new!r} is new in v{target.version}: "
                                         f"armed only when {new!r} is entered again")
    declared_old = {v.name: v.type for v in source.variables}
    declared_new = {v.name: v.type for v in target.variables}
    for name, value in state.variables.items():
        if value is None or name not in declared_old or name not in declared_new:
            continue
        if declared_old[name] != declared_new[name]:
            plan.refusals.append(f"variable {name!r} changes type from {declared_old[name]} to "
                                 f"{declared_new[name]}")


def plan_migration(engine: Engine, name: str, source: int, target: int,
                   mapping: Mapping[str, str] | None = None, instance_ids: list[str] | None = None) -> MigrationPlan:
    """The dry run: nothing is written. ``instance_ids`` limits it (default: every running instance of
    ``name`` v``source``). Raises ``EngineError`` for an undeployed version or a mapping naming unknown nodes."""
    if source == target:
        raise EngineError(f"source and target are both v{source}")
    old, new = engine.definition(name, source), engine.definition(name, target)
    full = _mapping_for(old, new, mapping)
    query = select(INST.c.id, INST.c.business_key, INST.c.state).where(
        INST.c.definition_name == name, INST.c.definition_version == source, INST.c.status == "running"
    ).order_by(INST.c.started_at, INST.c.id)
    if instance_ids is not None:
        query = query.where(INST.c.id.in_(instance_ids))
    plans = []
    with engine.reader.connect() as conn:
        rows = conn.execute(query).all()
        for at in range(0, len(rows), 500):  # states with their variables, 500 instances a query
            chunk = rows[at:at + 500]
            states = load_states(conn, {r.id: r for r in chunk})
            for row in chunk:
                plan = InstancePlan(row.id, row.business_key)
                _check_instance(plan, states[row.id], old, new, full)
                plans.append(plan)
    if instance_ids is not None:
        found = {r.id for r in rows}
        plans.extend(InstancePlan(i, None, refusals=[f"not a running instance of {name!r} v{source}"])
                     for i in instance_ids if i not in found)
    return MigrationPlan(name, source, target, full, plans)


@dataclass
class MigrationResult:
    migrated: list[str]
    refused: dict[str, str]

    def __repr__(self) -> str:
        return f"MigrationResult(migrated={len(self.migrated)}, refused={len(self.refused)})"


@guard.audited
def migrate(engine: Engine, plan: MigrationPlan, actor: str | None = None) -> MigrationResult:
    """Apply a plan: each migratable instance in its own transaction, checked again on the locked state
    (an instance that moved meanwhile into a position the plan cannot carry is refused, not forced)."""
    guard.authorize(engine, "migrate", plan.name)
    actor = guard.recorded_actor(engine.principal, actor)
    old, new = engine.definition(plan.name, plan.source), engine.definition(plan.name, plan.target)
    migrated, refused = [], {p.instance_id: "; ".join(p.refusals) for p in plan.instances if not p.ok}
    for instance_id in plan.migratable:
        reason = _migrate_one(engine, instance_id, old, new, plan.mapping, actor)
        if reason is None:
            migrated.append(instance_id)
        else:
            refused[instance_id] = reason
    return MigrationResult(migrated, refused)


def _migrate_one(engine: Engine, instance_id: str, old: ProcessDefinition, new: ProcessDefinition,
                 mapping: dict[str, str], actor: str | None) -> str | None:
    now = engine.clock.now()
    with engine.db.begin() as conn:
        query = _READ if is_sqlite(engine.db) else _READ.with_for_update()
        row = conn.execute(query, {"i": instance_id}).first()
        if row is None or row.definition_version != old.version or row.status != "running":
            return f"no longer a running instance of v{old.version}"
        state = load_states(conn, {instance_id: row})[instance_id]
        check = InstancePlan(instance_id, None)
        _check_instance(check, state, old, new, mapping)
        if not check.ok:
            return "; ".join(check.refusals)
        _rename(conn, instance_id, state, mapping, now)
        rewrite_tokens(conn, instance_id, state)
        conn.execute(_MOVE_INSTANCE, {"i": instance_id, "b_version": new.version,
                                      "b_state": dumps(state.to_dict(variables=False, tokens=False)),
                                      "b_rev": row.rev + 1})
        conn.execute(_RECORD, {"instance_id": instance_id, "definition_name": new.id, "from_version": old.version,
                               "to_version": new.version, "mapping": dumps(check.moves), "actor": actor, "at": now})
    return None


def _rename(conn: Connection, instance_id: str, state: InstanceState, mapping: dict[str, str],
            now: datetime) -> None:
    """Rename node ids everywhere the instance's position is stored; due times, assignees and SLA clocks stay."""
    moves = {a: b for a, b in mapping.items() if a != b}
    for token in state.tokens.values():
        token.node = mapping.get(token.node, token.node)
        token.waits = {w: mapping.get(aim, aim) for w, aim in token.waits.items()}
    for entry in state.compensable:
        entry.node = mapping.get(entry.node, entry.node)
        entry.scope = tuple(mapping.get(s, s) for s in entry.scope)
    if not moves:
        return
    for old_id, new_id in moves.items():
        ids = {"i": instance_id, "old": old_id, "new": new_id}
        conn.execute(_MOVE_TOKENS, ids)
        conn.execute(_MOVE_SUBSCRIPTIONS, ids)
        tasks = conn.execute(_MOVE_TASKS, ids).all()
        if tasks:
            conn.execute(_TASK_AUDIT, [{"task_id": t.id, "instance_id": instance_id, "node_id": new_id,
                                       "action": "migrated", "actor": None,
                                       "detail": dumps({"from": old_id, "to": new_id}), "at": now} for t in tasks])
    for job in conn.execute(_JOBS, {"i": instance_id}).all():
        payload: dict[str, Any] = json.loads(job.payload or "{}")
        if payload.get("node_id") in moves:
            payload["node_id"] = moves[payload["node_id"]]
            conn.execute(_JOB_PAYLOAD, {"b_id": job.id, "b_payload": dumps(payload)})


def migrations(engine: Engine, instance_id: str | None = None) -> pd.DataFrame:
    """The migration audit trail: ``instance_id, definition_name, from_version, to_version, mapping, actor, at``."""
    import pandas as pd

    query = select(MIG).order_by(MIG.c.id)
    if instance_id is not None:
        query = query.where(MIG.c.instance_id == instance_id)
    with engine.reader.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for r in rows:
        r["mapping"] = json.loads(r["mapping"])
    return pd.DataFrame(rows, columns=["id", "instance_id", "definition_name", "from_version", "to_version", "mapping",
                                       "actor", "at"])
