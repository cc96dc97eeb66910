"""The engine on the bus: start triggers, correlation, outbound messages, external workers' answers.

    bridge = BusBridge(engine)          # the engine's bus (WAOOAW_BUS or the in-process default)
    bridge.pump()                        # one round: receive what is there, apply it, acknowledge
    bridge.run(stop)                     # or loop (``waooaw worker`` does this when WAOOAW_BUS is set)

Topics the bridge reads (consumer group ``waooaw-engine``, so several engine processes share the work):
- **start triggers**: a topic named by a message start event (``github.pull_request.opened``) and caught by
  no deployed definition starts *every* definition (latest version) whose message start event names it;
  the payload becomes the variables, checked against the declared variables (a payload that does not fit
  is parked at once with the reason: it can never succeed). Header ``business_key`` sets the business key.
  The instances and the message id are written in one transaction: a redelivered event starts nothing twice.
- **correlation**: any other message name a deployed definition waits for (message catch and boundary
  events, receive tasks) goes through :meth:`Engine.correlate` (header ``correlation``: the JSON of the
  key; header ``business_key`` narrows to that instance), with the rules of ``engine.runtime.correlation``:
  a message nobody waits for yet is buffered for the engine's ``message_ttl`` (its message id
  de-duplicates), an ambiguous one (several instances wait) is refused, tried again after the visibility
  timeout and parked after ``max_failures`` tries with the engine's error naming the candidates.
- **answers** of external workers on ``workflow.responses`` (see ``engine.bus.external``).

Outbound: a message the engine sends (throw events, SLA notifications) is delivered inside the engine as
before and, when a bus is configured, also published on its topic (header ``origin: engine``, message id
``msg:<instance>:<job>``); the bridge does not deliver those a second time.

Every message is acknowledged only after the transaction of its effect committed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from engine.bus.base import Message, MessageBus
from engine.bus.external import desk
from engine.errors import EngineError
from engine.runtime.tables import BusInboxRow, DefinitionRow
from engine.runtime.writes import Writes

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

log = logging.getLogger("waooaw.bus")

ENGINE_GROUP = "waooaw-engine"
INBOX, D = BusInboxRow.__table__, DefinitionRow.__table__
CATCH_KINDS = ("message_catch", "boundary_message")


def publish_message(bus: MessageBus, name: str, payload: dict[str, Any] | None = None, correlation: Any = None,
                    message_id: str | None = None, business_key: str | None = None) -> str | None:
    """Publish a BPMN message (a start trigger or a correlation message) the way the bridge reads it."""
    headers: dict[str, str] = {}
    if correlation is not None:
        headers["correlation"] = json.dumps(correlation, sort_keys=True, default=str)
    if business_key is not None:
        headers["business_key"] = str(business_key)
    return bus.publish(name, payload or {}, message_id=message_id, headers=headers)


def publish_outbound(engine: Engine, job: Any, payload: dict[str, Any]) -> None:
    """A message job of the engine, published on its topic (the outbox: its id is stable across re-runs)."""
    headers = {"origin": "engine", "instance_id": str(job.instance_id or "")}
    if payload.get("correlation") is not None:
        headers["correlation"] = json.dumps(payload["correlation"], sort_keys=True, default=str)
    engine.bus.publish(payload["message"], payload.get("payload") or {}, message_id=f"msg:{job.instance_id}:{job.id}",
                       headers=headers)


class BusBridge:
    """The engine's consumer of the bus. ``batch``: messages taken per round (start triggers of a round
    start in one transaction); ``refresh``: seconds between looks at the deployed definitions' topics."""

    def __init__(self, engine: Engine, bus: MessageBus | None = None, group: str = ENGINE_GROUP,
                 consumer: str | None = None, batch: int = 500, refresh: float = 2.0) -> None:
        self.engine = engine
        self.bus = bus or engine.bus
        if bus is not None and engine._bus is None:
            engine._bus = bus
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.batch = batch
        self.refresh_every = refresh
        self.desk = desk(engine)
        self._starts: dict[str, list[tuple[str, str]]] = {}
        self._catches: set[str] = set()
        self._refreshed = -1e9
        self._seen_versions: tuple[tuple[str, int], ...] = ()

    # --- what to read ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the latest deployed versions: which topics start which definitions, which are caught."""
        engine = self.engine
        with engine.reader.connect() as conn:
            rows = conn.execute(select(D.c.name, func.max(D.c.version)).group_by(D.c.name).order_by(D.c.name))
            latest = tuple((str(name), int(version)) for name, version in rows)
        self._refreshed = time.monotonic()
        if latest == self._seen_versions:
            return
        starts: dict[str, list[tuple[str, str]]] = {}
        catches: set[str] = set()
        for name, version in latest:
            definition = engine.definition(name, version)
            for message, node_id in engine.semantics(name, version).message_starts().items():
                starts.setdefault(message, []).append((name, node_id))
            catches.update(str(n.message) for n in definition.all_nodes()  # type: ignore[attr-defined]
                           if n.kind in CATCH_KINDS)
        self._starts, self._catches, self._seen_versions = starts, catches, latest

    def topics(self) -> list[str]:
        if time.monotonic() - self._refreshed >= self.refresh_every:
            self.refresh()
        return [*sorted(set(self._starts) | self._catches), self.desk.reply_topic]

    # --- one round -------------------------------------------------------------------------------

    def pump(self, block: float = 0.0) -> int:
        """Receive up to ``batch`` messages, apply them, acknowledge. Returns how many were handled."""
        messages = self.bus.receive(self.topics(), self.group, self.consumer, count=self.batch, block=block)
        if not messages:
            return 0
        seen = self._seen([m.id for m in messages])
        starts: list[Message] = []
        done: list[Message] = []
        for m in messages:
            if m.id in seen or (m.headers.get("origin") == "engine" and m.topic != self.desk.reply_topic):
                done.append(m)  # applied before (redelivered after a crash), or the engine's own message
            elif m.topic == self.desk.reply_topic:
                self._answer(m)
            elif m.topic in self._starts and m.topic not in self._catches and "correlation" not in m.headers:
                starts.append(m)
            else:
                self._correlate(m)
        self.bus.ack_many(done)
        if starts:
            self._start(starts)
        return len(messages)

    def run(self, stop: threading.Event | None = None, block: float = 0.5, max_idle: float | None = None) -> int:
        """Pump until ``stop`` is set (or nothing came for ``max_idle`` seconds). Returns messages handled."""
        stop = stop or threading.Event()
        handled, idle_since = 0, time.monotonic()
        while not stop.is_set():
            n = self.pump(block=block)
            handled += n
            if n:
                idle_since = time.monotonic()
            elif max_idle is not None and time.monotonic() - idle_since > max_idle:
                break
        return handled

    def _seen(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        with self.engine.reader.connect() as conn:
            return {r[0] for r in conn.execute(select(INBOX.c.message_id).where(INBOX.c.message_id.in_(wanted)))}

    def _answer(self, m: Message) -> None:
        try:
            outcome = self.desk.answer(m)
        except ValueError as exc:  # not an answer: it can never succeed
            self.bus.park(m, str(exc))
            return
        except Exception as exc:  # the database is away: tried again, parked after N
            log.exception("answer %s not applied", m.id)
            self.bus.fail(m, f"{type(exc).__name__}: {exc}")
            return
        if outcome.startswith("refused"):
            log.warning("task %s: %s", m.payload.get("task_id"), outcome)
        self.bus.ack(m)

    def _correlate(self, m: Message) -> None:
        correlation: Any = None
        if "correlation" in m.headers:
            try:
                correlation = json.loads(m.headers["correlation"])
            except ValueError:
                correlation = m.headers["correlation"]
        try:  # nobody waits yet: buffered for the engine's message_ttl (correlation.py's rule 3), once per id
            self.engine.correlate(m.topic, correlation, m.payload, business_key=m.headers.get("business_key"),
                                  ttl=self.engine.message_ttl, message_id=m.id)
        except EngineError as exc:  # ambiguous, or the payload does not fit: tried again later, parked after N
            self.bus.fail(m, str(exc))
            return
        except Exception as exc:
            log.exception("message %s on %s not correlated", m.id, m.topic)
            self.bus.fail(m, f"{type(exc).__name__}: {exc}")
            return
        with self.engine.db.begin() as conn:
            conn.execute(insert(INBOX).values(message_id=m.id, topic=m.topic, received_at=self.engine.clock.now()))
        self.bus.ack(m)

    def _start(self, messages: list[Message]) -> None:
        """Start triggers: check every payload, then start all in one transaction with their message ids."""
        engine = self.engine
        plans = []
        if not self._seen_versions:
            self.refresh()
        latest = {name: engine.definition(name, version) for name, version in self._seen_versions}
        for m in messages:
            try:
                targets = []
                for name, node_id in self._starts[m.topic]:
                    definition = latest[name]
                    engine._check_variables(definition, dict(m.payload))
                    targets.append((definition, node_id))
            except EngineError as exc:  # a payload that does not fit the declared variables never will
                self.bus.park(m, str(exc))
                continue
            plans.append((m, targets))
        if not plans:
            return
        try:
            self._start_in_one(plans)
        except Exception as exc:  # one bad apple (or a duplicate taken meanwhile): each alone, failures retried
            if len(plans) == 1:
                log.exception("start trigger %s failed", plans[0][0].id)
                self.bus.fail(plans[0][0], f"{type(exc).__name__}: {exc}")
                return
            for plan in plans:
                try:
                    self._start_in_one([plan])
                except Exception as exc:
                    log.exception("start trigger %s failed", plan[0].id)
                    self.bus.fail(plan[0], f"{type(exc).__name__}: {exc}")
                    continue
                self.bus.ack(plan[0])
            return
        self.bus.ack_many(m for m, _ in plans)

    def _start_in_one(self, plans: list[tuple[Message, list[tuple[Any, str]]]]) -> None:
        engine = self.engine
        writes = Writes()
        now = engine.clock.now()
        with engine.db.begin() as conn:
            for m, targets in plans:
                for definition, node_id in targets:
                    engine._start_in(conn, writes, definition, dict(m.payload), m.headers.get("business_key"),
                                     start_node=node_id)
            conn.execute(insert(INBOX), [{"message_id": m.id, "topic": m.topic, "received_at": now}
                                         for m, _ in plans])
            writes.flush(conn)
