"""Prometheus metrics of a worker (``waooaw worker --metrics-port 9464``), with ``prometheus_client``.

Counted by this process as it commits (sum them over workers in PromQL):

- ``waooaw_instances_started_total{definition,version}``: instances this process started (API calls,
  timer and message starts);
- ``waooaw_instances_ended_total{definition,version,status}``: instances that ended in a step this
  process ran, ``status`` completed | failed | cancelled | terminated (the "completed" and "failed"
  series are what dashboards chart);
- ``waooaw_step_seconds``: histogram of one step transaction (lock, core, write, commit) divided by the
  events it applied (a batch commits many: group commit), and ``waooaw_steps_total``;
- ``waooaw_job_batch_seconds``: histogram of a worker loop batch (claim, agent calls, commit).

Read from the database at each scrape (indexed queries, cheap at 500,000 instances):

- ``waooaw_jobs_due{kind}`` (queue depth: due and not locked) and ``waooaw_job_lag_seconds`` (how long the
  oldest due job has waited);
- ``waooaw_human_tasks_overdue`` (open tasks past their SLA due time), ``waooaw_incidents_open``;
- ``waooaw_instances_running{definition,version}``.

A rolled-back transaction counts nothing; a batch retried after a lost connection may count its
events twice (counters are per process and approximate in that one case).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select

from engine.runtime.clock import aware
from engine.runtime.tables import HumanTaskRow, IncidentRow, InstanceRow, JobRow

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

J, HT, INC, INST = JobRow.__table__, HumanTaskRow.__table__, IncidentRow.__table__, InstanceRow.__table__
STEP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class EngineMetrics:
    """The engine's observer (``engine.observer``): counters and histograms in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.started_total = Counter("waooaw_instances_started", "Instances started by this process",
                                     ["definition", "version"], registry=self.registry)
        self.ended_total = Counter("waooaw_instances_ended", "Instances that ended in a step this process ran",
                                   ["definition", "version", "status"], registry=self.registry)
        self.steps_total = Counter("waooaw_steps", "Events applied to instances (steps) by this process",
                                   registry=self.registry)
        self.step_seconds = Histogram("waooaw_step_seconds", "Seconds per step: a step transaction's duration "
                                      "divided by the events it applied", buckets=STEP_BUCKETS,
                                      registry=self.registry)
        self.batch_seconds = Histogram("waooaw_job_batch_seconds", "Seconds per worker batch (claim, agent "
                                       "calls, commit)", registry=self.registry)

    # --- called by the engine (after a commit) ---------------------------------------------------

    def started(self, definition: str, version: int, count: int = 1) -> None:
        self.started_total.labels(definition, str(version)).inc(count)

    def ended(self, definition: str, version: int, status: str) -> None:
        self.ended_total.labels(definition, str(version), status).inc()

    def stepped(self, seconds: float, events: int) -> None:
        if events:
            self.steps_total.inc(events)
            per = seconds / events
            for _ in range(events):
                self.step_seconds.observe(per)

    def batch(self, seconds: float) -> None:
        self.batch_seconds.observe(seconds)


class DatabaseGauges(Collector):
    """Queue depth, lag, overdue tasks, open incidents and running instances, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = aware(self.engine.clock.now())
        due = GaugeMetricFamily("waooaw_jobs_due", "Jobs due and not locked (queue depth)", labels=["kind"])
        lag = GaugeMetricFamily("waooaw_job_lag_seconds", "Seconds the oldest due, unlocked job has waited")
        overdue = GaugeMetricFamily("waooaw_human_tasks_overdue", "Open human tasks past their SLA due time")
        incidents = GaugeMetricFamily("waooaw_incidents_open", "Incidents not resolved")
        running = GaugeMetricFamily("waooaw_instances_running", "Running instances",
                                    labels=["definition", "version"])
        free = or_(J.c.lock_owner.is_(None), J.c.lock_expires_at < now)
        with self.engine.reader.connect() as conn:
            oldest: Any = None
            for kind, count, first in conn.execute(select(J.c.kind, func.count(), func.min(J.c.due_at))
                                                   .where(and_(J.c.due_at <= now, free)).group_by(J.c.kind)):
                due.add_metric([kind], count)
                first = aware(first) if first is not None else None
                if first is not None and (oldest is None or first < oldest):
                    oldest = first
            lag.add_metric([], (now - oldest).total_seconds() if oldest is not None else 0.0)
            overdue.add_metric([], conn.execute(select(func.count()).select_from(HT).where(
                HT.c.status == "open", HT.c.due_at < now)).scalar_one())
            incidents.add_metric([], conn.execute(select(func.count()).select_from(INC).where(
                INC.c.resolved_at.is_(None))).scalar_one())
            for name, version, count in conn.execute(
                    select(INST.c.definition_name, INST.c.definition_version, func.count())
                    .where(INST.c.status == "running").group_by(INST.c.definition_name, INST.c.definition_version)):
                running.add_metric([name, str(version)], count)
        yield from (due, lag, overdue, incidents, running)


def instrument(engine: Engine, registry: CollectorRegistry | None = None) -> EngineMetrics:
    """Count ``engine``'s starts, ends and steps, and read its queue at each scrape, in one registry."""
    metrics = EngineMetrics(registry)
    metrics.registry.register(DatabaseGauges(engine))
    engine.observer = metrics
    return metrics


def serve(engine: Engine, port: int, addr: str = "0.0.0.0") -> EngineMetrics:
    """Instrument ``engine`` and serve ``/metrics`` on ``addr:port`` from a daemon thread."""
    metrics = instrument(engine)
    start_http_server(port, addr=addr, registry=metrics.registry)
    return metrics


__all__ = ["DatabaseGauges", "EngineMetrics", "instrument", "serve"]
