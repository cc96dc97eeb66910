"""External agent workers: the same agent function, run by any process that can reach the bus.

    from engine.bus import worker

    @worker("agent.wowvision.task.validate")
    def validate(inputs, context):
        return {"vision_approved": inputs["pr_number"] % 2 == 0}

Run it with ``waooaw agent-worker mymodule:validate`` (the topic comes from the decorator, or give
``--topic``) or ``run_worker(validate)``. The decorator returns the function unchanged: the same code
runs in-process (``agent="mymodule:validate"``), standalone (call it) and as an external worker (the
review's "same agent code, different invocation modes").

What a worker does with a task (the engine's side is ``engine.bus.external``):
1. receives it from the topic (consumer group ``workers``: each task goes to one worker),
2. calls the agent with the task's inputs and a :class:`TaskContext` whose ``idempotency_key`` is the
   engine's (``{instance_id}:{work_id}``, the same for every retry and redelivery: key side effects by it),
3. sends a heartbeat every third of the lock while the agent runs (the engine extends the lock),
4. answers on the task's reply topic: the outputs; a failure (the task's retry policy applies); or a
   ``BpmnError`` (caught by the task's error boundary events),
5. acknowledges the task message only after the answer was published. A worker killed before that leaves
   the message pending: another worker takes it after the bus's visibility timeout, with the same key.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback as tb
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.bus.base import Message, MessageBus
from engine.registry import ref_of
from engine.runtime.agents import AgentContext, BpmnError, call_agent

log = logging.getLogger("waooaw.agent_worker")

WORKER_GROUP = "workers"
TASK_FIELDS = ("task_id", "lock_token", "instance_id", "work_id", "reply_to")


@dataclass(frozen=True)
class TaskContext(AgentContext):
    """An :class:`AgentContext` for work taken from a topic: also the topic, the task's lock and delivery."""

    topic: str = ""
    task_id: int = 0
    lock_expires_at: datetime | None = None
    delivery: int = 1  # 1 for the first hand-out of this attempt; more after a lock expired or a worker died
    worker_id: str = ""


