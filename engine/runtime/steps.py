"""One instance's steps inside a transaction: the pure core's effects become rows.

The core (``engine.semantics``) says what happens; this turns each effect into buffered writes
(``engine.runtime.writes``) or, for the rare human-task rows, direct statements on the step's
connection. ``Pending`` is an event waiting for its batch's transaction.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine.model.nodes import ServiceTask, UserTask
from engine.model.timers import parse_duration
from engine.runtime.correlation import take_buffered
from engine.runtime.history import ActivityLog
from engine.runtime.prepared import Prepared
from engine.runtime.tables import HumanTaskRow, TaskAuditRow
from engine.runtime.writes import Writes, dumps
from engine.semantics import InstanceState, Semantics
from engine.semantics import effects as fx
from engine.semantics import events as ev

HT, TA = HumanTaskRow.__table__, TaskAuditRow.__table__
log = logging.getLogger("waooaw.engine")
_INSERT_TASK, _INSERT_TASK_AUDIT = insert(HT), insert(TA)  # built once: a step only binds its values
# A user task's creation, on the driver's cursor (engine.runtime.prepared): its row (id returned) and audit row.
_CREATE_TASK, _CREATE_TASK_AUDIT = Prepared(insert(HT).returning(HT.c.id)), Prepared(insert(TA))


@dataclass(slots=True)
class Pending:
    """An event waiting for its batch's transaction, with the claimed job it settles."""

    instance_id: str
    event: ev.Event
    job_id: int | None = None  # removed in the same transaction, only if this worker still holds it
    execution: dict[str, Any] | None = None  # the task-execution row of an agent call
    traceback: str | None = None


