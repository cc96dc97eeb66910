"""What the activity history costs: PR-review throughput with and without its rows, interleaved.

    .venv/bin/python bench/activity_history.py [--n 300] [--rounds 5] [--designs pr_review] [--no-pg]

The activity history (``engine.runtime.history``) writes one ``wf_activities`` row per node a token passes
and closes it when the token moves on, in the step's own transaction. This measures its cost the only fair
way on a shared machine: the same run of ``bench/engine_throughput.py``'s in-process SQLite workload (and the
same workload in-process on PostgreSQL), with the history switched off and on in alternating order, round
after round, in one process; the table shows the median of the rounds and the ratio. "off" replaces the
history's two hooks with no-ops (nothing else changes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_throughput import INPUTS, PG_BASE, complete_open_tasks, pg_reachable, run_sqlite

import designs
from engine.runtime import (
    Engine,
    history,
)
from engine.runtime.db import scratch_database
from engine.security import Principal


@contextmanager
def history_off() -> Any:
    entered, stepped = history.ActivityLog.entered, history.ActivityLog.stepped
    history.ActivityLog.entered = lambda self, e, now: None  # type: ignore[method-assign]
    history.ActivityLog.stepped = lambda self, tokens, status, now: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        history.ActivityLog.entered, history.ActivityLog.stepped = entered, stepped  # type: ignore[method-assign]


def run_pg(design: str, n: int, base: str) -> float:
    """Seconds to start and finish n instances in-process on a throwaway PostgreSQL database."""
    with scratch_database(base, prefix="waooaw_bh_") as url:
        engine = Engine(url, principal=Principal.system())
        engine.deploy(designs.build_design(design))
        started = time.perf_counter()
        index = {engine.start(design, INPUTS[design](i)): i for i in range(n)}
        engine.run_until_idle()
        while complete_open_tasks(engine, index):
            engine.run_until_idle()
        seconds = time.perf_counter() - started
        engine.db.dispose()
        return seconds


def once(backend: str, design: str, args: argparse.Namespace, tmp: Path) -> float:
    if backend == "SQLite":
        res = run_sqlite(design, args.n, tmp)
        return res.start_s + res.run_s
    return run_pg(design, args.n, args.pg)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="instances per run (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="off/on pairs, alternating order (default 5)")
    parser.add_argument("--designs", default="pr_review")
    parser.add_argument("--pg", default=PG_BASE)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args(argv)
    backends = ["SQLite"] + ([] if args.no_pg or pg_reachable(args.pg) is not None else ["PostgreSQL"])
    print(f"{args.n} instances per run, {args.rounds} rounds, off/on interleaved; median seconds (start + run)")
    print(f"{'design':<20} {'database':<11} {'off s':>7} {'on s':>7} {'off inst/s':>11} {'on inst/s':>10} {'cost':>7}")
    for design in args.designs.split(","):
        for backend in backends:
            times: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds):
                for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    with tempfile.TemporaryDirectory() as tmp:
                        if mode == "off":
                            with history_off():
                                times[mode].append(once(backend, design, args, Path(tmp)))
                        else:
                            times[mode].append(once(backend, design, args, Path(tmp)))
            off, on = statistics.median(times["off"]), statistics.median(times["on"])
            print(f"{design:<20} {backend:<11} {off:>7.2f} {on:>7.2f} {args.n / off:>11.0f} {args.n / on:>10.0f} "
                  f"{(on / off - 1) * 100:>6.1f}%")


if __name__ == "__main__":
    main()
