"""Bytes written per step with a large variable, and the cost of a normal step (issue 14: a value stored once).

    .venv/bin/python bench/variable_storage.py [--mb 1] [--n 200] [--root PATH] [--pg URL]

Each case runs in a child process with ``PYTHONPATH=--root`` (so ``--root /work/main`` measures the code before
a change with the same interpreter), on a fresh SQLite file (and a throwaway PostgreSQL database with ``--pg``):

1. **large**: one instance of ``start -> a -> b -> c -> d -> end`` (service tasks whose agent returns
   nothing) started with a ``doc`` of ``--mb`` MB (default 1: just under ``max_variable_bytes``); then the
   agent of ``c`` changes ``doc``. Figures: the bytes of the statements' parameters sent to the database (a
   SQLAlchemy ``before_cursor_execute`` hook: what a step writes), for the start, the steps that do not touch
   ``doc``, and the step that changes it; and the database's size at the end (SQLite file + WAL, or
   ``pg_database_size``). The agents take every variable as input, so each job's payload carries ``doc``.
2. **normal**: ``--n`` instances of the same process with two small variables, run to the end by
   ``run_until_idle``: steps/s (wall clock; the machine's load average is printed) and this process's CPU time
   per step (steadier on a shared machine; on PostgreSQL the server's work is not in it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, os, sys, time
from sqlalchemy import event, text
from engine.model import ProcessBuilder
from engine.registry import register
from engine.runtime import Engine, VirtualClock
from engine.security import Principal

url, mb, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])

def nothing(inputs, context):
    return {}

def change(inputs, context):
    return {"doc": "y" * (int(mb * 1_000_000) - 16)} if context.instance_id in LARGE else {}

LARGE = set()
register("bench14.nothing", nothing)
register("bench14.change", change)
b = ProcessBuilder("carry")
b.start().service("a", agent="bench14.nothing").service("b", agent="bench14.nothing") \
    .service("c", agent="bench14.change").service("d", agent="bench14.nothing").end("done")
engine = Engine(url, clock=VirtualClock(), principal=Principal.system(), agent_threads=1)
engine.deploy(b.build())
sent = [0]

def count(conn, cursor, statement, parameters, context, executemany):
    rows = parameters if executemany else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, dict) else row
        sent[0] += sum(len(v.encode()) if isinstance(v, str) else 8 for v in values if v is not None)

event.listen(engine.db, "before_cursor_execute", count)
out = {}
before = sent[0]
iid = engine.start("carry", {"doc": "x" * (int(mb * 1_000_000) - 16)})
LARGE.add(iid)
out["start"] = sent[0] - before
steps = []
while True:
    before = sent[0]
    if engine.run_due_jobs(limit=1) == 0:
        break
    steps.append(sent[0] - before)
out["steps"] = steps
assert engine.instance(iid).status == "completed"
if url.startswith("sqlite"):
    path = url.split("///", 1)[1]
    import sqlite3
    engine.db.dispose()
    engine.reader.dispose()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["db_bytes"] = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
else:
    with engine.db.connect() as conn:
        out["db_bytes"] = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
event.remove(engine.db, "before_cursor_execute", count)
ids = engine.start_many("carry", [{"x": i, "note": "small"} for i in range(n)])
began, cpu = time.perf_counter(), time.process_time()
engine.run_until_idle()
seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
with engine.db.connect() as conn:
    steps_done = conn.execute(text("SELECT sum(steps) FROM wf_instances WHERE id != :i"), {"i": iid}).scalar()
out["normal_steps_per_s"] = steps_done / seconds
out["normal_cpu_us_per_step"] = cpu / steps_done * 1e6
print(json.dumps(out))
'''


def run(root: Path, url: str, mb: float, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", CHILD, url, str(mb), str(n)], env=env, cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(name: str, r: dict, mb: float) -> None:
    mib = 1_000_000
    steps = r["steps"]
    quiet = [s for s in steps if s < mb * mib / 2]
    changing = [s for s in steps if s >= mb * mib / 2]
    print(f"{name:10} start {r['start'] / mib:6.2f} MB | {len(steps)} jobs: "
          f"{len(changing)} writing >= half the value (max {max(steps) / mib:.2f} MB, total "
          f"{sum(changing) / mib:.2f} MB), the others {max(quiet, default=0) / 1000:.1f} kB at most | "
          f"database {r['db_bytes'] / mib:6.2f} MB | normal steps/s {r['normal_steps_per_s']:5.0f}, "
          f"{r['normal_cpu_us_per_step']:4.0f} us CPU/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--pg", default=None, help="PostgreSQL URL to CREATE/DROP a throwaway database from")
    args = parser.parse_args()
    print(f"root {args.root}; {args.mb} MB variable; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        report("sqlite", run(args.root, f"sqlite:///{Path(tmp) / 'v.db'}", args.mb, args.n), args.mb)
    if args.pg:
        sys.path.insert(0, str(ROOT))
        from engine.runtime.db import scratch_database

        with scratch_database(args.pg, prefix="waooaw_bench_") as url:
            report("postgres", run(args.root, url, args.mb, args.n), args.mb)


if __name__ == "__main__":
    main()
