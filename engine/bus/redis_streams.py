"""The Redis Streams bus: topics are streams, consumers read through consumer groups.

Keys (``prefix`` defaults to ``waooaw``; give each test or tenant its own with ``?prefix=...`` in the URL):
    {prefix}:t:{topic}                 the topic's stream (fields: id, payload, headers)
    {prefix}:dead:{topic}              parked messages (fields: id, payload, headers, group, error, failures)
    {prefix}:stats:{topic}             counters: published, duplicates, delivered, acked
    {prefix}:fail:{group}:{topic}      failures and last error of pending entries
    {prefix}:seen:{topic}:{message id} de-duplication marks (expire after ``dedup_ttl``)
    {prefix}:topics                    every topic that saw a message

Publishing with a message id is one Lua script (mark the id, append, count), so a crash cannot leave an
id marked but its message unsent. Receiving claims a dead consumer's entries with ``XAUTOCLAIM`` once
they were idle ``visibility_timeout``, then reads new ones with ``XREADGROUP``. Streams are not trimmed:
trim them by age in operations (``XTRIM {prefix}:t:{topic} MINID <id>``) once every group is past.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from engine.bus.base import BusError, Message, MessageBus, decode, encode, new_id, topics_of

_PUBLISH = """
if ARGV[1] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('HINCRBY', KEYS[3], 'duplicates', 1)
    return false
  end
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'payload', ARGV[4], 'headers', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'published', 1)
redis.call('SADD', KEYS[4], ARGV[6])
return ARGV[3]
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBus(MessageBus):
    """``RedisBus("redis://127.0.0.1:6379/0?prefix=waooaw", visibility_timeout=30, max_failures=5)``.

    Raises BusError when the URL is malformed or Redis cannot be reached (with the address tried)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", visibility_timeout: float = 30.0,
                 max_failures: int = 5, dedup_ttl: float = 86400.0, prefix: str | None = None) -> None:
        import redis

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = prefix or (query.pop("prefix", ["waooaw"])[0])
        options = {k: v[0] for k, v in query.items()}
        self.visibility_timeout = float(options.pop("visibility_timeout", visibility_timeout))
        self.max_failures = int(options.pop("max_failures", max_failures))
        self.dedup_ttl = float(options.pop("dedup_ttl", dedup_ttl))
        if self.max_failures < 1:
            raise BusError(f"max_failures must be at least 1, got {self.max_failures}")
        rest = "&".join(f"{k}={v}" for k, v in options.items())
        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        try:
            self.redis = redis.Redis.from_url(self.url, socket_connect_timeout=5)
            self.redis.ping()
        except (redis.RedisError, ValueError) as exc:
            raise BusError(f"cannot reach Redis at {parts.netloc or url!r}: {exc}") from None
        self._publish = self.redis.register_script(_PUBLISH)
        self._groups: set[tuple[str, str]] = set()
        self._claimed_at: dict[tuple[str, str], float] = {}

    def __repr__(self) -> str:
        return f"RedisBus({self.url!r}, prefix={self.prefix!r})"

    def close(self) -> None:
        self.redis.close()

    # --- keys ------------------------------------------------------------------------------------

    def _stream(self, topic: str) -> str:
        if not topic:
            raise BusError("a topic name must not be empty")
        return f"{self.prefix}:t:{topic}"

    def _dead(self, topic: str) -> str:
        return f"{self.prefix}:dead:{topic}"

    def _stats(self, topic: str) -> str:
        return f"{self.prefix}:stats:{topic}"

    def _failures(self, group: str, topic: str) -> str:
        return f"{self.prefix}:fail:{group}:{topic}"

    def _args(self, topic: str, payload: Mapping[str, Any], message_id: str | None,
              headers: Mapping[str, str] | None) -> tuple[list[str], list[Any]]:
        mid = message_id or new_id()
        keys = [self._stream(topic), f"{self.prefix}:seen:{topic}:{mid}", self._stats(topic),
                f"{self.prefix}:topics"]
        args = [message_id or "", int(self.dedup_ttl), mid, encode(payload), json.dumps(dict(headers or {})), topic]
        return keys, args

    # --- producing -------------------------------------------------------------------------------

    def publish(self, topic: str, payload: Mapping[str, Any], message_id: str | None = None,
                headers: Mapping[str, str] | None = None) -> str | None:
        keys, args = self._args(topic, payload, message_id, headers)
        result = self._publish(keys=keys, args=args)
        return _text(result) if result else None

    def publish_many(self, topic: str, payloads: Iterable[Mapping[str, Any]],
                     message_ids: Iterable[str | None] | None = None,
                     headers: Mapping[str, str] | None = None) -> list[str | None]:
        items = list(payloads)
        ids = list(message_ids) if message_ids is not None else [None] * len(items)
        pipe = self.redis.pipeline(transaction=False)
        for payload, mid in zip(items, ids, strict=True):
            keys, args = self._args(topic, payload, mid, headers)
            self._publish(keys=keys, args=args, client=pipe)
        return [_text(r) if r else None for r in pipe.execute()]

    # --- consuming -------------------------------------------------------------------------------

    def _ensure_group(self, topic: str, group: str) -> None:
        if (topic, group) in self._groups:
            return
        import redis

        try:  # from the beginning: messages published before the first consumer came are not missed
            self.redis.xgroup_create(self._stream(topic), group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add((topic, group))

    def receive(self, topics: str | Iterable[str], group: str, consumer: str, count: int = 100,
                block: float = 0.0) -> list[Message]:
        names = topics_of(topics)
        out: list[Message] = []
        now = time.monotonic()
        for topic in names:
            self._ensure_group(topic, group)
            key = (topic, group)
            # XAUTOCLAIM at most every tenth of the visibility timeout per topic and group (or at once after fail)
            if now - self._claimed_at.get(key, -1e9) >= self.visibility_timeout / 10 and len(out) < count:
                self._claimed_at[key] = now
                out.extend(self._claim(topic, group, consumer, count - len(out)))
        if len(out) < count:
            streams = {self._stream(t): ">" for t in names}
            block_ms = int(block * 1000) if block > 0 and not out else None
            reply = self.redis.xreadgroup(group, consumer, streams, count=count - len(out), block=block_ms)
            by_stream = {self._stream(t): t for t in names}
            delivered: dict[str, int] = {}
            for stream, entries in reply or []:
                topic = by_stream[_text(stream)]
                for entry_id, fields in entries:
                    if not fields:  # deleted meanwhile
                        continue
                    out.append(self._message(topic, group, _text(entry_id), fields, 1, 0))
                    delivered[topic] = delivered.get(topic, 0) + 1
            if delivered:
                pipe = self.redis.pipeline(transaction=False)
                for topic, n in delivered.items():
                    pipe.hincrby(self._stats(topic), "delivered", n)
                pipe.execute()
        return out

    def _claim(self, topic: str, group: str, consumer: str, count: int) -> list[Message]:
        stream = self._stream(topic)
        idle = int(self.visibility_timeout * 1000)
        reply = self.redis.xautoclaim(stream, group, consumer, min_idle_time=idle, start_id="0-0", count=count)
        entries = [(_text(e), f) for e, f in reply[1] if f]
        if not entries:
            return []
        ids = [e for e, _ in entries]
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in self.redis.xpending_range(
            stream, group, min=ids[0], max=ids[-1], count=len(ids) * 4 + 10, consumername=consumer)}
        failed = self.redis.hgetall(self._failures(group, topic))
        failures = {_text(k): _text(v) for k, v in failed.items()}
        out: list[Message] = []
        for entry_id, fields in entries:
            deliveries = counts.get(entry_id, 2)
            n_failed = int(failures.get(f"n:{entry_id}", 0))
            message = self._message(topic, group, entry_id, fields, deliveries, n_failed)
            unanswered = deliveries - 1 - n_failed  # deliveries that ended without an ack or a fail()
            if n_failed == 0 and unanswered >= self.max_failures:
                self.park(message, failures.get(f"e:{entry_id}") or f"delivered {deliveries - 1} times without an "
                          "acknowledgement (its consumers died or hung)")
                continue
            out.append(message)
        self.redis.hincrby(self._stats(topic), "delivered", len(out))
        return out

    def _message(self, topic: str, group: str, entry_id: str, fields: dict[Any, Any], deliveries: int,
                 failures: int) -> Message:
        f = {_text(k): _text(v) for k, v in fields.items()}
        try:
            payload = decode(f.get("payload", "{}"))
        except ValueError:  # written by someone else: the handler sees it and may refuse it
            payload = {"_raw": f.get("payload")}
        try:
            headers = json.loads(f.get("headers") or "{}")
        except ValueError:
            headers = {}
        return Message(topic, payload, f.get("id") or entry_id, headers, entry_id, group, deliveries, failures)

    def ack(self, message: Message) -> None:
        self.ack_many([message])

    def ack_many(self, messages: Iterable[Message]) -> None:
        by_stream: dict[tuple[str, str], list[str]] = {}
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            by_stream.setdefault((m.topic, m.group), []).append(m.entry)
            if m.failures or m.deliveries > 1:
                pipe.hdel(self._failures(m.group, m.topic), f"n:{m.entry}", f"e:{m.entry}")
        if not by_stream:
            return
        for (topic, group), entries in by_stream.items():
            pipe.xack(self._stream(topic), group, *entries)
            pipe.hincrby(self._stats(topic), "acked", len(entries))
        pipe.execute()

    def fail(self, message: Message, error: str) -> bool:
        key = self._failures(message.group, message.topic)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, f"n:{message.entry}", 1)
        pipe.hset(key, f"e:{message.entry}", error[:4000])
        failures = int(pipe.execute()[0])
        if failures >= self.max_failures:
            self.park(message, error, failures)
            return True
        # due again at once: idle as long as the visibility timeout, so the next XAUTOCLAIM takes it
        self.redis.xclaim(self._stream(message.topic), message.group, "failed", 0, [message.entry],
                          idle=int(self.visibility_timeout * 1000), justid=True)
        self._claimed_at.pop((message.topic, message.group), None)
        return False

    def park(self, message: Message, error: str, failures: int | None = None) -> None:
        stream = self._stream(message.topic)
        pipe = self.redis.pipeline(transaction=True)  # parked and acknowledged together
        pipe.xadd(self._dead(message.topic), {
            "id": message.id, "payload": encode(message.payload), "headers": json.dumps(message.headers),
            "group": message.group, "error": error[:4000],
            "failures": failures if failures is not None else message.failures,
            "parked_at": datetime.now(UTC).isoformat()})
        pipe.xack(stream, message.group, message.entry)
        pipe.hdel(self._failures(message.group, message.topic), f"n:{message.entry}", f"e:{message.entry}")
        pipe.execute()

    def touch(self, message: Message) -> None:
        stream = self._stream(message.topic)
        consumer = self.redis.xpending_range(stream, message.group, min=message.entry, max=message.entry, count=1)
        if consumer:  # still pending: claim it for its holder again, which resets its idle time
            self.redis.xclaim(stream, message.group, _text(consumer[0]["consumer"]), 0, [message.entry], justid=True)

    # --- dead letters and numbers ----------------------------------------------------------------

    def dead_letters(self, topic: str) -> list[dict[str, Any]]:
        rows = []
        for entry_id, fields in self.redis.xrange(self._dead(topic)):
            f = {_text(k): _text(v) for k, v in fields.items()}
            rows.append({"id": f.get("id"), "payload": json.loads(f.get("payload") or "{}"),
                         "headers": json.loads(f.get("headers") or "{}"), "group": f.get("group"),
                         "error": f.get("error"), "failures": int(f.get("failures") or 0),
                         "parked_at": f.get("parked_at"), "entry": _text(entry_id)})
        return rows

    def replay(self, topic: str, message_ids: Iterable[str] | None = None) -> int:
        wanted = set(message_ids) if message_ids is not None else None
        n = 0
        for row in self.dead_letters(topic):
            if wanted is not None and row["id"] not in wanted:
                continue
            self.redis.delete(f"{self.prefix}:seen:{topic}:{row['id']}")
            self.publish(topic, row["payload"], row["id"], row["headers"])
            self.redis.xdel(self._dead(topic), row["entry"])
            n += 1
        return n

    def trim(self, topic: str) -> int:
        stream = self._stream(topic)
        groups = self.redis.xinfo_groups(stream) if self.redis.exists(stream) else []
        if not groups:  # nobody has read it yet: everything is still to be delivered
            return 0
        bounds = []
        for g in groups:
            name = _text(g["name"])
            summary = self.redis.xpending(stream, name)
            if summary and int(summary.get("pending") or 0):
                bounds.append(_text(summary["min"]))  # keep the oldest pending entry and all after it
            else:
                ms, _, seq = _text(g["last-delivered-id"]).partition("-")
                bounds.append(f"{ms}-{int(seq or 0) + 1}")  # keep what this group has not read yet
        lowest = min(bounds, key=lambda e: tuple(int(x) for x in e.split("-")))
        return int(self.redis.xtrim(stream, minid=lowest, approximate=False))

    def topics(self) -> list[str]:
        return sorted(_text(t) for t in self.redis.smembers(f"{self.prefix}:topics"))

    def counters(self) -> list[dict[str, Any]]:
        rows = []
        for topic in self.topics():
            counts = {_text(k): int(v) for k, v in self.redis.hgetall(self._stats(topic)).items()}
            pending = waiting = 0
            groups = self.redis.xinfo_groups(self._stream(topic))
            for g in groups:
                pending += int(g.get("pending") or 0)
                waiting += int(g.get("lag") or 0)
            if not groups:
                waiting = int(self.redis.xlen(self._stream(topic)))
            rows.append({"topic": topic, "published": counts.get("published", 0),
                         "duplicates": counts.get("duplicates", 0), "delivered": counts.get("delivered", 0),
                         "acked": counts.get("acked", 0), "pending": pending, "waiting": waiting,
                         "parked": int(self.redis.xlen(self._dead(topic)))})
        return rows

    def delete_all(self) -> int:
        """Remove every key under this bus's prefix (tests, benchmarks). Returns how many."""
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            self.redis.delete(*keys[i:i + 500])
        return len(keys)
