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


# --- the start's lookup, sent with the writes on PostgreSQL ----------------------------------------------


def two_versions(name: str = "cached") -> tuple[Any, Any]:
    from engine.model import ProcessBuilder

    first, second = ProcessBuilder(name), ProcessBuilder(name)
    first.start().user("review", title="Review", assignee="ada").end("done")
    second.start().user("review", title="Review again", assignee="ada").end("done")
    return first.build(), second.build()


def test_a_start_after_another_process_deployed_runs_the_new_version(db_url: str) -> None:
    """Engine ``a`` last saw version 1; ``b`` (another process) deploys version 2: ``a``'s next start runs
    version 2 (its assumed lookup was stale: the attempt rolled back and ran again), leaves no row of the
    rolled-back attempt, and writes its audit row once."""
    from engine.runtime.metrics import instrument
    from engine.security import audit_trail

    v1, v2 = two_versions()
    a = Engine(db_url, principal=Principal.system())
    b = Engine(db_url, principal=Principal.system())
    a.deploy(v1)
    metrics = instrument(a)
    first = a.start("cached")
    assert a.instance(first).version == 1
    assert b.deploy(v2).version == 2
    second = a.start("cached")
    assert a.instance(second).version == 2
    assert sorted(a.instances()["id"]) == sorted([first, second])  # nothing left of the stale attempt
    starts = audit_trail(a.db, action="start")
    assert list(starts["outcome"]) == ["succeeded", "succeeded"]
    assert len(a.tasks()) == 2
    assert metrics.registry.get_sample_value("waooaw_instances_started_total",
                                             {"definition": "cached", "version": "2"}) == 1  # counted once
    third = a.start("cached")  # the lookup is known now: no retry, same version
    assert a.instance(third).version == 2


def test_a_rollout_set_by_another_process_applies_at_the_next_start(db_url: str) -> None:
    from engine.versions import set_rollout

    v1, v2 = two_versions()
    a = Engine(db_url, principal=Principal.system())
    b = Engine(db_url, principal=Principal.system())
    a.deploy(v1)
    a.deploy(v2)
    assert a.instance(a.start("cached")).version == 2
    set_rollout(b, "cached", {1: 100, 2: 0}, actor="ops", reason="roll back")
    assert {a.instance(i).version for i in a.start_many("cached", [{}] * 5)} == {1}
    assert len(a.instances()) == 6


def test_a_refused_start_after_a_stale_lookup_writes_nothing(db_url: str) -> None:
    """The retry checks the variables against the new version: a start it refuses leaves no instance."""
    from engine.errors import EngineError
    from engine.model import ProcessBuilder

    v1, _ = two_versions()
    strict = ProcessBuilder("cached", variables={"amount": int})
    strict.start().user("review", title="Review", assignee="ada").end("done")
    a = Engine(db_url, principal=Principal.system())
    b = Engine(db_url, principal=Principal.system())
    a.deploy(v1)
    a.start("cached", {})
    b.deploy(strict.build())
    with pytest.raises(EngineError, match="amount"):
        a.start("cached", {"amount": "many"})
    assert len(a.instances()) == 1
