"""The activity history and the armed waits of an instance (issue 10, missing APIs 10 and 11), on SQLite and
PostgreSQL: every node passed, in order, with its duration and outcome; timers, messages and jobs per instance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

import engine as wf
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.security import Principal


def _review() -> Any:
    b = ProcessBuilder("review_history", variables={"ok": bool})
    fork = b.start().service("lint", agent="history_test.lint", outputs=["ok"]).parallel("fork")
    left = fork.branch().user("approve", assignee="ada")
    right = fork.branch().task("notify")
    b.join("join", left, right).exclusive("gw").when("ok").end("merged")
    b.at("gw").otherwise().end("rejected")
    b.at("approve").on_timer("PT4H", id="too_slow").terminate("expired")
    return b.build()


def test_every_node_passed_is_recorded_in_order_with_duration_and_outcome(db_url: str) -> None:
    wf.register("history_test.lint", lambda inputs, ctx: {"ok": True})
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_review())
    i = e.start("review_history")
    e.run_until_idle()
    e.advance(timedelta(hours=1))
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], actor="ada")
    history = e.activities(i)
    assert list(history.columns) == ["node_id", "kind", "scope", "token_id", "started_at", "ended_at", "duration",
                                     "outcome"]
    assert list(history["node_id"]) == ["start", "lint", "fork", "approve", "notify", "join", "join", "gw",
                                        "merged"]
    assert set(history["outcome"]) == {"completed"}
    approve = history.set_index("node_id").loc["approve"]
    assert approve["duration"] == pd.Timedelta(hours=1) and approve["kind"] == "user_task"
    assert e.instance(i).activities is not None and len(e.instance(i).activities) == len(history)


def test_interrupted_and_cancelled_activities_say_so(db_url: str) -> None:
    wf.register("history_test.lint", lambda inputs, ctx: {"ok": False})
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_review())
    i = e.start("review_history")
    e.run_until_idle()
    running = e.activities(i)
    assert running.set_index("node_id").loc["approve", "outcome"] is None  # still there
    assert pd.isna(running.set_index("node_id").loc["approve", "duration"])
    e.advance(timedelta(hours=5))  # the timer boundary interrupts the task, the terminate end ends the rest
    outcomes = dict(zip(e.activities(i)["node_id"], e.activities(i)["outcome"], strict=False))
    assert outcomes["approve"] == "interrupted" and outcomes["too_slow"] == "completed"
    assert outcomes["expired"] == "completed" and outcomes["join"] == "cancelled"  # the waiting join token
    assert e.activities(i)["ended_at"].notna().all()


def test_the_waits_of_an_instance_behind_an_event_gateway(db_url: str) -> None:
    b = ProcessBuilder("racer", variables={"order_id": str})
    gate = b.start().user("prepare", assignee="ada", sla="PT8H").race("wait")
    gate.timer("give_up", "PT2H").end("gave_up")
    gate.receive("paid", "order.paid", correlation_key="order_id").end("done")
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(b.build())
    i = e.start("racer", {"order_id": "A-7"})
    e.run_until_idle()
    waits = e.waits(i)
    assert list(zip(waits["kind"], waits["node_id"], waits["purpose"], strict=True)) == [("timer", "prepare", "sla")]
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], actor="ada")
    waits = e.waits(i).set_index("node_id")
    assert e.instance(i).active_nodes == ["wait"]  # the gateway holds the token ...
    assert waits.loc["give_up", "kind"] == "timer" and waits.loc["give_up", "purpose"] == "race"  # ... it races
    assert waits.loc["give_up", "due_at"] == e.clock.now() + timedelta(hours=2)
    assert waits.loc["paid", "kind"] == "message" and waits.loc["paid", "message"] == "order.paid"
    assert waits.loc["paid", "correlation"] == "A-7"
    assert len(e.instance(i).waits) == 2
