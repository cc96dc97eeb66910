"""Migrating waiting instances between versions: the dry run and the migration, per instance.

    .venv/bin/python bench/migration.py [--n 10000] [--pg URL] [--no-pg] [--markdown]

What it measures: N instances of the expense design wait (half at a one-day timer, half at a user task
with a 4-hour SLA), then version 2 (the task renamed, a notification added) is deployed and every
instance is planned (dry run, one read of each instance's state) and migrated (each in its own
transaction, re-checked on the locked row, node ids renamed in the state, the token mirror, the
open human task, the job payloads, plus an audit row). Reported: µs per instance for each phase on
SQLite (the default file, WAL, synchronous=NORMAL) and on PostgreSQL, and a check that every timer
kept its due time and every task its assignee and SLA due time.
"""

from __future__ import annotations

import argparse
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
from sqlalchemy import select  # noqa: E402

from engine.model import ProcessBuilder  # noqa: E402
from engine.runtime import Engine, VirtualClock  # noqa: E402
from engine.runtime.db import scratch_database  # noqa: E402
from engine.runtime.tables import HumanTaskRow, JobRow  # noqa: E402
from engine.security import Principal  # noqa: E402
from engine.versions import migrate, plan_migration  # noqa: E402


def design(version: int) -> Any:
    b = ProcessBuilder("expense", variables={"amount": int})
    cursor = b.start().timer("cool_off", "P1D")
    if version == 1:
        cursor.user("approve", "Approve", assignee="lead", sla_hours=4).end("done")
    else:
        cursor.user("review", "Review", assignee="lead", sla_hours=4).task("notify").end("done")
    return b.build()


def snapshot(engine: Engine) -> tuple[list[Any], list[Any]]:
    J, HT = JobRow.__table__, HumanTaskRow.__table__
    with engine.db.connect() as conn:
        jobs = conn.execute(select(J.c.instance_id, J.c.due_at).where(J.c.kind == "timer").order_by(J.c.id)).all()
        tasks = conn.execute(select(HT.c.id, HT.c.assignee, HT.c.due_at).order_by(HT.c.id)).all()
    return [tuple(r) for r in jobs], [tuple(r) for r in tasks]


def run(url: str, n: int) -> dict[str, float]:
    engine = Engine(url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(design(1))
    half = n // 2
    for i in range(0, half, 1000):
        engine.start_many("expense", [{"amount": j} for j in range(min(1000, half - i))], version=1)
    engine.advance(timedelta(days=1))  # these wait at the user task now
    for i in range(0, n - half, 1000):
        engine.start_many("expense", [{"amount": j} for j in range(min(1000, n - half - i))], version=1)
    engine.deploy(design(2))
    before = snapshot(engine)
    t0 = time.perf_counter()
    plan = plan_migration(engine, "expense", 1, 2, {"approve": "review"})
    t1 = time.perf_counter()
    result = migrate(engine, plan, actor="bench")
    t2 = time.perf_counter()
    after = snapshot(engine)
    assert len(plan.instances) == n and not plan.refused, plan.refused[:3]
    assert len(result.migrated) == n, result
    assert before == after, "due times, assignees or SLA due times changed"
    return {"plan_us": (t1 - t0) / n * 1e6, "migrate_us": (t2 - t1) / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = run(f"sqlite:///{tmp}/migrate.db", args.n)
    if not args.no_pg:
        with scratch_database(args.pg, prefix="waooaw_bench_") as url:
            results["PostgreSQL"] = run(url, args.n)
    print(f"migration of {args.n:,} waiting instances (commit {revision()}): µs per instance")
    if args.markdown:
        print("| database | dry run µs/instance | migration µs/instance |\n|---|---:|---:|")
        for db, r in results.items():
            print(f"| {db} | {r['plan_us']:.0f} | {r['migrate_us']:.0f} |")
    else:
        for db, r in results.items():
            print(f"{db:>10}: dry run {r['plan_us']:7.0f} µs   migrate {r['migrate_us']:7.0f} µs "
                  f"(each in its own transaction)")
    print("every timer kept its due time; every task its assignee and SLA due time")


if __name__ == "__main__":
    main()
