"""Timer start events: a deployed definition's ``timer_start`` nodes start instances on a date or a cycle.

Scheduling. ``Engine.deploy`` of a new version calls :func:`schedule` in its transaction: it deletes
the pending start jobs of the definition's earlier versions (a new version replaces them, as in
Camunda) and writes one job per timer start node: kind ``start``, no instance (``instance_id``
NULL), ``ref`` the definition name, payload ``{definition, version, node_id, fired}``, due at
``Semantics.due(timer, deployed_at, fired=0)``. Redeploying unchanged content writes nothing, so a
restarted worker keeps the schedule it finds in the database.

Firing. :func:`fire` runs a due start job in ONE transaction: it deletes the job (only if this
worker still holds its lease, else it does nothing), starts the instance at the timer start node and
writes the job of the next occurrence. So each occurrence starts exactly one instance, also when a
worker dies half-way or two workers race for an expired lease. The instance starts with the
definition's declared defaults only (nobody supplies values; required variables are not checked) and
no business key. A date timer fires once (at once if the date lay in the past at deploy); a cycle
(cron in its time zone, or an ISO repeating interval such as ``R5/PT1H``) fires until its
repetitions are used up, or forever.

Catch-up (misfire) policy: **fire once, then resume the schedule.** A start job that runs late --
the worker was down (or busy) while one or more occurrences fell due -- starts ONE instance for all
of them, and the next occurrence is the first one of the schedule strictly after now. This is
Quartz's default for cron triggers (``MISFIRE_INSTRUCTION_FIRE_ONCE_NOW``) and what Camunda 8 does
for timer start events after a broker restart (camunda/camunda#9680): a daily 9am report that missed
three days sends one report, not three, and is back at 9am tomorrow. The schedule keeps its grid:
cron ticks in its zone; an ISO cycle with a start date on ``start + k * interval``; an ISO cycle
without one on ``first due + k * interval`` (the first due counts from the deploy time). Repetitions
(``R3/...``) count instances started, so ``R3`` starts three instances even when some were late
(Camunda decrements the count once per firing).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from engine.model.definition import ProcessDefinition
from engine.model.timers import Timer, is_cron
from engine.runtime.clock import aware
from engine.runtime.tables import JobRow
from engine.runtime.writes import Writes
from engine.semantics import Semantics

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

J = JobRow.__table__
KIND = "start"


def schedule(conn: Connection, definition: ProcessDefinition, now: datetime,
             calendars: dict[str, Any] | None = None) -> int:
    """Inside the deploy transaction: replace the definition's pending start jobs by this version's.

    Returns how many start jobs were written."""
    conn.execute(delete(J).where(J.c.instance_id.is_(None), J.c.kind == KIND, J.c.ref == definition.id))
    sem = Semantics(definition, calendars=calendars)
    jobs = []
    for node in sem.timer_starts():
        timer: Timer = node.timer  # type: ignore[attr-defined]
        due = sem.due(timer, now, fired=0)
        if due is not None:
            jobs.append(_job(definition.id, definition.version, node.id, 0, due))
    if jobs:
        conn.execute(insert(J), jobs)
    return len(jobs)


def fire(engine: Engine, job: Any) -> str | None:
    """Run a due start job: start one instance and schedule the next occurrence, in one transaction.

    Returns the new instance's id, or None when this worker no longer holds the job (its lease ran out
    and another worker took it, or a new deployment replaced it)."""
    payload = json.loads(job.payload)
    name, version, node_id = payload["definition"], int(payload["version"]), payload["node_id"]
    fired = int(payload.get("fired", 0)) + 1
    definition = engine.definition(name, version)  # outside the write transaction (may read the database)
    sem = engine.semantics(name, version)
    timer: Timer = definition.node(node_id).timer  # type: ignore[attr-defined]
    following = next_occurrence(sem, timer, aware(job.due_at), engine.clock.now(), fired)
    writes = Writes()
    with engine.db.begin() as conn:
        if not engine._settle(conn, job.id):
            conn.rollback()
            return None
        instance_id = engine._start_in(conn, writes, definition, {}, None, start_node=node_id)
        if following is not None:
            conn.execute(insert(J).values(**_job(name, version, node_id, fired, following)))
        writes.flush(conn)
    return instance_id


def next_occurrence(sem: Semantics, timer: Timer, last_due: datetime, now: datetime, fired: int) -> datetime | None:
    """The occurrence after ``last_due`` once the timer fired ``fired`` times; missed ones are skipped
    (see the module's catch-up policy). None when the timer is used up (a date, or the last repetition)."""
    following = sem.due(timer, last_due, fired)
    if following is None or following > now:
        return following
    if timer.cycle and is_cron(timer.cycle):
        return sem.due(timer, now, fired)
    interval = following - last_due  # an ISO cycle: last_due lies on its grid, so this is the interval
    return last_due + ((now - last_due) // interval + 1) * interval


def _job(name: str, version: int, node_id: str, fired: int, due: datetime) -> dict[str, Any]:
    return {"instance_id": None, "kind": KIND, "ref": name, "due_at": due,
            "payload": json.dumps({"definition": name, "version": version, "node_id": node_id, "fired": fired})}
