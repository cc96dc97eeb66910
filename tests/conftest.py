"""Shared fixtures. Services are real: PostgreSQL and Redis on their standard ports.

A test that needs one skips with the reason when it is absent, except in CI (CI=true), where an
absent service is a failure: CI promises them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers (semantics_harness, ...)

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("WAOOAW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("WAOOAW_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _absent(what: str, error: Exception) -> None:
    reason = f"{what} is not reachable ({type(error).__name__}: {error}); start it or set the URL variable"
    if IN_CI:
        pytest.fail(f"CI=true promises {what}: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL (WAOOAW_TEST_PG overrides the default)."""
    try:
        import psycopg

        dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure to connect means "absent"
        _absent("PostgreSQL", exc)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A reachable Redis URL (WAOOAW_TEST_REDIS overrides the default)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        _absent("Redis", exc)
    yield REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each engine test runs on a fresh SQLite file and on a fresh PostgreSQL database."""
    from engine_support import fresh_postgres, sqlite_url

    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        base = request.getfixturevalue("postgres_url")
        with fresh_postgres(base) as url:
            yield url


@pytest.fixture(scope="session")
def node() -> str:
    """node, with the canvas's dev dependencies (bpmn-moddle, bpmnlint) installed by ``npm ci`` in the canvas
    frontend when missing (once a session). Without node or npm the tests skip; under CI=true they fail."""
    from app.components.bpmn_canvas.bundle import FRONTEND

    def unavailable(reason: str) -> None:
        if IN_CI:
            pytest.fail(f"CI=true promises node and npm: {reason}")
        pytest.skip(reason)

    found = shutil.which("node")
    if not found:
        unavailable("node is not installed (apt-get install nodejs npm)")
    if not all((FRONTEND / "node_modules" / name).exists() for name in ("bpmn-moddle", "bpmnlint")):
        npm = shutil.which("npm")
        if not npm:
            unavailable("npm is not installed")
        run = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, capture_output=True, text=True,
                             timeout=300, check=False)
        if run.returncode != 0:
            unavailable(f"npm ci failed in {FRONTEND}: {run.stderr[-500:]}")
    assert found is not None
    return found
