"""Signal events (issue 16, item 4): throw (intermediate and end), catch, start and boundary, everywhere at once:
model and builder, the core (pure), the engine (SQLite and PostgreSQL), the simulator, BPMN round trip.

BPMN 2.0 §10.5.2-4: a signal is broadcast. Every catch waiting for its name receives it, in every instance,
and every definition with a matching signal start event starts; a signal nobody waits for is gone. A message
reaches one receiver (engine.runtime.correlation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import AuthorizationError, EngineError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal, Role
from engine.semantics import effects as fx
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def outage() -> ProcessDefinition:
    """Work on a ticket until the signal 'all_clear' arrives (interrupting boundary) or the work is done; a
    non-interrupting 'status' signal boundary notes every broadcast while the work runs."""
    b = ProcessBuilder("ticket", variables={"note": "string"})
    work = b.start().user("work", assignee="ann")
    work.end("done")
    work.on_signal("all_clear", id="cleared").end("closed_by_signal")
    work.on_signal("status", id="status_seen", interrupting=False).task("log_status").end("logged")
    return b.build()


def announcer() -> ProcessDefinition:
    """A person resolves the outage, then 'all_clear' is broadcast with the note, and the process ends."""
    b = ProcessBuilder("announcer", variables={"note": "string"})
    b.start().user("resolve", assignee="ops").signal("announce", "all_clear", payload=["note"]).end("end")
    return b.build()


def waiter() -> ProcessDefinition:
    b = ProcessBuilder("waiter", variables={"note": "string"})
    b.start().wait_signal("wait", "all_clear").user("follow_up", assignee="ann").end("end")
    return b.build()


def reporter() -> ProcessDefinition:
    """Started by the signal 'all_clear' (a signal start event): writes a report."""
    b = ProcessBuilder("reporter", variables={"note": "string"})
    b.signal_start("on_clear", "all_clear").user("report", assignee="bob").end("end")
    return b.build()


# --- the core ---------------------------------------------------------------------------------------


def test_the_core_waits_for_a_signal_and_takes_its_payload() -> None:
    h = Harness(waiter()).start()
    (sub,) = h.subscriptions.values()
    assert (sub.kind, sub.message, sub.correlation) == ("signal", "all_clear", None)
    assert h.message("all_clear") is False  # a message of the same name is not the signal
    assert h.signal("all_clear", note="fixed") == 1
    assert h.variables["note"] == "fixed" and h.entered()[-1] == "follow_up"


def test_a_throw_broadcasts_and_goes_on_an_end_broadcasts_and_ends() -> None:
    h = Harness(announcer()).start(note="db back")
    h.done("resolve")
    assert h.broadcasts == [fx.BroadcastSignal("all_clear", {"note": "db back"}, "announce")]
    assert h.status == "completed"
    b = ProcessBuilder("ender", variables={"note": "string"})
    b.start().signal_end("bye", "all_clear", payload=["note"])
    h2 = Harness(b.build()).start(note="n")
    assert [x.signal for x in h2.broadcasts] == ["all_clear"] and h2.status == "completed"


def test_an_interrupting_signal_boundary_cancels_the_activity() -> None:
    h = Harness(outage()).start()
    h.signal("all_clear")
    assert h.entered()[-1] == "closed_by_signal" and not h.open_work() and h.status == "completed"


def test_a_non_interrupting_signal_boundary_fires_on_every_broadcast_while_the_activity_runs() -> None:
    h = Harness(outage()).start()
    assert h.signal("status") == 1
    assert h.signal("status") == 1  # armed again: a broadcast may come again
    assert h.entered().count("log_status") == 2 and h.open_work("work")
    h.done("work")
    assert h.status == "completed" and h.signal("status") == 0  # disarmed with the activity


def test_an_event_gateway_races_a_signal_against_a_timer() -> None:
    b = ProcessBuilder("race")
    gate = b.start().race("gate")
    gate.branch().wait_signal("go", "go").end("went")
    gate.branch().timer("late", "PT1H").end("timed_out")
    h = Harness(b.build()).start()
    h.signal("go")
    assert h.entered()[-1] == "went" and h.status == "completed"
    assert h.cancelled_timers


# --- the engine -------------------------------------------------------------------------------------


def _engine(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    for d in (outage(), announcer(), waiter(), reporter()):
        engine.deploy(d)
    return engine


def test_a_thrown_signal_reaches_every_waiting_instance_and_starts_signal_starts(db_url: str) -> None:
    engine = _engine(db_url)
    waiting = [engine.start("waiter") for _ in range(3)]
    tickets = [engine.start("ticket") for _ in range(2)]
    source = engine.start("announcer", {"note": "db back"})
    task = next(t for t in engine.inbox("ops") if t["instance_id"] == source)
    engine.complete_task(task["id"], {}, actor="ops")
    engine.run_until_idle()
    for iid in waiting:
        view = engine.instance(iid)
        assert view.active_nodes == ["follow_up"] and view.variables["note"] == "db back"
    for iid in tickets:
        assert engine.instance(iid).status == "completed"
    assert engine.instance(source).status == "completed"
    started = engine.instances(definition="reporter")
    assert len(started) == 1  # one start per definition with a matching signal start
    report = engine.instance(started.iloc[0]["id"])
    assert report.active_nodes == ["report"] and report.variables["note"] == "db back"


def test_a_signal_nobody_waits_for_is_gone(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(waiter())
    assert engine.signal("all_clear", {"note": "too early"}) == []
    iid = engine.start("waiter")
    engine.run_until_idle()
    assert engine.instance(iid).active_nodes == ["wait"]  # not buffered, unlike a message with a ttl
    assert engine.signal("all_clear", {"note": "now"}) == [iid]
    assert engine.instance(iid).active_nodes == ["follow_up"]
    assert engine.signal("all_clear") == []  # delivered once


def test_engine_signal_reaches_boundaries_and_starts(db_url: str) -> None:
    engine = _engine(db_url)
    ticket = engine.start("ticket")
    reached = engine.signal("status")
    assert reached == [ticket]
    engine.run_until_idle()
    assert engine.instance(ticket).active_nodes == ["work"]  # non-interrupting: the work goes on
    reached = engine.signal("all_clear", {"note": "ok"})
    assert reached[0] == ticket and len(reached) == 2  # the ticket, then a started reporter
    assert engine.instance(ticket).status == "completed"
    assert engine.instance(reached[1]).definition == "reporter"


def test_signal_is_an_operators_action_and_refuses_bad_payloads(db_url: str) -> None:
    engine = _engine(db_url)
    with pytest.raises(EngineError, match="cannot broadcast signal 'all_clear'"):
        engine.signal("all_clear", {"note": float("nan")})
    with pytest.raises(EngineError, match="not a declared variable"):
        engine.signal("all_clear", {"unknown": 1})  # the reporter's start refuses it: nothing starts
    assert engine.instances(definition="reporter").empty
    viewer = Engine(db_url, clock=VirtualClock(T0), principal=Principal("vic", roles={Role.DESIGNER}))
    with pytest.raises(AuthorizationError, match="signal"):
        viewer.signal("all_clear")


# --- the simulator ----------------------------------------------------------------------------------


def test_the_simulator_broadcasts_a_thrown_signal_to_every_waiting_case() -> None:
    b = ProcessBuilder("sim_signal")
    fan = b.start().parallel("fan")
    fan.branch().wait_signal("wait", "go").end("a")
    fan.branch().user("prepare", assignee="ann").signal("go_now", "go").end("b")
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, pools={"ann": {"size": 1}},
                 tasks={"prepare": {"duration": 600}})
    (row,) = simulate(b.build(), s).cases(0).to_dict("records")
    assert row["status"] == "completed"
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=10)  # the wait ends when 'go' is thrown


def test_the_simulator_starts_a_case_at_a_signal_start_as_the_engine_does() -> None:
    b = ProcessBuilder("chain", variables={"note": "string"})
    b.start().user("first", assignee="ann").signal_end("pass_on", "next", payload=["note"])
    b.signal_start("again", "next").user("second", assignee="ann").end("done")
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"note": "n"}, pools={"ann": {"size": 1}},
                 tasks={"first": {"duration": 600}, "second": {"duration": 300}})
    rows = simulate(b.build(), s).cases(0).sort_values("arrived_s").to_dict("records")
    assert [(r["status"], r["end_node"]) for r in rows] == [("completed", "pass_on"), ("completed", "done")]
    assert rows[1]["arrived_s"] == 600.0  # started when the first case threw the signal


# --- BPMN ---------------------------------------------------------------------------------------------


def test_bpmn_round_trip_of_every_signal_event() -> None:
    for d in (outage(), announcer(), waiter(), reporter()):
        xml = to_bpmn(d)
        assert "<bpmn:signal " in xml and "signalEventDefinition" in xml
        assert import_bpmn(xml).definition == d
    b = ProcessBuilder("ender", variables={"note": "string"})
    b.start().signal_end("bye", "all_clear", payload=["note"])
    d = b.build()
    assert import_bpmn(to_bpmn(d)).definition == d


def test_bpmn_signal_names_come_from_the_signal_element() -> None:
    result = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:intermediateCatchEvent id="w"><bpmn:signalEventDefinition signalRef="Sig_1"/></bpmn:intermediateCatchEvent>
      <bpmn:intermediateThrowEvent id="t"><bpmn:signalEventDefinition/></bpmn:intermediateThrowEvent>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="w"/>
      <bpmn:sequenceFlow id="f2" sourceRef="w" targetRef="t"/>
      <bpmn:sequenceFlow id="f3" sourceRef="t" targetRef="e"/>''', root='<bpmn:signal id="Sig_1" name="alarm"/>'))
    assert result.definition.node("w").signal == "alarm"
    assert result.definition.node("t").signal == "t"
    assert any("no signal given" in w.message for w in result.warnings)
