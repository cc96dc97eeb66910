"""History soak: a day of virtual time at a steady arrival rate, with and without a history time-to-live.

    .venv/bin/python bench/history_soak.py [--hours 24] [--every 30] [--ttl-hours 2] [--pg URL | --no-pg]

The design: a service task, a 30-minute timer, a second service task (each instance lives 30 virtual
minutes and writes its instance, variables, variable history and task-execution rows). An instance
starts every ``--every`` virtual seconds (2,880 a day by default); the virtual clock moves a minute at a
time through ``Engine.advance`` (the worker's code path: jobs and timers). With retention on, the
definition keeps history ``--ttl-hours`` and ``cleanup_history`` runs every 10 virtual minutes (the
worker's cadence is 5 real minutes: the pass here sees the same backlog a real day would give it).

Printed per virtual hour: instances and rows held, bytes the tables use (SQLite: pages in use, free
pages excluded, as SQLite reuses them; PostgreSQL: pg_total_relation_size of the tables after a
``VACUUM`` each virtual hour, as autovacuum would run many times over in a real day: deleted rows' space
is reused only after one) and the longest cleanup pass (several batches, each its own transaction).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from provenance import revision  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from engine import register  # noqa: E402
from engine.model import ProcessBuilder  # noqa: E402
from engine.runtime import Engine, VirtualClock  # noqa: E402
from engine.runtime.db import scratch_database  # noqa: E402
from engine.runtime.retention import instance_tables  # noqa: E402
from engine.runtime.tables import InstanceRow  # noqa: E402

PG_BASE = os.environ.get("WAOOAW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
INST = InstanceRow.__table__


def receive(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"order": f"order-{inputs.get('n')}", "amount": 42}


def ship(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"shipped": True}


register("soak.receive", receive)
register("soak.ship", ship)


def design() -> Any:
    b = ProcessBuilder("soak_order", variables={"n": int, "order": str, "amount": int, "shipped": bool})
    (b.start().service("receive", agent="soak.receive", inputs=["n"], outputs=["order", "amount"])
     .timer("cool_off", "PT30M").service("ship", agent="soak.ship", inputs=["order"], outputs=["shipped"])
     .end("done"))
    return b.build()


def used_bytes(engine: Engine) -> int:
    with engine.reader.connect() as conn:
        if engine.db.dialect.name == "sqlite":
            page = conn.execute(text("PRAGMA page_size")).scalar_one()
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
            free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
            return int((pages - free) * page)
        return int(conn.execute(text(
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname = 'public'"))
            .scalar_one())


def held(engine: Engine) -> tuple[int, int]:
    with engine.reader.connect() as conn:
        instances = conn.execute(select(func.count()).select_from(INST)).scalar_one()
        rows = sum(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in instance_tables())
    return instances, rows + instances


def soak(url: str, hours: int, every: float, ttl: timedelta | None) -> list[dict[str, Any]]:
    clock = VirtualClock()
    engine = Engine(url, clock=clock)
    engine.deploy(design())
    if ttl is not None:
        engine.set_history_ttl("soak_order", ttl)
    out: list[dict[str, Any]] = []
    n = 0
    next_arrival = 0.0
    worst_pass = 0.0
    removed = 0
    started = time.perf_counter()
    for minute in range(1, hours * 60 + 1):
        while next_arrival < minute * 60:
            engine.start("soak_order", {"n": n})
            n += 1
            next_arrival += every
        engine.advance(timedelta(minutes=1))
        if ttl is not None and minute % 10 == 0:
            t = time.perf_counter()
            removed += engine.cleanup_history().total
            worst_pass = max(worst_pass, time.perf_counter() - t)
        if minute % 60 == 0:
            if engine.db.dialect.name == "postgresql":  # what autovacuum does (each minute, in a real day)
                with engine.db.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM")
            instances, rows = held(engine)
            out.append({"hour": minute // 60, "started": n, "held": instances, "rows": rows, "removed": removed,
                        "MB used": round(used_bytes(engine) / 1e6, 2),
                        "worst cleanup ms": round(worst_pass * 1000, 1) if ttl is not None else None,
                        "wall s": round(time.perf_counter() - started, 1)})
            worst_pass = 0.0
    engine.db.dispose()
    engine.reader.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--every", type=float, default=30.0, help="virtual seconds between arrivals")
    parser.add_argument("--ttl-hours", type=float, default=2.0)
    parser.add_argument("--pg", default=PG_BASE)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    import pandas as pd

    runs: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="waooaw-soak-") as tmp:
        for kind in (["SQLite"] if not args.no_sqlite else []) + (["PostgreSQL"] if not args.no_pg else []):
            for label, ttl in (("no time-to-live", None), (f"ttl {args.ttl_hours:g} h",
                                                          timedelta(hours=args.ttl_hours))):
                print(f"{kind}, {label} ...", file=sys.stderr, flush=True)
                if kind == "SQLite":
                    rows = soak(f"sqlite:///{Path(tmp) / f'{label[:6]}.db'}", args.hours, args.every, ttl)
                else:
                    with scratch_database(args.pg, prefix="waooaw_bench_") as url:
                        rows = soak(url, args.hours, args.every, ttl)
                frame = pd.DataFrame(rows)
                shown = frame[frame["hour"].isin([1, 2, 3, 4, 6, 12, 18, 24, args.hours])]
                runs.append((f"{kind}, {label}", shown.to_string(index=False)))
    print(f"\n{args.hours} virtual hours, an instance every {args.every:g} s (30 virtual minutes each); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; code {revision()}")
    for title, table in runs:
        print(f"\n{title}\n{table}")


if __name__ == "__main__":
    main()