def worker(topic: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an agent function as the worker of ``topic`` (it stays a plain function)."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"@worker needs a topic name, got {topic!r}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__waooaw_topic__ = topic  # type: ignore[attr-defined]
        ref_of(fn)  # registered under module:qualname, like an in-process agent
        return fn

    return mark


def topic_of(fn: Any) -> str | None:
    return getattr(fn, "__waooaw_topic__", None)


def _parse_time(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AgentWorker:
    """Runs one agent for one topic. ``handle(message)`` does one task; :meth:`run` loops."""

    def __init__(self, agent: Callable[..., Any] | str, topic: str | None = None, bus: MessageBus | None = None,
                 group: str = WORKER_GROUP, worker_id: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        from engine.bus import connect_bus

        self.ref = ref_of(agent)
        self.topic = topic or topic_of(agent) or ""
        if not self.topic:
            raise ValueError(f"no topic for {self.ref!r}: decorate it with @worker('...') or give topic=")
        self.bus = bus or connect_bus()
        self.group = group
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = now
        self.done = 0

    def handle(self, message: Message) -> str:
        """Do one task and answer; returns the answer's status (or ``parked`` for a message that is no task)."""
        task = message.payload
        missing = [f for f in TASK_FIELDS if f not in task]
        if missing:  # not a task the engine wrote: it can never succeed, park it now with the reason
            self.bus.park(message, f"not a task message: missing {', '.join(missing)}")
            return "parked"
        expires = _parse_time(task.get("lock_expires_at"))  # in the engine's clock (it may be virtual)
        context = TaskContext(instance_id=task["instance_id"], node_id=task.get("node_id", ""),
                              work_id=task["work_id"], attempt=int(task.get("attempt", 1)),
                              business_key=task.get("business_key"), variables=dict(task.get("inputs") or {}),
                              topic=message.topic, task_id=int(task["task_id"]), lock_expires_at=expires,
                              delivery=int(task.get("delivery", 1)), worker_id=self.worker_id)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(message, stop), daemon=True)
        beat.start()
        answer: dict[str, Any] = {"status": "completed"}
        try:
            answer["outputs"] = call_agent(self.ref, dict(task.get("inputs") or {}), context)
        except BpmnError as exc:
            answer = {"status": "bpmn_error", "error_code": exc.code, "error": str(exc)}
        except Exception as exc:  # the agent's failure is the task's failure: the engine's retry policy applies
            answer = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "error_code": type(exc).__name__,
                      "traceback": tb.format_exc()[-4000:]}
        finally:
            stop.set()
        self._answer(task, answer)
        self.bus.ack(message)
        self.done += 1
        return str(answer["status"])

    def _answer(self, task: dict[str, Any], answer: dict[str, Any]) -> None:
        body = {**{k: task.get(k) for k in ("task_id", "lock_token", "instance_id", "token_id", "node_id", "work_id",
                                             "attempt")},
                "worker": self.worker_id, "answered_at": self.now().isoformat(), **answer}
        message_id = None if answer["status"] == "heartbeat" else \
            f"answer:{task['task_id']}:{task['lock_token']}:{answer['status']}"
        self.bus.publish(task["reply_to"], body, message_id=message_id)

    def _heartbeat(self, message: Message, stop: threading.Event) -> None:
        """Keep the message (bus visibility timeout) and the task (the engine's lock) while the agent runs:
        each is renewed when a third of its time has passed."""
        import time

        task = message.payload
        lock = float(task.get("lock_seconds") or 30.0)
        touch_every = max(self.bus.visibility_timeout / 3, 0.05)
        beat_every = max(lock / 3, 0.05)
        touched = beaten = time.monotonic()
        while not stop.wait(min(touch_every, beat_every)):
            now = time.monotonic()
            try:
                if now - touched >= touch_every:
                    self.bus.touch(message)
                    touched = now
                if now - beaten >= beat_every:
                    self._answer(task, {"status": "heartbeat", "extend": lock})
                    beaten = now
            except Exception:  # a missed heartbeat only risks the lock; the answer still goes out
                log.exception("heartbeat for task %s failed", task.get("task_id"))

    def run(self, stop: threading.Event | None = None, max_tasks: int | None = None, threads: int = 1,
            block: float = 1.0, max_idle: float | None = None) -> int:
        """Take and do tasks until ``stop`` is set, ``max_tasks`` are done or nothing came for ``max_idle``
        seconds. ``threads`` > 1 runs that many tasks at once. Returns the tasks done."""
        import time

        stop = stop or threading.Event()
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="agent-worker") if threads > 1 else None
        idle_since = time.monotonic()
        try:
            while not stop.is_set() and (max_tasks is None or self.done < max_tasks):
                want = threads if max_tasks is None else min(threads, max_tasks - self.done)
                messages = self.bus.receive(self.topic, self.group, self.worker_id, count=want, block=block)
                if not messages:
                    if max_idle is not None and time.monotonic() - idle_since > max_idle:
                        break
                    continue
                idle_since = time.monotonic()
                if pool is None:
                    for message in messages:
                        self._safe(message)
                else:
                    list(pool.map(self._safe, messages))
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        return self.done

    def _safe(self, message: Message) -> None:
        try:
            self.handle(message)
        except Exception as exc:  # the bus failed under us: the message stays pending and comes back
            log.exception("task message %s could not be handled", message.id)
            try:
                self.bus.fail(message, f"{type(exc).__name__}: {exc}")
            except Exception:
                log.exception("and could not be marked failed; it returns after the visibility timeout")


def run_worker(agent: Callable[..., Any] | str, topic: str | None = None, bus: MessageBus | None = None,
               stop: threading.Event | None = None, max_tasks: int | None = None, threads: int = 1,
               group: str = WORKER_GROUP, max_idle: float | None = None) -> int:
    """Run ``agent`` as the external worker of ``topic`` (default: its ``@worker`` topic) on ``bus``
    (default: ``WAOOAW_BUS``). Returns the tasks done when stopped."""
    return AgentWorker(agent, topic, bus, group).run(stop, max_tasks, threads, max_idle=max_idle)
