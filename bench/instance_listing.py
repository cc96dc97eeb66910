"""The engine at scale: instance lists and the cost of a step as the database grows to 500,000 instances.

    .venv/bin/python bench/instance_listing.py [--sizes 0,10000,100000,500000] [--repeat 7] [--no-pg]
                                               [--cost 200] [--markdown]

For each size the database holds that many completed PR-review instances (cloned in bulk from rows the
engine itself wrote for real runs: instances, variables, variable history, task executions, whatever
tables carry an ``instance_id``; started a second apart), plus the few the measurements add. Then:

- **lists**: ``Engine.instance_page`` (50 rows and the count) for each filter combination, a page at
  offset 10,000 and a deep keyset page (``after=``); the median of ``--repeat`` calls, milliseconds. The
  "all" column is the unpaged ``instances()`` (what the Tasks page used to load on every render).
- **cost per instance**: ``start`` + ``run_until_idle`` of ``--cost`` PR reviews in the large database and
  in an empty one, interleaved (empty, large, large, empty, ...), 5 rounds, the median of each, as µs per
  instance; the ratio is large / empty (target <= 1.2).

The machine is shared: the figures are medians and the ratio is measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from provenance import revision  # noqa: E402
from sqlalchemy import inspect  # noqa: E402

import designs  # noqa: E402
import designs.agents  # noqa: E402  (registers the agents)
from engine.runtime import Engine  # noqa: E402
from engine.runtime.db import scratch_database  # noqa: E402

PG_BASE = os.environ.get("WAOOAW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TEMPLATES = 50
CHUNK = 10_000
T0 = datetime(2025, 1, 1, tzinfo=UTC)


# --- filling a database in bulk --------------------------------------------------------------------


def _raw(engine: Engine) -> Any:
    return engine.db.raw_connection()


def templates(engine: Engine) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The rows real PR reviews wrote, per table: (columns without generated ids, rows); ``instance_id`` first."""
    insp = inspect(engine.db)
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    raw = _raw(engine)
    try:
        cur = raw.cursor()
        for table in insp.get_table_names():
            columns = [c["name"] for c in insp.get_columns(table)]
            key = "id" if table == "wf_instances" else "instance_id"
            if key not in columns:
                continue
            pk = insp.get_pk_constraint(table)["constrained_columns"]
            generated = {"id"} if table != "wf_instances" and pk == ["id"] else set()
            kept = [key] + [c for c in columns if c != key and c not in generated]
            cur.execute(f"SELECT {', '.join(kept)} FROM {table}")
            out[table] = (kept, [tuple(r) for r in cur.fetchall()])
        cur.close()
    finally:
        raw.close()
    return out


def fill(engine: Engine, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], start: int, stop: int) -> None:
    """Instances number ``start``..``stop``-1, clones of the templates, started ``T0 + number`` seconds."""
    inst_cols = rows["wf_instances"][0]
    i_started, i_ended = inst_cols.index("started_at"), inst_cols.index("ended_at")
    by_instance: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for table, (_, table_rows) in rows.items():
        for row in table_rows:
            by_instance.setdefault(row[0], {}).setdefault(table, []).append(row)
    template_ids = sorted(by_instance)
    sqlite = engine.db.dialect.name == "sqlite"
    raw = _raw(engine)
    try:
        for lo in range(start, stop, CHUNK):
            batch: dict[str, list[tuple[Any, ...]]] = {t: [] for t in rows}
            for k in range(lo, min(stop, lo + CHUNK)):
                moment = T0 + timedelta(seconds=k)
                new_id = f"{int(moment.timestamp() * 1000):012x}{k:020x}"  # time-ordered, as the engine's ids
                for table, table_rows in by_instance[template_ids[k % len(template_ids)]].items():
                    for row in table_rows:
                        row = (new_id, *row[1:])
                        if table == "wf_instances":
                            row = list(row)  # type: ignore[assignment]
                            row[i_started] = moment.replace(tzinfo=None).isoformat(" ") if sqlite else moment
                            row[i_ended] = (moment + timedelta(seconds=2)).replace(tzinfo=None).isoformat(" ") \
                                if sqlite else moment + timedelta(seconds=2)
                            row = tuple(row)
                        batch[table].append(row)
            cur = raw.cursor()
            if sqlite:
                cur.execute("BEGIN")  # the engine's connections run in autocommit mode otherwise
            for table, table_rows in batch.items():
                columns = rows[table][0]
                if not table_rows:
                    continue
                if sqlite:
                    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})", table_rows)
                else:
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in table_rows:
                            copy.write_row(row)
            raw.commit()
            cur.close()
        if not sqlite:
            cur = raw.cursor()
            cur.execute("ANALYZE")
            raw.commit()
            cur.close()
        else:
            cur = raw.cursor()
            cur.execute("ANALYZE")
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the fill's WAL into the file, as time would have
            cur.close()
    finally:
        raw.close()


