"""Database connections: a SQLite file by default (WAL, synchronous=NORMAL), any SQLAlchemy URL otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine as SAEngine
from sqlmodel import SQLModel, create_engine

from engine.runtime import tables  # noqa: F401  (registers the tables)

DEFAULT_URL = "sqlite:///waooaw.db"


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver this project installs)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def connect(url: str = DEFAULT_URL, reader: bool = False, **kwargs: Any) -> SAEngine:
    """An engine for writing (SQLite: every transaction is BEGIN IMMEDIATE, so two writers queue instead of
    failing half-way) or, with ``reader=True`` on SQLite, one whose reads never take the write lock."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            dbapi_connection.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves

        if reader:
            return engine

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    SQLModel.metadata.create_all(engine)
    return engine


def is_sqlite(engine: SAEngine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def scratch_database(base_url: str, prefix: str = "waooaw_scratch_") -> Iterator[str]:
    """A throwaway PostgreSQL database next to ``base_url`` (CREATE DATABASE), dropped afterwards even
    if connections are still open: for tests and benchmarks that must not share state."""
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = normalise_url(base_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = normalise_url(base_url).rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        create_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
