"""History retention: a time-to-live per definition, cleanup in small batches, and an archive export.

As Camunda's history cleanup: a finished instance (completed, failed, cancelled, terminated) whose
definition has a time-to-live is removed, with every row that names it, once it ended longer ago than
that. Running instances are never touched. Set it with ``Engine.set_history_ttl("pr_review",
timedelta(days=30))`` (``definition=None``: the default for definitions without their own; ``ttl=None``
removes the setting: history kept forever, the default).

``cleanup`` works in batches of ``batch_size`` instances, each in its own short transaction (on
PostgreSQL the instance rows are taken ``FOR UPDATE SKIP LOCKED``; on SQLite a batch holds the write
lock for a few milliseconds), so workers keep running between batches. The worker runs a pass every
``cleanup_every`` seconds (``engine.runtime.worker``). Every table with an ``instance_id`` column is
cleaned, so tables added later are covered without changes here.

Archive: with ``archive=path`` each removed instance is first written as one JSON line
(``{"instance": {...}, "rows": {table: [row, ...]}}``, timestamps in ISO 8601, ``.gz`` paths
compressed), flushed before the batch commits: a crash between the two archives a batch twice, never
loses one. ``export`` writes the same lines for any filtered set of instances without removing them, with
sensitive variables masked unless the engine's principal may see them (``engine.security.sensitive``; the
cleanup archive is the backup of what it removes and keeps every value).

Messages that never reached an instance (``wf_messages`` rows with no ``instance_id``: buffered ones past
their expiry, ambiguous ones) are removed by the same pass once they are older than the default
time-to-live (or, without a default, the shortest one set); delivered ones go with their instance.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Table, and_, delete, insert, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from engine.errors import EngineError
from engine.runtime.clock import aware
from engine.runtime.listing import filtered
from engine.runtime.tables import HistoryTtlRow, InstanceRow, MessageRow

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

INST = InstanceRow.__table__
TTL = HistoryTtlRow.__table__
FINISHED = ("completed", "failed", "cancelled", "terminated")
DEFAULT = "*"  # the row holding the default time-to-live
Archive = str | Path | Callable[[dict[str, Any]], None] | None


@dataclass
class CleanupReport:
    """What one ``cleanup`` call removed: instances per definition, batches, and whether more is due."""

    removed: dict[str, int]
    batches: int
    more: bool  # stopped at ``max_batches`` with instances still due
    messages: int = 0  # undelivered messages (expired or ambiguous) removed

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def instance_tables() -> list[Table]:
    """Every table whose rows belong to an instance (an ``instance_id`` column), wf_instances excluded."""
    return [t for t in SQLModel.metadata.sorted_tables if "instance_id" in t.c and t is not INST]


# --- time-to-live settings --------------------------------------------------------------------------


def set_ttl(engine: Engine, definition: str | None, ttl: timedelta | None) -> None:
    key = definition or DEFAULT
    if ttl is not None and ttl <= timedelta(0):
        raise EngineError(f"history time-to-live of {key!r} must be positive (got {ttl})")
    with engine.db.begin() as conn:
        conn.execute(delete(TTL).where(TTL.c.definition_name == key))
        if ttl is not None:
            conn.execute(insert(TTL).values(definition_name=key, ttl_seconds=int(ttl.total_seconds()),
                                            updated_at=engine.clock.now()))


def ttls(engine: Engine) -> dict[str | None, timedelta]:
    """Definition name (None: the default) -> time-to-live."""
    with engine.reader.connect() as conn:
        rows = conn.execute(select(TTL.c.definition_name, TTL.c.ttl_seconds)).all()
    return {(None if name == DEFAULT else name): timedelta(seconds=s) for name, s in rows}


# --- archive lines -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _records(conn: Connection, ids: list[str]) -> Iterator[dict[str, Any]]:
    """One archive record per instance id (in ``ids`` order), with the rows of every instance table."""
    instances = {r["id"]: {k: _plain(v) for k, v in r.items()}
                 for r in conn.execute(select(INST).where(INST.c.id.in_(ids))).mappings()}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in ids}
    for table in instance_tables():
        order = [c for c in table.primary_key.columns]
        for r in conn.execute(select(table).where(table.c.instance_id.in_(ids)).order_by(*order)).mappings():
            rows[r["instance_id"]].setdefault(table.name, []).append({k: _plain(v) for k, v in r.items()})
    for i in ids:
        if i in instances:
            yield {"instance": instances[i], "rows": rows[i]}


@contextmanager
def _sink(archive: Archive) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    if archive is None or callable(archive):
        yield archive  # type: ignore[misc]
        return
    path = Path(archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream: IO[str] = gzip.open(path, "at", encoding="utf-8") if path.suffix == ".gz" else \
        open(path, "a", encoding="utf-8")  # noqa: SIM115  (closed below)
    try:
        def write(record: dict[str, Any]) -> None:
            stream.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

        write.flush = stream.flush  # type: ignore[attr-defined]
        yield write
    finally:
        stream.close()


def export(engine: Engine, archive: str | Path | Callable[[dict[str, Any]], None], batch_size: int = 500,
           **filters: Any) -> int:
    """Write the instances matching ``filters`` (as ``Engine.instance_page``'s) as archive lines; returns
    how many. Reads in batches of ``batch_size`` in start order, nothing is removed."""
    count = 0
    with _sink(archive) as write, engine.reader.connect() as conn:
        assert write is not None
        after = None
        while True:
            query = filtered(select(INST.c.started_at, INST.c.id), **filters)
            if after is not None:
                query = query.where(tuple_(INST.c.started_at, INST.c.id) > tuple_(*after))
            keys = conn.execute(query.order_by(INST.c.started_at, INST.c.id).limit(batch_size)).all()
            if not keys:
                return count
            for record in _records(conn, [k.id for k in keys]):
                write(_shown(engine, record))
                count += 1
            after = (keys[-1].started_at, keys[-1].id)


def _shown(engine: Engine, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as the engine's principal may see it (sensitive variables masked unless operator/admin)."""
    from engine.security.sensitive import mask_record, may_see

    if may_see(engine.principal):
        return record
    instance = record["instance"]
    definition = engine.definition(instance["definition_name"], instance["definition_version"])
    return mask_record(definition, record, engine.principal)


# --- cleanup -----------------------------------------------------------------------------------------


def _due_definitions(conn: Connection, settings: dict[str | None, timedelta]) -> Iterable[tuple[str, timedelta]]:
    names = [r[0] for r in conn.execute(select(INST.c.definition_name).distinct())] if None in settings else \
        [n for n in settings if n is not None]
    for name in names:
        ttl = settings.get(name) or settings.get(None)
        if ttl is not None:
            yield name, ttl


def _cleanup_messages(engine: Engine, keep: timedelta, now: datetime) -> int:
    """Remove undelivered messages (expired buffered ones, ambiguous ones) older than ``keep``; their count."""
    M = MessageRow.__table__
    cutoff = now - keep
    with engine.db.begin() as tx:
        return tx.execute(delete(M).where(M.c.instance_id.is_(None), or_(
            and_(M.c.status == "buffered", M.c.expires_at < cutoff),
            and_(M.c.status == "ambiguous", M.c.created_at < cutoff)))).rowcount or 0


def cleanup(engine: Engine, batch_size: int = 200, max_batches: int | None = None, archive: Archive = None,
            now: datetime | None = None) -> CleanupReport:
    """Remove finished instances past their definition's time-to-live, ``batch_size`` per transaction,
    at most ``max_batches`` batches (None: until none is due). ``now`` defaults to the engine's clock."""
    if batch_size < 1:
        raise EngineError(f"history cleanup: batch_size must be at least 1 (got {batch_size})")
    now = aware(now or engine.clock.now())
    settings = ttls(engine)
    removed: dict[str, int] = {}
    batches = 0
    if not settings:
        return CleanupReport(removed, 0, False)
    with engine.reader.connect() as conn:
        due = list(_due_definitions(conn, settings))
    messages = _cleanup_messages(engine, settings.get(None) or min(settings.values()), now)
    postgres = engine.db.dialect.name == "postgresql"
    with _sink(archive) as write:
        for name, ttl in due:
            cutoff = now - ttl
            for status in FINISHED:
                while True:
                    if max_batches is not None and batches >= max_batches:
                        return CleanupReport(removed, batches, True, messages)
                    # Oldest first through ix_wf_instances_definition_status_started; ended_at filters the rest.
                    query = (select(INST.c.id).where(INST.c.definition_name == name, INST.c.status == status,
                                                     INST.c.ended_at < cutoff)
                             .order_by(INST.c.started_at).limit(batch_size))
                    if postgres:
                        query = query.with_for_update(skip_locked=True)
                    with engine.db.begin() as tx:
                        ids = [r[0] for r in tx.execute(query)]
                        if not ids:
                            break
                        if write is not None:
                            for record in _records(tx, ids):
                                write(record)
                            flush = getattr(write, "flush", None)
                            if flush is not None:
                                flush()
                        for table in instance_tables():
                            tx.execute(delete(table).where(table.c.instance_id.in_(ids)))
                        tx.execute(delete(INST).where(INST.c.id.in_(ids)))
                    batches += 1
                    removed[name] = removed.get(name, 0) + len(ids)
                    if len(ids) < batch_size:
                        break
    return CleanupReport(removed, batches, False, messages)


__all__ = ["FINISHED", "CleanupReport", "cleanup", "export", "instance_tables", "set_ttl", "ttls"]
