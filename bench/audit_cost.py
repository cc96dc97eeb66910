"""What the audit trail costs per engine call, and what one argon2 password hash costs here.

    .venv/bin/python bench/audit_cost.py [--n 200] [--rounds 5] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Every engine action is checked against the rules and leaves one ``wf_audit`` row (engine.security.guard). Three
variants of the same calls, interleaved round by round, median of the rounds, wall-clock milliseconds per call:

- **in the action's transaction** (what the engine does): the row is one more INSERT in the transaction that
  makes the change, so it commits with it (or rolls back with it);
- **own transaction, after the call**: the row written by itself once the action returned (what an action
  without a single transaction does, and what every action did before the audit row moved into the change's
  transaction): one more commit per call, on SQLite one more fsync;
- **not audited**: the rule checked, nothing written (the floor).

The calls: ``start`` of a start -> user task process (one transaction), and ``cancel`` of such an instance
(one step through ``_apply``). SQLite is a file in a temporary directory (``synchronous=full``, the engine's
default); PostgreSQL is a scratch database on ``--pg`` (skipped when it cannot be reached).

Last, one argon2id hash with argon2-cffi's defaults (the ``UserStore``'s hasher), median of 5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.db import scratch_database
from engine.security import Principal, guard
from engine.security.rules import require

ORIGINAL = {"authorize": guard.authorize, "within": guard.within}


def _no_audit(engine: Any, action: str, target: str | None = None, **detail: Any) -> None:
    require(engine.principal, action, target)


VARIANTS: dict[str, dict[str, Callable[..., Any]]] = {
    "in the action's transaction": {},
    "own transaction, after the call": {"within": lambda conn: True},
    "not audited": {"authorize": _no_audit, "within": lambda conn: True},
}


@contextmanager
def variant(name: str) -> Iterator[None]:
    for attr, fn in VARIANTS[name].items():
        setattr(guard, attr, fn)
    try:
        yield
    finally:
        for attr, fn in ORIGINAL.items():
            setattr(guard, attr, fn)


def per_call_ms(url: str, n: int) -> dict[str, float]:
    """Milliseconds per start and per cancel (n of each) on a fresh engine at ``url``."""
    engine = Engine(url, clock=VirtualClock(), principal=Principal("olga", roles={"operator", "deployer"}))
    b = ProcessBuilder("audited", variables={"amount": int})
    b.start().user("approve", title="Approve", candidate_groups=["finance"]).end()
    engine.deploy(b.build())
    for _ in range(20):  # warm caches and connections
        engine.cancel(engine.start("audited", {"amount": 1}))
    began = time.perf_counter()
    ids = [engine.start("audited", {"amount": i}) for i in range(n)]
    started = time.perf_counter()
    for iid in ids:
        engine.cancel(iid)
    cancelled = time.perf_counter()
    engine.db.dispose()
    return {"start": 1000 * (started - began) / n, "cancel": 1000 * (cancelled - started) / n}


def reachable(url: str) -> bool:
    try:
        with scratch_database(url, prefix="waooaw_bench_"):
            return True
    except Exception as exc:
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}")
        return False


def argon2_ms() -> float:
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    times = []
    for _ in range(5):
        began = time.perf_counter()
        hasher.hash("correct horse battery staple")
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="calls of each kind per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if reachable(args.pg) else [])
    results: dict[tuple[str, str], list[dict[str, float]]] = {(b, v): [] for b in backends for v in VARIANTS}
    for _ in range(args.rounds):
        for backend in backends:
            for name in VARIANTS:
                with variant(name):
                    if backend == "sqlite":
                        with tempfile.TemporaryDirectory() as folder:
                            results[backend, name].append(per_call_ms(f"sqlite:///{folder}/bench.db", args.n))
                    else:
                        with scratch_database(args.pg, prefix="waooaw_bench_") as url:
                            results[backend, name].append(per_call_ms(url, args.n))
    try:
        import os

        load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    print(f"audit cost: ms per call, median of {args.rounds} interleaved rounds of {args.n} calls; {load}")
    print(f"{'backend':<11} {'variant':<33} {'start':>8} {'cancel':>8}  {'vs not audited':>16}")
    for backend in backends:
        floor = {k: statistics.median(r[k] for r in results[backend, "not audited"]) for k in ("start", "cancel")}
        for name in VARIANTS:
            med = {k: statistics.median(r[k] for r in results[backend, name]) for k in ("start", "cancel")}
            extra = " / ".join(f"{med[k] - floor[k]:+.2f}" for k in ("start", "cancel"))
            print(f"{backend:<11} {name:<33} {med['start']:>8.2f} {med['cancel']:>8.2f}  {extra:>16}")
    print(f"argon2id hash (argon2-cffi defaults: 64 MiB, t=3, p=4): {argon2_ms():.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
