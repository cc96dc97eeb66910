"""Prepared statements (engine/runtime/prepared.py) write what SQLAlchemy would write, on SQLite and
PostgreSQL: typed values through the columns' bind processors, column defaults, constants inside the
statement, RETURNING, runs of rows with different keys, and PostgreSQL's pipeline failing as a whole."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

import designs
from engine.runtime import Engine
from engine.runtime.failures import is_transient
from engine.runtime.prepared import Prepared, pipelined
from engine.runtime.tables import HumanTaskRow, JobRow

J, HT = JobRow.__table__, HumanTaskRow.__table__
AT = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))


def test_typed_values_and_defaults_as_sqlalchemy_writes_them(db_url: str) -> None:
    engine = Engine(db_url)
    row = {"instance_id": "i1", "kind": "timer", "ref": "t1", "due_at": AT, "payload": "{}"}
    with engine.db.begin() as conn:
        conn.execute(insert(J), {**row, "ref": "by-sqlalchemy"})
        Prepared(insert(J)).executemany(conn, [{**row, "ref": "prepared"}])
    with engine.db.connect() as conn:
        got = {r.ref: r for r in conn.execute(select(J.c.ref, J.c.due_at, J.c.attempts, J.c.lock_owner))}
        raw = {r[0]: r[1] for r in conn.exec_driver_sql("select ref, cast(due_at as text) from wf_jobs")}
    assert got["prepared"].due_at == got["by-sqlalchemy"].due_at == AT.astimezone(UTC)
    assert raw["prepared"] == raw["by-sqlalchemy"]  # the very same text (SQLite) or timestamptz (PostgreSQL)
    assert got["prepared"].attempts == got["by-sqlalchemy"].attempts == 0  # the column's default
    assert got["prepared"].lock_owner is None


def test_constants_in_the_statement_returning_and_rowcount(db_url: str) -> None:
    engine = Engine(db_url)
    task = {"instance_id": "i1", "token_id": "t1", "work_id": "w1", "node_id": "approve", "title": "Approve",
            "assignee": None, "candidate_groups": "[]", "form": "[]", "status": "open", "escalated": False,
            "created_at": AT, "due_at": None}
    with engine.db.begin() as conn:
        first = Prepared(insert(HT).returning(HT.c.id)).execute(conn, task).fetchone()[0]
        Prepared(insert(HT)).executemany(conn, [{**task, "token_id": "t2", "status": "completed"}])
    close = Prepared(update(HT).where(HT.c.instance_id == bindparam("i"), HT.c.status == "open")
                     .values(status="completed", completed_at=bindparam("b_at"), escalated=True))
    with engine.db.begin() as conn:
        assert close.execute(conn, {"i": "i1", "b_at": AT}).rowcount == 1  # only the open one
        assert close.execute(conn, {"i": "i1", "b_at": AT}).rowcount == 0
    with engine.db.connect() as conn:
        rows = conn.execute(select(HT.c.id, HT.c.status, HT.c.escalated, HT.c.completed_at)
                            .order_by(HT.c.id)).all()
    assert [(r.id == first, r.status, r.escalated) for r in rows] == [(True, "completed", True),
                                                                       (False, "completed", False)]
    assert rows[0].completed_at == AT.astimezone(UTC) and rows[1].completed_at is None


def test_a_moment_used_again_is_converted_once_and_written_as_sqlalchemy_writes_it(db_url: str) -> None:
    """The bind processors remember the last datetime they converted (a step stamps many rows with one moment):
    repeated, alternating and equal-but-other-zone moments are each written as SQLAlchemy writes them, also when
    threads share the statement."""
    other = datetime(2026, 5, 1, 10, 30, 15, 123456, tzinfo=UTC)  # the same instant as AT, another zone
    later = AT + timedelta(microseconds=1)
    moments = [AT, AT, later, AT, other, other, later, datetime(2026, 5, 1, 0, 0, tzinfo=UTC)]
    engine = Engine(db_url)
    statement = Prepared(insert(J))
    rows = [{"instance_id": "i1", "kind": "timer", "ref": f"r{i}", "due_at": m, "payload": "{}"}
            for i, m in enumerate(moments)]
    with engine.db.begin() as conn:
        conn.execute(insert(J), [{**r, "ref": "sa-" + r["ref"]} for r in rows])
        statement.executemany(conn, rows)
        compiled = statement._compiled(conn.dialect, rows[0])
    with engine.db.connect() as conn:
        raw = {r[0]: r[1] for r in conn.exec_driver_sql("select ref, cast(due_at as text) from wf_jobs")}
    assert [raw[f"r{i}"] for i in range(len(moments))] == [raw[f"sa-r{i}"] for i in range(len(moments))]
    assert raw["r0"] == raw["r4"] and raw["r0"] != raw["r2"]  # one instant, whatever its zone
    # Threads converting different moments through the one shared processor each get their own moment's value.
    process = compiled.processors[compiled.names.index("due_at")]
    assert process is not None
    expected = {m: process(m) for m in moments}
    wrong: list[datetime] = []

    def convert(moment: datetime) -> None:
        for _ in range(2000):
            if process(moment) != expected[moment]:
                wrong.append(moment)

    threads = [threading.Thread(target=convert, args=(m,)) for m in (AT, later, other, moments[-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_rows_with_other_keys_go_in_order(db_url: str) -> None:
    engine = Engine(db_url)
    rows = [{"instance_id": "i", "kind": "work", "ref": "a", "due_at": AT, "payload": "{}"},
            {"instance_id": "i", "kind": "work", "ref": "b", "due_at": AT, "payload": "{}", "attempts": 3},
            {"instance_id": "i", "kind": "work", "ref": "c", "due_at": AT, "payload": "{}"}]
    with engine.db.begin() as conn:
        Prepared(insert(J)).executemany(conn, rows)
    with engine.db.connect() as conn:
        got = conn.execute(select(J.c.ref, J.c.attempts).order_by(J.c.id)).all()
    assert [tuple(r) for r in got] == [("a", 0), ("b", 3), ("c", 0)]


def test_a_failing_statement_in_a_pipeline_fails_the_transaction(db_url: str) -> None:
    engine = Engine(db_url)
    row = {"instance_id": "i", "kind": "work", "ref": "a", "due_at": AT, "payload": "{}"}
    with pytest.raises(IntegrityError, match=r"(?i)null") as failed, engine.db.begin() as conn, pipelined(conn):
        Prepared(insert(J)).executemany(conn, [row, {**row, "ref": "b"}])
        Prepared(insert(J)).execute(conn, {**row, "kind": None})  # kind is NOT NULL
    assert not is_transient(failed.value)  # SQLAlchemy's error, as conn.execute raises it: an incident, no retry
    with engine.db.connect() as conn:
        assert conn.execute(select(J.c.id)).all() == []  # the rows before it rolled back too


def test_a_start_is_one_transaction_on_sqlite(tmp_path: object) -> None:
    """The start's rows and its audit row commit together: one BEGIN and one COMMIT per start."""
    engine = Engine(f"sqlite:///{tmp_path}/one.db")
    engine.deploy(designs.build_design("pr_review"))
    engine.start("pr_review", {"pr_number": 1})  # the pool's connection exists now
    statements: list[str] = []
    with engine.db.connect() as conn:
        conn.connection.dbapi_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
    engine.start("pr_review", {"pr_number": 2})
    words = [s.split()[0].upper() for s in statements]
    assert words.count("BEGIN") == 1 and words.count("COMMIT") == 1, statements
    assert any("wf_audit" in s for s in statements) and any("wf_instances" in s for s in statements)


def test_a_locked_database_is_a_transient_error(tmp_path: object) -> None:
    """A driver error through a prepared statement is SQLAlchemy's: 'database is locked' is OperationalError,
    which the worker retries instead of turning the step into an incident."""
    engine = Engine(f"sqlite:///{tmp_path}/locked.db")
    other = sqlite3.connect(f"{tmp_path}/locked.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with engine.db.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
            conn.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]  # a deferred read
            with pytest.raises(OperationalError, match="locked") as failed:
                Prepared(update(J).where(J.c.id == bindparam("i")).values(attempts=1)).execute(conn, {"i": 1})
        assert is_transient(failed.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
