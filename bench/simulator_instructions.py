"""The simulator vs hand-written SimPy on the M/M/3 queue, in instructions: a load-independent speed check.

    .venv/bin/python bench/simulator_instructions.py [--cases 10000]

Wall-clock ratios on a shared machine move with the load; instruction counts do not. Each model runs in its own
interpreter under ``valgrind --tool=callgrind`` with collection switched on only around the measured call
(``callgrind_control -i on|off``, after a warm-up of 200 cases): ``simulate()`` of the one-task design (core +
SimPy shell, scenario compiled in the call, as bench/simulator_speed.py times it) and bench/simulator_speed.py's
textbook SimPy model (a source process, a process per customer, a ``simpy.Resource``: the same work as
/work/shared/anchors/simpy_mmc.py). Both: M/M/3 at rho 0.8, mean service 600 s, seed 1. Printed: instructions
per customer and hand-written / ours (the target is >= 0.8: ours runs at least 0.8x the speed of the
hand-written model). ``--profile FILE`` keeps ours' callgrind output (read it with
``callgrind_annotate``; with Python 3.12+ and ``PYTHONPERFSUPPORT=1`` the Python frames are named). Needs
valgrind; under callgrind Python runs ~50x slower.
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


def child(model: str, cases: int) -> None:
    """Inside valgrind: warm up, then one run of ``cases`` customers with collection on."""
    import simulator_speed as b

    run = b.ours if model == "ours" else b.hand_written
    b.CASES = 200
    run()
    b.CASES = cases
    _collect("on")
    run()
    _collect("off")


def measure(model: str, cases: int, out: str | None = None) -> float:
    """Instructions per customer of one model (one valgrind run)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={out or tmp + '/out'}", sys.executable, __file__,
                               "--child", model, "--cases", str(cases)], capture_output=True, text=True, env=env)
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run of {model} failed: {done.stderr[-500:]}")
        return int(found.group(1)) / cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000, help="measured customers per model (default 10,000)")
    parser.add_argument("--profile", metavar="FILE", help="keep ours' callgrind output in FILE")
    parser.add_argument("--child", choices=["ours", "hand"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.cases)
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        parser.error("valgrind is not installed (apt-get install valgrind)")
    ours, hand = measure("ours", args.cases, args.profile), measure("hand", args.cases)
    print(f"M/M/3 at rho 0.8, {args.cases:,} customers, instructions per customer under callgrind "
          f"(after 200 warm-up ones)")
    print(f"{'waooaw simulate()':<22} {ours / 1e3:>10.1f} k")
    print(f"{'hand-written SimPy':<22} {hand / 1e3:>10.1f} k")
    print(f"hand-written / ours: {hand / ours:.2f}x (target >= 0.8x: {'met' if hand / ours >= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
