"""SpiffWorkflow's message payload dialects (issue 10, kind 3): a payload expression on the throwing
``messageEventDefinition`` and a result variable on the receiving one are imported and run, in the engine
(SQLite and PostgreSQL) and the simulator's core alike."""

from __future__ import annotations

from typing import Any

import pytest

from engine.bpmn import from_bpmn, import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.runtime import Engine, VirtualClock
from engine.security import Principal

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"


def _pair(payload: str, receive: str) -> tuple[str, str]:
    sender = f"""<definitions xmlns="{BPMN}" xmlns:spiffworkflow="{SPIFF}" xmlns:camunda="{CAMUNDA}"
      targetNamespace="t"><message id="m" name="order_paid"/>
      <process id="payer" isExecutable="true">
        <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="send"/>
        <intermediateThrowEvent id="send">{payload}</intermediateThrowEvent>
        <sequenceFlow id="f2" sourceRef="send" targetRef="e"/><endEvent id="e"/>
      </process></definitions>"""
    receiver = f"""<definitions xmlns="{BPMN}" xmlns:spiffworkflow="{SPIFF}" xmlns:camunda="{CAMUNDA}"
      targetNamespace="t"><message id="m" name="order_paid"/>
      <process id="shipper" isExecutable="true">
        <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
        <intermediateCatchEvent id="wait">{receive}</intermediateCatchEvent>
        <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>
      </process></definitions>"""
    return sender, receiver


SPIFF_PAIR = _pair(
    """<messageEventDefinition messageRef="m"><extensionElements>
         <spiffworkflow:messagePayload>{"order": order_id, "amount": amount}</spiffworkflow:messagePayload>
       </extensionElements></messageEventDefinition>""",
    """<messageEventDefinition messageRef="m"><extensionElements>
         <spiffworkflow:messageVariable>paid</spiffworkflow:messageVariable>
       </extensionElements></messageEventDefinition>""")
CAMUNDA_PAIR = _pair('<messageEventDefinition messageRef="m" camunda:expression="${amount * 2}"/>',
                     '<messageEventDefinition messageRef="m" camunda:resultVariable="doubled"/>')


@pytest.mark.parametrize(("pair", "expected"), [
    (SPIFF_PAIR, ("paid", {"order": "A-1", "amount": 5})),
    (CAMUNDA_PAIR, ("doubled", 10)),
])
def test_payload_expression_and_result_variable_run(db_url: str, pair: tuple[str, str],
                                                    expected: tuple[str, Any]) -> None:
    sender, receiver = (import_bpmn(x).definition for x in pair)
    assert sender.node("send").payload_expression  # type: ignore[attr-defined]
    assert receiver.node("wait").result_variable == expected[0]  # type: ignore[attr-defined]
    for d in (sender, receiver):
        assert from_bpmn(to_bpmn(d)) == d  # kept through an export
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(sender)
    e.deploy(receiver)
    waiting = e.start("shipper")
    e.start("payer", {k: v for k, v in {"order_id": "A-1", "amount": 5}.items()
                      if k in {d.name for d in sender.variables}})
    e.run_until_idle()
    view = e.instance(waiting)
    assert view.status == "completed"
    assert view.variables[expected[0]] == expected[1]


def test_a_payload_expression_that_cannot_run_is_named_not_dropped() -> None:
    sender, _ = _pair('<messageEventDefinition messageRef="m" camunda:expression="__import__(\'os\')"/>', "")
    with pytest.raises(DefinitionError, match="payload expression"):
        import_bpmn(sender)
    result = import_bpmn(sender, lenient=True)
    assert any("payload expression" in str(w) for w in result.warnings)


def test_the_core_places_a_whole_payload_as_the_simulator_would() -> None:
    from engine.semantics.core import WHOLE, message_variables

    receiver = import_bpmn(CAMUNDA_PAIR[1]).definition
    assert message_variables(receiver.node("wait"), {WHOLE: 10}) == {"doubled": 10}
    plain = receiver.node("wait").model_copy(update={"result_variable": None})
    assert message_variables(plain, {WHOLE: 10}) == {"order_paid": 10}  # Spiff: under the message's name
    assert message_variables(plain, {"a": 1}) == {"a": 1}
