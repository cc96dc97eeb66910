"""What an instance did and what it waits for: the activity history and the armed waits.

Activity history (BPMN's *activity instance*; Camunda's ``ACT_HI_ACTINST``). Every node a token passes -
events, gateways, tasks, sub-processes - is one row of ``wf_activities``: node, kind, scope (the enclosing
sub-process), started, ended and outcome. The rows are written in the transaction of the step that started
or ended the passage (the core's ``Entered`` effects and the tokens a step removed), so the history is
exactly as durable as the state. Outcomes:

- ``completed``: the token left the node by its flows (or ended there: an end event, an implicit end, a join
  that merged it);
- ``interrupted``: an interrupting boundary event took the token off the activity;
- ``cancelled``: the token was removed from outside (a terminate end, an interrupted sub-process, a cancel, a
  transaction a cancel end event cancelled);
- ``failed``: the instance failed while the token was there;
- ``compensated``: it completed, and a compensation handler later undid it (BPMN 2.0 §10.7; the row keeps
  the activity's own end; the undoing is the handler's run, below);
- None: still there (``ended_at`` is None).

An escalation nothing caught (BPMN 2.0 §10.5.6: it changes nothing, it is not an error) is a row of its own with
kind ``escalation`` and outcome ``uncaught``: ``node_id`` is the throw or end event that threw it (its
``escalation_code`` is the code), started and ended at the moment it was thrown, after the event's own passage.
In a called process its outcome is ``propagated``: it went on to the calling call activity, whose instance records
the catch there (or, caught nowhere, an ``uncaught`` row at the call activity).

A compensation handler's run is a row of its own with kind ``compensation``: ``node_id`` is the handler
activity (``for_compensation``), or the undone activity when its handler is a reference to code; ``token_id``
is the run's work id. Its outcome is ``completed``, ``failed`` (an incident at the throw; a retry is a new run)
or ``cancelled``.

Armed waits: the timers (with due time and purpose), message subscriptions (message name and correlation)
and jobs (agent calls, messages to deliver) of one instance, each with the node it belongs to - for an
event-based gateway, the catch event each timer and message stands for, not the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from engine.model.nodes import BoundaryEvent
from engine.model.values import loads
from engine.runtime.parts import EngineParts
from engine.runtime.prepared import Prepared
from engine.runtime.tables import ActivityRow, InstanceRow, JobRow, SubscriptionRow, TokenRow
from engine.semantics import effects as fx
from engine.semantics.state import COMPENSATING

if TYPE_CHECKING:
    import pandas as pd

    from engine.model.definition import ProcessDefinition

A, J, S, T, INST = (ActivityRow.__table__, JobRow.__table__, SubscriptionRow.__table__, TokenRow.__table__,
                   InstanceRow.__table__)

ACTIVITY_COLUMNS = ["node_id", "kind", "scope", "token_id", "started_at", "ended_at", "duration", "outcome"]
WAIT_COLUMNS = ["kind", "node_id", "purpose", "due_at", "message", "correlation", "token_id", "attempts",
                "locked_by", "lock_expires_at"]
_INSERT = Prepared(insert(A))  # compiled once: see engine.runtime.prepared
_END_KINDS = frozenset({"end", "terminate_end", "error_end", "signal_end", "escalation_end", "message_throw",
                        "compensation_throw", "cancel_end"})
_JOIN_KINDS = frozenset({"parallel_gateway", "inclusive_gateway"})
# A cancel boundary event's token is there while the cancelled transaction's compensation runs, and leaves it
# when the compensation is done: the path lists it where it was left, after those runs (``passages``).
_WAITS_FOR_COMPENSATION = frozenset({"boundary_cancel"})


class ActivityBuffer:
    """The activity rows of one transaction (held by ``Writes``): inserts, and closes of stored rows."""

    __slots__ = ("open_at", "rows")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.open_at: dict[tuple[str, str], int] = {}  # (instance, token) -> index of its open row in ``rows``

    def close(self, instance_id: str, token_id: str, node_id: str, at: datetime, outcome: str) -> None:
        at_index = self.open_at.pop((instance_id, token_id), None)
        if at_index is not None and self.rows[at_index]["kind"] in _WAITS_FOR_COMPENSATION \
                and at_index < len(self.rows) - 1:
            at_index = None  # rows (compensation runs) came after it: an end row, so the reader lists it after them
        if at_index is not None:  # opened in this transaction: one row, never written open
            row = self.rows[at_index]
            row["ended_at"], row["outcome"] = at, outcome
        else:  # opened in an earlier transaction: an end row (append-only, no UPDATE; paired when read)
            self.rows.append({"instance_id": instance_id, "token_id": token_id, "node_id": node_id, "kind": "",
                              "scope": None, "started_at": None, "ended_at": at, "outcome": outcome})

    def open(self, row: dict[str, Any]) -> None:
        self.open_at[(row["instance_id"], row["token_id"])] = len(self.rows)
        self.rows.append(row)

    def flush(self, conn: Connection) -> None:
        if self.rows:
            _INSERT.executemany(conn, self.rows)


class ActivityLog:
    """One instance's activity rows inside a step (``StepWriter`` feeds it the core's effects)."""

    __slots__ = ("buffer", "definition", "instance_id", "left", "passing", "runs")

    def __init__(self, buffer: ActivityBuffer, instance_id: str, definition: ProcessDefinition,
                 tokens: Mapping[str, Any], compensable: Sequence[Any] = ()) -> None:
        self.buffer, self.instance_id, self.definition = buffer, instance_id, definition
        self.passing: dict[str, str] = {tid: t.node for tid, t in tokens.items()}  # token -> node it is at
        self.left: set[str] = set()  # nodes a token left by its flows in this step (a join that fired)
        self.runs: dict[str, str] = {  # compensation handler runs open before this step: work id -> row node
            t.work_id: self._run_node(compensable[t.pending[0]].node, compensable[t.pending[0]].handler)
            for t in tokens.values() if t.status == COMPENSATING and t.work_id and t.pending}

    def _run_node(self, activity_id: str, handler: str) -> str:
        """The node a handler run is recorded at: the handler activity, else the activity it undoes."""
        node = self.definition.index.nodes.get(handler)
        return handler if node is not None and getattr(node, "for_compensation", False) else activity_id

    def compensation(self, e: fx.Compensation, now: datetime) -> None:
        """A handler run started or ended; a completed run marks its activity ``compensated``."""
        node_id = self._run_node(e.activity_id, e.handler)
        if e.outcome is None:
            self.runs[e.work_id] = node_id
            self.buffer.open({"instance_id": self.instance_id, "token_id": e.work_id, "node_id": node_id,
                              "kind": "compensation", "scope": self.definition.index.scope_of.get(node_id),
                              "started_at": now, "ended_at": None, "outcome": None})
            return
        self.runs.pop(e.work_id, None)
        self.buffer.close(self.instance_id, e.work_id, node_id, now, e.outcome)
        if e.outcome == "completed":  # the undone activity's latest completed passage (paired when read)
            self.buffer.rows.append({"instance_id": self.instance_id, "token_id": "", "node_id": e.activity_id,
                                     "kind": "", "scope": None, "started_at": None, "ended_at": now,
                                     "outcome": "compensated"})

    def escalated(self, e: fx.Escalated, now: datetime, outcome: str = "uncaught") -> None:
        """An escalation nothing caught: a finished row of its own at the event that threw it (``outcome``
        ``propagated`` in a called process: it went on to the call activity)."""
        self.buffer.rows.append({"instance_id": self.instance_id, "token_id": e.token_id, "node_id": e.node_id,
                                 "kind": "escalation", "scope": self.definition.index.scope_of.get(e.node_id),
                                 "started_at": now, "ended_at": now, "outcome": outcome})

    def entered(self, e: fx.Entered, now: datetime) -> None:
        index = self.definition.index
        node = index.nodes.get(e.node_id)
        previous = self.passing.get(e.token_id)
        if previous is not None:
            interrupted = isinstance(node, BoundaryEvent) and node.interrupting and node.attached_to == previous
            outcome = "completed"
            if interrupted:  # (a transaction left by its cancel boundary event was cancelled)
                outcome = "cancelled" if getattr(node, "kind", "") == "boundary_cancel" else "interrupted"
            self.buffer.close(self.instance_id, e.token_id, previous, now, outcome)
            if not interrupted:
                self.left.add(previous)
        self.passing[e.token_id] = e.node_id
        self.buffer.open({"instance_id": self.instance_id, "token_id": e.token_id, "node_id": e.node_id,
                          "kind": getattr(node, "kind", "?"), "scope": index.scope_of.get(e.node_id),
                          "started_at": now, "ended_at": None, "outcome": None})

    def completed(self, e: fx.Left, now: datetime) -> None:
        """A loop instance completed at its node (its token is gone, having taken no flow)."""
        node_id = self.passing.pop(e.token_id, None)
        if node_id is not None:
            self.buffer.close(self.instance_id, e.token_id, node_id, now, "completed")

    def stepped(self, tokens: Mapping[str, Any], status: str, now: datetime) -> None:
        """Close the rows of tokens the step removed, and of handler runs nothing waits for any more."""
        running = {t.work_id for t in tokens.values() if t.status == COMPENSATING and t.work_id}
        for work_id in [w for w in self.runs if w not in running]:
            self.buffer.close(self.instance_id, work_id, self.runs.pop(work_id), now,
                              "failed" if status == "failed" else "cancelled")
        for token_id in [t for t in self.passing if t not in tokens]:
            node_id = self.passing.pop(token_id)
            node = self.definition.index.nodes.get(node_id)
            kind = getattr(node, "kind", "")
            if status == "failed":
                outcome = "failed"
            elif status == "cancelled":
                outcome = "cancelled"
            elif kind in _JOIN_KINDS:
                outcome = "completed" if node_id in self.left else "cancelled"  # merged by a join that fired
            elif kind in _END_KINDS or not self.definition.index.outgoing.get(node_id):
                outcome = "completed"  # it ended here (an end event or an implicit end)
            else:
                outcome = "cancelled"
            self.buffer.close(self.instance_id, token_id, node_id, now, outcome)


def passages(stored: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One instance's stored rows (in id order) paired into passages, in the order they started: an end row
    (``started_at`` None) closes its open passage (same token and node); a ``compensated`` row marks the
    node's latest completed passage. A cancel boundary event is listed where it was left, after the
    compensation runs it waited for (the order things happened, whatever the clock said)."""
    rows: list[dict[str, Any]] = []
    running: dict[tuple[str, str], dict[str, Any]] = {}  # (token, node) -> its open passage
    for row in stored:
        if row["started_at"] is None:  # the end of a passage started in an earlier transaction
            if row["outcome"] == "compensated":
                done = next((p for p in reversed(rows) if p["node_id"] == row["node_id"]
                             and p["outcome"] == "completed" and p["kind"] != "compensation"), None)
                if done is not None:
                    done["outcome"] = "compensated"
                continue
            passage = running.pop((row["token_id"], row["node_id"]), None)
            if passage is not None:
                passage["ended_at"], passage["outcome"] = row["ended_at"], row["outcome"]
                if passage["kind"] in _WAITS_FOR_COMPENSATION and rows[-1] is not passage:
                    rows.pop(next(i for i in range(len(rows) - 1, -1, -1) if rows[i] is passage))
                    rows.append(passage)
            continue
        passage = dict(row)
        rows.append(passage)
        if passage["ended_at"] is None:
            running[(passage["token_id"], passage["node_id"])] = passage
    return rows


