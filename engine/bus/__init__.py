"""The message bus: events start workflows, agents take work from topics and answer on a reply topic.

    from engine.bus import connect_bus
    bus = connect_bus()                       # WAOOAW_BUS, else the in-process bus
    bus = connect_bus("redis://127.0.0.1:6379/0?prefix=waooaw&visibility_timeout=30&max_failures=5")

Parts: ``base`` (the MessageBus interface, the delivery guarantee), ``memory`` (in-process),
``redis_streams`` (Redis Streams with consumer groups), ``bridge`` (the engine's side: start triggers,
correlation, outbound messages, answers of external workers), ``external`` (service tasks done by external
workers: publication with a lock, answers, late answers), ``worker`` (the ``@worker`` API and the loop that
runs an agent function for a topic), ``compensation`` (the review's ``execute_with_compensation``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from engine.bus.base import STATS_COLUMNS, BusError, Message, MessageBus
from engine.bus.compensation import CompensationError, execute_with_compensation
from engine.bus.memory import InProcessBus
from engine.bus.worker import TaskContext, run_worker, worker

if TYPE_CHECKING:
    from engine.bus.redis_streams import RedisBus

ENV = "WAOOAW_BUS"

__all__ = ["ENV", "STATS_COLUMNS", "BusError", "CompensationError", "InProcessBus", "Message", "MessageBus",
           "RedisBus", "TaskContext", "connect_bus", "execute_with_compensation", "run_worker", "worker"]

_default: InProcessBus | None = None


def connect_bus(url: str | None = None, **options: Any) -> MessageBus:
    """A bus from a URL: ``redis://host:port/db?prefix=...`` (Redis Streams), ``memory://`` or nothing (the
    process's shared in-process bus). ``url=None`` reads ``WAOOAW_BUS``. Options (``visibility_timeout``,
    ``max_failures``, ``dedup_ttl``) may also be given as URL query parameters.

    Raises BusError for an unknown scheme or an unreachable server, naming what was tried."""
    global _default
    url = url if url is not None else os.environ.get(ENV, "")
    url = url.strip()
    if not url or url.startswith("memory:"):
        if options:
            return InProcessBus(**options)
        if _default is None:
            _default = InProcessBus()
        return _default
    if url.startswith(("redis://", "rediss://", "unix://")):
        from engine.bus.redis_streams import RedisBus

        return RedisBus(url, **options)
    raise BusError(f"unknown bus URL {url!r}: use redis://host:6379/0 (Redis Streams) or memory:// (in-process)")


def __getattr__(name: str) -> Any:
    if name == "RedisBus":  # imported on use: the in-process bus needs no redis client
        from engine.bus.redis_streams import RedisBus

        return RedisBus
    raise AttributeError(name)
