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
from engine.model import ProcessBuilder, ProcessDefinition
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


# --- messages: the simulator's rule is the engine's (engine.semantics.messages) ------------------------------

def _relay() -> ProcessDefinition:
    """A case waits one minute for a baton; with none it pays (5 min) and throws the baton itself. A case
    that gets a baton ships (10 min). Thrown batons nobody waits for are buffered for the message TTL."""
    b = ProcessBuilder("relay")
    race = b.start().race("wait_baton")
    race.branch().receive("got_baton", "baton").timer("shipping", "PT10M").end("shipped")
    race.branch().timer("no_baton", "PT1M").timer("paying", "PT5M").send("throw_baton", "baton").end("paid")
    return b.build()


# Arrival minutes, and what the rule says happens:
#   0    pays, throws at 6: nobody waits -> buffered #1 (expires at 46)
#   3    pays, throws at 9: nobody waits -> buffered #2 (expires at 49)
#   20   takes #1 (oldest first) when its catch opens: ships
#   70   #2 expired at 49: pays, throws at 76 while 75.5 and 75.75 both wait -> ambiguous, given to none
#   75.5, 75.75  pay; throw at 81.5 and 81.75: buffered, never taken, expired by the end
RELAY_ARRIVALS = [0.0, 3.0, 20.0, 70.0, 75.5, 75.75]
RELAY_TTL = timedelta(minutes=40)


def test_the_simulator_routes_thrown_messages_by_the_engines_rule(db_url: str) -> None:
    s = scenario(start=T0.isoformat(), horizon="PT2H", drain="PT1H", replications=1, seed=1,
                 arrivals={"timestamps": [(T0 + m * MINUTE).isoformat() for m in RELAY_ARRIVALS]},
                 message_ttl=RELAY_TTL.total_seconds())
    results = simulate(_relay(), s)
    sim = [(r["end_node"], timedelta(seconds=r["ended_s"])) for r in results.cases(0).to_dict("records")]
    sim_messages = sorted(results.messages(0)["status"])

    engine = Engine(db_url, clock=VirtualClock(T0), message_ttl=RELAY_TTL,
                    principal=Principal.system())
    engine.deploy(_relay())
    ids = []
    for minutes in RELAY_ARRIVALS:
        engine.advance_to(T0 + minutes * MINUTE)
        ids.append(engine.start("relay"))
    engine.advance(timedelta(hours=2))
    lived = []
    for iid in ids:
        view = engine.instance(iid)
        passed = engine.activities(iid)
        lived.append((passed.loc[passed["kind"] == "end", "node_id"].iloc[-1], view.ended_at - T0))
    lived_messages = sorted(engine.messages()["status"])

    assert [end for end, _ in sim] == ["paid", "paid", "shipped", "paid", "paid", "paid"]  # the rule, above
    assert sim == lived
    assert sim_messages == lived_messages == ["ambiguous", "delivered", "expired", "expired", "expired"]
    ambiguous = results.messages(0).query("status == 'ambiguous'")["error"].iloc[0]
    assert "case 5" in ambiguous and "case 6" in ambiguous


def _chain() -> ProcessDefinition:
    """A case works 10 minutes and throws ``next``; nobody waits, so ``next`` starts a case at the message
    start event, which works 5 minutes."""
    b = ProcessBuilder("chain", variables={"batch": str})
    b.start().timer("working", "PT10M").send("hand_on", "next", payload=["batch"]).end("handed_on")
    b.message_start("on_next", "next").timer("finishing", "PT5M").end("finished")
    return b.build()


def test_a_thrown_message_nobody_waits_for_starts_a_case_at_a_message_start_in_both(db_url: str) -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="PT1H", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"batch": "B-1"})
    results = simulate(_chain(), s)
    sim = sorted((r["end_node"], timedelta(seconds=r["ended_s"])) for r in results.cases(0).to_dict("records"))
    assert results.messages(0).empty  # started a case: nothing buffered

    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(_chain())
    engine.start("chain", {"batch": "B-1"})
    engine.advance(timedelta(hours=1))
    lived = sorted((engine.activities(i.id).query("kind == 'end'")["node_id"].iloc[-1], i.ended_at - T0)
                   for i in (engine.instance(row) for row in engine.instances()["id"]))
    assert sim == lived == [("finished", 15 * MINUTE), ("handed_on", 10 * MINUTE)]
    assert engine.messages().empty


# --- call activities: the simulator runs the called design inline, as the engine runs the child -------------

def _review() -> ProcessDefinition:
    """The called design: someone decides, it cools off for 30 minutes, then it tells its caller (escalation
    'NOTED', which it does not catch itself)."""
    b = ProcessBuilder("review")
    b.start().user("decide", assignee="boss").timer("cool", "PT30M").escalate("noted", "NOTED").end("reviewed")
    return b.build()


