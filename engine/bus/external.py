"""Service tasks done by external workers (Camunda's external tasks, Zeebe's job workers), the engine's side.

A service task with a ``topic`` makes the usual work job. When the engine's job loop takes that job, it
does not call an agent: it *hands the task out* —
1. in one transaction the job's lock passes to the task (``lock_owner = "ext:<lock token>"``, expiring
   after ``lock``), then
2. the task is published on its topic: ids, inputs, the idempotency key, the lock's expiry and the
   reply topic (``workflow.responses``).

Answers come back on the reply topic (``engine.bus.bridge`` feeds them to :meth:`ExternalTasks.answer`):
- ``heartbeat`` extends the lock by ``extend`` seconds, while the lock still holds;
- ``completed`` (outputs), ``failed`` (the task's retry policy applies) and ``bpmn_error`` (an error
  boundary event with the code catches it) are applied in one transaction that also removes the job —
  only if the answer's lock token still holds an unexpired lock. Otherwise the answer is **refused and
  recorded** (a ``refused`` row in the task executions, with the reason): the lock expired (the job is
  taken again when its lock expires and handed out with a new token: that second attempt wins), the task
  was cancelled (boundary event, instance cancelled) or already answered. An answer is never applied
  twice: its message id is written in the transaction that applies it.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.runtime.tables import BusInboxRow, InstanceRow, JobRow, TaskExecutionRow
from engine.semantics import events as ev

if TYPE_CHECKING:
    from engine.bus.base import Message, MessageBus
    from engine.runtime.engine import Engine

J, X, INBOX, INST = JobRow.__table__, TaskExecutionRow.__table__, BusInboxRow.__table__, InstanceRow.__table__
REPLY_TOPIC = "workflow.responses"
DEFAULT_LOCK = timedelta(seconds=60)
_LOCK = (update(J).where(J.c.id == bindparam("j"), J.c.lock_owner == bindparam("me"))
         .values(lock_owner=bindparam("owner"), lock_expires_at=bindparam("until")))


def wants_bus(engine: Engine, payload: dict[str, Any]) -> bool:
    """Is this work job for an external worker? (a topic, and no in-process agent or a configured bus)."""
    return bool(payload.get("topic")) and (not payload.get("handler") or engine.bus_configured)


class ExternalTasks:
    """The engine's external-task desk: hand tasks out, take answers, refuse late ones."""

    def __init__(self, engine: Engine, bus: MessageBus, lock: timedelta = DEFAULT_LOCK,
                 reply_topic: str = REPLY_TOPIC) -> None:
        self.engine, self.bus, self.lock, self.reply_topic = engine, bus, lock, reply_topic

    # --- handing out -----------------------------------------------------------------------------

    def hand_out(self, jobs: list[Any]) -> list[Any]:
        """Hand out the jobs that are external tasks; returns the others (run in-process as before)."""
        engine = self.engine
        mine: list[tuple[Any, dict[str, Any]]] = []
        rest: list[Any] = []
        for job in jobs:
            payload = json.loads(job.payload) if job.kind == "work" and '"topic"' in job.payload else None
            if payload is not None and wants_bus(engine, payload):
                mine.append((job, payload))
            else:
                rest.append(job)
        if not mine:
            return rest
        now = engine.clock.now()
        until = now + self.lock
        tokens = {job.id: uuid.uuid4().hex for job, _ in mine}
        with engine.db.begin() as conn:
            held = [job_id for job_id, token in tokens.items()
                    if conn.execute(_LOCK, {"j": job_id, "me": engine.worker_id, "owner": f"ext:{token}",
                                            "until": until}).rowcount == 1]
        for job, payload in mine:
            if job.id not in held:  # our claim lapsed meanwhile: whoever has the job now hands it out
                continue
            token = tokens[job.id]
            task = {"task_id": job.id, "lock_token": token, "instance_id": job.instance_id, "token_id": job.ref,
                    "node_id": payload["node_id"], "work_id": payload["work_id"], "attempt": payload["attempt"],
                    "delivery": job.attempts + 1, "inputs": payload.get("inputs", {}),
                    "business_key": payload.get("business_key"),
                    "idempotency_key": f"{job.instance_id}:{payload['work_id']}",
                    "lock_expires_at": until.isoformat(), "lock_seconds": self.lock.total_seconds(),
                    "reply_to": self.reply_topic}
            self.bus.publish(payload["topic"], task, message_id=f"task:{job.id}:{token}",
                             headers={"origin": "engine"})
        return rest

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, message: Message) -> str:
        """Apply one answer. Returns ``applied``, ``extended``, ``duplicate`` or ``refused: <reason>``.
        Raises for an answer that is not one (missing fields): the bridge parks it."""
        a = message.payload
        missing = [f for f in ("task_id", "lock_token", "instance_id", "status") if f not in a]
        if missing:
            raise ValueError(f"not an answer: missing {', '.join(missing)}")
        status = a["status"]
        engine = self.engine
        now = engine.clock.now()
        owner = f"ext:{a['lock_token']}"
        if status == "heartbeat":
            extend = timedelta(seconds=max(float(a.get("extend") or self.lock.total_seconds()), 0.0))
            with engine.db.begin() as conn:
                ok = conn.execute(update(J).where(J.c.id == int(a["task_id"]), J.c.lock_owner == owner,
                                                  J.c.lock_expires_at > now)
                                  .values(lock_expires_at=now + extend)).rowcount == 1
            return "extended" if ok else "refused: the lock is no longer held"
        if status == "completed":
            event: ev.Event = ev.WorkDone(a.get("token_id", ""), dict(a.get("outputs") or {}))
        elif status == "failed":
            event = ev.WorkFailed(a.get("token_id", ""), str(a.get("error") or "failed"), a.get("error_code"))
        elif status == "bpmn_error":
            event = ev.WorkFailed(a.get("token_id", ""), str(a.get("error") or a.get("error_code")),
                                  str(a.get("error_code") or "error"), business=True)
        else:
            raise ValueError(f"unknown answer status {status!r} (completed, failed, bpmn_error, heartbeat)")
        execution = {"instance_id": a["instance_id"], "node_id": a.get("node_id") or "", "work_id":
                     a.get("work_id") or "", "attempt": int(a.get("attempt") or 1), "started_at": now,
                     "ended_at": now, "status": "completed" if status == "completed" else "failed",
                     "error": None if status == "completed" else
                     (f"{a.get('error_code')}: {a.get('error')}" if status == "bpmn_error" else a.get("error"))}
        duplicate = False

        def take(conn: Connection) -> bool:
            nonlocal duplicate
            if conn.execute(select(INBOX.c.message_id).where(INBOX.c.message_id == message.id)).first():
                duplicate = True
                return False
            row = conn.execute(select(J.c.ref, J.c.payload).where(
                J.c.id == int(a["task_id"]), J.c.instance_id == a["instance_id"], J.c.lock_owner == owner,
                J.c.lock_expires_at > now)).first()
            if row is None or (a.get("token_id") and row.ref != a["token_id"]):
                return False
            task = json.loads(row.payload)
            execution.update(node_id=task["node_id"], work_id=task["work_id"], attempt=task["attempt"])
            conn.execute(J.delete().where(J.c.id == int(a["task_id"])))
            conn.execute(insert(INBOX).values(message_id=message.id, topic=message.topic, received_at=now))
            conn.execute(insert(X).values(**execution))
            return True

        try:
            if not a.get("token_id"):
                raise ValueError("not an answer: missing token_id")
            applied = engine._apply(a["instance_id"], [event], before=take,  # the worker's traceback: the incident's
                                    traceback=a.get("traceback") if status == "failed" else None)
        except EngineError:
            applied = False
        if applied:
            return "applied"
        if duplicate:
            return "duplicate"
        reason = self._refuse(message, execution, now)
        return f"refused: {reason}"

    def _refuse(self, message: Message, execution: dict[str, Any], now: Any) -> str:
        """Record a refused answer (once per answer message) and say why it was refused."""
        a = message.payload
        engine = self.engine
        with engine.db.begin() as conn:
            if conn.execute(select(INBOX.c.message_id).where(INBOX.c.message_id == message.id)).first():
                return "already recorded"
            job = conn.execute(select(J.c.lock_owner, J.c.lock_expires_at, J.c.payload)
                               .where(J.c.id == int(a["task_id"]))).first()
            if job is not None and job.lock_owner == f"ext:{a['lock_token']}":
                reason = f"its lock expired at {job.lock_expires_at}"
            elif job is not None:
                reason = "its lock expired and the task was handed out again"
            else:
                status = conn.execute(select(INST.c.status).where(INST.c.id == a["instance_id"])).scalar()
                reason = (f"the instance is {status}" if status in ("cancelled", "completed", "failed", "terminated")
                          else "the task is no longer open (answered by another delivery or cancelled)")
            if job is not None:
                task = json.loads(job.payload)
                execution.update(node_id=task["node_id"], work_id=task["work_id"], attempt=task["attempt"])
            reason_text = f"late answer ({a.get('status')}) from worker {a.get('worker') or '?'} refused: {reason}"
            conn.execute(insert(INBOX).values(message_id=message.id, topic=message.topic, received_at=now))
            conn.execute(insert(X).values(**{**execution, "status": "refused", "error": reason_text}))
        return reason


def desk(engine: Engine) -> ExternalTasks:
    """The engine's external-task desk (one per engine, on its bus)."""
    found = engine.__dict__.get("_external_desk")
    if found is None:
        found = engine.__dict__["_external_desk"] = ExternalTasks(engine, engine.bus)
    return found
