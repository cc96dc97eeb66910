"""In-step failures (issue 14): whatever goes wrong while the worker applies a step ends as an incident on that
instance, with the error, after the batch's isolation retry; the job is gone (no retry forever) and the worker
goes on with the other instances' work. One test per kind of failure, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engine import limits
from engine.model import ProcessBuilder
from engine.model.nodes import RetryPolicy
from engine.registry import register
from engine.runtime import Engine, VirtualClock
from engine.security import Principal


def ok(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {}


def returns_a_set(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"tags": {"a", "b"}}


register("test14.ok", ok)
register("test14.returns_a_set", returns_a_set)


def _jobs(engine: Engine, instance_id: str) -> int:
    with engine.db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM wf_jobs WHERE instance_id = :i"), {"i": instance_id}).scalar()


def timer_after_work(timer: str) -> Any:
    b = ProcessBuilder("timed")
    b.start().service("a", agent="test14.ok").timer("wait", timer).end("done")
    return b.build()


def healthy() -> Any:
    b = ProcessBuilder("healthy")
    b.start().service("a", agent="test14.ok").service("b", agent="test14.ok").end("done")
    return b.build()


def sla_after_work(sla: str, on_timeout: Any = None) -> Any:
    b = ProcessBuilder("sla")
    b.start().service("a", agent="test14.ok").user("review", title="Review", sla=sla,
                                                      on_timeout=on_timeout).end("done")
    return b.build()


def storing_a_set() -> Any:
    b = ProcessBuilder("sets")
    b.start().service("a", agent="test14.returns_a_set", retry=RetryPolicy(attempts=1)).end("done")
    return b.build()


def _timer_beyond_calendar(engine: Engine) -> str:
    """A definition deployed under a larger limit: its timer (8,200 years) overflows the calendar when armed."""
    with limits.override(max_timer_duration="P9999999D"):
        engine.deploy(timer_after_work("P3000000D"))
    return engine.start("timed")


def _limit_lowered_after_deploy(engine: Engine) -> str:
    """Deployed under a larger limit, run under the default one: arming the timer is refused."""
    with limits.override(max_timer_duration="P99999D"):
        engine.deploy(timer_after_work("P50000D"))
    return engine.start("timed")


def _sla_beyond_calendar(engine: Engine) -> str:
    with limits.override(max_timer_duration="P9999999D"):
        engine.deploy(sla_after_work("P3000000D"))
    return engine.start("sla")


def _agent_output_not_storable(engine: Engine) -> str:
    engine.deploy(storing_a_set())
    return engine.start("sets")


def _bug_in_a_rule(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    engine.deploy(timer_after_work("PT1H"))
    sem = engine.semantics("timed", 1)
    original = sem.step

    def broken(state: Any, event: Any, now: Any) -> Any:
        if type(event).__name__ == "WorkDone":
            raise KeyError("a bug in a rule")
        return original(state, event, now)

    monkeypatch.setattr(sem, "step", broken)
    return engine.start("timed")


LARGE = {"max_timer_duration": "P9999999D"}  # the limits a run may be under (an operator raised them)

# kind -> (set-up returning the failing instance, text of the incident's error, limits while the worker runs)
KINDS: dict[str, tuple[Callable[..., str], str, dict[str, Any]]] = {
    "timer-beyond-calendar": (_timer_beyond_calendar, "OverflowError", LARGE),
    "timer-limit-lowered": (_limit_lowered_after_deploy, "max_timer_duration", {}),
    "sla-beyond-calendar": (_sla_beyond_calendar, "OverflowError", LARGE),
    "agent-output-not-storable": (_agent_output_not_storable, "not JSON-representable", {}),
    "bug-in-a-rule": (_bug_in_a_rule, "a bug in a rule", {}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_failing_step_becomes_an_incident_and_the_rest_goes_on(kind: str, db_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(healthy())
    setup, expected, during = KINDS[kind]
    others = [engine.start("healthy") for _ in range(3)]
    failing = setup(engine, monkeypatch) if kind == "bug-in-a-rule" else setup(engine)
    others += [engine.start("healthy") for _ in range(3)]
    with limits.override(**during):
        engine.run_until_idle()  # the failing step shares a batch with the others: isolated, then an incident
    incidents = [i for i in engine.incidents() if i["instance_id"] == failing]
    assert len(incidents) == 1 and expected in incidents[0]["error"], incidents
    assert incidents[0]["traceback"]  # the detail is kept for the operator
    assert engine.instance(failing).status == "running"  # waiting for a retry, not failed silently
    assert _jobs(engine, failing) == 0  # nothing left to run again by itself: no retry forever
    assert {engine.instance(i).status for i in others} == {"completed"}
    assert engine.run_until_idle() == 0 and len(engine.incidents()) == 1  # tried once, not again and again


def test_a_missing_sla_handler_is_an_incident_not_silently_dropped(db_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploy refuses a handler nobody registered; one missing where the worker runs (its module not imported
    there) is an incident when the SLA passes, not a line in a log."""
    from engine import registry

    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    register("test14.no_such_handler", ok)
    engine.deploy(sla_after_work("PT1H", on_timeout="test14.no_such_handler"))
    monkeypatch.delitem(registry._registry, "test14.no_such_handler")
    engine.deploy(healthy())
    failing = engine.start("sla")
    engine.run_until_idle()
    engine.advance(timedelta(hours=2))
    other = engine.start("healthy")
    engine.run_until_idle()
    incidents = engine.incidents()
    assert [i["instance_id"] for i in incidents] == [failing]
    assert "test14.no_such_handler" in incidents[0]["error"] and incidents[0]["node_id"] == "review"
    assert engine.instance(other).status == "completed"


def test_the_worker_loop_goes_on_after_a_failing_step(tmp_path: Path) -> None:
    from engine.runtime import worker

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = Engine(url, principal=Principal.system())
    engine.deploy(healthy())
    failing = _limit_lowered_after_deploy(engine)
    others = [engine.start("healthy") for _ in range(4)]
    ran = worker.run_worker(url, poll=0.01, max_idle=0.3)
    assert ran == 1 + 2 * len(others)  # the failing instance's one job ran once, each other instance's two
    assert {engine.instance(i).status for i in others} == {"completed"}
    assert [i["instance_id"] for i in engine.incidents()] == [failing]