def _order() -> ProcessDefinition:
    """The caller: the review may take an hour at most (else chase it); its escalation has someone notified
    while the order goes on to packing."""
    b = ProcessBuilder("order")
    check = b.start().call("check", "review")
    check.user("pack", assignee="ann").end("packed")
    check.on_timer("PT1H", id="too_slow").user("chase", assignee="bob").end("chased")
    check.on_escalation("NOTED", id="on_noted", interrupting=False).user("notify", assignee="bob").end("notified")
    return b.build()


CALL_DURATIONS = {"pack": 10, "chase": 7, "notify": 15}  # minutes; "decide" per case


def _call_predicted(decide: int) -> tuple[set[str], timedelta]:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]},
                 pools={"boss": {"size": 1}, "ann": {"size": 1}, "bob": {"size": 1}},
                 tasks={node: {"duration": minutes * 60} for node, minutes in
                        {**CALL_DURATIONS, "decide": decide}.items()})
    results = simulate(_order(), s, called={"review": _review()})
    assert not results.warnings
    (row,) = results.cases(0).to_dict("records")
    log = results.activity_log(0)
    done = set(log.loc[(log["outcome"] == "completed") & (log["kind"] == "user_task"), "activity_id"])
    return done, timedelta(hours=row["cycle_time_h"])


def _call_lived(decide: int, db_url: str) -> tuple[set[str], timedelta]:
    """A person completes each task the scenario's minutes after it opened (the clock moves a minute at a time:
    every moment in this design is a whole minute)."""
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(_review())
    engine.deploy(_order())
    iid = engine.start("order")
    durations = {**CALL_DURATIONS, "decide": decide}
    opened: dict[int, int] = {}  # task id -> the minute it was first seen open
    for minute in range(24 * 60):
        engine.advance_to(T0 + minute * MINUTE)
        for task in engine.tasks():
            opened.setdefault(task["id"], minute)
            if minute - opened[task["id"]] == durations[task["node_id"]]:
                engine.complete_task(task["id"], {}, actor=task["assignee"])
                engine.run_until_idle()
        if engine.instance(iid).status != "running":
            break
    view = engine.instance(iid)
    assert view.status == "completed"
    done = {t["node_id"] for t in engine.tasks(status="completed")}
    return done, view.ended_at - view.started_at


@pytest.mark.parametrize(("decide", "path"), [
    (20, {"decide", "pack", "notify"}),  # reviewed at 50: notified (to 65) while packed (to 60)
    (40, {"decide", "chase"}),  # still cooling off at 60: the timer cancels the review; chased to 67
])
def test_the_simulator_runs_the_called_design_as_the_engine_runs_the_child(decide: int, path: set[str],
                                                                          db_url: str) -> None:
    sim_done, sim_cycle = _call_predicted(decide)
    engine_done, engine_cycle = _call_lived(decide, db_url)
    assert sim_done == engine_done == path
    assert abs(sim_cycle - engine_cycle) < timedelta(seconds=1)
    assert engine_cycle == (65 if decide == 20 else 67) * MINUTE


def test_a_called_designs_tasks_queue_at_the_same_pools_and_an_unknown_one_is_a_duration() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat(), T0.isoformat()]},
                 pools={"boss": {"size": 1}, "ann": {"size": 1}, "bob": {"size": 2}},
                 tasks={"decide": {"duration": 600}, "pack": {"duration": 60}, "notify": {"duration": 60},
                        "check": {"duration": 7200}})
    inline = simulate(_order(), s, called={"review": _review()})
    cycles = sorted(inline.cases(0)["cycle_time_h"] * 60)
    assert [round(c) for c in cycles] == [41, 51]  # one boss: the second review's decision waits 10 minutes
    decisions = inline.activity_log(0).query("activity_id == 'decide'")  # the child's rows: its calling case's
    assert sorted(decisions["case:concept:name"].astype(str)) == ["1", "2"]
    assert sorted(decisions["waiting_s"]) == [0.0, 600.0]
    tasks = {k: v for k, v in s.model_dump()["tasks"].items() if k != "decide"}  # 'decide' is review's: unknown now
    unknown = simulate(_order(), s.replace(tasks=tasks))  # no 'review' given: the call activity is 2 h of work
    assert any("'check' calls 'review'" in w for w in unknown.warnings)
    # the 1 h boundary timer interrupts the 2 h of work; 'chase' has no duration here
    assert [round(c) for c in sorted(unknown.cases(0)["cycle_time_h"] * 60)] == [60, 60]
    assert set(unknown.activity_log(0).query("activity_id == 'check'")["outcome"]) == {"cancelled"}
