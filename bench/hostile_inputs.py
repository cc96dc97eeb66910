"""Hostile inputs: time, peak memory and output of three small inputs that used to take the machine down.

    .venv/bin/python bench/hostile_inputs.py [--limit-mb 3000] [--timeout 120]

Each probe runs in its own process with an address-space limit (``RLIMIT_AS``, default 3000 MiB) and a
wall-clock timeout, so a regression ends as "killed" or "MemoryError" instead of swapping the machine:

1. ``alias``: ``waooaw validate`` on a 700-byte YAML file of nested aliases (a "billion laughs").
2. ``cpu-bomb``: a design whose gateway condition is ``3999999**3999999 > 0``: ``waooaw validate``, then
   ``Engine.start()`` of an instance (the gateway is evaluated in the start step's transaction); and the same
   bomb as ``x ** x > 0`` started with ``x = 3999999`` (only the run-time bound can stop that one).
3. ``missing-db``: ``Engine("sqlite:////no/such/dir/x.db")`` and ``waooaw worker --db`` on that URL.

Figures: wall time, the child's peak RSS (``wait4`` ``ru_maxrss``), exit code, the number of lines it
printed on stderr+stdout and its last line. Run it before and after a change, on the same machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAOOAW = [sys.executable, "-c", "from engine.cli import app; app()"]

ALIASES = textwrap.dedent("""\
    # A 'billion laughs': 13 levels of nested aliases, 9**13 (2.5e12) strings once expanded. Loading it must
    # stop at a limit, in bounded memory and time, with one line naming the limit.
    id: laughs
    name: Laughs
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    j: &j [*i,*i,*i,*i,*i,*i,*i,*i,*i]
    k: &k [*j,*j,*j,*j,*j,*j,*j,*j,*j]
    l: &l [*k,*k,*k,*k,*k,*k,*k,*k,*k]
    m: &m [*l,*l,*l,*l,*l,*l,*l,*l,*l]
    nodes: [*m]
    """)

BOMB = textwrap.dedent("""\
    id: bomb
    name: CPU bomb
    nodes:
    - {id: start, kind: start}
    - {id: split, kind: exclusive_gateway, default: to_small}
    - {id: big, kind: end}
    - {id: small, kind: end}
    flows:
    - {id: to_split, source: start, target: split}
    - {id: to_big, source: split, target: big, condition: "3999999**3999999 > 0"}
    - {id: to_small, source: split, target: small}
    """)

# The same bomb computed from a variable (x = 3999999): nothing to refuse statically, bounded as it runs.
BOMB_VARIABLE = BOMB.replace("id: bomb", "id: bomb\nvariables:\n- {name: x, type: integer}").replace(
    "3999999**3999999 > 0", "x ** x > 0")

START_BOMB = textwrap.dedent("""\
    import sys, time
    from engine.model import load
    from engine.runtime import Engine
    from engine.security import Principal
    engine = Engine(sys.argv[2], principal=Principal.system())
    try:
        engine.deploy(load(sys.argv[1]))
    except Exception as exc:
        sys.exit(f"not deployed: {type(exc).__name__}: {exc}")
    t = time.perf_counter()
    try:
        instance = engine.start("bomb", {"x": 3999999} if "x **" in open(sys.argv[1]).read() else {})
        view = engine.instance(instance)
        print(f"started in {time.perf_counter() - t:.2f} s: {view.status}, incidents "
              f"{[i['error'] for i in view.incidents]}")
    except Exception as exc:
        print(f"{type(exc).__name__} after {time.perf_counter() - t:.2f} s: {exc}")
    """)

MISSING_ENGINE = textwrap.dedent("""\
    import sys
    from engine.errors import WaooawError
    from engine.runtime import Engine
    from engine.security import Principal
    try:
        Engine(sys.argv[1], principal=Principal.system())
        print("opened")
    except WaooawError as exc:  # the project's own error; anything else ends in a traceback
        print(f"{type(exc).__name__}: {exc}")
    """)


# The probe runs under a small wrapper process whose only child it is, so RUSAGE_CHILDREN is its peak alone.
WRAP = textwrap.dedent("""\
    import resource, subprocess, sys
    limit = int(sys.argv[1]) * 1024 * 1024
    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        code = subprocess.run(sys.argv[3:], preexec_fn=limits, timeout=float(sys.argv[2])).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    print(f"__probe__ {code} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}")
    """)


def probe(name: str, argv: list[str], limit_mb: int, timeout: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", WRAP, str(limit_mb), str(timeout), *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, cwd=ROOT).stdout.decode(errors="replace")
    elapsed = time.monotonic() - started
    lines = out.strip().splitlines()
    _, code, peak = lines.pop().split(" ", 2) if lines and lines[-1].startswith("__probe__") else ("", "?", "?")
    last = lines[-1][:160] if lines else ""
    print(f"{name:<22} {elapsed:7.2f} s  peak {peak:>5} MiB  exit {code:<4} {len(lines):3d} line(s)  last: {last}")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mb", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        aliases = work / "laughs.yaml"
        aliases.write_text(ALIASES)
        bomb = work / "bomb.yaml"
        bomb.write_text(BOMB)
        print(f"alias file: {len(ALIASES.encode())} bytes; address-space limit {args.limit_mb} MiB, "
              f"timeout {args.timeout:.0f} s")
        probe("alias validate", [*WAOOAW, "validate", str(aliases)], args.limit_mb, args.timeout)
        probe("cpu-bomb validate", [*WAOOAW, "validate", str(bomb)], args.limit_mb, args.timeout)
        probe("cpu-bomb start", [sys.executable, "-c", START_BOMB, str(bomb), f"sqlite:///{work / 'bomb.db'}"],
              args.limit_mb, args.timeout)
        bomb_variable = work / "bomb_variable.yaml"
        bomb_variable.write_text(BOMB_VARIABLE)
        probe("cpu-bomb start (x**x)", [sys.executable, "-c", START_BOMB, str(bomb_variable),
                                        f"sqlite:///{work / 'bomb2.db'}"], args.limit_mb, args.timeout)
        missing = "sqlite:////no/such/dir/x.db"
        probe("missing-db Engine()", [sys.executable, "-c", MISSING_ENGINE, missing], args.limit_mb, args.timeout)
        probe("missing-db worker", [*WAOOAW, "worker", "--db", missing, "--max-idle", "1"], args.limit_mb,
              args.timeout)


if __name__ == "__main__":
    main()
