"""The app's live engine: opened once per app process, with its clock and its embedded worker thread.

``AppRuntime(config)`` (cached by the pages with ``st.cache_resource``, so one per process and database):

- **Engine** on ``config.db_url``. Demo mode deploys the library's designs (same content, same version).
- **Clock**: demo mode uses :class:`engine.runtime.stored_clock.StoredClock` (virtual time in the database, moved by
  :meth:`move_clock`); production the wall clock.
- **Worker**: with ``config.worker == "embedded"`` one daemon thread runs due jobs (agents, timers, SLA
  escalations) every ``poll`` seconds, whether or not a browser is open. On SQLite only one process may
  run jobs: the thread takes an exclusive lock on ``<database>.worker.lock``; a second app process on the
  same file gets :attr:`worker_note` saying so and leaves the jobs to the first. With ``external`` (the
  default on PostgreSQL) no thread runs: start ``waooaw worker`` processes.

Every job run (thread, :meth:`drive` after a UI action, :meth:`move_clock`) goes through one mutex, so the
clock never moves in the middle of a batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import designs
from app.config import AppConfig
from app.virtual_clock import StoredClock
from engine.errors import DefinitionError
from engine.runtime import Engine
from engine.runtime.clock import RealClock
from engine.security import Principal

log = logging.getLogger("waooaw.app")

CLOCK_STEPS: dict[str, timedelta] = {"+1 h": timedelta(hours=1), "+4 h": timedelta(hours=4),
                                     "+1 day": timedelta(days=1), "+7 days": timedelta(days=7)}


@dataclass(frozen=True)
class ClockMove:
    """What a clock move did: from and to (engine time), and how many jobs ran on the way."""

    before: datetime
    after: datetime
    jobs: int

    def message(self) -> str:
        """"Clock moved 4.0 h to …" (minutes or seconds below an hour: a move to the next timer can be short)."""
        seconds = (self.after - self.before).total_seconds()
        moved = (f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 60
                 else f"{seconds:.0f} s")
        return (f"Clock moved {moved} to {self.after:%a %d %b %Y %H:%M} UTC; "
                f"{self.jobs} job(s) ran (timers, SLA escalations, agents).")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for memory or another database)."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///"))


class AppRuntime:
    def __init__(self, config: AppConfig, *, flowing: bool = True, poll: float = 1.0,
                 start_worker: bool = True) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        file = sqlite_path(config.db_url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(config.db_url, principal=Principal.system())  # the app itself; visitors: acting_as
        self.clock: StoredClock | RealClock = (StoredClock(self.engine.db, flowing=flowing) if config.demo
                                               else RealClock())
        self.engine.clock = self.clock
        self.problems: list[str] = []
        if config.demo:
            for name in designs.names():
                try:
                    self.engine.deploy(designs.load_design(name))
                except DefinitionError as exc:
                    self.problems.append(f"{name}: {exc}")
        self._mutex = threading.RLock()
        self._stop = threading.Event()
        self._lock_file: IO[str] | None = None
        self.worker_note = ""
        self.runs_jobs = False
        if config.worker == "embedded":
            self.runs_jobs = self._take_worker_lock(file)
            if self.runs_jobs:
                self.engine.release_locks()  # a dead predecessor's claims run again
        else:
            self.worker_note = ("Jobs run in external `waooaw worker` processes (WAOOAW_WORKER=external): "
                                "start at least one beside the app.")
            if config.demo:
                self.worker_note += (" Demo mode: start them with `--clock demo` (or WAOOAW_MODE=demo) so they "
                                     "follow this app's virtual clock.")
        self.poll = poll
        self.thread: threading.Thread | None = None
        if self.runs_jobs and start_worker:
            self.thread = threading.Thread(target=self._loop, name="waooaw-worker", daemon=True)
            self.thread.start()

    # --- the worker --------------------------------------------------------------------------------------

    def _take_worker_lock(self, file: Path | None) -> bool:
        if file is None:
            return True
        lock_path = file.with_name(file.name + ".worker.lock")
        handle = open(lock_path, "a+")  # noqa: SIM115  (held open for the process's life: that is the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            self.worker_note = (f"Another app process ({holder}) runs the worker for `{file}`: this one does not "
                                "run jobs. Timers and agents still run there; close it or give this app its own "
                                "database (WAOOAW_DB) to run them here.")
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_file = handle
        return True

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                ran = self.drive()
                failures = 0
            except Exception:  # a lost database, a bug in an agent wrapper: log, back off, go on
                failures += 1
                log.exception("embedded worker: a batch failed (attempt %d)", failures)
                ran = 0
            self._stop.wait(0 if ran else min(self.poll * (2 ** failures), 30))

    def drive(self) -> int:
        """Run due jobs until none is due (the worker's path); 0 when another process runs the jobs."""
        if not self.runs_jobs:
            return 0
        with self._mutex:
            return self.engine.run_until_idle()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # --- the clock ---------------------------------------------------------------------------------------

    @property
    def virtual(self) -> bool:
        return isinstance(self.clock, StoredClock)

    def now(self) -> datetime:
        return self.engine.clock.now()

    def move_clock(self, delta: timedelta | None = None, *, to_next_due: bool = False,
                   principal: Principal | None = None) -> ClockMove:
        """Demo mode: move the virtual clock by ``delta`` or to the next due timer, firing what falls due on the
        way in due order (``Engine.advance_to``, the worker's own path). ValueError when there is no virtual
        clock, or no timer is waiting. ``principal``: who moves it (the rule ``clock.advance``, operator; the
        app itself when None); ``AuthorizationError`` when they may not."""
        if not self.virtual:
            raise ValueError("the clock is the wall clock (WAOOAW_MODE=production): it cannot be moved")
        with self._mutex:
            ran = self.engine.run_until_idle()  # what is due now first: the next due job is then in the future
            before = self.now()
            if to_next_due:
                due = self.engine.next_due()
                if due is None:
                    raise ValueError("no timer is waiting: nothing to move the clock to")
                target = max(due, before)
            else:
                if delta is None or delta <= timedelta(0):
                    raise ValueError("move the clock forward by a positive amount")
                target = before + delta
            engine = self.engine if principal is None else self.engine.acting_as(principal)
            jobs = engine.advance_to(target)
            return ClockMove(before, self.now(), ran + jobs)