# --- measurements ----------------------------------------------------------------------------------


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm: the first call compiles statements and fills caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def list_figures(engine: Engine, repeat: int, size: int, unpaged: bool) -> dict[str, float]:
    deep = engine.instance_page(limit=50, offset=min(10_000, max(size - 50, 0)), count_up_to=0).next_after
    cases: dict[str, Callable[[], object]] = {
        "page": lambda: engine.instance_page(),
        "status": lambda: engine.instance_page(status="completed"),
        "definition": lambda: engine.instance_page(definition="pr_review"),
        "def+status": lambda: engine.instance_page(definition="pr_review", status="completed"),
        "rare status": lambda: engine.instance_page(status="failed"),
        "offset 10k": lambda: engine.instance_page(offset=min(10_000, size), count_up_to=0),
        "keyset deep": lambda: engine.instance_page(after=deep, count_up_to=0),
    }
    out = {name: median_ms(fn, repeat) for name, fn in cases.items()}
    out["all (unpaged)"] = median_ms(lambda: engine.instances(), 1) if unpaged else float("nan")
    return out


def run_prs(engine: Engine, n: int) -> float:
    """µs per instance for n PR reviews, started and run to the end."""
    started = time.perf_counter()
    for i in range(n):
        engine.start("pr_review", {"pr_number": i})
    engine.run_until_idle()
    return (time.perf_counter() - started) / n * 1e6


@contextmanager
def databases(kind: str, workdir: Path, pg: str) -> Iterator[tuple[str, str]]:
    """(large, empty) database URLs."""
    if kind == "SQLite":
        yield f"sqlite:///{workdir / 'large.db'}", f"sqlite:///{workdir / f'empty-{uuid.uuid4().hex[:6]}.db'}"
    else:
        with scratch_database(pg, prefix="waooaw_bench_") as large, scratch_database(pg, prefix="waooaw_bench_") as e:
            yield large, e


def bench(kind: str, sizes: list[int], repeat: int, cost: int, workdir: Path, pg: str,
          unpaged_up_to: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with databases(kind, workdir, pg) as (large_url, empty_url):
        large = Engine(large_url)
        large.deploy(designs.build_design("pr_review"))
        for i in range(TEMPLATES):
            large.start("pr_review", {"pr_number": i})
        large.run_until_idle()
        rows = templates(large)
        filled = 0
        for size in sizes:
            print(f"{kind}: filling to {size:,} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            fill(large, rows, filled, size)
            filled = max(filled, size)
            fill_s = time.perf_counter() - started
            lists = list_figures(large, repeat, size, size <= unpaged_up_to)
            row: dict[str, Any] = {"database": kind, "instances": size + TEMPLATES, "fill s": round(fill_s, 1)}
            row.update({f"{k} ms": round(v, 2) for k, v in lists.items()})
            if cost:
                empty = Engine(empty_url)
                empty.deploy(designs.build_design("pr_review"))
                pairs = []
                for r in range(5):  # alternate which goes first: neither pays for the other's leftovers
                    if r % 2:
                        l_first = run_prs(large, cost)
                        pairs.append((run_prs(empty, cost), l_first))
                    else:
                        pairs.append((run_prs(empty, cost), run_prs(large, cost)))
                e_us = statistics.median(p[0] for p in pairs)
                l_us = statistics.median(p[1] for p in pairs)
                row.update({"µs/inst empty": round(e_us), "µs/inst here": round(l_us),
                            "cost ratio": round(l_us / e_us, 2)})
                empty.db.dispose()
                empty.reader.dispose()
            out.append(row)
            print(row, file=sys.stderr, flush=True)
        large.db.dispose()
        large.reader.dispose()
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if c == "database" else "---:" for c in columns)
             + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="0,10000,100000,500000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cost", type=int, default=200, help="PR reviews per cost measurement (0: skip)")
    parser.add_argument("--unpaged-up-to", type=int, default=500_000,
                        help="time the unpaged instances() up to this size")
    parser.add_argument("--pg", default=PG_BASE)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="waooaw-scale-") as tmp:
        if not args.no_sqlite:
            rows += bench("SQLite", sizes, args.repeat, args.cost, Path(tmp), args.pg, args.unpaged_up_to)
        if not args.no_pg:
            rows += bench("PostgreSQL", sizes, args.repeat, args.cost, Path(tmp), args.pg, args.unpaged_up_to)
    print(f"\n{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; code {revision()}; lists: median of {args.repeat}, "
          f"ms; 'instances' includes the {TEMPLATES} real ones the clones copy")
    if args.markdown:
        print(markdown(rows))
    else:
        import pandas as pd

        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
