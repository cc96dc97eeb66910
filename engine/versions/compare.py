"""A/B comparison of a definition's versions, from what their live instances did.

Per version, over a window of start times: instances started, completed, failed (ended ``failed`` or
``terminated`` by an error, or holding an incident at any time), completion rate, cycle time p50/p90
(hours, completed instances), SLA breach rate of human tasks (breached or escalated / tasks with an
SLA that ended or are overdue), per user task, and outcome shares per end event when the activity
history records them.

``compare_versions(engine, name, a, b)`` puts two versions side by side with the difference and its
significance, using the same statistics as the simulator's what-if (``engine.statistics``): Welch's
t-test for the mean cycle time, the two-proportion z-test for rates.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.errors import EngineError
from engine.model.nodes import END_KINDS
from engine.runtime.clock import aware
from engine.runtime.tables import ActivityRow, HumanTaskRow, IncidentRow, InstanceRow
from engine.statistics import difference, proportions

if TYPE_CHECKING:
    import pandas as pd

    from engine.runtime.engine import Engine

INST, HT, INC, A = InstanceRow.__table__, HumanTaskRow.__table__, IncidentRow.__table__, ActivityRow.__table__
FAILED_STATUSES = frozenset({"failed"})


@dataclass
class VersionSample:
    """The raw per-version observations behind the table (kept for the tests of significance)."""

    version: int
    started: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0
    cancelled: int = 0
    with_incident: int = 0
    cycle_hours: list[float] = field(default_factory=list)
    sla_tasks: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))  # node -> breached?
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def failures(self) -> int:
        return self.failed + self.with_incident

    @property
    def sla_breaches(self) -> tuple[int, int]:
        flags = [b for values in self.sla_tasks.values() for b in values]
        return sum(flags), len(flags)


def samples(engine: Engine, name: str, since: datetime | None = None, until: datetime | None = None,
            versions: list[int] | None = None) -> dict[int, VersionSample]:
    """Observations per version of the instances of ``name`` started in ``[since, until)``."""
    now = engine.clock.now()
    query = select(INST.c.id, INST.c.definition_version, INST.c.status, INST.c.started_at, INST.c.ended_at,
                   INST.c.error).where(INST.c.definition_name == name)
    if since is not None:
        query = query.where(INST.c.started_at >= since)
    if until is not None:
        query = query.where(INST.c.started_at < until)
    if versions:
        query = query.where(INST.c.definition_version.in_(versions))
    out: dict[int, VersionSample] = {v: VersionSample(v) for v in versions or []}
    with engine.reader.connect() as conn:
        rows = conn.execute(query).all()
        version_of = {r.id: r.definition_version for r in rows}
        incident_ids = {r.instance_id for r in conn.execute(select(INC.c.instance_id).where(
            INC.c.instance_id.in_(select(query.with_only_columns(INST.c.id).subquery()))))}
        tasks = conn.execute(select(HT.c.instance_id, HT.c.node_id, HT.c.status, HT.c.due_at, HT.c.within_sla,
                                    HT.c.escalated).where(HT.c.due_at.is_not(None), HT.c.instance_id.in_(
                                        select(query.with_only_columns(INST.c.id).subquery())))).all()
        ends = _end_events(conn, list(version_of))
    for r in rows:
        s = out.setdefault(r.definition_version, VersionSample(r.definition_version))
        s.started += 1
        if r.status == "completed":
            s.completed += 1
            if r.ended_at is not None:
                s.cycle_hours.append((aware(r.ended_at) - aware(r.started_at)).total_seconds() / 3600)
        elif r.status in FAILED_STATUSES:
            s.failed += 1
        elif r.status == "running":
            s.running += 1
        else:
            s.cancelled += 1
        if r.id in incident_ids and r.status not in FAILED_STATUSES:
            s.with_incident += 1
        if r.id in ends:
            s.outcomes[ends[r.id]] += 1
    for t in tasks:
        s = out[version_of[t.instance_id]]
        if t.status == "completed":
            breached = t.within_sla is False or bool(t.escalated)
        elif t.status == "open":
            if aware(t.due_at) > now and not t.escalated:
                continue  # still inside its SLA: not decided yet
            breached = True
        else:
            continue  # cancelled with the instance: says nothing about the SLA
        s.sla_tasks[t.node_id].append(breached)
    return out


def _end_events(conn: Any, instance_ids: list[str]) -> dict[str, str]:
    """Which end event each finished instance reached, from the activity history (``wf_activities``)."""
    ends: dict[str, str] = {}
    for chunk in range(0, len(instance_ids), 500):
        ids = instance_ids[chunk:chunk + 500]
        query = select(A.c.instance_id, A.c.node_id).where(A.c.instance_id.in_(ids), A.c.kind.in_(END_KINDS),
                                                           A.c.scope.is_(None))
        for row in conn.execute(query):
            ends[row.instance_id] = row.node_id
    return ends


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def version_table(engine: Engine, name: str, since: datetime | None = None, until: datetime | None = None
                  ) -> pd.DataFrame:
    """One row per version: ``version, started, completed, failed, running, completion_rate, failure_rate,
    cycle_p50_h, cycle_p90_h, sla_breach_rate, outcomes`` (dict end event -> share)."""
    import pandas as pd

    rows = []
    for v, s in sorted(samples(engine, name, since, until).items()):
        breached, decided = s.sla_breaches
        rows.append({"version": v, "started": s.started, "completed": s.completed, "failed": s.failures,
                     "running": s.running, "completion_rate": s.completed / s.started if s.started else math.nan,
                     "failure_rate": s.failures / s.started if s.started else math.nan,
                     "cycle_p50_h": _quantile(s.cycle_hours, 0.5), "cycle_p90_h": _quantile(s.cycle_hours, 0.9),
                     "sla_breach_rate": breached / decided if decided else math.nan,
                     "outcomes": {k: n / s.completed for k, n in sorted(s.outcomes.items())} if s.completed else {}})
    return pd.DataFrame(rows, columns=["version", "started", "completed", "failed", "running", "completion_rate",
                                       "failure_rate", "cycle_p50_h", "cycle_p90_h", "sla_breach_rate", "outcomes"])


def compare_versions(engine: Engine, name: str, a: int, b: int, since: datetime | None = None,
                     until: datetime | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Version ``a`` against ``b``: one row per metric with ``metric, subject, test, v{a}, v{b},
    difference (b - a), ci_low, ci_high, p_value, significant``.

    Metrics: completion_rate, failure_rate, sla_breach_rate (overall and per user task), outcome
    share per end event (two-proportion z-test) and cycle time in hours (Welch on the completed
    instances' cycle times; p50/p90 are in :func:`version_table`). Raises ``EngineError`` when a
    version has no instances in the window."""
    import pandas as pd

    got = samples(engine, name, since, until, versions=[a, b])
    sa, sb = got[a], got[b]
    for s in (sa, sb):
        if s.started == 0:
            raise EngineError(f"version {s.version} of {name!r} has no instances in the window: nothing to compare")
    labels = (f"v{a}", f"v{b}")
    rows: list[dict[str, Any]] = []

    def rate(metric: str, subject: str, xa: int, na: int, xb: int, nb: int) -> None:
        rows.append({"metric": metric, "subject": subject, "test": "two-proportion z",
                     **proportions(xa, na, xb, nb, alpha, labels)})

    rate("completion_rate", "", sa.completed, sa.started, sb.completed, sb.started)
    rate("failure_rate", "", sa.failures, sa.started, sb.failures, sb.started)
    rate("sla_breach_rate", "", *sa.sla_breaches, *sb.sla_breaches)
    for node in sorted(set(sa.sla_tasks) | set(sb.sla_tasks)):
        fa, fb = sa.sla_tasks.get(node, []), sb.sla_tasks.get(node, [])
        rate("sla_breach_rate", node, sum(fa), len(fa), sum(fb), len(fb))
    for end in sorted(set(sa.outcomes) | set(sb.outcomes)):
        rate("outcome_share", end, sa.outcomes.get(end, 0), sa.completed, sb.outcomes.get(end, 0), sb.completed)
    rows.append({"metric": "cycle_time_h", "subject": "mean", "test": "Welch t",
                 **difference(pd.Series(sa.cycle_hours, dtype=float), pd.Series(sb.cycle_hours, dtype=float),
                              alpha, False, labels)})
    columns = ["metric", "subject", "test", *labels, "difference", "ci_low", "ci_high", "p_value", "significant"]
    return pd.DataFrame(rows)[columns]


def to_json_safe(frame: pd.DataFrame) -> str:
    """The table as JSON (CLI ``--output json``): NaN becomes null."""
    return json.dumps(json.loads(frame.to_json(orient="records", default_handler=str)), indent=2)
