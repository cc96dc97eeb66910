"""Databases for engine tests: a fresh SQLite file, or a fresh PostgreSQL database dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.runtime.db import scratch_database


@contextmanager
def fresh_postgres(base_url: str) -> Iterator[str]:
    """CREATE DATABASE for one test (module), DROP it after."""
    with scratch_database(base_url, prefix="waooaw_t_") as url:
        yield url


def sqlite_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'engine.db'}"
