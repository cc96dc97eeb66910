"""SQLite durability is chosen in the URL: synchronous=NORMAL by default, ?synchronous=full for power-loss safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime import Engine
from engine.runtime.db import DatabaseUnavailable


@pytest.mark.parametrize(("suffix", "level"), [("", 1), ("?synchronous=full", 2), ("?synchronous=FULL", 2)])
def test_the_url_sets_the_level_on_every_connection(tmp_path: Path, suffix: str, level: int) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}{suffix}")
    for pool in (engine.db, engine.reader):
        with pool.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_an_unknown_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="use one of normal, full, extra"):
        Engine(f"sqlite:///{tmp_path / 'e.db'}?synchronous=off")
