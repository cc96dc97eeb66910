"""Database connections: a SQLite file by default (WAL, synchronous=NORMAL; ``?synchronous=full`` for power-loss
safety), any SQLAlchemy URL otherwise."""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import event, exc, make_url
from sqlalchemy.engine import URL
from sqlalchemy.engine import Engine as SAEngine
from sqlmodel import create_engine

from engine.errors import DatabaseUnavailable
from engine.runtime import tables  # noqa: F401  (registers the tables)

DEFAULT_URL = "sqlite:///waooaw.db"


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver this project installs)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def connect(url: str = DEFAULT_URL, reader: bool = False, migrate: bool = True, **kwargs: Any) -> SAEngine:
    """An engine for writing (SQLite: every transaction is BEGIN IMMEDIATE, so two writers queue instead of
    failing half-way) or, with ``reader=True`` on SQLite, one whose reads never take the write lock.

    Raises ``DatabaseUnavailable`` (one line: the URL without its password, and what is wrong) for a malformed
    URL, an unknown database kind, a missing driver, an unreachable or refusing server, a missing database, and
    a SQLite path whose folder is missing, that is a folder, is read-only or is not a SQLite database.
    A writer checks the schema's revision (``engine.runtime.migrations.ensure_schema``: creates an empty
    database, upgrades an older SQLite file, raises SchemaError otherwise); ``migrate=False`` skips that."""
    shown = _shown(url)
    try:
        parsed = make_url(normalise_url(url))
    except (exc.ArgumentError, ValueError, TypeError) as error:
        raise DatabaseUnavailable(f"malformed database URL {shown}: {_first_line(error)} "
                                  "(examples: sqlite:///waooaw.db, postgresql://user@host:5432/waooaw)") from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed, shown)
    elif parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    try:
        return _connect(normalise_url(url), reader, shown if migrate else None, **kwargs)
    except DatabaseUnavailable:
        raise
    except exc.NoSuchModuleError:
        raise DatabaseUnavailable(f"unknown kind of database in {shown}: use sqlite:///file.db or "
                                  "postgresql://...") from None
    except ImportError as error:
        raise DatabaseUnavailable(f"the driver for {shown} is not installed ({error.name or error}): "
                                  "pip install 'waooaw[postgres]' for PostgreSQL") from None
    except exc.SQLAlchemyError as error:
        raise DatabaseUnavailable(f"cannot open database {shown}: {_reason(error)}") from None


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # malformed: show it as given, minus anything that looks like a password
        return url.split("@")[-1] if "@" in url else url


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _reason(error: exc.SQLAlchemyError) -> str:
    """The driver's own message (its first line), without SQLAlchemy's statement and background link."""
    original = getattr(error, "orig", None)
    text = _first_line(original if original is not None else error)
    return text.removeprefix("(psycopg.OperationalError) ")


