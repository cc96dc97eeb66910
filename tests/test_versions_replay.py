"""Replay of recorded runs through another version, in the pure core: which instances would take another
path, and where they part. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

import designs
from engine import register
from engine.model import ProcessBuilder, from_yaml
from engine.runtime import AgentContext, Engine, VirtualClock
from engine.security import Principal
from engine.versions.replay import Recording, record, replay, replay_versions

CALLS: list[str] = []


@register("replay_score")
def score(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    CALLS.append(context.node_id)
    return {"score": inputs["raw"] * 1}


@register("replay_noop")
def noop(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    CALLS.append(context.node_id)
    return {}


def credit(threshold: int) -> Any:
    b = ProcessBuilder("credit", variables={"raw": int, "score": int})
    gate = (b.start().service("rate", agent="replay_score", inputs=["raw"], outputs=["score"])
            .user("check", "Check the file", assignee="analyst").exclusive("good", name="Good enough?"))
    gate.when(f"score >= {threshold}").service("grant", agent="replay_noop").end("granted")
    gate.otherwise().service("decline", agent="replay_noop").end("declined")
    return b.build()


def test_replay_finds_exactly_the_instances_a_changed_condition_moves(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(credit(50))
    engine.deploy(credit(70))
    scores = [10, 40, 55, 60, 65, 75, 90]
    ids = {engine.start("credit", {"raw": s}, business_key=f"C-{s}", version=1): s for s in scores}
    engine.run_until_idle()
    for task in engine.tasks():
        engine.clock.advance(timedelta(minutes=5))
        engine.complete_task(task["id"], {}, actor="analyst")
    engine.run_until_idle()
    calls_before = len(CALLS)

    report = replay_versions(engine, "credit", 1, 2).set_index("instance_id")
    assert len(CALLS) == calls_before  # nothing was called: replay has no side effects
    moved = {ids[i] for i in report.index[report["result"] == "diverged"]}
    assert moved == {55, 60, 65}
    assert set(report.loc[report["result"] == "same"].index) == {i for i, s in ids.items() if s not in moved}
    one = report.loc[next(i for i, s in ids.items() if s == 60)]
    assert one["diverges_at"] == "grant"
    assert one["recorded_path"][-3:] == ["good", "grant", "granted"] and one["new_path"][-2:] == ["good", "decline"]
    # past the fork the new path needs an agent answer the recording never had: it stops there and says so
    assert (one["recorded_end"], one["new_end"]) == ("completed", "running")
    assert one["note"] == "no recorded answer for 'decline'"


def test_a_recording_is_json_and_reproduces_its_own_run(db_url: str) -> None:
    """The incident-response design races a message against timers: its recording, saved as JSON (a test
    fixture), replays through its own version to the same end, at the right moments."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(designs.load_design("incident_response"))
    instance = engine.start("incident_response", {"incident_id": "INC-1", "summary": "db down"})
    engine.run_until_idle()
    engine.advance(timedelta(minutes=3))
    (ack,) = engine.tasks(instance_id=instance)
    engine.complete_task(ack["id"], {}, actor="oncall", groups=["on-call"])
    engine.advance(timedelta(minutes=30))
    engine.correlate("incident.resolved", "INC-1", {"fix": "restart"})
    engine.run_until_idle()
    assert engine.instance(instance).status == "completed"

    saved = json.dumps(record(engine, instance).to_dict())
    again = Recording.from_dict(json.loads(saved))
    run = replay(engine.definition("incident_response", 1), again)
    assert run.status == "completed" and run.stuck is None
    assert run.path == ["start", "triage", "acknowledge", "wait_resolution", "resolved", "closed"]
    assert [(a.node, a.values) for a in again.answers if a.kind == "message"] == [("resolved", {"fix": "restart"})]

    # the same recording through a version whose escalation timer is shorter than the resolution took:
    # the 4-hour race now ends at the timer (15 min), before the message at 33 min
    faster = engine.definition("incident_response", 1).to_yaml().replace("PT4H", "PT15M")
    run = replay(from_yaml(faster), again)
    assert "resolved" not in run.path and run.path[-2:] == ["four_hours", "postmortem"]


@pytest.mark.parametrize("version", [1])
def test_what_the_record_lacks_is_reported_not_invented(db_url: str, version: int) -> None:
    """A new version that asks for an answer the recorded run never gave stops there and says so."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(credit(50))
    b = ProcessBuilder("credit", variables={"raw": int, "score": int})
    b.start().service("rate", agent="replay_score", inputs=["raw"], outputs=["score"]).service(
        "second_opinion", agent="replay_noop").end("granted")
    engine.deploy(b.build())
    instance = engine.start("credit", {"raw": 80}, version=version)
    engine.run_until_idle()
    (task,) = engine.tasks(instance_id=instance)
    engine.complete_task(task["id"], {}, actor="analyst")
    engine.run_until_idle()
    (row,) = replay_versions(engine, "credit", 1, 2).to_dict("records")
    assert row["result"] == "diverged" and row["diverges_at"] == "check"
    assert row["new_end"] == "running" and "no recorded answer for 'second_opinion'" in row["note"]
