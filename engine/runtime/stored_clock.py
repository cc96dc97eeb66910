"""The demo's virtual clock, stored in the engine's database so it survives a restart and every process on
that database reads the same time.

Demo time runs at the wall clock's pace plus an offset that only grows: the app's clock control (+1 h, +4 h,
+1 day, +7 days, to the next due timer) adds to the offset through ``Engine.advance_to`` — the worker's own
path, firing every timer that falls due on the way, in due order. The offset lives in the one-row table
``app_virtual_clock`` (created on first use by the app; it is the demo's, not part of the engine's schema);
every move is written there before the next timer fires, so a restart resumes at (at least) the last virtual
time reached. ``flowing=False`` stops the wall-clock part (tests: time moves only when told to).

:class:`StoredClock` is the app's (it moves the clock); :class:`FollowedClock` is an external worker's
(``waooaw worker --clock demo``): it only reads the stored offset, again at most every ``refresh`` seconds, so
a move made in the app reaches the worker's next poll. Both are :class:`engine.runtime.clock.VirtualClock`\\ s,
so ``Engine.advance`` accepts them; unlike that one, ``set()`` to a moment already passed is a no-op rather
than an error (the wall clock keeps moving between two reads).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, Table, insert, select, update
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.exc import SQLAlchemyError

from engine.runtime.clock import VirtualClock

_META = MetaData()
CLOCK_TABLE = Table(
    "app_virtual_clock", _META,
    Column("id", Integer, primary_key=True),
    Column("offset_seconds", Float, nullable=False),  # virtual time = wall time + offset (written in both modes)
    Column("base", DateTime(timezone=True), nullable=True),  # flowing=False: the virtual time itself
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _wall() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StoredClock(VirtualClock):
    """Virtual time stored in ``db`` (SQLAlchemy engine of the engine's database).

    ``flowing=True``: wall time + a stored offset (demo). ``flowing=False``: a fixed moment that only moves
    when set (tests), starting at ``start`` (default: now)."""

    def __init__(self, db: SAEngine, flowing: bool = True, start: datetime | None = None) -> None:
        self.db = db
        self.flowing = flowing
        self._lock = threading.Lock()
        _META.create_all(db)
        with db.begin() as conn:
            row = conn.execute(select(CLOCK_TABLE).where(CLOCK_TABLE.c.id == 1)).first()
            if row is None:
                base = _aware(start) if start else _wall()
                offset = (base - _wall()).total_seconds()
                conn.execute(insert(CLOCK_TABLE).values(id=1, offset_seconds=offset, base=base, updated_at=_wall()))
                self._offset, self._base = offset, base
            else:
                self._offset = float(row.offset_seconds)
                self._base = _aware(row.base) if row.base is not None else _wall() + timedelta(seconds=self._offset)
        super().__init__(self.now())

    def now(self) -> datetime:
        if self.flowing:
            return _wall() + timedelta(seconds=self._offset)
        return self._base

    def set(self, moment: datetime) -> None:
        """Move to ``moment`` if it is later than now (and store it); earlier moments are ignored."""
        moment = _aware(moment)
        with self._lock:
            if moment <= self.now():
                return
            self._offset = (moment - _wall()).total_seconds()  # what a FollowedClock reads, in either mode
            self._base = moment
            with self.db.begin() as conn:
                conn.execute(update(CLOCK_TABLE).where(CLOCK_TABLE.c.id == 1)
                             .values(offset_seconds=self._offset, base=self._base, updated_at=_wall()))

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)


class FollowedClock(VirtualClock):
    """The stored demo time as another process sees it: wall time + the offset in ``app_virtual_clock``, read
    again at most every ``refresh`` seconds. Never writes (the app owns the clock); before the app has made
    the table (or on a database without it) it reads as the wall clock and keeps looking."""

    def __init__(self, db: SAEngine, refresh: float = 0.2) -> None:
        self.db = db
        self.refresh = refresh
        self._offset = 0.0
        self._read_at = -float("inf")
        self._lock = threading.Lock()
        super().__init__(_wall())

    @property
    def found(self) -> bool:
        """Whether the database holds a demo clock (read now)."""
        return self._read() is not None

    def _read(self) -> float | None:
        try:
            with self.db.connect() as conn:
                row = conn.execute(select(CLOCK_TABLE.c.offset_seconds).where(CLOCK_TABLE.c.id == 1)).first()
        except SQLAlchemyError:  # no table yet: the app has not run in demo mode on this database
            return None
        return float(row.offset_seconds) if row is not None else None

    def now(self) -> datetime:
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh:
                offset = self._read()
                # the offset only grows: a read that lags behind a newer one never moves time back
                self._offset = max(self._offset, offset) if offset is not None else self._offset
                self._read_at = time.monotonic()
            return _wall() + timedelta(seconds=self._offset)

    def set(self, moment: datetime) -> None:  # Engine.advance on a worker: not how a demo moves its clock
        raise ValueError("a followed demo clock is moved by the app's clock control, not by this process")
