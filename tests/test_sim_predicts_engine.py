"""One definition, one semantics: what the simulator predicts is what the engine then does.

The incident-response design has a non-interrupting reminder cycle, an interrupting 15-minute
boundary timer and a race between a message and a 4-hour timer. Each case below is run twice: in the
simulator with fixed durations, and live in the engine on a virtual clock, with a person acting at
the very moments the scenario says. Both must take the same path and end at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sim_support import scenario
from sqlalchemy import text

import designs
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Case:
    ack: timedelta  # how long the on-call engineer takes to acknowledge (15 min or more: taken over)
    resolved_after: timedelta | None  # when the resolution message comes, after the wait began


CASES = {
    "acknowledged, then resolved": Case(ack=12 * MINUTE, resolved_after=90 * MINUTE),
    "taken over by the manager, then resolved": Case(ack=20 * MINUTE, resolved_after=30 * MINUTE),
    "acknowledged, never resolved: review after 4 h": Case(ack=3 * MINUTE, resolved_after=None),
}
TAKE_OVER = 5 * MINUTE
REVIEW = 60 * MINUTE


def predicted(case: Case) -> tuple[set[str], timedelta]:
    """The simulator's answer: which activities ran, and the cycle time."""
    messages = ({"incident.resolved": {"after": case.resolved_after.total_seconds(), "probability": 1.0}}
                if case.resolved_after else {})
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]},
                 variables={"incident_id": "INC-1", "summary": "db down"},
                 pools={"on-call": {"size": 1}, "engineering-manager": {"size": 1}, "cto": {"size": 1}},
                 tasks={"triage": {"duration": 0, "outputs": {"severity": "high"}},
                        "acknowledge": {"duration": case.ack.total_seconds()},
                        "escalated_ack": {"duration": TAKE_OVER.total_seconds()},
                        "postmortem": {"duration": REVIEW.total_seconds()}},
                 messages=messages)
    results = simulate(designs.load_design("incident_response"), s)
    (row,) = results.cases(0).to_dict("records")
    log = results.activity_log(0)
    tasks = {n.id for n in designs.load_design("incident_response").all_nodes() if n.kind.endswith("task")}
    done = set(log.loc[log["outcome"] == "completed", "activity_id"]) & tasks  # the log also has waits
    return done, timedelta(hours=row["cycle_time_h"])


def lived(case: Case, db_url: str) -> tuple[set[str], timedelta]:
    """The engine's answer: a person acts when the scenario says; the world sends the message."""
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(designs.load_design("incident_response"))
    iid = engine.start("incident_response", {"incident_id": "INC-1", "summary": "db down"})
    engine.run_until_idle()

    def task(node: str) -> dict:
        (found,) = [t for t in engine.tasks(instance_id=iid) if t["node_id"] == node]
        return found

    if case.ack < 15 * MINUTE:
        engine.advance(case.ack)
        engine.complete_task(task("acknowledge")["id"], {}, actor="oncall", groups=["on-call"])
    else:
        engine.advance(15 * MINUTE)  # the boundary timer interrupts; the manager takes over
        engine.advance(TAKE_OVER)
        engine.complete_task(task("escalated_ack")["id"], {}, actor="engineering-manager")
    waiting_since = engine.clock.now()
    if case.resolved_after is not None:
        engine.advance_to(waiting_since + case.resolved_after)
        engine.correlate("incident.resolved", "INC-1", {})
    else:
        engine.advance(timedelta(hours=4))
        engine.advance(REVIEW)
        engine.complete_task(task("postmortem")["id"], {}, actor="cto")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "completed"
    done = {t["node_id"] for t in engine.tasks(instance_id=iid, status="completed")}
    with engine.reader.connect() as conn:
        done |= {r[0] for r in conn.execute(text("select node_id from wf_task_executions where instance_id = :i "
                                                 "and status = 'completed'"), {"i": iid})}
    return done, view.ended_at - view.started_at


@pytest.mark.parametrize("name", list(CASES))
def test_the_simulation_predicts_the_engine(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    sim_done, sim_cycle = predicted(case)
    engine_done, engine_cycle = lived(case, f"sqlite:///{tmp_path / 'live.db'}")
    assert sim_done == engine_done
    assert abs(sim_cycle - engine_cycle) < timedelta(seconds=1)
