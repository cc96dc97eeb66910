"""Schema migrations with Alembic: the engine's tables change only through revisions in ``versions/``.

- ``waooaw db upgrade --db URL`` (or ``upgrade(url)``) brings a database to the newest revision (head).
- At start the engine checks the database's revision (``ensure_schema``):
  - an empty database gets the current tables and is stamped with head (nothing to migrate);
  - a database at head starts;
  - an older revision, or a database made before migrations existed (engine tables, no
    ``alembic_version``: the first release's schema, revision 0001) is upgraded in place when it is a
    SQLite file (the embedded default: one process owns it, as ``make app``'s demo database) and refused
    on a server database (PostgreSQL: several workers share it; an operator upgrades once, before
    starting them) with a message that says what to run. ``WAOOAW_DB_AUTO_UPGRADE=1`` (or ``0``)
    overrides that choice;
  - a revision this code does not know (a newer release wrote it) is refused: upgrade waooaw.
- A change to ``engine/runtime/tables.py`` needs a revision: ``alembic -c engine/runtime/migrations/alembic.ini
  revision --autogenerate -m "what changed"`` (with ``WAOOAW_DB`` naming a database at head);
  tests/test_migrations.py fails while the models and head differ.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine as SAEngine
from sqlmodel import SQLModel

from engine.errors import WaooawError

if TYPE_CHECKING:  # Alembic (~40 MB, 0.3 s) is imported only to create, upgrade or refuse: a start at head reads
    from alembic.config import Config  # one row (see ensure_schema)
    from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent
FIRST = "0001"
log = logging.getLogger("waooaw.migrations")


class SchemaError(WaooawError):
    """The database's schema is not the one this code uses; the message says what to run."""


def config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]+)?=\s*(?:[\"']([^\"']+)[\"']|None)", re.M)


@functools.cache
def head_of_files() -> str | None:
    """The newest revision read from the revision files alone (the one no other file names as its
    ``down_revision``), without importing Alembic; None when that is not one plain answer (Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (HERE / "versions").glob("*.py"):
        for match in _REVISION.finditer(path.read_text(encoding="utf-8")):
            if match.group(2) is not None:
                (parents if match.group(1) else revisions).add(match.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stamped(engine: SAEngine) -> str | None:
    """The revision in ``alembic_version`` (plain SQL), or None when there is no such table or row."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head() -> str:
    """The newest revision this code knows."""
    return _scripts().get_current_head() or FIRST


@functools.cache
def known() -> frozenset[str]:
    return frozenset(s.revision for s in _scripts().walk_revisions())


def current(engine: SAEngine) -> str | None:
    """The database's revision; ``FIRST`` for engine tables made before migrations; None when empty."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None and "wf_instances" in inspect(conn).get_table_names():
            return FIRST
    return revision


def _upgrade(engine: SAEngine, target: str = "head") -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    cfg = config()
    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() is None:
            cfg.attributes["connection"] = conn
            command.stamp(cfg, FIRST)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def upgrade(url: str, target: str = "head") -> tuple[str | None, str]:
    """Bring the database at ``url`` to ``target`` (default head); returns (revision before, after)."""
    from engine.runtime.db import connect

    engine = connect(url, migrate=False)
    try:
        before = current(engine)
        if before is None:
            create(engine)
        else:
            _upgrade(engine, target)
        return before, current(engine) or head()
    finally:
        engine.dispose()


def create(engine: SAEngine) -> None:
    """An empty database: the current tables, stamped with head (one transaction)."""
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        SQLModel.metadata.create_all(conn)
        MigrationContext.configure(conn).stamp(_scripts(), "head")


def _auto(engine: SAEngine) -> bool:
    choice = os.environ.get("WAOOAW_DB_AUTO_UPGRADE", "").strip().lower()
    if choice in ("1", "true", "yes"):
        return True
    if choice in ("0", "false", "no"):
        return False
    return engine.dialect.name == "sqlite"


def ensure_schema(engine: SAEngine, shown: str) -> None:
    """Create, accept, upgrade or refuse the database's schema (see the module docstring).

    Raises SchemaError naming the revision found, the one needed and the command to run."""
    fast = head_of_files()
    if fast is not None and _stamped(engine) == fast:  # the usual start: at head, Alembic not imported
        return
    revision = current(engine)
    target = head()
    if revision is None:
        create(engine)
        return
    if revision == target:
        return
    if revision not in known():
        raise SchemaError(f"database {shown} has schema revision {revision}, which this waooaw does not know "
                          f"(its newest is {target}): a newer waooaw wrote it; upgrade waooaw")
    if not _auto(engine):
        raise SchemaError(f"database {shown} has schema revision {revision}; this waooaw needs {target}: run "
                          f"`waooaw db upgrade --db {shown}` once (stop the workers first), then start again")
    log.info("upgrading database %s from schema revision %s to %s", shown, revision, target)
    _upgrade(engine)


__all__ = ["SchemaError", "config", "current", "ensure_schema", "head", "upgrade"]
