"""SQLite's WAL is copied into the database file by a thread of its own (engine.runtime.db.Checkpointer), not by
the commit that happens to take it past 1,000 pages: the committing thread never waits for a checkpoint's syncs."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine
from engine.runtime.db import WRITER_AUTOCHECKPOINT, Checkpointer
from engine.security import Principal


def _definition() -> ProcessDefinition:
    b = ProcessBuilder("ckpt")
    b.start().user("review", title="Review", assignee="ann").end()
    return b.build()


def _in_the_file(path: Path, copy: Path) -> int:
    """Instances in the database file alone (a copy without its WAL): what checkpoints have copied into it."""
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as raw:
        found = raw.execute("select count(*) from wf_instances").fetchone()[0]
    copy.unlink()
    return int(found)


def _wait(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_commits_are_checkpointed_by_the_background_thread(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    engine = Engine(principal=Principal.system(), db_url=f"sqlite:///{path}")
    checkpointer: Checkpointer = engine.db.checkpointer  # type: ignore[attr-defined]
    with engine.db.connect() as conn:  # the writer copies the WAL itself only far later than SQLite's 1,000
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WRITER_AUTOCHECKPOINT
        conn.rollback()
    engine.deploy(_definition())
    before = checkpointer.checkpoints
    for _ in range(20):
        engine.start("ckpt")
    assert _wait(lambda: checkpointer.checkpoints > before), "no checkpoint after 20 commits"
    # The thread copied the WAL into the file (20 starts are far below the writer's own threshold): the file
    # alone, without its WAL, holds them.
    assert _wait(lambda: _in_the_file(path, tmp_path / "copy.db") == 20)


def test_the_thread_ends_when_idle_and_starts_again(tmp_path: Path) -> None:
    engine = Engine(principal=Principal.system(), db_url=f"sqlite:///{tmp_path / 'e.db'}")
    checkpointer: Checkpointer = engine.db.checkpointer  # type: ignore[attr-defined]
    checkpointer.idle, checkpointer.delay = 0.2, 0.01
    engine.deploy(_definition())
    engine.start("ckpt")

    def threads() -> int:
        return sum(1 for t in threading.enumerate() if t is checkpointer._thread)

    assert _wait(lambda: checkpointer._thread is None), "the idle thread did not end"
    done = checkpointer.checkpoints
    engine.start("ckpt")
    assert _wait(lambda: checkpointer.checkpoints > done), "a commit after the idle end was not checkpointed"
    assert threads() <= 1


def test_the_checkpoint_syncs_at_the_writers_level_and_never_creates_a_file(tmp_path: Path) -> None:
    engine = Engine(principal=Principal.system(), db_url=f"sqlite:///{tmp_path / 'e.db'}?synchronous=full")
    assert engine.db.checkpointer.synchronous == "FULL"  # type: ignore[attr-defined]
    gone = Checkpointer(str(tmp_path / "missing.db"), "NORMAL")
    assert gone.checkpoint() is False
    assert not (tmp_path / "missing.db").exists()


def test_readers_and_memory_databases_have_no_checkpointer(tmp_path: Path) -> None:
    engine = Engine(principal=Principal.system(), db_url=f"sqlite:///{tmp_path / 'e.db'}")
    assert not hasattr(engine.reader, "checkpointer")
    memory = Engine("sqlite://", principal=Principal.system())
    assert not hasattr(memory.db, "checkpointer")


def test_a_forked_child_checkpoints_its_own_commits(tmp_path: Path) -> None:
    import os

    path = tmp_path / "e.db"
    engine = Engine(principal=Principal.system(), db_url=f"sqlite:///{path}")
    engine.deploy(_definition())
    engine.start("ckpt")  # the parent's thread is running now
    pid = os.fork()
    if pid == 0:  # the child: a fresh engine on the same file, as a forked process would make
        code = 1
        try:
            child = Engine(principal=Principal.system(), db_url=f"sqlite:///{path}")
            checkpointer: Checkpointer = child.db.checkpointer  # type: ignore[attr-defined]
            inherited: Checkpointer = engine.db.checkpointer  # type: ignore[attr-defined]
            before = inherited.checkpoints
            child.start("ckpt")
            inherited.nudge()  # the parent's checkpointer, inherited: it starts a thread of the child's own
            code = 0 if _wait(lambda: checkpointer.checkpoints > 0 and inherited.checkpoints > before, 5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
