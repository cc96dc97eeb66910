"""Only completed scopes are compensated (BPMN 2.0 §10.7.1; Camunda 7 and 8; camunda/camunda#15068):
handlers of activities inside a sub-process that was interrupted do not run (issue 10, kind 7b)."""

from __future__ import annotations

from typing import Any

from semantics_harness import Harness

import engine as wf
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.agents import BpmnError
from engine.security import Principal
from engine.semantics import effects as fx


def _trip(fail_inside: bool) -> Any:
    def trip(s: ProcessBuilder) -> None:
        (s.start("t_start").service("hotel", agent="cs.hotel", compensation="cs.undo_hotel")
         .service("flight", agent="cs.flight", compensation="cs.undo_flight").end("t_end"))

    b = ProcessBuilder("travel")
    after = (b.start().service("top", agent="cs.top", compensation="cs.undo_top").sub_process("trip", trip)
             .service("pay", agent="cs.pay"))
    after.end("booked")
    b.at("trip").on_error("no_seat", id="no_seat").compensate("undo_after_trip_failed").end("cancelled")
    b.at("pay").on_error("declined", id="declined").compensate("undo_after_pay_failed").end("refunded")
    return b.build()


def _handlers(h: Harness) -> list[str]:
    return [w.handler for w in h.of(fx.StartWork) if w.kind == "compensation"]


def test_an_interrupted_sub_process_is_not_compensated_inside() -> None:
    h = Harness(_trip(True)).start()
    h.done("top")
    h.done("hotel")
    h.fail("flight", code="no_seat", business=True)  # the error leaves 'trip' through its boundary
    assert _handlers(h) == ["cs.undo_top"]


def test_a_completed_sub_process_is_compensated_inside_newest_first() -> None:
    h = Harness(_trip(False)).start()
    h.done("top")
    h.done("hotel")
    h.done("flight")
    h.fail("pay", code="declined", business=True)
    first = _handlers(h)
    assert first == ["cs.undo_flight"]  # one at a time
    for _ in range(3):
        h.done_token(next(w.token_id for w in h.of(fx.StartWork) if w.kind == "compensation"))
    assert _handlers(h) == ["cs.undo_flight", "cs.undo_hotel", "cs.undo_top"]


def test_the_engine_follows_the_same_rule(db_url: str) -> None:
    calls: list[str] = []

    def agent(name: str, code: str | None = None) -> Any:
        def run(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
            calls.append(name)
            if code:
                raise BpmnError(code)
            return {}
        return run

    for name in ("top", "hotel", "pay", "undo_top", "undo_hotel", "undo_flight"):
        wf.register(f"cs.{name}", agent(name))
    wf.register("cs.flight", agent("flight", "no_seat"))
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_trip(True))
    i = e.start("travel")
    e.run_until_idle()
    assert e.instance(i).status == "completed" and e.instance(i).active_nodes == []
    assert [c for c in calls if c.startswith("undo")] == ["undo_top"]


# --- kind 7a: any activity can be a compensation handler ---------------------------------------------

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
USER_HANDLER = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="refund" isExecutable="true">
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="cs_charge_card"/>
  <serviceTask id="cs_charge_card"/>
  <boundaryEvent id="charge_comp" attachedToRef="cs_charge_card"><compensateEventDefinition/></boundaryEvent>
  <userTask id="call_customer" isForCompensation="true"/>
  <association associationDirection="One" sourceRef="charge_comp" targetRef="call_customer"/>
  <sequenceFlow id="f2" sourceRef="cs_charge_card" targetRef="undo"/>
  <intermediateThrowEvent id="undo"><compensateEventDefinition/></intermediateThrowEvent>
  <sequenceFlow id="f3" sourceRef="undo" targetRef="done"/><endEvent id="done"/>
</process></definitions>"""


def test_a_user_task_compensation_handler_opens_a_task_and_compensation_waits(db_url: str) -> None:
    from engine.bpmn import from_bpmn, import_bpmn, to_bpmn
    from engine.validate import deploy_problems

    d = import_bpmn(USER_HANDLER).definition
    assert d.node("cs_charge_card").compensation == "call_customer"  # type: ignore[attr-defined]
    assert d.node("call_customer").for_compensation  # type: ignore[attr-defined]
    assert from_bpmn(to_bpmn(d)) == d
    wf.register("cs_charge_card", lambda inputs, ctx: {})  # the agent is named after the task (no implementation)
    assert deploy_problems(d) == []  # the handler is an activity of the definition, not a registered name
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(d)
    i = e.start("refund")
    e.run_until_idle()
    view = e.instance(i)
    assert view.status == "running" and view.active_nodes == ["undo"]  # compensation waits for the person
    (task,) = e.tasks(instance_id=i)
    assert task["node_id"] == "call_customer"
    e.complete_task(task["id"], {"reached": True})
    view = e.instance(i)
    assert view.status == "completed" and view.variables["reached"] is True
