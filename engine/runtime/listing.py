"""Paged, filtered lists of instances: what a Runs page or an ops script asks of a large database.

``Engine.instance_page(...)`` returns one page (newest first) and the number of matching instances. Every
filter combination is served by an index on ``wf_instances`` whose last columns are ``(started_at, id)``
(see ``engine.runtime.tables.InstanceRow``), so a page costs the same at 500,000 instances as at 500: the
database walks the index from the newest matching entry and stops after ``limit`` rows. Deep pages are
cheapest through the keyset cursor (``after=page.next_after``: constant time at any depth); ``offset``
is offered for page numbers (it walks the skipped entries, still in the index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, exists, func, select, tuple_
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.runtime.clock import aware
from engine.runtime.tables import IncidentRow, InstanceRow

if TYPE_CHECKING:
    import pandas as pd

INST = InstanceRow.__table__
INC = IncidentRow.__table__
#: The columns of ``Engine.instances()`` and of ``InstancePage.rows``, in this order.
INSTANCE_COLUMNS = ("id", "definition_name", "definition_version", "business_key", "status", "started_at",
                    "ended_at", "steps")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class InstancePage:
    """One page of instances, newest first (``started_at`` descending, then ``id`` descending).

    ``rows``: a DataFrame with ``INSTANCE_COLUMNS`` (empty with the same columns when nothing matches).
    ``total``: how many instances match the filters, on all pages, counted up to the ``count_up_to`` asked
    (None when it was 0); ``total_capped``: True when more match than were counted (show "10,000+").
    ``next_after``: an opaque cursor for the next page (``instance_page(..., after=page.next_after)``), None on
    the last page.
    """

    rows: pd.DataFrame
    total: int | None
    offset: int
    limit: int
    next_after: str | None
    total_capped: bool = False

    @property
    def total_text(self) -> str:
        """``"1,234"``, ``"10,000+"`` when capped, ``"?"`` when not counted."""
        if self.total is None:
            return "?"
        return f"{self.total:,}{'+' if self.total_capped else ''}"

    @property
    def has_next(self) -> bool:
        return self.next_after is not None

    def __len__(self) -> int:
        return len(self.rows)


def filtered(query: Select[Any], *, status: str | Sequence[str] | None = None, definition: str | None = None,
             version: int | None = None, business_key: str | None = None, started_from: datetime | None = None,
             started_before: datetime | None = None, with_incident: bool | None = None) -> Select[Any]:
    """``query`` restricted to the instances matching every given filter (None: no restriction).

    ``with_incident``: True keeps the instances with an open incident on one of their tokens (what an operator
    must look at; ``wf_incidents`` is indexed on ``instance_id``), False those without one."""
    if status:
        query = query.where(INST.c.status == status) if isinstance(status, str) else \
            query.where(INST.c.status.in_(list(status)))
    if definition:
        query = query.where(INST.c.definition_name == definition)
    if version is not None:
        if not definition:
            raise EngineError("instance filter: a version needs its definition (definition=...)")
        query = query.where(INST.c.definition_version == version)
    if business_key is not None:
        query = query.where(INST.c.business_key == business_key)
    if started_from is not None:
        query = query.where(INST.c.started_at >= aware(started_from))
    if started_before is not None:
        query = query.where(INST.c.started_at < aware(started_before))
    if with_incident is not None:
        open_incident = exists().where(INC.c.instance_id == INST.c.id, INC.c.resolved_at.is_(None),
                                       INC.c.job.is_(None))
        query = query.where(open_incident if with_incident else ~open_incident)
    return query


def _cursor(started_at: datetime, instance_id: str) -> str:
    return f"{aware(started_at).isoformat()}|{instance_id}"


def _parse_cursor(after: str) -> tuple[datetime, str]:
    try:
        moment, instance_id = after.split("|", 1)
        return aware(datetime.fromisoformat(moment)), instance_id
    except ValueError:
        raise EngineError(f"instance page: {after!r} is not a cursor from InstancePage.next_after") from None


def page(conn: Connection, *, limit: int = 50, offset: int = 0, after: str | None = None,
         count_up_to: int | None = 10_000,
         **filters: Any) -> InstancePage:
    """One page of instances on ``conn`` (see ``Engine.instance_page`` for the parameters)."""
    import pandas as pd

    if not 1 <= limit <= MAX_LIMIT:
        raise EngineError(f"instance page: limit must be between 1 and {MAX_LIMIT} (got {limit})")
    if offset < 0:
        raise EngineError(f"instance page: offset must be 0 or more (got {offset})")
    columns = [INST.c[name] for name in INSTANCE_COLUMNS]
    query = filtered(select(*columns), **filters)
    if after is not None:
        moment, instance_id = _parse_cursor(after)
        query = query.where(tuple_(INST.c.started_at, INST.c.id) < tuple_(moment, instance_id))
    query = query.order_by(INST.c.started_at.desc(), INST.c.id.desc()).offset(offset or None).limit(limit + 1)
    records = conn.execute(query).mappings().all()
    more = len(records) > limit
    records = records[:limit]
    total, capped = None, False
    if count_up_to is None or count_up_to > 0:
        matching = filtered(select(INST.c.id), **filters)
        if count_up_to is not None:
            matching = matching.limit(count_up_to + 1)
        total = conn.execute(select(func.count()).select_from(matching.subquery())).scalar_one()
        if count_up_to is not None and total > count_up_to:
            total, capped = count_up_to, True
    rows = pd.DataFrame(records, columns=list(INSTANCE_COLUMNS))
    last = records[-1] if records and more else None
    return InstancePage(rows, total, offset, limit, _cursor(last["started_at"], last["id"]) if last else None, capped)


__all__ = ["INSTANCE_COLUMNS", "MAX_LIMIT", "InstancePage", "filtered", "page"]
