"""Prometheus metrics: starts, ends, steps, queue depth and lag, overdue tasks, incidents, running instances."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta
from typing import Any

from engine import register
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.metrics import instrument, serve


def ok(inputs: dict, context: object) -> dict:
    return {}


def broken(inputs: dict, context: object) -> dict:
    raise RuntimeError("the ledger is down")


register("test.metrics_ok", ok)
register("test.metrics_broken", broken)


def deploy(engine: Engine) -> None:
    quick = ProcessBuilder("quick")
    quick.start().service("work", agent="test.metrics_ok").end("done")
    engine.deploy(quick.build())
    review = ProcessBuilder("review")
    review.start().user("approve", title="Approve", assignee="ada", sla="PT1H").end("done")
    engine.deploy(review.build())
    failing = ProcessBuilder("failing")
    failing.start().service("post", agent="test.metrics_broken", retry={"attempts": 1}).end("done")
    engine.deploy(failing.build())


def value(metrics: Any, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counters_and_gauges(db_url: str) -> None:
    clock = VirtualClock()
    engine = Engine(db_url, clock=clock)
    deploy(engine)
    metrics = instrument(engine)
    for _ in range(3):
        engine.start("quick")
    engine.start("review")
    engine.start("failing")
    clock.advance(timedelta(minutes=5))  # the agent jobs have waited 5 minutes
    assert value(metrics, "waooaw_jobs_due", kind="work") == 4
    assert value(metrics, "waooaw_job_lag_seconds") == 300
    assert value(metrics, "waooaw_instances_started_total", definition="quick", version="1") == 3
    engine.run_until_idle()
    assert value(metrics, "waooaw_jobs_due", kind="work") is None
    assert value(metrics, "waooaw_job_lag_seconds") == 0
    assert value(metrics, "waooaw_instances_ended_total", definition="quick", version="1", status="completed") == 3
    assert value(metrics, "waooaw_instances_running", definition="review", version="1") == 1
    assert value(metrics, "waooaw_incidents_open") == 1
    assert value(metrics, "waooaw_human_tasks_overdue") == 0
    assert value(metrics, "waooaw_steps_total") >= 4  # type: ignore[operator]
    assert value(metrics, "waooaw_step_seconds_count") == value(metrics, "waooaw_steps_total")
    engine.advance(timedelta(hours=2))
    assert value(metrics, "waooaw_human_tasks_overdue") == 1


def test_the_endpoint_serves_them(tmp_path: Any) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'm.db'}")
    deploy(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve(engine, port, addr="127.0.0.1")
    engine.start("quick")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'waooaw_instances_started_total{definition="quick",version="1"} 1.0' in text
    assert 'waooaw_jobs_due{kind="work"} 1.0' in text
    assert "waooaw_step_seconds_bucket" in text
