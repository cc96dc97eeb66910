"""Importing the engine stays light (issue 14): a worker, ``Engine()`` and ``waooaw --help`` must not load the
libraries only some commands need (pandas, scipy, the simulator's and the app's, lxml, Alembic, argon2...).

Each runs in a fresh interpreter (``sys.modules`` of this one is full of them); the heavy modules are imported
where they are used. Before the lazy-import pass ``Engine()`` idled at 223 MiB and ``waooaw --help`` took 4-10 s;
``bench/startup.py`` prints the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import migrations

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "scipy", "matplotlib", "simpy", "streamlit", "lxml", "xmlschema", "argon2", "alembic",
         "prometheus_client", "networkx", "graphviz", "redis", "plotly", "altair", "pm4py")

CHECK = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHECK.format(code=code, heavy=HEAVY)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120, check=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import engine",
    "import engine.runtime.worker",
    "import engine.cli",
])
def test_importing_the_engine_loads_no_heavy_module(code: str) -> None:
    assert _loaded(code) == []


def test_an_engine_at_head_starts_without_alembic_or_pandas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    make = ("from engine.runtime import Engine\nfrom engine.security import Principal\n"
            f"Engine({url!r}, principal=Principal.system())")
    _loaded(make)  # the first start creates the tables (Alembic stamps them)
    assert _loaded(make) == []  # a start at head reads one row


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert migrations.head_of_files() == migrations.head()
