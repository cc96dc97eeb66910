"""PostgreSQL connections: no ping while a pooled connection is in steady use, a ping (and a replacement when
it is dead) after it rested, and a connection killed under a busy engine costs one failed call, not more."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from engine_support import fresh_postgres
from sqlalchemy import exc

import designs
from engine.runtime import Engine, db
from engine.security import Principal


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    with fresh_postgres(postgres_url) as url:
        engine = Engine(url, principal=Principal.system())
        engine.deploy(designs.build_design("pr_review"))
        yield engine
        engine.db.dispose()


def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the dialect's pings (one entry each)."""
    seen: list[int] = []
    real = engine.db.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        seen.append(1)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(engine.db.dialect, "do_ping", counted)
    return seen


def kill_backends(engine: Engine) -> int:
    """Terminate every server process of the engine's database (as a restart would)."""
    admin = engine.db.url.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        return len(conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                                (engine.db.url.database,)).fetchall())


def test_a_connection_in_steady_use_is_not_pinged(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = pings(pg_engine, monkeypatch)
    for i in range(5):
        pg_engine.start("pr_review", {"pr_number": i})
    assert seen == []


def test_a_rested_dead_connection_is_replaced_without_an_error(pg_engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pg_engine.start("pr_review", {"pr_number": 1})
    seen = pings(pg_engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every checkout finds the connection rested
    assert kill_backends(pg_engine) >= 1
    instance = pg_engine.start("pr_review", {"pr_number": 2})  # the ping finds it dead: a new connection
    assert len(seen) >= 1
    assert pg_engine.instance(instance).status == "running"


def test_a_connection_killed_in_steady_use_fails_one_call_then_reconnects(pg_engine: Engine) -> None:
    pg_engine.start("pr_review", {"pr_number": 1})
    assert kill_backends(pg_engine) >= 1
    with pytest.raises(exc.OperationalError):  # no ping within PING_AFTER_IDLE: the start itself finds out
        pg_engine.start("pr_review", {"pr_number": 2})
    instance = pg_engine.start("pr_review", {"pr_number": 3})  # the pool was invalidated: a fresh connection
    assert pg_engine.instance(instance).variables["pr_number"] == 3
    assert len(pg_engine.instances()) == 2  # the failed start wrote nothing
