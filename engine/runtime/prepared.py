"""Statements compiled once per database kind and run on the driver's cursor: the engine's hot writes.

Why: SQLAlchemy Core spends about 35 us per ``conn.execute`` on a prebuilt statement (cache key, compiled
lookup, execution context, result) against about 7 us in sqlite3 itself, and a start or a step is a handful
of small statements. A ``Prepared`` statement is compiled to SQL text once per dialect; each call only
converts its values with the columns' own bind processors (``UtcDateTime`` and the dialect's date types)
and hands them to the DBAPI cursor of the caller's connection, inside the caller's transaction. What the
database sees is exactly what SQLAlchemy would send.

Scope: INSERT / UPDATE / DELETE with named ``bindparam`` values, optionally ``RETURNING`` plain columns,
and SELECTs of plain columns (integers, text: results are not processed, so no dates or booleans).
Columns the rows leave out get their scalar Python defaults, as SQLAlchemy does. Reads that need typed
results stay on SQLAlchemy. These statements bypass SQLAlchemy's
cursor events (nothing in the engine listens to them). A driver error is raised as SQLAlchemy raises it
(``OperationalError`` and the rest, a lost connection invalidated), so ``failures.is_transient`` and the
pool see what they would see through ``conn.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, UpdateBase


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    keys: tuple[str, ...] | None  # an INSERT's columns given by the rows (None: not an INSERT)
    names: tuple[str, ...]  # the bind names, in the statement's order
    positional: bool  # qmark/format drivers take tuples, pyformat/named ones dicts
    processors: tuple[Callable[[Any], Any] | None, ...]  # per name, the bind processor or None
    defaults: dict[str, Any]  # name -> value: column defaults, and constants in the statement


class Prepared:
    """``Prepared(insert(T))``, ``Prepared(update(T).where(T.c.id == bindparam("i")).values(...))``:
    ``execute(conn, row)`` / ``executemany(conn, rows)`` with rows as dicts keyed by bind name (for an
    INSERT, the column keys it is given: the other columns take their defaults). An INSERT is compiled once
    per dialect and set of keys; rows of one ``executemany`` with other keys go in runs, in order."""

    __slots__ = ("_by_dialect", "statement")

    def __init__(self, statement: UpdateBase | Select[Any]) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[str, str, str, tuple[str, ...] | None], _Compiled] = {}

    def _compiled(self, dialect: Dialect, row: dict[str, Any]) -> _Compiled:
        keys = tuple(row) if isinstance(self.statement, Insert) else None
        key = (dialect.name, dialect.driver, dialect.paramstyle, keys)
        found = self._by_dialect.get(key)
        if found is None:
            statement = self.statement
            if isinstance(statement, Insert) and not statement._returning:
                statement = statement.inline()  # no implicit RETURNING of the new id (PostgreSQL)
            compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
            positional = bool(compiled.positional)
            names = tuple(compiled.positiontup or ()) if positional else tuple(dict.fromkeys(
                compiled.bind_names.values()))
            constants: dict[str, Any] = {}
            for column in compiled.insert_prefetch:  # columns left out of the rows: their constant default
                if column.default is None or not column.default.is_scalar:
                    raise TypeError(f"Prepared {statement}: column {column.key} has no constant default; "
                                    "give it in every row")
                constants[column.key] = column.default.arg
            if compiled.update_prefetch:
                raise TypeError(f"Prepared {statement}: onupdate defaults are not supported")
            for name in names:  # values written into the statement itself (status == "open")
                bind = compiled.binds[name]
                if name not in constants and not bind.required:
                    constants[name] = bind.effective_value
            processors = compiled._bind_processors
            found = _Compiled(compiled.string, keys, names, positional,
                              tuple(_moments(dialect, compiled.binds[n].type, processors.get(n)) for n in names),
                              constants)
            self._by_dialect[key] = found
        return found

    def _params(self, c: _Compiled, row: dict[str, Any]) -> Any:
        if c.defaults:
            row = {**c.defaults, **row}
        values = [row[name] if process is None else process(row[name])
                  for name, process in zip(c.names, c.processors, strict=True)]
        return tuple(values) if c.positional else dict(zip(c.names, values, strict=True))

    def execute(self, conn: Connection, row: dict[str, Any]) -> Any:
        """Run once in ``conn``'s transaction; returns the DBAPI cursor (``rowcount``, ``fetchone`` for RETURNING)."""
        c = self._compiled(conn.dialect, row)
        params = self._params(c, row)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(c.sql, params)
        except conn.dialect.loaded_dbapi.Error as error:
            conn._handle_dbapi_exception(error, c.sql, params, cursor, None)  # raises SQLAlchemy's error
        return cursor

    def first(self, conn: Connection, row: dict[str, Any]) -> tuple[Any, ...] | None:
        """A SELECT's first row as the driver returns it (a tuple), or None."""
        return self.execute(conn, row).fetchone()  # type: ignore[no-any-return]

    def executemany(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run for every row: one ``executemany`` per run of rows with the same keys (psycopg pipelines it)."""
        start = 0
        while start < len(rows):
            c = self._compiled(conn.dialect, rows[start])
            end = start + 1
            if c.keys is not None:
                while end < len(rows) and rows[end].keys() == rows[start].keys():
                    end += 1
            else:
                end = len(rows)
            params = [self._params(c, row) for row in rows[start:end]]
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(c.sql, params)
            except conn.dialect.loaded_dbapi.Error as error:
                conn._handle_dbapi_exception(error, c.sql, params, cursor, None)
            cursor.close()
            start = end


def _moments(dialect: Dialect, type_: Any, process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """The bind processor of a datetime column, shared by every column of the same type and database kind and
    remembering the last moment it converted: a start stamps its job, history rows, variable change and
    instance with one moment, converted once. Other processors are returned as they are."""
    if process is None:
        return None
    if not isinstance(getattr(type_, "impl_instance", type_), DateTime):  # TypeDecorators: what they store
        return process
    key = (dialect.name, dialect.driver, repr(type_))
    shared = _SHARED_MOMENTS.get(key)
    if shared is None:
        shared = _SHARED_MOMENTS.setdefault(key, _last_moment(process))
    return shared


_SHARED_MOMENTS: dict[tuple[str, str, str], Callable[[Any], Any]] = {}


def _last_moment(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` remembering its last datetime and what it made of it. The pair is replaced as one tuple, so
    threads sharing it never see one moment with another's text."""
    last: tuple[Any, Any] = (None, None)

    def run(value: Any) -> Any:
        nonlocal last
        seen, made = last
        if value is seen and value is not None:
            return made
        made = process(value)
        if type(value) is datetime:  # immutable: the same object always converts alike
            last = (value, made)
        return made

    return run


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL (psycopg 3 with libpq >= 14), the statements sent inside go out together in pipeline
    mode and their results come back at the end (or when a result is read): one round trip for a step's
    writes instead of one per statement. Errors are raised at the end of the block, so a failing statement
    still fails the transaction. Elsewhere (SQLite: no network) nothing changes; nested blocks share the
    outer pipeline."""
    raw = conn.connection.dbapi_connection if conn.dialect.name == "postgresql" else None
    # conn.info lives as long as the DBAPI connection: it marks an open pipeline (psycopg's own flag is private)
    if raw is None or conn.info.get(_PIPELINE) or not _pipeline_supported():
        yield
        return
    info = conn.info  # this dict, not conn.info again: that raises once a lost connection was invalidated
    info[_PIPELINE] = True
    try:
        with raw.pipeline():  # type: ignore[attr-defined]
            yield
    except conn.dialect.loaded_dbapi.Error as error:  # a statement's error, raised when the pipeline syncs
        conn._handle_dbapi_exception(error, "(pipeline)", None, None, None)
    finally:
        info.pop(_PIPELINE, None)


_PIPELINE = "waooaw.pipeline"


def _pipeline_supported() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())
