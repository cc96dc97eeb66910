"""Schema migrations: head equals the models, a previous release's database is upgraded with its data,
and the engine refuses a schema it cannot use with a message that says what to run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from engine.model import ProcessBuilder, serialize
from engine.runtime import Engine
from engine.runtime.db import normalise_url
from engine.runtime.migrations import SchemaError, config, head


def _migrate(url: str, target: str) -> None:
    engine = create_engine(normalise_url(url))
    cfg = config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
    engine.dispose()


def _previous_release(url: str, versioned: bool) -> str:
    """A database as the first release left it (revision 0001's tables; before Alembic there was no
    alembic_version table), holding a deployed definition and a finished instance with variables."""
    _migrate(url, "0001")
    engine = create_engine(normalise_url(url))
    b = ProcessBuilder("legacy", variables={"amount": int})
    b.start().end("done")
    content = serialize.to_json(b.build())
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        if not versioned:
            conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO wf_definitions (name, version, content, content_hash, deployed_at) "
                          "VALUES ('legacy', 1, :c, 'h', :at)"), {"c": content, "at": at})
        conn.execute(text("INSERT INTO wf_instances (id, definition_name, definition_version, business_key, status, "
                          "started_at, ended_at, state, steps, rev) VALUES ('old-1', 'legacy', 1, 'key-1', "
                          "'completed', :at, :at, :state, 2, 1)"),
                     {"at": at, "state": json.dumps({"variables": {"amount": 5}, "tokens": {}, "status": "completed"})})
        conn.execute(text("INSERT INTO wf_variables (instance_id, name, value, version) VALUES "
                          "('old-1', 'amount', '5', 1)"))
    engine.dispose()
    return url


def test_head_matches_the_models(db_url: str) -> None:
    """Fails when a table changes without a revision: write one (engine/runtime/migrations/__init__.py)."""
    _migrate(db_url, "head")
    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert MigrationContext.configure(conn).get_current_revision() == head()
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == [], f"the models differ from the migrations' head: {differences}"


@pytest.mark.parametrize("versioned", [False, True], ids=["before-alembic", "stamped-0001"])
def test_a_previous_release_sqlite_database_is_upgraded_in_place(tmp_path: Path, versioned: bool) -> None:
    url = _previous_release(f"sqlite:///{tmp_path / 'old.db'}", versioned)
    engine = Engine(url)  # the embedded default upgrades itself (make app's demo database keeps working)
    with engine.db.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head()
        names = {i["name"] for i in inspect(conn).get_indexes("wf_instances")}
    assert "ix_wf_instances_status_started" in names
    page = engine.instance_page(status="completed")
    assert list(page.rows["id"]) == ["old-1"] and page.total == 1
    assert engine.instances(business_key="key-1")["id"].tolist() == ["old-1"]
    b = ProcessBuilder("fresh")
    b.start().end("done")
    engine.deploy(b.build())
    engine.start("fresh")
    assert engine.instance_page(definition="fresh").total == 1


def test_a_server_database_is_refused_until_upgraded(postgres_url: str) -> None:
    from engine_support import fresh_postgres

    with fresh_postgres(postgres_url) as url:
        _previous_release(url, versioned=True)
        with pytest.raises(SchemaError, match=r"revision 0001; this waooaw needs 000\d: run `waooaw db upgrade --db"):
            Engine(url)
        from engine.cli import app

        result = CliRunner().invoke(app, ["db", "upgrade", "--db", url])
        assert result.exit_code == 0, result.output
        assert f"schema at revision {head()} (was 0001)" in result.output
        engine = Engine(url)
        assert engine.instance_page().total == 1
        engine.db.dispose()


def test_an_unknown_revision_and_a_refused_auto_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _previous_release(f"sqlite:///{tmp_path / 'old.db'}", versioned=True)
    monkeypatch.setenv("WAOOAW_DB_AUTO_UPGRADE", "0")
    with pytest.raises(SchemaError, match="run `waooaw db upgrade"):
        Engine(url)
    monkeypatch.delenv("WAOOAW_DB_AUTO_UPGRADE")
    future = create_engine(url)
    with future.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    future.dispose()
    with pytest.raises(SchemaError, match="f00d, which this waooaw does not know"):
        Engine(url)


def test_the_current_command(tmp_path: Path) -> None:
    from engine.cli import app

    url = f"sqlite:///{tmp_path / 'n.db'}"
    assert "database: empty" in CliRunner().invoke(app, ["db", "current", "--db", url]).output
    Engine(url)
    shown = CliRunner().invoke(app, ["db", "current", "--db", url]).output
    assert f"database: {head()}; this waooaw: {head()}" in shown


def test_a_database_made_between_releases_by_create_all_is_upgraded(tmp_path: Path) -> None:
    """The app's demo database made by an unreleased version (create_all: today's tables, no revision)."""
    url = f"sqlite:///{tmp_path / 'between.db'}"
    engine = create_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    Engine(url)
    check = create_engine(url)
    with check.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head()
    check.dispose()
