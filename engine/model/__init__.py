"""The one process model shared by designer, simulator and engine."""

from engine.model.builder import Cursor, ProcessBuilder, for_each, repeat, times
from engine.model.definition import ProcessDefinition, VariableDecl, type_matches
from engine.model.nodes import (
    Activity,
    AdHocSubProcess,
    BoundaryEvent,
    CompensationThrowEvent,
    EndEvent,
    ErrorBoundaryEvent,
    ErrorEndEvent,
    EventBasedGateway,
    ExclusiveGateway,
    FormField,
    Gateway,
    InclusiveGateway,
    MessageBoundaryEvent,
    MessageCatchEvent,
    MessageStartEvent,
    MessageThrowEvent,
    MultiInstance,
    Node,
    OnTimeout,
    ParallelGateway,
    RetryPolicy,
    SequenceFlow,
    ServiceTask,
    StandardLoop,
    StartEvent,
    SubProcess,
    Task,
    TerminateEndEvent,
    TimerBoundaryEvent,
    TimerCatchEvent,
    TimerStartEvent,
    UserTask,
    complete_with,
    escalate,
    notify,
    reassign,
)
from engine.model.serialize import from_dict, from_json, from_yaml, load, save, to_json, to_yaml
from engine.model.timers import Timer

__all__ = [
    "Activity", "AdHocSubProcess", "BoundaryEvent", "CompensationThrowEvent", "Cursor", "EndEvent",
    "ErrorBoundaryEvent", "ErrorEndEvent", "EventBasedGateway", "ExclusiveGateway", "FormField", "Gateway",
    "InclusiveGateway",
    "MessageBoundaryEvent", "MessageCatchEvent", "MessageStartEvent", "MessageThrowEvent", "MultiInstance", "Node",
    "OnTimeout", "ParallelGateway", "ProcessBuilder", "ProcessDefinition", "RetryPolicy", "SequenceFlow",
    "ServiceTask", "StandardLoop", "StartEvent", "SubProcess", "Task", "TerminateEndEvent", "Timer",
    "TimerBoundaryEvent", "TimerCatchEvent", "TimerStartEvent", "UserTask", "VariableDecl", "complete_with", "escalate",
    "for_each", "from_dict", "from_json", "from_yaml", "load", "notify", "reassign", "repeat", "save", "times",
    "to_json", "to_yaml", "type_matches",
]
