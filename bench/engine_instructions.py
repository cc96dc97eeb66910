"""Engine vs SpiffWorkflow in instructions: a load-independent check of the engine's speed.

    .venv/bin/python bench/engine_instructions.py [--n 100] [--designs pr_review,marketing_campaign]

Wall-clock ratios on a shared machine move with the load; instruction counts do not. Each runtime runs in
its own interpreter under ``valgrind --tool=callgrind`` with collection switched on only around the
measured part (``callgrind_control -i on|off``, after a warm-up of 10 instances): the engine on a SQLite
file (every step committed, as in bench/engine_throughput.py: starts, ``run_until_idle``, the approvals),
and this bench's SpiffWorkflow models in memory (bench/engine_throughput.py's, the same work). Printed:
instructions per instance and Spiff's count over the engine's (above 1.0: the engine executes fewer).
Instructions are user-space only: the kernel's share of a commit (writing WAL pages) and cache misses are
not in them, which is why the wall-clock ratio stays lower. Needs valgrind (apt-get install valgrind);
under callgrind Python runs ~50x slower, so keep ``--n`` small.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _collect(flag: str) -> None:
    subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], capture_output=True, check=False)


def child(design: str, n: int, runtime: str) -> None:
    """Inside valgrind: warm up, then run n instances with collection on."""
    import engine_throughput as b

    if runtime == "spiff":
        b.run_spiff(design, 10)
        _collect("on")
        b.run_spiff(design, n)
        _collect("off")
        return
    import designs
    from engine.runtime import Engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(f"sqlite:///{tmp}/instructions.db")
        engine.deploy(designs.build_design(design))
        for count, on in ((10, False), (n, True)):
            if on:
                _collect("on")
            index = {engine.start(design, b.INPUTS[design](i)): i for i in range(count)}
            engine.run_until_idle()
            while b.complete_open_tasks(engine, index):
                engine.run_until_idle()
            if on:
                _collect("off")
        engine.db.dispose()


def measure(design: str, n: int, runtime: str) -> float:
    """Instructions per instance of one runtime (one valgrind run)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={tmp}/out", sys.executable, __file__, "--child", runtime,
                               "--designs", design, "--n", str(n)], capture_output=True, text=True, env=env)
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run of {runtime} {design} failed: {done.stderr[-500:]}")
        return int(found.group(1)) / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100, help="measured instances per runtime (default 100)")
    parser.add_argument("--designs", default="pr_review,marketing_campaign")
    parser.add_argument("--child", choices=["engine", "spiff"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    if args.child:
        child(designs[0], args.n, args.child)
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        parser.error("valgrind is not installed (apt-get install valgrind)")
    print(f"instructions per instance under callgrind, {args.n} instances after 10 warm-up ones")
    print(f"{'design':<20} {'engine (SQLite)':>16} {'SpiffWorkflow':>14} {'Spiff / engine':>15}")
    for design in designs:
        ours, spiff = measure(design, args.n, "engine"), measure(design, args.n, "spiff")
        print(f"{design:<20} {ours / 1e6:>14.2f} M {spiff / 1e6:>12.2f} M {spiff / ours:>14.2f}x")


if __name__ == "__main__":
    main()