class InspectApi(EngineParts):
    """Mixed into ``Engine``: an instance's activity history and its armed waits."""

    def activities(self, instance_id: str) -> pd.DataFrame:
        """The instance's activity instances in the order they started: node_id, kind, scope, token_id,
        started_at, ended_at, duration (a Timedelta; NaT while running), outcome (see the module docstring)."""
        import pandas as pd

        with self.reader.connect() as conn:
            stored = conn.execute(select(A.c.node_id, A.c.kind, A.c.scope, A.c.token_id, A.c.started_at,
                                         A.c.ended_at, A.c.outcome).where(A.c.instance_id == instance_id)
                                  .order_by(A.c.id)).mappings().all()
        rows = passages(stored)
        frame = pd.DataFrame(rows, columns=[c for c in ACTIVITY_COLUMNS if c != "duration"])
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
        frame["ended_at"] = pd.to_datetime(frame["ended_at"], utc=True)
        frame.insert(6, "duration", frame["ended_at"] - frame["started_at"])
        for column in ("scope", "outcome"):
            frame[column] = pd.Series([r[column] for r in rows], dtype=object)
        return frame

    def waits(self, instance_id: str) -> pd.DataFrame:
        """What the instance waits for now, soonest first: ``timer`` (due_at, purpose catch / boundary / race /
        sla / retry), ``message`` (message name and correlation value; purpose catch / boundary / race),
        ``work`` (an agent call queued or running: attempts, locked_by) and ``send`` (a thrown message to be
        delivered). ``node_id`` is the node the wait stands for: behind an event-based gateway, each catch
        event it races."""
        import pandas as pd

        with self.reader.connect() as conn:
            jobs = conn.execute(select(J).where(J.c.instance_id == instance_id)).all()
            subs = conn.execute(select(S).where(S.c.instance_id == instance_id)).all()
            at = {r.token_id: r.node_id for r in conn.execute(select(T.c.token_id, T.c.node_id)
                                                              .where(T.c.instance_id == instance_id))}
        rows: list[dict[str, Any]] = []
        for job in jobs:
            payload = loads(job.payload or "{}")
            base = {"token_id": None, "attempts": job.attempts, "locked_by": job.lock_owner,
                    "lock_expires_at": job.lock_expires_at, "due_at": job.due_at, "message": None,
                    "correlation": None}
            if job.kind == "timer":
                token_id, target = _split_wait(job.ref)
                node = target if target and not target.startswith("@") else payload.get("node_id")
                rows.append({**base, "kind": "timer", "node_id": node, "purpose": payload.get("purpose"),
                             "token_id": token_id})
            elif job.kind == "work":
                rows.append({**base, "kind": "work", "node_id": payload.get("node_id"), "purpose": payload.get("kind"),
                             "token_id": job.ref})
            elif job.kind == "message":
                rows.append({**base, "kind": "send", "node_id": payload.get("node_id"), "purpose": "throw",
                             "message": payload.get("message"), "correlation": payload.get("correlation")})
            else:
                rows.append({**base, "kind": job.kind, "node_id": payload.get("node_id"), "purpose": None})
        index = None
        if subs:
            with self.reader.connect() as conn:
                inst = conn.execute(select(INST.c.definition_name, INST.c.definition_version)
                                    .where(INST.c.id == instance_id)).first()
            index = self.definition(inst.definition_name, inst.definition_version).index if inst else None
        for sub in subs:
            node = index.nodes.get(sub.node_id) if index is not None else None
            purpose = ("boundary" if isinstance(node, BoundaryEvent) else
                       "catch" if at.get(sub.token_id) == sub.node_id else "race")
            rows.append({"kind": "message", "node_id": sub.node_id, "purpose": purpose, "due_at": None,
                         "message": sub.message,
                         "correlation": loads(sub.correlation) if sub.correlation is not None else None,
                         "token_id": sub.token_id, "attempts": None, "locked_by": None, "lock_expires_at": None})
        frame = pd.DataFrame(rows, columns=WAIT_COLUMNS)
        for column in ("node_id", "purpose", "message", "correlation", "token_id", "locked_by"):
            frame[column] = pd.Series([r[column] for r in rows], dtype=object)
        frame["attempts"] = frame["attempts"].astype("Int64")
        if not frame.empty:
            frame = frame.sort_values("due_at", na_position="last", kind="stable").reset_index(drop=True)
        return frame

def _split_wait(wait_id: str) -> tuple[str | None, str | None]:
    """A core wait id ``<token>.<target node>.<n>`` -> (token, target)."""
    token, _, rest = wait_id.partition(".")
    target, _, _ = rest.rpartition(".")
    return (token or None), (target or None)


__all__ = ["ACTIVITY_COLUMNS", "WAIT_COLUMNS", "ActivityBuffer", "ActivityLog", "InspectApi"]
