"""Start-up cost: wall time and peak RSS of ``waooaw --help``, of ``import engine.runtime`` and of an idle
``Engine()`` on a SQLite file at head, each in a fresh process, and which heavy libraries each one loaded.

    .venv/bin/python bench/startup.py [--runs 3] [--root PATH]

``--root`` measures another checkout (e.g. ``/work/main`` before a change) with the same interpreter.
Figures are the median of ``--runs`` runs; the machine's load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "scipy", "matplotlib", "simpy", "streamlit", "lxml", "xmlschema", "argon2", "alembic",
         "prometheus_client", "networkx", "graphviz", "redis")
REPORT = f"import json, sys; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)"
CASES = {
    "waooaw --help": "import sys; sys.argv = ['waooaw', '--help']\nfrom engine.cli import app\ntry:\n    app()\n"
                     "except SystemExit:\n    pass\n" + REPORT,
    "import engine.runtime": "import engine.runtime\n" + REPORT,
    "Engine() idle": "import sys\nfrom engine.runtime import Engine\nfrom engine.security import Principal\n"
                     "e = Engine(sys.argv[1], principal=Principal.system())\n" + REPORT,
}


def run(code: str, root: Path, url: str) -> tuple[float, float, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, url], env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    err = proc.stderr.read() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"failed: {code!r}: {err[-500:]}")
    return seconds, usage.ru_maxrss / 1024, json.loads(err.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    print(f"root {args.root}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'startup.db'}"
        run(CASES["Engine() idle"], args.root, url)  # creates the tables: the runs measure a start at head
        for name, code in CASES.items():
            results = [run(code, args.root, url) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in results)
            rss = statistics.median(r[1] for r in results)
            print(f"{name:24} {wall:6.2f} s  peak RSS {rss:6.0f} MiB  heavy: {', '.join(results[-1][2]) or 'none'}")


if __name__ == "__main__":
    main()
