"""What opening a message catch costs: the look into the message buffer (``take_buffered``) at every catch.

    .venv/bin/python bench/message_catch.py [--n 300] [--rounds 8]

Each instance of a one-catch process (start -> receive, keyed -> end) opens its catch in its first step, and
that step looks for a buffered message (``engine.runtime.correlation``'s rule 3). Measured in CPU seconds of
this process (SQLite runs in-process, so its work counts; a shared machine's load does not), interleaved,
median of the rounds, for three variants: the look as first written (a statement built per call), as it is
now (a statement built once), and skipped (what a "known empty" buffer would save).

Skipping it is not done: the buffer is shared by every process on the database (the API, workers, the app),
so no process can know it is empty without asking it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.runtime.steps as steps
from engine.model import ProcessBuilder
from engine.model.values import loads
from engine.runtime import Engine, VirtualClock
from engine.runtime.correlation import M, take_buffered
from engine.security import Principal
from engine.semantics import messages


def built_per_call(conn: Any, instance_id: str, business_key: str | None, message: str, correlation: Any,
                   variables: Any, now: Any) -> dict[str, Any] | None:
    """The first version's look (the statement built at each call); takes nothing (the bench has no buffer)."""
    from sqlalchemy import select

    query = (select(M.c.id, M.c.correlation, M.c.payload, M.c.filters)
             .where(M.c.name == message, M.c.status == "buffered", M.c.expires_at > now).order_by(M.c.id))
    rows = conn.execute(query).all()
    candidates = ((r.id, r.correlation, loads(r.filters or "{}"), None) for r in rows)
    for _ in messages.deliverable(candidates, messages.key_text(correlation), now, instance_id, business_key,
                                  variables, stored=True):
        return {}
    return None


VARIANTS = {"built per call": built_per_call, "built once (now)": take_buffered,
            "skipped": lambda *args, **kwargs: None}


def starts_per_cpu_second(url: str, n: int, look: Any) -> float:
    steps.take_buffered = look
    engine = Engine(url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("one_catch", variables={"key": str})
    b.start().receive("wait", "paid", correlation_key="key").end("done")
    engine.deploy(b.build())
    began = time.process_time()
    for i in range(n):
        engine.start("one_catch", {"key": f"K{i}"})
    return n / (time.process_time() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    original = steps.take_buffered
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for _ in range(args.rounds):
            for name, look in VARIANTS.items():
                with tempfile.TemporaryDirectory() as folder:
                    results[name].append(starts_per_cpu_second(f"sqlite:///{folder}/bench.db", args.n, look))
    finally:
        steps.take_buffered = original
    skipped = statistics.median(results["skipped"])
    print(f"SQLite, instances opening one message catch, n={args.n}, median of {args.rounds} rounds (CPU time)")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:18} {median:7.0f} starts/CPU-s   {100 * (skipped - median) / skipped:5.1f} % below skipped")


if __name__ == "__main__":
    main()
