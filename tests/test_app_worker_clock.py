"""External workers in demo mode read the demo's virtual clock from the database (``waooaw worker --clock demo``):
a move made in the app (stored in ``app_virtual_clock``) fires the timers it makes due in a real worker process,
on SQLite and on PostgreSQL; with the wall clock the same worker leaves them waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.runtime.stored_clock import FollowedClock, StoredClock
from engine.security import Principal

ROOT = Path(__file__).resolve().parents[1]


def trial() -> object:
    """A 4-hour wait, then an agent: it ends only if the worker's clock has passed the wait."""
    b = ProcessBuilder("trial")
    b.start().timer("wait", "PT4H").service("notify", agent="designs.agents:notify").end("done")
    return b.build()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    from engine_support import fresh_postgres

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        with fresh_postgres(request.getfixturevalue("postgres_url")) as fresh:
            yield fresh


def worker(url: str, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("WAOOAW_MODE", None)
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "worker", "--db", url, "--poll", "0.05",
                             "--max-idle", "4", *options], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_followed_clock_reads_the_apps_moves(tmp_path: Path) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'c.db'}", principal=Principal.system())
    follower = FollowedClock(engine.db, refresh=0.0)
    assert not follower.found  # no demo clock yet: the wall clock
    assert abs((follower.now() - datetime.now(UTC)).total_seconds()) < 5
    app_clock = StoredClock(engine.db)
    app_clock.advance(timedelta(days=7))
    assert follower.found
    assert abs((follower.now() - app_clock.now()).total_seconds()) < 2
    with pytest.raises(ValueError, match="clock control"):
        follower.set(app_clock.now() + timedelta(hours=1))


def status(url: str, instance: str) -> str:
    """Read by a fresh engine (this process's reader may hold an older SQLite snapshot)."""
    check = Engine(url, principal=Principal.system())
    try:
        return check.instance(instance).status
    finally:
        check.db.dispose()
        check.reader.dispose()


def test_an_external_worker_follows_the_demo_clock(url: str) -> None:
    engine = Engine(url, principal=Principal.system())
    clock = StoredClock(engine.db)  # the app in demo mode
    engine.clock = clock
    engine.deploy(trial())  # type: ignore[arg-type]
    instance = engine.start("trial")
    assert engine.instance(instance).active_nodes == ["wait"]
    clock.advance(timedelta(hours=5))  # the app's clock control (the worker must fire the timer, not the app)

    wall = worker(url, "--clock", "wall")
    out, _ = wall.communicate(timeout=120)
    assert wall.returncode == 0, out
    assert status(url, instance) == "running"  # on the wall clock the timer is 4 h away

    demo = worker(url, "--clock", "demo")
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, out
    assert "demo clock" in out
    assert status(url, instance) == "completed", out
    engine.db.dispose()
    engine.reader.dispose()


def test_demo_needs_a_demo_clock_in_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    Engine(url, principal=Principal.system()).db.dispose()
    started = time.monotonic()
    proc = worker(url, "--clock", "demo")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "no demo clock" in out, out
    assert time.monotonic() - started < 60
