"""Conditional intermediate catch events (issue 16, item 6): wait until a condition over the variables holds,
evaluated on arrival and again whenever a step changes a variable (BPMN 2.0 §10.5.4). Everywhere at once:
model and builder, the core (pure), the engine (SQLite and PostgreSQL), the simulator, BPMN round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def shipping() -> ProcessDefinition:
    """Ship once paid: one branch waits until ``paid``, the other has a person record the payment."""
    b = ProcessBuilder("shipping", variables={"paid": "boolean"})
    fan = b.start().parallel("fan")
    waiting = fan.branch().wait_until("until_paid", "paid == true").user("ship", assignee="sam")
    paying = fan.branch().user("record_payment", assignee="ann")
    b.join("both", waiting, paying).end("done")
    return b.build()


def test_the_core_waits_until_a_variable_change_makes_the_condition_true() -> None:
    h = Harness(shipping()).start(paid=False)
    assert "until_paid" in h.entered() and "ship" not in h.entered()
    h.done("record_payment", paid=True)
    assert h.entered()[-1] == "ship"
    h.done("ship")
    assert h.status == "completed"


def test_a_condition_that_holds_on_arrival_passes_at_once() -> None:
    h = Harness(shipping()).start(paid=True)
    assert "ship" in h.entered()


def test_a_condition_that_fails_to_evaluate_is_an_incident() -> None:
    b = ProcessBuilder("broken")
    b.start().wait_until("w", "amount > 3").end("e")
    h = Harness(b.build()).start(amount="many")
    (incident,) = h.incidents
    assert incident.node_id == "w" and "condition of 'w' failed" in incident.error


def test_the_model_refuses_a_condition_that_does_not_parse() -> None:
    with pytest.raises(Exception, match="does not parse"):
        ProcessBuilder("bad").start().wait_until("w", "paid ==").end("e")


def test_the_engine_releases_the_wait_when_variables_are_set(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(shipping())
    iid = engine.start("shipping", {"paid": False})
    assert sorted(engine.instance(iid).active_nodes) == ["record_payment", "until_paid"]
    engine.set_variables(iid, {"paid": True}, actor="ann")
    assert sorted(engine.instance(iid).active_nodes) == ["record_payment", "ship"]


def test_the_simulator_waits_for_the_other_branch() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"paid": False},
                 pools={"ann": {"size": 1}, "sam": {"size": 1}},
                 tasks={"record_payment": {"duration": 600, "outputs": {"paid": True}}, "ship": {"duration": 300}})
    (row,) = simulate(shipping(), s).cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=15)  # ship starts when payment is recorded


def test_bpmn_round_trip_and_camunda_conditions() -> None:
    d = shipping()
    xml = to_bpmn(d)
    assert "<bpmn:conditionalEventDefinition" in xml and "paid == true" in xml
    assert import_bpmn(xml).definition == d
    camunda = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:intermediateCatchEvent id="w"><bpmn:conditionalEventDefinition>
        <bpmn:condition xsi:type="bpmn:tFormalExpression">${!blocked}</bpmn:condition>
      </bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="w"/>
      <bpmn:sequenceFlow id="f2" sourceRef="w" targetRef="e"/>'''))
    assert camunda.definition.node("w").condition == "not blocked"
    with pytest.raises(DefinitionError, match="without a condition"):
        import_bpmn(doc('''<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="w">
          <bpmn:conditionalEventDefinition/></bpmn:intermediateCatchEvent>
          <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="w"/>'''))


# --- a conditional boundary or event sub-process start whose condition fails: retrying re-evaluates it ---------


def guarded() -> ProcessDefinition:
    """Work on an order; while it runs, an amount over the limit calls a manager (a non-interrupting conditional
    boundary) and a 'stop' flag above zero cancels the order (an interrupting conditional event sub-process)."""
    b = ProcessBuilder("guarded", variables={"amount": "integer", "limit": "integer", "stop": "integer"})
    work = b.start().user("work", assignee="ann")
    work.end("done")
    work.on_condition("amount > limit", id="over_limit", interrupting=False).task("call_manager").end("called")
    b.event_sub_process("on_stop", lambda s: s.conditional_start("stopped", "stop > 0").end("cancelled"))
    return b.build()


def test_retrying_a_failed_conditional_boundary_evaluates_it_again() -> None:
    from engine.semantics import events as ev

    h = Harness(guarded()).start(amount=50, stop=0)  # limit unset: None cannot be compared
    (incident,) = h.incidents
    assert incident.node_id == "over_limit" and "condition of 'over_limit' failed" in incident.error
    assert h.open_work("work") and "call_manager" not in h.entered()  # the activity runs on
    h.send(ev.RetryIncident(incident.token_id, incident.node_id))  # nothing fixed: evaluated, reported again
    assert len(h.incidents) == 2 and "call_manager" not in h.entered()
    h.send(ev.SetVariables({"limit": 10}))  # the fix: evaluated at once, holds, fires
    assert h.entered().count("call_manager") == 1
    h.send(ev.RetryIncident(incident.token_id, incident.node_id))  # the open incident's retry: held already
    assert h.entered().count("call_manager") == 1 and len(h.incidents) == 2
    h.done("work")
    assert h.status == "completed"


def test_retrying_a_failed_conditional_event_sub_process_start_evaluates_it_again() -> None:
    from engine.semantics import events as ev

    h = Harness(guarded()).start(amount=1, limit=10, stop="no")  # 'no' > 0 cannot be evaluated
    (incident,) = h.incidents
    assert incident.node_id == "stopped" and h.open_work("work")
    h.send(ev.RetryIncident(incident.token_id, incident.node_id))
    assert len(h.incidents) == 2
    h.state.variables["stop"] = 1  # changed outside any step: only a retry looks again
    h.send(ev.RetryIncident(incident.token_id, incident.node_id))
    assert h.entered()[-1] == "cancelled" and h.status == "completed" and not h.open_work()


def test_the_engine_retries_a_failed_conditional_boundary(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(guarded())
    iid = engine.start("guarded", {"amount": 50, "stop": 0})
    engine.run_until_idle()
    (incident,) = engine.incidents()
    assert incident["node_id"] == "over_limit" and "condition of 'over_limit' failed" in incident["error"]
    engine.retry(incident["id"])  # not fixed: a Retry evaluates it again and says so again, not silently resolved
    (again,) = engine.incidents()
    assert again["id"] != incident["id"] and again["node_id"] == "over_limit"
    engine.set_variables(iid, {"limit": 10})
    engine.run_until_idle()
    engine.retry(again["id"])
    engine.run_until_idle()
    assert engine.incidents() == []
    called = [a for a in engine.activities(iid).to_dict("records") if a["node_id"] == "call_manager"]
    assert len(called) == 1  # fired by the fix, not again by the retry
    assert sorted(engine.instance(iid).active_nodes) == ["on_stop", "work"]  # the work, and the listener
