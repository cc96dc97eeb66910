"""The activity history and the armed waits of an instance (issue 10, missing APIs 10 and 11), on SQLite and
PostgreSQL: every node passed, in order, with its duration and outcome; timers, messages and jobs per instance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

import engine as wf
from engine.eventlog import read_xes_traces, write_xes
from engine.eventlog.live import event_log as live_event_log
from engine.model import ProcessBuilder
from engine.model.nodes import UserTask
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


# --- compensation in the history and the event log --------------------------------------------------------

def _booking() -> Any:
    """charge (undone by code: a handler reference), then reserve (undone by a person: a handler activity),
    then a compensation throw undoes both, newest first."""
    b = ProcessBuilder("booking")
    b.start().service("charge", name="Charge card", agent="history_test.charge", compensation="history_test.refund") \
        .task("reserve", name="Reserve room", compensation="call_back").compensate("undo").end("done")
    b.add(UserTask(id="call_back", name="Call the guest back", assignee="ada", for_compensation=True))
    return b.build()


def _booking_engine(db_url: str, refund: Any) -> Engine:
    wf.register("history_test.charge", lambda inputs, ctx: {})
    wf.register("history_test.refund", refund)
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_booking())
    return e


def test_compensation_runs_are_rows_and_undone_activities_are_compensated(db_url: str, tmp_path: Path) -> None:
    e = _booking_engine(db_url, lambda inputs, ctx: {})
    i = e.start("booking")
    e.run_until_idle()
    e.advance(timedelta(minutes=20))
    (task,) = e.tasks(instance_id=i)
    assert task["node_id"] == "call_back"
    e.complete_task(task["id"], actor="ada")
    e.run_until_idle()
    assert e.instance(i).status == "completed"
    history = e.activities(i)
    runs = history[history["kind"] == "compensation"]
    assert list(runs["node_id"]) == ["call_back", "charge"]  # newest first; a reference runs at its activity
    assert set(runs["outcome"]) == {"completed"} and runs["token_id"].str.startswith("w").all()
    assert runs.iloc[0]["duration"] == pd.Timedelta(minutes=20)  # the person's handler took 20 minutes
    undone = history[history["kind"] != "compensation"].set_index("node_id")["outcome"]
    assert undone["charge"] == undone["reserve"] == "compensated"
    assert undone["undo"] == undone["done"] == "completed"

    log = live_event_log(e, [i])
    undo = log[log["concept:name"].str.startswith("Undo: ")]
    assert list(zip(undo["concept:name"], undo["lifecycle:transition"], strict=True)) == [
        ("Undo: Reserve room", "start"), ("Undo: Reserve room", "complete"),
        ("Undo: Charge card", "start"), ("Undo: Charge card", "complete")]
    assert set(undo.loc[undo["concept:name"] == "Undo: Reserve room", "org:resource"]) == {"ada"}
    assert set(undo.loc[undo["concept:name"] == "Undo: Charge card", "org:resource"]) == {"agent:history_test.refund"}
    charge = log[log["activity_id"] == "charge"]
    charge = charge[charge["kind"] == "service_task"]
    assert list(charge["lifecycle:transition"]) == ["start", "complete"]  # it did complete; then it was undone
    assert set(charge["outcome"]) == {"compensated"}
    ((_, events),) = list(read_xes_traces(write_xes(log, tmp_path / "booking.xes")))
    assert [(ev["concept:name"], ev["lifecycle:transition"]) for ev in events
            if ev["concept:name"].startswith("Undo")] == list(zip(undo["concept:name"], undo["lifecycle:transition"],
                                                                  strict=True))


def test_a_failed_handler_run_and_a_cancelled_one_say_so(db_url: str) -> None:
    attempts: list[int] = []

    def refund(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("bank offline")
        return {}

    e = _booking_engine(db_url, refund)
    i = e.start("booking")
    e.run_until_idle()
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], actor="ada")
    e.run_until_idle()
    (incident,) = e.incidents()
    assert "bank offline" in incident["error"]
    e.retry(incident)
    e.run_until_idle()
    runs = e.activities(i).query("kind == 'compensation' and node_id == 'charge'")
    assert list(runs["outcome"]) == ["failed", "completed"]  # the retry is a new run
    log = live_event_log(e, [i])
    undo = log[log["concept:name"] == "Undo: Charge card"]
    assert list(undo["lifecycle:transition"]) == ["start", "ate_abort", "start", "complete"]

    cancelled = e.start("booking")
    e.run_until_idle()
    e.cancel(cancelled)  # while the person's handler is open
    runs = e.activities(cancelled).query("kind == 'compensation'")
    assert list(zip(runs["node_id"], runs["outcome"], strict=True)) == [("call_back", "cancelled")]
    undone = e.activities(cancelled).set_index("node_id")["outcome"]
    assert undone["reserve"] == "completed"  # not undone: its handler never finished
    log = live_event_log(e, [cancelled])
    assert list(log.loc[log["concept:name"] == "Undo: Reserve room", "lifecycle:transition"]) == ["withdraw"]


def test_each_call_of_a_multi_instance_activity_is_in_the_event_log_once(db_url: str) -> None:
    from engine.model import for_each

    wf.register("history_test.draft", lambda inputs, ctx: {"draft": f"about {inputs['channel']}"})
    b = ProcessBuilder("drafts", variables={"channels": list, "drafts": list})
    b.start().service("draft", agent="history_test.draft",
                      multi_instance=for_each("channels", "channel", into="drafts", output="draft")).end("done")
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(b.build())
    i = e.start("drafts", {"channels": ["blog", "mail", "social"]})
    e.run_until_idle()
    assert e.instance(i).status == "completed"
    log = live_event_log(e, [i])
    draft = log[log["activity_id"] == "draft"]
    assert list(draft["lifecycle:transition"]).count("complete") == 3  # one per instance, none twice
    assert draft["concept:instance"].nunique() == 3
