"""Clocks are injected: the engine never asks the system for the time itself.

A ``VirtualClock`` lets a test or a notebook run a 7-day trial in milliseconds: ``Engine.advance``
moves it from due timer to due timer through the same job code path the worker uses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from engine.model.timers import aware  # noqa: F401  (re-exported: the runtime's one helper for it)


class Clock(Protocol):
    def now(self) -> datetime: ...


class RealClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """Time that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._now = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if moment < self._now:
            raise ValueError(f"a virtual clock does not go back ({moment.isoformat()} < {self._now.isoformat()})")
        self._now = moment

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)
