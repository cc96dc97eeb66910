"""The message bus: one interface, two implementations (in-process, Redis Streams).

Vocabulary (Redis Streams' and Kafka's): a *topic* is a named, ordered log of messages; a *consumer group*
reads a topic together, each message going to one *consumer* of the group; a delivered message stays
*pending* until the consumer *acknowledges* it. Every group sees every message of the topic.

Delivery guarantee: **at least once**, with the means to make the effect happen once.
- A message is acknowledged only after its handling committed (the engine acks after its transaction).
- A consumer that dies holding a message loses it after ``visibility_timeout``: the next ``receive`` of the
  group claims it again (Redis ``XAUTOCLAIM``), counting the delivery.
- A message whose handling fails (``fail``) or that was delivered ``max_failures`` times without an ack is
  *parked* in the topic's dead-letter stream with its last error: never lost, never looping; the rest of
  the topic flows on meanwhile (a failing message is retried after the others, not in front of them).
- ``publish(..., message_id=...)`` de-duplicates: the same id published again within ``dedup_ttl`` is
  dropped (returns None), so a producer that retries after a crash does not send twice. Consumers that
  must apply a message once also key their effect by ``Message.id`` (the engine records ids in the
  transaction of the step they cause).
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import WaooawError

if TYPE_CHECKING:
    import pandas as pd

STATS_COLUMNS = ["topic", "published", "duplicates", "delivered", "acked", "pending", "waiting", "parked"]


class BusError(WaooawError):
    """The bus could not do what was asked (bad URL, unreachable server, bad message)."""


@dataclass(frozen=True)
class Message:
    """One delivered message. ``id`` is the publisher's message id (the de-duplication key); ``entry`` is
    the bus's own handle of this copy (a Redis stream entry id); ``deliveries`` counts how often it was handed
    out (more than 1 after a dead consumer), ``failures`` how often handling it failed."""

    topic: str
    payload: dict[str, Any]
    id: str
    headers: dict[str, str] = field(default_factory=dict)
    entry: str = ""
    group: str = ""
    deliveries: int = 1
    failures: int = 0


def encode(payload: Mapping[str, Any]) -> str:
    """Payloads are JSON objects; anything else is refused at publish time with the reason."""
    if not isinstance(payload, Mapping):
        raise BusError(f"a message payload must be a dict (JSON object), got {type(payload).__name__}")
    try:
        return json.dumps(dict(payload), default=str, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise BusError(f"the payload cannot be written as JSON: {exc}") from None


def decode(text: str | bytes) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"payload is {type(value).__name__}, not a JSON object")
    return value


def new_id() -> str:
    return uuid.uuid4().hex


class MessageBus(ABC):
    """Publish to topics; receive as a consumer of a group; acknowledge, fail, park; inspect.

    Args shared by the implementations: ``visibility_timeout`` (seconds a delivered message may stay
    unacknowledged before another consumer of the group takes it), ``max_failures`` (N: failed handlings or
    unacknowledged deliveries before a message is parked), ``dedup_ttl`` (seconds a message id is remembered).
    """

    visibility_timeout: float
    max_failures: int
    dedup_ttl: float

    @abstractmethod
    def publish(self, topic: str, payload: Mapping[str, Any], message_id: str | None = None,
                headers: Mapping[str, str] | None = None) -> str | None:
        """Append a message to ``topic``. Returns its message id, or None when ``message_id`` was already
        published (a duplicate, dropped). Raises BusError for a payload that is not a JSON object."""

    def publish_many(self, topic: str, payloads: Iterable[Mapping[str, Any]],
                     message_ids: Iterable[str | None] | None = None,
                     headers: Mapping[str, str] | None = None) -> list[str | None]:
        """Publish several messages (implementations send them in one round trip)."""
        items = list(payloads)
        ids = list(message_ids) if message_ids is not None else [None] * len(items)
        return [self.publish(topic, p, i, headers) for p, i in zip(items, ids, strict=True)]

    @abstractmethod
    def receive(self, topics: str | Iterable[str], group: str, consumer: str, count: int = 100,
                block: float = 0.0) -> list[Message]:
        """Up to ``count`` messages for ``consumer`` of ``group``: first messages a dead consumer held longer
        than ``visibility_timeout`` (and failed ones due again), then new ones, waiting up to ``block`` seconds
        when there are none. The group is created on first use and sees the topic from its beginning."""

    @abstractmethod
    def ack(self, message: Message) -> None:
        """The message was handled (its effects committed): it is done for its group."""

    def ack_many(self, messages: Iterable[Message]) -> None:
        """Acknowledge several messages (implementations do it in one round trip)."""
        for message in messages:
            self.ack(message)

    @abstractmethod
    def fail(self, message: Message, error: str) -> bool:
        """Handling failed: the message is retried after the rest of the topic, or parked with ``error`` after
        ``max_failures`` failures. Returns True when it was parked."""

    @abstractmethod
    def park(self, message: Message, error: str) -> None:
        """Move the message to its topic's dead-letter stream now (a message that can never succeed)."""

    @abstractmethod
    def touch(self, message: Message) -> None:
        """A heartbeat: the consumer still works on it (resets its visibility timeout)."""

    @abstractmethod
    def dead_letters(self, topic: str) -> list[dict[str, Any]]:
        """Parked messages of a topic, oldest first: id, payload, headers, group, error, failures, parked_at."""

    @abstractmethod
    def replay(self, topic: str, message_ids: Iterable[str] | None = None) -> int:
        """Publish parked messages again (all, or those with these message ids) and remove them from the
        dead-letter stream. Returns how many."""

    def trim(self, topic: str) -> int:
        """Drop the messages of ``topic`` every existing group has acknowledged (none that is pending or not
        yet delivered to some group). Returns how many went. A group created later starts after them."""
        return 0

    @abstractmethod
    def topics(self) -> list[str]:
        """Topics that have seen a message."""

    @abstractmethod
    def counters(self) -> list[dict[str, Any]]:
        """Per topic: published, duplicates, delivered, acked, pending (delivered, not yet acked), waiting (not
        yet delivered to some group), parked. The rows of :meth:`stats`."""

    def stats(self) -> pd.DataFrame:
        """:meth:`counters` as a DataFrame (columns ``STATS_COLUMNS``, one row per topic, sorted by topic)."""
        import pandas as pd

        rows = sorted(self.counters(), key=lambda r: r["topic"])
        return pd.DataFrame(rows, columns=STATS_COLUMNS)

    def close(self) -> None:  # noqa: B027  (optional)
        """Release connections."""

    def __enter__(self) -> MessageBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def topics_of(topics: str | Iterable[str]) -> list[str]:
    return [topics] if isinstance(topics, str) else list(dict.fromkeys(topics))
