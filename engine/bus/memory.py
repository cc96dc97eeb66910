"""The in-process bus: the embedded default (the app, notebooks and tests need no service).

Same rules as the Redis Streams bus (see ``engine.bus.base``), kept in memory of one process: consumer
groups, pending messages taken again after ``visibility_timeout``, dead letters after ``max_failures``,
de-duplication by message id. Threads of the process share it; it is gone when the process ends (use
Redis when messages must survive a restart or cross processes). Time comes from ``clock`` (seconds,
monotonic), so tests move it instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.bus.base import BusError, Message, MessageBus, decode, encode, new_id, topics_of


@dataclass
class _Entry:
    seq: int
    id: str
    payload: str
    headers: dict[str, str]


@dataclass
class _Pending:
    consumer: str
    delivered_at: float
    deliveries: int = 1
    failures: int = 0
    error: str | None = None
    due: bool = False  # failed: may be delivered again at once


@dataclass
class _Group:
    cursor: int = 0
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass
class _Topic:
    entries: dict[int, _Entry] = field(default_factory=dict)
    next_seq: int = 0
    groups: dict[str, _Group] = field(default_factory=dict)
    dead: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"published": 0, "duplicates": 0, "delivered": 0,
                                                            "acked": 0})


class InProcessBus(MessageBus):
    """``InProcessBus(visibility_timeout=30, max_failures=5, dedup_ttl=86400, clock=time.monotonic,
    retain=10000)``: a topic keeps its messages (a group created later reads them from the start, as on Redis)
    until it holds more than ``retain``; then what every group acknowledged is dropped."""

    def __init__(self, visibility_timeout: float = 30.0, max_failures: int = 5, dedup_ttl: float = 86400.0,
                 clock: Callable[[], float] = time.monotonic, retain: int = 10_000) -> None:
        if max_failures < 1:
            raise BusError(f"max_failures must be at least 1, got {max_failures}")
        self.visibility_timeout = float(visibility_timeout)
        self.max_failures = int(max_failures)
        self.dedup_ttl = float(dedup_ttl)
        self.clock = clock
        self.retain = retain  # acknowledged messages kept per topic (for groups that come later) before a trim
        self._topics: dict[str, _Topic] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Condition()

    def __repr__(self) -> str:
        return f"InProcessBus(topics={len(self._topics)})"

    def _topic(self, name: str) -> _Topic:
        if not name:
            raise BusError("a topic name must not be empty")
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic()
        return topic

    # --- producing -------------------------------------------------------------------------------

    def publish(self, topic: str, payload: Mapping[str, Any], message_id: str | None = None,
                headers: Mapping[str, str] | None = None) -> str | None:
        text = encode(payload)
        with self._lock:
            t = self._topic(topic)
            now = self.clock()
            if message_id is not None:
                key = (topic, message_id)
                if self._seen.get(key, -1.0) > now:
                    t.counts["duplicates"] += 1
                    return None
                self._seen[key] = now + self.dedup_ttl
                if len(self._seen) > 100_000:  # forget expired ids now and then
                    self._seen = {k: v for k, v in self._seen.items() if v > now}
            mid = message_id or new_id()
            t.entries[t.next_seq] = _Entry(t.next_seq, mid, text, dict(headers or {}))
            t.next_seq += 1
            t.counts["published"] += 1
            self._lock.notify_all()
        return mid

    # --- consuming -------------------------------------------------------------------------------

    def receive(self, topics: str | Iterable[str], group: str, consumer: str, count: int = 100,
                block: float = 0.0) -> list[Message]:
        names = topics_of(topics)
        deadline = time.monotonic() + max(block, 0.0)
        with self._lock:
            while True:
                out: list[Message] = []
                for name in names:
                    self._take(name, group, consumer, count - len(out), out)
                    if len(out) >= count:
                        break
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                self._lock.wait(remaining)

    def _take(self, name: str, group: str, consumer: str, room: int, out: list[Message]) -> None:
        t = self._topic(name)
        g = t.groups.get(group)
        if g is None:
            g = t.groups[group] = _Group(cursor=min(t.entries, default=t.next_seq))
        now = self.clock()
        for seq, p in list(g.pending.items()):  # a dead consumer's messages and failed ones, oldest first
            if room <= 0:
                return
            if not (p.due or now - p.delivered_at >= self.visibility_timeout):
                continue
            entry = t.entries[seq]
            if not p.due and p.deliveries >= self.max_failures:  # delivered N times, never acknowledged
                self._park(t, name, group, seq, p.error or f"delivered {p.deliveries} times without an "
                           "acknowledgement (its consumers died or hung)", p.failures)
                continue
            p.consumer, p.delivered_at, p.due = consumer, now, False
            p.deliveries += 1
            t.counts["delivered"] += 1
            out.append(self._message(name, group, entry, p))
            room -= 1
        while room > 0 and g.cursor < t.next_seq:
            seq = g.cursor
            g.cursor += 1
            entry = t.entries.get(seq)
            if entry is None:
                continue
            p = g.pending[seq] = _Pending(consumer, now)
            t.counts["delivered"] += 1
            out.append(self._message(name, group, entry, p))
            room -= 1

    @staticmethod
    def _message(name: str, group: str, entry: _Entry, p: _Pending) -> Message:
        try:
            payload = decode(entry.payload)
        except ValueError:  # cannot happen for what publish wrote; kept as raw text for the handler to refuse
            payload = {"_raw": entry.payload}
        return Message(name, payload, entry.id, dict(entry.headers), str(entry.seq), group, p.deliveries,
                       p.failures)

    def _pending(self, message: Message) -> tuple[_Topic, _Pending | None, int]:
        t = self._topic(message.topic)
        g = t.groups.get(message.group)
        seq = int(message.entry)
        return t, (g.pending.get(seq) if g else None), seq

    def ack(self, message: Message) -> None:
        with self._lock:
            t, p, seq = self._pending(message)
            if p is None:
                return
            del t.groups[message.group].pending[seq]
            t.counts["acked"] += 1
            self._forget(t, seq)

    def fail(self, message: Message, error: str) -> bool:
        with self._lock:
            t, p, seq = self._pending(message)
            if p is None:
                return False
            p.failures += 1
            p.error = error
            if p.failures >= self.max_failures:
                self._park(t, message.topic, message.group, seq, error, p.failures)
                return True
            p.due = True
            self._lock.notify_all()
            return False

    def park(self, message: Message, error: str) -> None:
        with self._lock:
            t, p, seq = self._pending(message)
            if p is not None:
                self._park(t, message.topic, message.group, seq, error, p.failures)

    def _park(self, t: _Topic, name: str, group: str, seq: int, error: str, failures: int) -> None:
        entry = t.entries[seq]
        del t.groups[group].pending[seq]
        t.dead.append({"id": entry.id, "payload": decode(entry.payload), "headers": dict(entry.headers),
                       "group": group, "error": error, "failures": failures,
                       "parked_at": datetime.now(UTC).isoformat()})
        self._forget(t, seq)

    def _forget(self, t: _Topic, seq: int) -> None:
        """Keep at most ``retain`` messages per topic: beyond that, trim what every group acknowledged."""
        if len(t.entries) > self.retain:
            self._trim(t)

    @staticmethod
    def _trim(t: _Topic) -> int:
        if not t.groups:
            return 0
        bound = min(min(g.pending, default=g.cursor) for g in t.groups.values())
        gone = [seq for seq in t.entries if seq < bound]
        for seq in gone:
            del t.entries[seq]
        return len(gone)

    def trim(self, topic: str) -> int:
        with self._lock:
            return self._trim(self._topic(topic))

    def touch(self, message: Message) -> None:
        with self._lock:
            _, p, _ = self._pending(message)
            if p is not None and p.consumer:
                p.delivered_at = self.clock()

    # --- dead letters and numbers ----------------------------------------------------------------

    def dead_letters(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._topic(topic).dead]

    def replay(self, topic: str, message_ids: Iterable[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        with self._lock:
            t = self._topic(topic)
            again = [d for d in t.dead if wanted is None or d["id"] in wanted]
            t.dead = [d for d in t.dead if d not in again]
        for d in again:  # the same message id: consumers that recorded it still see it once
            with self._lock:
                self._seen.pop((topic, d["id"]), None)
            self.publish(topic, d["payload"], d["id"], d["headers"])
        return len(again)

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._topics)

    def counters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for name, t in self._topics.items():
                pending = sum(len(g.pending) for g in t.groups.values())
                waiting = sum(sum(1 for s in t.entries if s >= g.cursor) for g in t.groups.values())
                if not t.groups:
                    waiting = len(t.entries)
                rows.append({"topic": name, **t.counts, "pending": pending, "waiting": waiting,
                             "parked": len(t.dead)})
            return rows
