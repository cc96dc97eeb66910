"""Which BPMN element a node kind is written as, and how big it is drawn.

The reader stores an element name in ``metadata['bpmn']`` only when it differs from the kind's
default (a ``manualTask`` read as a ``task``, a message ``endEvent`` read as a ``message_throw``), and
the writer writes it back when it is one of the names allowed for the kind, so a round trip keeps the
element a person drew.
"""

from __future__ import annotations

from engine.model.nodes import Node

DEFAULT_TAG = {
    "start": "startEvent", "timer_start": "startEvent", "message_start": "startEvent", "end": "endEvent",
    "terminate_end": "endEvent", "error_end": "endEvent", "timer_catch": "intermediateCatchEvent",
    "message_catch": "intermediateCatchEvent", "message_throw": "intermediateThrowEvent",
    "compensation_throw": "intermediateThrowEvent", "intermediate_throw": "intermediateThrowEvent",
    "link_throw": "intermediateThrowEvent", "link_catch": "intermediateCatchEvent",
    "conditional_catch": "intermediateCatchEvent", "boundary_timer": "boundaryEvent",
    "signal_start": "startEvent", "signal_end": "endEvent", "signal_catch": "intermediateCatchEvent",
    "signal_throw": "intermediateThrowEvent", "boundary_signal": "boundaryEvent", "escalation_end": "endEvent",
    "escalation_throw": "intermediateThrowEvent", "boundary_escalation": "boundaryEvent",
    "error_start": "startEvent", "escalation_start": "startEvent", "conditional_start": "startEvent",
    "boundary_conditional": "boundaryEvent", "receive_task": "receiveTask",
    "boundary_error": "boundaryEvent", "boundary_message": "boundaryEvent",
    "exclusive_gateway": "exclusiveGateway", "inclusive_gateway": "inclusiveGateway",
    "parallel_gateway": "parallelGateway", "event_gateway": "eventBasedGateway", "task": "task",
    "service_task": "serviceTask", "user_task": "userTask", "script_task": "scriptTask", "sub_process": "subProcess",
    "call_activity": "callActivity", "cancel_end": "endEvent", "boundary_cancel": "boundaryEvent",
    "ad_hoc_sub_process": "adHocSubProcess",
}

# Other elements a kind may be written as (placeholders of a lenient import included).
ALTERNATIVE_TAGS = {
    "task": {"manualTask", "scriptTask", "businessRuleTask", "callActivity", "adHocSubProcess",
             "intermediateThrowEvent", "intermediateCatchEvent"},
    "service_task": {"sendTask", "businessRuleTask"},
    "message_catch": {"receiveTask"},
    "message_throw": {"endEvent", "sendTask"},
    "compensation_throw": {"endEvent"},
    "inclusive_gateway": {"complexGateway"},
}

EVENT_SIZE = (36, 36)
GATEWAY_SIZE = (50, 50)
TASK_SIZE = (100, 80)


def tag_of(node: Node) -> str:
    if getattr(node, "transaction", False):  # a transaction sub-process (and only it) is a <transaction>
        return "transaction"
    wanted = node.metadata.get("bpmn")
    kind = node.kind  # type: ignore[attr-defined]
    if isinstance(wanted, str) and wanted in ALTERNATIVE_TAGS.get(kind, set()):
        return wanted
    return DEFAULT_TAG[kind]


def size_of(tag: str) -> tuple[int, int]:
    if tag.endswith("Event"):
        return EVENT_SIZE
    if tag.endswith("Gateway"):
        return GATEWAY_SIZE
    return TASK_SIZE