class StepWriter:
    """One instance's steps inside a transaction: the core's effects become buffered writes."""

    def __init__(self, conn: Connection, writes: Writes, instance_id: str, sem: Semantics,
                 state: InstanceState, now: datetime, business_key: str | None, traceback: str | None = None,
                 ended_at: datetime | None = None, error: str | None = None,
                 call: Callable[[StepWriter, fx.StartWork], ev.Event | None] | None = None) -> None:
        self.conn, self.writes, self.id, self.sem = conn, writes, instance_id, sem
        self.call = call  # starts a call activity's child (Engine._call_activity)
        self.state, self.now, self.business_key, self.traceback = state, now, business_key, traceback
        self.ended_at, self.error = ended_at, error
        self.ended: fx.InstanceEnded | None = None
        created = instance_id in writes.created
        self.log = ActivityLog(writes.activities, instance_id, sem.definition,  # the activity history
                               {} if created else state.tokens, () if created else state.compensable)
        self.jobs: list[dict[str, Any]] = []  # jobs of the effect at hand, handed to ``writes`` after it

    def run(self, effects: list[fx.Effect], events: list[ev.Event]) -> None:
        pending: deque[fx.Effect] = deque(effects)
        for event in events:
            pending.extend(self.sem.step(self.state, event, self.now))
        while pending:
            effect = pending.popleft()
            follow = self.apply(effect)
            for job in self.jobs:
                self.writes.add_job(job)
            self.jobs.clear()
            if follow is not None:
                pending.extend(self.sem.step(self.state, follow, self.now))

    def stepped(self, rev: int) -> None:
        """The instance row's new values (once per instance and transaction)."""
        if self.ended is not None:
            self.ended_at, self.error = self.now, self.ended.error
        self.log.stepped(self.state.tokens, self.state.status, self.now)
        self.writes.stepped(self.id, self.state, {
            "state": dumps(self.state.to_dict(variables=False, tokens=False)), "status": self.state.status,
            "steps": self.state.steps,
            "rev": rev + 1, "ended_at": self.ended_at, "error": self.error})

    def apply(self, e: fx.Effect) -> ev.Event | None:
        conn, now, w = self.conn, self.now, self.writes
        if isinstance(e, fx.Entered):
            self.log.entered(e, now)
            return None
        if isinstance(e, fx.StartWork):
            return self._start_work(e)
        if isinstance(e, fx.Left):
            self.log.completed(e, now)
            return None
        if isinstance(e, fx.Compensation):
            self.log.compensation(e, now)
            return None
        if isinstance(e, fx.CancelWork):
            w.cancel_job(self.id, "work", e.token_id)
            if self.sem.definition.node(e.node_id).kind == "call_activity":  # type: ignore[attr-defined]
                self.jobs.append({"instance_id": child_id(self.id, e.work_id), "kind": "call", "ref": "cancel",
                                  "due_at": now, "payload": dumps({"cancel": f"its caller {self.id} cancelled it"})})
            cancelled = (update(HT).where(HT.c.instance_id == self.id, HT.c.work_id == e.work_id, HT.c.status == "open")
                         .values(status="cancelled", completed_at=now).returning(HT.c.id, HT.c.node_id))
            for task in conn.execute(cancelled).all():
                conn.execute(_INSERT_TASK_AUDIT, {"task_id": task.id, "instance_id": self.id, "node_id": task.node_id,
                                                  "action": "cancelled", "actor": None, "detail": "{}", "at": now})
        elif isinstance(e, fx.ScheduleTimer):
            self.jobs.append({"instance_id": self.id, "kind": "timer", "ref": e.timer_id, "due_at": e.due,
                              "payload": dumps({"node_id": e.node_id, "purpose": e.purpose})})
        elif isinstance(e, fx.CancelTimer):
            w.cancel_job(self.id, "timer", e.timer_id)
        elif isinstance(e, fx.Subscribe):
            w.subscribe({"id": f"{self.id}:{e.subscription_id}", "instance_id": self.id, "message": e.message,
                         "correlation": dumps(e.correlation) if e.correlation is not None else None,
                         "token_id": e.token_id, "node_id": e.node_id, "created_at": now, "kind": e.kind})
            if e.kind == "signal":
                return None  # a signal is never buffered (engine.runtime.signals)
            buffered = take_buffered(conn, self.id, self.business_key, e.message, e.correlation,
                                     self.state.variables, now)
            if buffered is not None:  # a message sent before the catch opened (correlation.py)
                return ev.MessageReceived(e.subscription_id, buffered)
        elif isinstance(e, fx.Unsubscribe):
            w.unsubscribe(f"{self.id}:{e.subscription_id}")
        elif isinstance(e, fx.SendMessage):
            self.jobs.append({"instance_id": self.id, "kind": "message", "ref": e.message, "due_at": now,
                              "payload": dumps({"message": e.message, "correlation": e.correlation,
                                                "payload": e.payload, "node_id": e.node_id})})
        elif isinstance(e, fx.BroadcastSignal):
            self.jobs.append({"instance_id": self.id, "kind": "signal", "ref": e.signal, "due_at": now,
                              "payload": dumps({"signal": e.signal, "payload": e.payload, "node_id": e.node_id})})
        elif isinstance(e, fx.Escalated):  # nothing caught it: not an error (BPMN 2.0 §10.5.6), in the history
            caller = self.state.caller
            self.log.escalated(e, now, "propagated" if caller else "uncaught")
            if caller:  # a called process: its call activity throws it on (engine: job kind "call")
                self.jobs.append({"instance_id": caller["instance"], "kind": "call", "ref": caller["token"],
                                  "due_at": now, "payload": dumps({
                                      "token": caller["token"], "work": caller["work"], "child": self.id,
                                      "escalation": e.code})})
            else:
                log.info("instance %s: escalation %r thrown at %r was not caught", self.id, e.code, e.node_id)
        elif isinstance(e, fx.VariablesChanged):
            w.changes.extend((self.id, name, old, new, e.node_id, e.actor, now) for name, old, new in e.changes)
        elif isinstance(e, fx.SlaBreached):
            self._sla(e)
        elif isinstance(e, fx.Incident):
            w.incidents.append({"instance_id": self.id, "token_id": e.token_id, "node_id": e.node_id,
                                "error": self.unrevealing(e.error), "traceback": self.traceback, "created_at": now})
        elif isinstance(e, fx.InstanceEnded):
            self.ended = e
            w.instance_ended(self.id)
            caller = self.state.caller
            if caller:  # a called process ended: its call activity hears it (engine: job kind "call")
                self.jobs.append({"instance_id": caller["instance"], "kind": "call", "ref": caller["token"],
                                  "due_at": now, "payload": dumps({
                                      "token": caller["token"], "work": caller["work"], "child": self.id,
                                      "status": e.status, "error": e.error, "error_code": e.error_code,
                                      "variables": self.state.variables})})
        return None

    def unrevealing(self, error: str) -> str:
        """An incident's message with the values of sensitive variables masked (a failed condition may print
        what it computed from them): ``engine.security.sensitive.mask_problems``."""
        from engine.security.sensitive import mask_problems, sensitive_names

        definition = self.sem.definition
        if not sensitive_names(definition):
            return error
        return mask_problems(definition, self.state.variables, [error])[0]

    def _start_work(self, e: fx.StartWork) -> ev.Event | None:
        if e.kind == "task":
            return ev.WorkDone(e.token_id, {})
        if e.kind == "call_activity":
            if self.call is None:
                return ev.WorkFailed(e.token_id, "this engine path cannot start a called process")
            return self.call(self, e)
        node = self.sem.definition.node(e.node_id)
        if e.kind == "user_task" and isinstance(node, UserTask):
            task_id = _CREATE_TASK.first(self.conn, {
                "instance_id": self.id, "token_id": e.token_id, "work_id": e.work_id, "node_id": e.node_id,
                "title": node.title or node.label, "assignee": node.assignee,
                "candidate_groups": dumps(node.candidate_groups), "requires_claim": node.requires_claim,
                "status": "open", "escalated": False,
                "form": dumps([f.model_dump(mode="json") for f in node.form]), "created_at": self.now,
                "due_at": e.due})[0]  # type: ignore[index]
            _CREATE_TASK_AUDIT.execute(self.conn, {
                "task_id": task_id, "instance_id": self.id, "node_id": e.node_id, "action": "created", "actor": None,
                "at": self.now, "detail": dumps({"assignee": node.assignee, "candidate_groups": node.candidate_groups,
                                                 "due_at": e.due})})
            return None
        timeout = parse_duration(node.timeout).total_seconds() if isinstance(node, ServiceTask) and node.timeout \
            else None
        self.jobs.append({"instance_id": self.id, "kind": "work", "ref": e.token_id, "due_at": self.now,
                          "payload": dumps({"node_id": e.node_id, "work_id": e.work_id, "attempt": e.attempt,
                                            "handler": e.handler, "inputs": e.inputs, "kind": e.kind,
                                            "timeout": timeout, "business_key": self.business_key,
                                            **_topic(node, e.kind)})})
        return None

    def _sla(self, e: fx.SlaBreached) -> None:
        conn, action = self.conn, e.action
        where = (HT.c.instance_id == self.id, HT.c.work_id == e.work_id, HT.c.status == "open")
        query = select(HT.c.id, HT.c.assignee).where(*where)
        tasks = conn.execute(query if conn.dialect.name == "sqlite" else query.with_for_update()).all()
        kind = action.action if action is not None else None
        detail: dict[str, Any] = {"action": kind}
        if kind in ("escalate", "reassign"):
            conn.execute(update(HT).where(*where).values(assignee=action.assignee, escalated=kind == "escalate"))
        elif kind == "complete":
            conn.execute(update(HT).where(*where).values(status="completed", completed_at=self.now,
                                                         completed_by="sla", within_sla=False,
                                                         outcome=dumps(action.values)))
            detail["values"] = action.values
        elif kind == "notify":
            detail["message"] = action.message
        elif kind == "handler":
            detail["handler"] = action.handler
        if tasks:
            audit = {"escalate": "escalated", "reassign": "reassigned", "complete": "sla_completed"}
            conn.execute(_INSERT_TASK_AUDIT, [{"task_id": t.id, "instance_id": self.id, "node_id": e.node_id,
                                       "action": audit.get(kind or "", "sla_breached"), "actor": "sla", "at": self.now,
                                       "detail": dumps({**detail, "from": t.assignee, "to": action.assignee}
                                                       if kind in ("escalate", "reassign") else detail)}
                                      for t in tasks])
        if action is None:
            return
        elif action.action == "notify":
            self.jobs.append({"instance_id": self.id, "kind": "message", "ref": action.message, "due_at": self.now,
                              "payload": dumps({"message": action.message, "correlation": None,
                                                "payload": {"instance_id": self.id, "node_id": e.node_id}})})
        elif action.action == "handler":
            self.jobs.append({"instance_id": self.id, "kind": "handler", "ref": e.token_id, "due_at": self.now,
                              "payload": dumps({"handler": action.handler,
                                                "inputs": {"instance_id": self.id, "node_id": e.node_id}})})


def child_id(parent: str, work_id: str) -> str:
    """The instance id of the process a call activity started (one per activation: its work id)."""
    return f"{parent}-{work_id}"


def _topic(node: object, kind: str) -> dict[str, str]:
    """A service task with a topic: its work is for external workers on the bus (engine.bus.external)."""
    topic = getattr(node, "topic", None) if kind == "service_task" else None
    return {"topic": topic} if topic else {}
