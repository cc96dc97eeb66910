"""People and agents that do the work: a pool of ``size`` servers with a FIFO queue and a calendar.

Working hours: a person works only in the calendar's working periods. Work is handed out as soon as
someone is free, but it *starts* at the next opening and its duration is counted in working time
(``calendar.add``), so a task in progress at closing time pauses until the next opening. Work handed
out for a future opening can still be taken back (SLA escalation moves it to another pool).

Not a ``simpy.Resource``: the pool is called from effect handlers (no generator per request), which
keeps the per-task cost to a few dictionary and deque operations, and it can cancel queued work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol


class WorkingCalendar(Protocol):
    def next_working(self, dt: datetime) -> datetime: ...
    def add(self, start: datetime, delta: timedelta) -> datetime: ...
    def working_time(self, a: datetime, b: datetime) -> timedelta: ...


class Work:
    """One activation of an activity: waits in a pool's queue, is done by a server, then ends."""

    __slots__ = (
        "attempt",
        "breached",
        "case",
        "enabled",
        "end",
        "kind",
        "node_id",
        "outcome",
        "person",
        "pool",
        "start",
        "timer",
        "token_id",
        "work_id",
    )

    def __init__(self, case: Any, token_id: str, node_id: str, kind: str, work_id: str, attempt: int,
                 enabled: float) -> None:
        self.case = case
        self.token_id = token_id
        self.node_id = node_id
        self.kind = kind
        self.work_id = work_id
        self.attempt = attempt
        self.enabled = enabled
        self.start = -1.0  # -1: not handed out yet
        self.end = -1.0
        self.person: str | None = None
        self.pool: Pool | None = None
        self.outcome: str | None = None  # None while open; completed, failed, cancelled, ...
        self.breached = False
        self.timer: Any = None  # the SimPy event of its completion (a stale one is ignored)


class Pool:
    """``size`` servers named ``name#1..n``; ``size=None`` is unlimited (agents without a capacity)."""

    def __init__(self, name: str, size: int | None, clock: Any,
                 begin: Callable[[Work, float], None], calendar: WorkingCalendar | None = None,
                 t0: datetime | None = None, window: tuple[float, float] = (0.0, float("inf"))) -> None:
        self.name = name
        self.size = size
        self.calendar = calendar
        self._clock = clock  # the simpy.Environment: its ``_now`` is read directly (hot path)
        self._begin = begin  # called with (work, start time): schedule its completion
        self._t0 = t0
        self.free: deque[str] = deque(f"{name}#{i + 1}" for i in range(size or 0))
        self.queue: deque[Work] = deque()
        self.qlen = 0  # live queued work (cancelled entries are skipped lazily)
        self.busy_count = 0
        self.queue_trace: list[tuple[float, int]] = [(0.0, 0)]
        self.busy_seconds = 0.0  # within the KPI window, in the calendar's working time
        self.window = window
        self.served = 0

    # --- requests -------------------------------------------------------------------------------

    def request(self, work: Work) -> None:
        work.pool = self
        if self.size is None:
            work.person = self.name
            self.busy_count += 1
        elif self.free and not self.qlen:
            work.person = self.free.popleft()
            self.busy_count += 1
        else:
            self.queue.append(work)
            self.qlen += 1
            self.queue_trace.append((self._clock._now, self.qlen))
            return
        if self.calendar is None:
            work.start = now = self._clock._now
            self._begin(work, now)
        else:
            self._hand_out(work)

    def release(self, work: Work) -> None:
        """The work ended (done, failed, cancelled while in progress): account for it, serve the next."""
        self.busy_count -= 1
        self.served += 1
        if self.calendar is None:
            lo, hi = self.window
            a, b = work.start, work.end  # max(start, lo), min(end, hi) without two builtin calls per task
            if lo > a:
                a = lo
            if hi < b:
                b = hi
            if b > a:
                self.busy_seconds += b - a
        else:
            self._account(work)
        person = work.person
        if self.size is None:
            return
        while self.queue:
            nxt = self.queue.popleft()
            if nxt.outcome is not None or nxt.pool is not self:
                continue  # cancelled or moved while queued
            self.qlen -= 1
            self.queue_trace.append((self._clock._now, self.qlen))
            nxt.person = person
            self.busy_count += 1
            self._hand_out(nxt)
            return
        assert person is not None
        self.free.append(person)

    def withdraw(self, work: Work) -> bool:
        """Take back queued work, or work handed out for a later opening. True if it had not started."""
        now = self._clock._now
        if work.start < 0:
            self.qlen -= 1  # the deque entry is skipped when reached
            self.queue_trace.append((now, self.qlen))
            work.pool = None
            return True
        if work.start > now:
            work.timer = None  # its completion, scheduled from a later opening, no longer counts
            work.end = work.start = now  # nothing worked yet
            self.release(work)
            work.start = work.end = -1.0
            work.person = None
            work.pool = None
            return True
        return False

    def _hand_out(self, work: Work) -> None:
        now = self._clock._now
        if self.calendar is None:
            work.start = now
        else:
            assert self._t0 is not None
            at = self._t0 + timedelta(seconds=now)
            work.start = (self.calendar.next_working(at) - self._t0).total_seconds()
        self._begin(work, work.start)

    def finish_time(self, start: float, seconds: float) -> float:
        """When work of ``seconds`` started at ``start`` ends: counted in working time with a calendar."""
        if self.calendar is None or seconds <= 0:
            return start + seconds
        assert self._t0 is not None
        end = self.calendar.add(self._t0 + timedelta(seconds=start), timedelta(seconds=seconds))
        return (end - self._t0).total_seconds()

    # --- statistics -----------------------------------------------------------------------------

    def _account(self, work: Work) -> None:
        lo, hi = self.window
        a, b = max(work.start, lo), min(work.end, hi)
        if b > a:
            self.busy_seconds += self.working_seconds(a, b)

    def working_seconds(self, a: float, b: float) -> float:
        if self.calendar is None:
            return b - a
        assert self._t0 is not None
        return self.calendar.working_time(self._t0 + timedelta(seconds=a),
                                          self._t0 + timedelta(seconds=b)).total_seconds()

    def close(self, at: float, open_work: list[Work]) -> None:
        """End of the run: count the busy time of work still in progress."""
        for work in open_work:
            if work.pool is self and work.outcome is None and 0 <= work.start < at:
                end = work.end
                work.end = at
                self._account(work)
                work.end = end
