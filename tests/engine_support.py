"""Databases for engine tests: a fresh SQLite file, or a fresh PostgreSQL database dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


@contextmanager
def fresh_postgres(base_url: str) -> Iterator[str]:
    """CREATE DATABASE for one test (module), DROP it after."""
    name = f"waooaw_t_{uuid.uuid4().hex[:10]}"
    admin = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        from sqlalchemy import create_engine  # make sure no pooled connection keeps it open

        create_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'engine.db'}"
