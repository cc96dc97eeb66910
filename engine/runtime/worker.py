"""The job loop: ``waooaw worker --db URL`` or ``python -m engine.runtime.worker --db URL``.

On PostgreSQL run as many workers as you like (jobs are claimed with FOR UPDATE SKIP LOCKED and a
lease; a dead worker's jobs are taken again when the lease expires). On SQLite run one worker: at
start it frees every lock, since the only other holder could be its dead predecessor.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from types import FrameType

from engine.errors import EngineError, WaooawError
from engine.registry import allow_modules
from engine.runtime.db import is_sqlite
from engine.runtime.engine import Engine
from engine.security import Principal
from engine.versions.guardrail import check_guardrails

log = logging.getLogger("waooaw.worker")
CLEANUP_BATCHES = 5  # per pass: a pass stays short (each batch is one small transaction)


def run_worker(db_url: str, poll: float = 0.2, batch: int = 50, lease: float = 60.0,
               stop: threading.Event | None = None, max_idle: float | None = None, threads: int = 8,
               guardrail_interval: float = 60.0, cleanup_every: float | None = 300.0,
               metrics_port: int | None = None, clock: str = "wall") -> int:
    """Run jobs until ``stop`` is set, SIGTERM/SIGINT arrives, or (``max_idle``) nothing was due that long.
    Every ``guardrail_interval`` seconds the rollout guardrails are checked (``engine.versions.guardrail``).

    Every ``cleanup_every`` seconds (None: never) the worker removes a few batches of history past its
    time-to-live (``Engine.set_history_ttl``; nothing without one), between job batches. With
    ``metrics_port`` it serves Prometheus metrics on that port (engine.runtime.metrics).

    ``clock``: ``"wall"`` (real time) or ``"demo"``: the app's virtual demo clock stored in the database
    (:class:`engine.runtime.stored_clock.FollowedClock`), so jobs the app made due at demo time run here too;
    EngineError when the database holds no demo clock."""
    engine = Engine(db_url, lease=timedelta(seconds=lease), agent_threads=threads, principal=Principal.system())
    if clock == "demo":
        from engine.runtime.stored_clock import FollowedClock

        followed = FollowedClock(engine.db, refresh=min(poll, 1.0))
        if not followed.found:
            raise EngineError(f"no demo clock in {engine.db.url.render_as_string(hide_password=True)}: open the app "
                              "on this database in demo mode first (WAOOAW_MODE=demo), or run with --clock wall")
        engine.clock = followed
        log.info("following the demo clock stored in the database (now %s)", followed.now().isoformat())
    elif clock != "wall":
        raise EngineError(f"--clock {clock!r}: use wall or demo")
    observer = None
    if metrics_port is not None:
        from engine.runtime.metrics import serve

        observer = serve(engine, metrics_port)
        log.info("metrics on http://0.0.0.0:%d/metrics", metrics_port)
    if is_sqlite(engine.db):
        engine.release_locks()
    stop = stop or threading.Event()
    bridge = None
    if engine.bus_configured:  # WAOOAW_BUS: also start triggers, correlation and external workers' answers
        from engine.bus.bridge import BusBridge

        bridge = BusBridge(engine)

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    ran = 0
    failures = 0
    idle_since = time.monotonic()
    guard_at = time.monotonic()
    next_cleanup = time.monotonic() + (cleanup_every or 0.0)
    while not stop.is_set():
        if time.monotonic() >= guard_at:
            guard_at = time.monotonic() + guardrail_interval
            try:
                for rollback in check_guardrails(engine):
                    log.warning("%s: %s", rollback.name, rollback.reason)
            except Exception:  # a guardrail is advice: its failure must not stop the jobs
                log.exception("rollout guardrail check failed")
        if cleanup_every is not None and time.monotonic() >= next_cleanup:
            next_cleanup = time.monotonic() + cleanup_every
            try:
                report = engine.cleanup_history(max_batches=CLEANUP_BATCHES)
                if report.total:
                    log.info("history cleanup removed %s", report.removed)
                if report.more:
                    next_cleanup = time.monotonic()  # more is due: another pass after the next job batch
            except Exception:
                log.exception("history cleanup failed; it runs again in %s s", cleanup_every)
        try:
            began = time.perf_counter()
            n = engine.run_due_jobs(limit=batch) + (bridge.pump() if bridge is not None else 0)
            if observer is not None and n:
                observer.batch(time.perf_counter() - began)
        except Exception:  # a lost connection, a deadlock victim, a bug in one step: keep serving the rest
            failures += 1
            log.exception("job batch failed (%d in a row); its jobs run again when their lease ends", failures)
            stop.wait(min(poll * 2 ** failures, 30.0))
            continue
        failures = 0
        ran += n
        if n:
            idle_since = time.monotonic()
            continue
        if max_idle is not None and time.monotonic() - idle_since > max_idle:
            break
        stop.wait(poll)
    return ran


def default_clock() -> str:
    """``demo`` when ``WAOOAW_MODE=demo`` (the app's variable: one environment for the app and its workers),
    else ``wall``."""
    return "demo" if os.environ.get("WAOOAW_MODE", "").strip().lower() == "demo" else "wall"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the waooaw job loop.")
    parser.add_argument("--db", default="sqlite:///waooaw.db", help="SQLAlchemy URL")
    parser.add_argument("--agents", action="append", default=[], help="module to import (registers agents)")
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=50,
                        help="jobs claimed at once; their results commit together (a crash repeats at most these)")
    parser.add_argument("--threads", type=int, default=8, help="agent calls of a batch run on this many threads")
    parser.add_argument("--lease", type=float, default=60.0, help="seconds a claimed job stays locked")
    parser.add_argument("--max-idle", type=float, default=None, help="exit after this many idle seconds")
    parser.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    parser.add_argument("--clock", choices=["wall", "demo"], default=default_clock(),
                        help="wall: real time; demo: the app's virtual clock stored in the database (default: demo "
                             "when WAOOAW_MODE=demo)")
    parser.add_argument("--cleanup-every", type=float, default=300.0,
                        help="seconds between history cleanup passes (time-to-live per definition); 0: never")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for module in args.agents:  # the deployment lists them: their module:qualname agents may be imported
        allow_modules(module)
        importlib.import_module(module)
    try:
        ran = run_worker(args.db, poll=args.poll, batch=args.batch, lease=args.lease, max_idle=args.max_idle,
                         threads=args.threads, cleanup_every=args.cleanup_every or None,
                         metrics_port=args.metrics_port, clock=args.clock)
    except WaooawError as exc:  # a start-up problem (the database, a setting): one line, exit 1
        sys.exit(f"error: {exc}")
    print(f"worker stopped after {ran} jobs")


if __name__ == "__main__":
    main()
