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
from engine.errors import EngineError
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


# --- jobs that run alone: a message delivery, a timer start (no instance yet) -------------------------------


def _sender() -> Any:
    b = ProcessBuilder("sender", variables={"amount": str})
    b.start().send("notify", message="order", payload=["amount"]).end("sent")
    return b.build()


def _receiver(amount_type: type) -> Any:
    b = ProcessBuilder("receiver", variables={"amount": amount_type})
    b.message_start("go", message="order").task("book").end("booked")
    return b.build()


def _open_jobs(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM wf_jobs")).scalar()


def test_a_message_that_cannot_be_delivered_is_an_incident_on_its_sender_and_retry_delivers_it(
        db_url: str) -> None:
    """The receiver's message start declares ``amount`` an int; the sender sends text. Delivery fails the same
    way every time: an incident on the sending instance holds the message job (no retry at every lease), the
    worker goes on; once a new receiver version accepts the value, retry delivers it."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(healthy())
    engine.deploy(_sender())
    engine.deploy(_receiver(int))
    sender = engine.start("sender", {"amount": "lots"})
    others = [engine.start("healthy") for _ in range(3)]
    engine.run_until_idle()
    [incident] = engine.incidents()
    assert incident["instance_id"] == sender and incident["node_id"] == "notify"
    assert "delivering message 'order' failed" in incident["error"] and "amount" in incident["error"]
    assert incident["job"]["kind"] == "message" and incident["traceback"]
    assert _open_jobs(engine) == 0 and engine.run_until_idle() == 0  # held, not run again and again
    assert {engine.instance(i).status for i in others} == {"completed"}
    assert engine.instances(definition="receiver").empty
    engine.deploy(_receiver(str))  # the cause fixed
    engine.retry(incident)
    engine.run_until_idle()
    assert engine.incidents() == []
    [started] = engine.instances(definition="receiver")["id"]
    assert engine.instance(started).variables == {"amount": "lots"}


def _ticking(timer: str) -> Any:
    b = ProcessBuilder("ticking")
    b.timer_start("tick", "R2/PT1H").timer("wait", timer).end("done")
    return b.build()


def test_a_timer_start_that_cannot_start_is_an_incident_without_an_instance(db_url: str) -> None:
    """A timer start whose first step cannot be written (a timer deployed under a larger max_timer_duration than
    the worker runs with): an incident with no instance holds the start job; cancel_incident drops it, retry
    (under the larger limit again) starts the instance and the schedule goes on."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(healthy())
    with limits.override(max_timer_duration="P99999D"):
        engine.deploy(_ticking("P50000D"))
    other = engine.start("healthy")
    engine.advance(timedelta(hours=1, minutes=1))
    [incident] = engine.incidents()
    assert incident["instance_id"] is None and incident["node_id"] == "tick"
    assert "the timer start 'tick' of 'ticking' failed" in incident["error"]
    assert "max_timer_duration" in incident["error"] and incident["job"]["kind"] == "start"
    assert engine.instances(definition="ticking").empty and _open_jobs(engine) == 0
    assert engine.instance(other).status == "completed"
    with pytest.raises(EngineError, match="holds a token"):  # an instance's incident is not dropped this way
        engine.cancel_incident(_token_incident(engine))
    with limits.override(max_timer_duration="P99999D"):
        engine.retry(incident)
        engine.run_until_idle()
    assert [i for i in engine.incidents() if i["job"]] == []
    assert len(engine.instances(definition="ticking")) == 1
    with engine.db.connect() as conn:  # the next occurrence is scheduled again
        assert conn.execute(text("SELECT count(*) FROM wf_jobs WHERE kind = 'start'")).scalar() == 1
    engine.advance(timedelta(hours=1))  # the second occurrence fails under the default limit: held again
    [again] = [i for i in engine.incidents() if i["job"]]
    engine.cancel_incident(again["id"])
    assert [i for i in engine.incidents() if i["job"]] == [] and engine.run_until_idle() == 0
    with pytest.raises(EngineError, match="no open incident"):
        engine.retry(again["id"])


def _token_incident(engine: Engine) -> int:
    """An ordinary incident on a token (the agent output that cannot be stored)."""
    engine.deploy(storing_a_set())
    instance_id = engine.start("sets")
    engine.run_until_idle()
    return next(i["id"] for i in engine.incidents() if i["instance_id"] == instance_id)


def test_a_timer_start_replaced_by_a_new_version_is_not_retried(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    with limits.override(max_timer_duration="P99999D"):
        engine.deploy(_ticking("P50000D"))
    engine.advance(timedelta(hours=1, minutes=1))
    [incident] = engine.incidents()
    engine.deploy(_ticking("PT1M"))  # v2 has its own schedule
    with pytest.raises(EngineError, match="v2 was deployed since"):
        engine.retry(incident)
    engine.cancel_incident(incident)
    engine.advance(timedelta(hours=1))
    assert engine.incidents() == [] and len(engine.instances(definition="ticking")) == 1


def test_the_cli_lists_a_held_job_and_cancels_its_incident(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = Engine(url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(_sender())
    engine.deploy(_receiver(int))
    engine.start("sender", {"amount": "lots"})
    engine.run_until_idle()
    [incident] = engine.incidents()
    runner = CliRunner()
    listed = runner.invoke(app, ["incidents", "--db", url])
    assert listed.exit_code == 0 and "message" in listed.output and "delivering message" in listed.output
    done = runner.invoke(app, ["cancel-incident", str(incident["id"]), "--db", url])
    assert done.exit_code == 0, done.output
    assert engine.incidents() == []
    again = runner.invoke(app, ["cancel-incident", str(incident["id"]), "--db", url])
    assert again.exit_code != 0 and "no open incident" in again.output and "Traceback" not in again.output
