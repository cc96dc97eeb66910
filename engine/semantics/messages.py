"""The message rule, one definition for the engine (``engine.runtime.correlation``) and the simulator
(``simulator.shell``): which waiting catch a message reaches, and what happens when none or several wait.

Pure functions and one in-memory buffer; the engine keeps its buffer in ``wf_messages`` and its waiting
catches in ``wf_subscriptions``, the simulator in dicts, and both decide with the functions below.

1. **Matching** (:func:`key_matches`). A message matches a waiting catch of the same message name when it
   carries no correlation key, or when its key equals the catch's key compared as stored JSON (``"A-1"`` is
   not ``1``, ``1`` is not ``1.0``). A catch with a key receives an unkeyed message; a keyed message never
   reaches a catch without a key. ``Engine.correlate`` may narrow by process data (:func:`filters_match`).
2. **One receiver** (:func:`route`). A message is delivered once: one match receives it; several matches are
   *ambiguous* - the engine's API refuses (``AmbiguousCorrelation``), a throw event's message is recorded as
   ambiguous with its candidates and delivered to none (as Camunda 7 refuses; never given to one by chance).
   Only an explicit correlate-to-all delivers to every match.
3. **Nobody waits.** A thrown message is *buffered* for a time-to-live (:data:`DEFAULT_MESSAGE_TTL`, one hour;
   ``Engine(message_ttl=)``, the scenario's ``message_ttl``) and delivered, oldest first, to the first catch
   that opens and matches before it expires (:func:`deliverable`; Zeebe's message buffer). Delivery happens in
   the step that opens the catch, so the catch passes at the moment it opens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from engine.model.values import dumps

DEFAULT_MESSAGE_TTL = timedelta(hours=1)
"""How long a thrown message nobody waits for is buffered (rule 3)."""

T = TypeVar("T")
Route = Literal["deliver", "ambiguous", "none"]


def key_text(correlation: Any) -> str | None:
    """A correlation key as stored and compared (JSON text; None for no key)."""
    return None if correlation is None else dumps(correlation)


def key_matches(message_key: Any, waiting_key: Any, *, stored: bool = False) -> bool:
    """Rule 1: does a message with ``message_key`` match a catch waiting with ``waiting_key``? With
    ``stored=True`` both are given as :func:`key_text` already."""
    if message_key is None:
        return True
    if waiting_key is None:
        return False
    if stored:
        return bool(message_key == waiting_key)
    return dumps(message_key) == dumps(waiting_key)


def filters_match(filters: Mapping[str, Any], instance_id: str | None, business_key: str | None,
                  variables: Mapping[str, Any]) -> bool:
    """Does a waiting instance pass a correlation's narrowing (``where`` variables equal, ``business_key``,
    ``instance_id``; Camunda's ``processInstanceVariableEquals`` / ``processInstanceBusinessKey`` /
    ``processInstanceId``)? An empty ``filters`` passes every instance."""
    if filters.get("instance_id") not in (None, instance_id):
        return False
    if "business_key" in filters and filters["business_key"] != business_key:
        return False
    return all(k in variables and dumps(variables[k]) == dumps(v) for k, v in filters.get("where", {}).items())


def route(candidates: Sequence[T], all: bool = False) -> tuple[Route, list[T]]:
    """Rule 2: ``("deliver", receivers)`` for one match (every match with ``all``), ``("ambiguous",
    candidates)`` for several without ``all``, ``("none", [])`` when nobody waits (rule 3 applies)."""
    if not candidates:
        return "none", []
    if len(candidates) > 1 and not all:
        return "ambiguous", list(candidates)
    return "deliver", list(candidates)


def deliverable(buffered: Iterable[tuple[T, Any, Mapping[str, Any], datetime | None]], waiting_key: Any,
                now: datetime, instance_id: str | None = None, business_key: str | None = None,
                variables: Mapping[str, Any] | None = None, *, stored: bool = False) -> Iterator[T]:
    """Rule 3: of buffered messages of the catch's name, oldest first, given as ``(ref, correlation key,
    filters, expires_at)``, the refs of those the opening catch may take (unexpired and matching), in order.
    The first one the caller can claim is delivered."""
    for ref, key, filters, expires_at in buffered:
        if expires_at is not None and expires_at <= now:
            continue
        if not key_matches(key, waiting_key, stored=stored):
            continue
        if filters and not filters_match(filters, instance_id, business_key, variables or {}):
            continue
        yield ref


@dataclass
class BufferedMessage:
    """A message in an in-memory buffer (the simulator's; the engine's rows are ``wf_messages``)."""

    name: str
    correlation: Any
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    source: str = ""
    status: str = "buffered"  # buffered | delivered | ambiguous (expired is buffered past expires_at)
    receiver: Any = None
    delivered_at: datetime | None = None
    error: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)


class MessageBuffer:
    """Rule 3 in memory: ``add`` a message nobody waits for; ``take`` on opening a catch. Every message ever
    added stays listed (``messages``) with its status, as ``Engine.messages()`` lists ``wf_messages``."""

    def __init__(self, ttl: timedelta = DEFAULT_MESSAGE_TTL) -> None:
        self.ttl = ttl
        self.messages: list[BufferedMessage] = []
        self._waiting: dict[str, list[BufferedMessage]] = {}  # name -> buffered, oldest first

    def add(self, name: str, correlation: Any, payload: Mapping[str, Any], now: datetime, source: str = "",
            status: str = "buffered", error: str | None = None) -> BufferedMessage:
        """Buffer a message until ``now + ttl`` (or record an ``ambiguous`` one, which is never delivered)."""
        message = BufferedMessage(name, correlation, dict(payload), now, now + self.ttl, source, status, error=error)
        self.messages.append(message)
        if status == "buffered":
            self._waiting.setdefault(name, []).append(message)
        return message

    def take(self, name: str, waiting_key: Any, now: datetime, receiver: Any = None) -> dict[str, Any] | None:
        """The payload of the oldest unexpired buffered message that matches a catch opening now (marked
        delivered to ``receiver``), or None."""
        queue = self._waiting.get(name)
        if not queue:
            return None
        while queue and queue[0].expires_at <= now:  # expired: listed, never delivered
            queue.pop(0)
        candidates = ((m, m.correlation, m.filters, m.expires_at) for m in queue)
        for message in deliverable(candidates, waiting_key, now):
            queue.remove(message)
            message.status, message.receiver, message.delivered_at = "delivered", receiver, now
            return message.payload
        return None

    def status(self, message: BufferedMessage, now: datetime) -> str:
        """buffered, delivered, expired (buffered past its time) or ambiguous."""
        return "expired" if message.status == "buffered" and message.expires_at <= now else message.status


__all__ = ["DEFAULT_MESSAGE_TTL", "BufferedMessage", "MessageBuffer", "deliverable", "filters_match", "key_matches",
           "key_text", "route"]