def _check_sqlite_path(url: URL, shown: str) -> None:
    """The clear reasons a SQLite file cannot be used, before SQLite's own 'unable to open database file'."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise DatabaseUnavailable(f"cannot open database {shown}: {path} is a folder, not a database file")
    folder = path.parent
    if not folder.is_dir():
        raise DatabaseUnavailable(f"cannot open database {shown}: the folder {folder} does not exist")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnavailable(f"cannot open database {shown}: {path} is not readable and writable")
        with path.open("rb") as file:
            head = file.read(16)
        if head and head != b"SQLite format 3\x00":
            raise DatabaseUnavailable(f"cannot open database {shown}: {path} is not a SQLite database")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailable(f"cannot open database {shown}: the folder {folder} is read-only, so "
                                  f"{path.name} cannot be created")


SYNCHRONOUS = ("normal", "full", "extra")


def _sqlite_synchronous(url: str) -> tuple[str, str]:
    """``sqlite:///file.db?synchronous=full``: the URL without the option, and the level (default normal).

    NORMAL (the default) in WAL mode: a commit survives a crash of the process, and the database stays
    consistent after a power loss, but the last commits before one may be lost. FULL: every commit is
    synced to disk first (power-loss safe), at the price of an fsync per commit (bench/engine_throughput.py
    prints both rates)."""
    parsed = make_url(url)
    level = str(parsed.query.get("synchronous", "normal")).lower()
    if level not in SYNCHRONOUS:
        raise DatabaseUnavailable(f"synchronous={level!r} in {_shown(url)}: use one of {', '.join(SYNCHRONOUS)}")
    return parsed.difference_update_query(["synchronous"]).render_as_string(hide_password=False), level.upper()


# The writer's own checkpoint (SQLite's autocheckpoint, run inside a commit) starts only once the WAL holds this
# many pages: the Checkpointer below copies it into the database file long before, off the committing thread.
WRITER_AUTOCHECKPOINT = 10_000


class Checkpointer:
    """Copies a SQLite file's WAL into the database (``PRAGMA wal_checkpoint(PASSIVE)``) on a thread of its own.

    SQLite's default is that the commit which takes the WAL past 1,000 pages copies it back itself, and at
    synchronous NORMAL or FULL that checkpoint syncs the WAL and then the database file: two fsyncs (ms each on
    a virtual disk) inside one commit every few dozen starts. Here the writer is nudged after each commit and a
    daemon thread, with its own connection at the same synchronous level (so a checkpoint syncs exactly as the
    writer's own would), checkpoints at most every ``delay`` seconds while commits go on; it stops after
    ``idle`` seconds without one. A PASSIVE checkpoint never takes the write lock, so the writer does not wait
    for it, and a commit's durability is what it was: it is in the WAL when COMMIT returns. The writer keeps
    its own autocheckpoint at WRITER_AUTOCHECKPOINT pages: it rewinds the WAL when writes never pause (a WAL is
    only rewound by a writer that finds it fully copied) and is the fallback if this thread falls behind."""

    delay = 0.1
    idle = 2.0

    def __init__(self, path: str, synchronous: str) -> None:
        self.path, self.synchronous = path, synchronous
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.checkpoints = 0  # completed checkpoint calls (tests, benchmarks)
        _CHECKPOINTERS.add(self)

    def nudge(self) -> None:
        """A commit happened: checkpoint soon (cheap: no lock unless the thread must be started)."""
        if not self._wake.is_set():
            self._wake.set()
        if self._thread is None and not self._stopped:
            with self._lock:
                if self._thread is None and not self._stopped:
                    self._thread = threading.Thread(target=self._run, name="waooaw-sqlite-checkpoint", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        """Finish the checkpoint under way and end the thread (at exit; the writer checkpoints by itself after)."""
        self._stopped = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while self._wake.wait(self.idle) and not self._stopped:
                self._stop.wait(self.delay)  # coalesce: the commits of this pause share one checkpoint
                self._wake.clear()
                if not self._stopped:
                    self.checkpoint()
        finally:
            with self._lock:
                self._thread = None
            if self._wake.is_set() and not self._stopped:  # nudged while ending: start again
                self.nudge()

    def checkpoint(self) -> bool:
        """One PASSIVE checkpoint on a connection of its own, opened for it (``mode=rw``: a file that went away
        is not created again) and closed after (nothing stays open between commits); False if it could not."""
        try:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=0, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error:
            return False
        try:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")  # the checkpoint syncs as the writer would
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # busy: the next nudge, or the writer's own checkpoint, copies it
            return False
        finally:
            conn.close()
        self.checkpoints += 1
        return True


_CHECKPOINTERS: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


@atexit.register
def _stop_checkpointers() -> None:
    for checkpointer in list(_CHECKPOINTERS):
        checkpointer.stop()


def _forget_threads_in_child() -> None:
    """A forked child has none of its parent's threads: its checkpointers start their own on the next commit."""
    for checkpointer in list(_CHECKPOINTERS):
        checkpointer._lock = threading.Lock()
        checkpointer._thread = None


os.register_at_fork(after_in_child=_forget_threads_in_child)


def _connect(url: str, reader: bool, shown: str | None, **kwargs: Any) -> SAEngine:
    if url.startswith("sqlite"):
        url, synchronous = _sqlite_synchronous(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        database = engine.url.database or ""
        background = not reader and bool(database) and database != ":memory:" and not database.startswith("file:")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            if background:
                cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")
            cursor.close()
            dbapi_connection.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves

        if reader:
            return engine
        if background:
            checkpointer = Checkpointer(database, synchronous)
            engine.checkpointer = checkpointer  # type: ignore[attr-defined]
            event.listen(engine, "commit", lambda _conn: checkpointer.nudge())

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:  # on the driver's connection: no statement machinery for one keyword
            try:
                conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")
            except conn.dialect.loaded_dbapi.Error as error:  # e.g. "database is locked": SQLAlchemy's error
                conn._handle_dbapi_exception(error, "BEGIN IMMEDIATE", None, None, None)
    else:
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine)
    if shown is not None:
        from engine.runtime.migrations import ensure_schema

        ensure_schema(engine, shown)
    return engine


PING_AFTER_IDLE = 1.0  # seconds a pooled PostgreSQL connection may rest before a checkout pings it
_RETURNED = "waooaw.returned"


def _ping_when_idle(engine: SAEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` costs a round trip on every checkout: a third of a start's. Here a
    connection is pinged only when it has rested in the pool for ``PING_AFTER_IDLE`` seconds (the server
    may have restarted, or a firewall dropped it, while nobody used it); one in steady use is not (a fresh
    one never is). A ping that finds it dead replaces it (the pool retries the checkout on a new
    connection). A connection that dies while in use fails its statement with a disconnect error, as it
    would with a pre-ping, and SQLAlchemy then invalidates it and every connection opened before it (the
    pool's invalidation time), so the next checkout connects afresh; the transaction rolled back, so no
    step is half-written (workers retry the job: ``failures.is_transient``). ``connect(url,
    pool_pre_ping=True)`` restores the ping on every checkout."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)  # None: a new connection (the info lives as long as it)
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError(f"a pooled connection was dead after resting: {error}") from error
            raise


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
