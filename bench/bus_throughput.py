"""Bus throughput: start events through Redis into running instances, and external workers at work.

    .venv/bin/python bench/bus_throughput.py [--events 10000] [--reviews 400] [--workers 1,2,4]
                                             [--repeat 2] [--redis URL] [--pg URL | --no-pg] [--markdown]

1. **Start events.** ``--events`` ``github.pull_request.opened`` events are published to Redis (one
   pipeline per 1,000) and the engine's bridge (``engine.bus.bridge.BusBridge``, 500 per round, one
   transaction per round) turns them into running instances of a PR review whose first task waits on a
   topic. In the same run, interleaved, the engine's own ``start_many`` (500 per call: the same
   transaction size) starts the same number of instances directly. Each on SQLite (a fresh file) and on
   PostgreSQL (a fresh database per run). "events/s" is publishing; "inst/s" is the bridge from its first
   round to the last instance written (the events wait in Redis: the bridge's rate, not the producer's);
   "vs direct" is bus inst/s over direct inst/s. Each figure is the best of ``--repeat`` runs.
2. **External workers.** ``--reviews`` PR reviews whose WowVision validate step is on the topic
   ``agent.wowvision.task.validate``, done by 1, 2 and 4 worker processes
   (``python -m engine.bus.cli agent-worker``) running a 20 ms agent (``bench/bus_agents.py``). The
   workers are started first and are idle in their first read; the clock runs from ``start_many`` to
   the last instance completed, with this process as the engine (job loop and bridge on SQLite).
   Reviews/s and the speed-up over one worker are printed; the ideal is 50/s per worker.

Redis keys live under a fresh ``bench-<uuid>`` prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from provenance import revision  # noqa: E402

from engine.bus import connect_bus  # noqa: E402
from engine.bus.bridge import BusBridge  # noqa: E402
from engine.bus.redis_streams import RedisBus  # noqa: E402
from engine.model import ProcessBuilder, ProcessDefinition  # noqa: E402
from engine.runtime import Engine  # noqa: E402
from engine.runtime.db import scratch_database  # noqa: E402
from engine.security import Principal  # noqa: E402

PG_BASE = os.environ.get("WAOOAW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("WAOOAW_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PR_OPENED = "github.pull_request.opened"
VALIDATE = "agent.wowvision.task.validate"


def review() -> ProcessDefinition:
    """The PR review on the bus: a GitHub event starts it, WowVision validates on a topic."""
    b = ProcessBuilder("pr_review_bus", variables={"pr_number": int, "vision_approved": bool})
    gate = (b.message_start("pr_opened", PR_OPENED)
            .service("wowvision_validate", topic=VALIDATE, inputs=["pr_number"], outputs=["vision_approved"])
            .exclusive("approved"))
    gate.when("vision_approved").service("deploy", agent="designs.agents:deploy", inputs=["pr_number"]).end("deployed")
    gate.otherwise().service("create_issue", agent="designs.agents:create_issue",
                             inputs=["pr_number"]).end("issue_created")
    return b.build()


def count_instances(engine: Engine, status: str | None = None) -> int:
    from sqlalchemy import func, select

    from engine.runtime.tables import InstanceRow

    inst = InstanceRow.__table__
    query = select(func.count()).select_from(inst)
    if status:
        query = query.where(inst.c.status == status)
    with engine.db.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def new_bus(prefix: str, **options: float) -> RedisBus:
    bus = connect_bus(f"{REDIS}?prefix={prefix}", **options)
    assert isinstance(bus, RedisBus)
    return bus


# --- 1. start events --------------------------------------------------------------------------------


def direct_starts(url: str, n: int) -> float:
    engine = Engine(url, principal=Principal.system())
    engine.deploy(review())
    t0 = time.perf_counter()
    for i in range(0, n, 500):
        engine.start_many("pr_review_bus", [{"pr_number": j} for j in range(i, min(n, i + 500))],
                          start_node="pr_opened")
    elapsed = time.perf_counter() - t0
    assert count_instances(engine, "running") == n
    engine.db.dispose()
    return n / elapsed


def bus_starts(url: str, n: int) -> tuple[float, float]:
    engine = Engine(url, principal=Principal.system())
    engine.deploy(review())
    bus = new_bus(f"bench-{uuid.uuid4().hex[:8]}")
    try:
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            bus.publish_many(PR_OPENED, [{"pr_number": j} for j in range(i, min(n, i + 1000))],
                             [f"gh-{j}" for j in range(i, min(n, i + 1000))])
        published = n / (time.perf_counter() - t0)
        bridge = BusBridge(engine, bus, batch=500)
        t1 = time.perf_counter()
        handled = 0
        while handled < n:
            handled += bridge.pump()
        elapsed = time.perf_counter() - t1
        assert count_instances(engine, "running") == n, "every event became one running instance"
        return published, n / elapsed
    finally:
        bus.delete_all()
        bus.close()
        engine.db.dispose()


def with_database(kind: str, pg: str | None, fn: Callable[[str], object]) -> object:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return fn(f"sqlite:///{Path(tmp) / 'bench.db'}")
    assert pg is not None
    with scratch_database(pg, prefix="waooaw_bus_") as url:
        return fn(url)


def bench_starts(n: int, repeat: int, pg: str | None) -> list[dict[str, object]]:
    rows = []
    for kind in ["sqlite"] + (["postgres"] if pg else []):
        direct, published, via_bus = 0.0, 0.0, 0.0
        for _ in range(repeat):  # interleaved: both see the same machine load
            direct = max(direct, float(with_database(kind, pg, lambda u: direct_starts(u, n))))  # type: ignore[arg-type]
            p, b = with_database(kind, pg, lambda u: bus_starts(u, n))  # type: ignore[misc]
            published, via_bus = max(published, p), max(via_bus, b)
        rows.append({"database": kind, "events": n, "publish events/s": published, "bus inst/s": via_bus,
                     "direct start_many inst/s": direct, "vs direct": via_bus / direct})
    return rows


# --- 2. external workers ----------------------------------------------------------------------------


def spawn_workers(count: int, bus_url: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'bench'}{os.pathsep}{ROOT}"}
    return [subprocess.Popen([sys.executable, "-m", "engine.bus.cli", "agent-worker", "bus_agents:validate_20ms",
                              "--topic", VALIDATE, "--bus", bus_url], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=10)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def reviews_with_workers(n: int, count: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    bus = new_bus(prefix)
    workers = spawn_workers(count, f"{REDIS}?prefix={prefix}")
    try:
        for w in workers:  # each prints its first line once imported and connected, then reads the topic
            assert w.stdout is not None
            if not w.stdout.readline():
                raise RuntimeError("a worker did not start")
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            engine = Engine(f"sqlite:///{Path(tmp) / 'bench.db'}", principal=Principal.system())
            engine.deploy(review())
            bridge = BusBridge(engine, bus, batch=200)
            t0 = time.perf_counter()
            engine.start_many("pr_review_bus", [{"pr_number": i} for i in range(n)], start_node="pr_opened")
            while True:
                ran = engine.run_due_jobs(limit=200) + bridge.pump(block=0.05)  # wakes when an answer comes
                if not ran and count_instances(engine, "completed") == n:
                    break
            elapsed = time.perf_counter() - t0
            engine.db.dispose()
        return n / elapsed
    finally:
        stop_workers(workers)
        bus.delete_all()
        bus.close()


def bench_workers(n: int, counts: list[int], repeat: int) -> list[dict[str, object]]:
    best = {c: 0.0 for c in counts}
    for _ in range(repeat):
        for c in counts:  # interleaved
            best[c] = max(best[c], reviews_with_workers(n, c))
    return [{"workers": c, "reviews": n, "reviews/s": best[c], "vs 1 worker": best[c] / best[counts[0]],
             "ideal reviews/s": 50.0 * c} for c in counts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--reviews", type=int, default=400)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg", default=PG_BASE)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    import pandas as pd

    pg = None if args.no_pg else args.pg
    if pg:
        try:
            import psycopg

            with psycopg.connect(pg.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
                pass
        except Exception as exc:
            print(f"PostgreSQL not reachable ({exc}); SQLite only")
            pg = None
    print(f"revision {revision()}, {os.cpu_count()} CPUs, Redis {redis.Redis.from_url(REDIS).info()['redis_version']}")
    show(pd.DataFrame(bench_starts(args.events, args.repeat, pg)), "Start events via Redis vs direct start_many",
         args.markdown)
    show(pd.DataFrame(bench_workers(args.reviews, [int(c) for c in args.workers.split(",")], args.repeat)),
         "PR reviews, validate by external workers (20 ms agent)", args.markdown)


def show(frame: object, title: str, markdown: bool) -> None:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    print(f"\n{title}", flush=True)
    if markdown:  # a README table without the tabulate package
        cells = [[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(False)]
        print("| " + " | ".join(frame.columns) + " |")
        print("|" + "---|" * len(frame.columns))
        for row in cells:
            print("| " + " | ".join(row) + " |")
    else:
        print(frame.to_string(index=False, float_format=lambda v: f"{v:,.2f}"), flush=True)


if __name__ == "__main__":
    main()
