"""What happens to an instance: the inputs of :meth:`Semantics.step`.

The shells (engine, simulator) turn the world into these: an agent returned, a person completed a
form, a timer fell due, a message arrived, somebody cancelled.

Plain slotted dataclasses, read-only by convention but not ``frozen``: a frozen dataclass sets each field
through ``object.__setattr__``, which made building one 2-2.5x dearer, and the simulator builds one per
completed task (issue 19). Compared by value; not hashable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class WorkDone:
    """The work a ``StartWork`` effect asked for finished (agent outputs, form values)."""

    token_id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None


@dataclass(slots=True)
class WorkFailed:
    """The work failed. ``business=True`` (a BpmnError raised by the agent) skips retries and goes
    straight to error boundary events matching ``error_code``."""

    token_id: str
    error: str
    error_code: str | None = None
    business: bool = False


@dataclass(slots=True)
class WorkEscalated:
    """The work threw an escalation it did not catch and goes on (a called process's escalation throw or end
    event, BPMN 2.0 §10.5.6): the escalation is thrown at the activity, its boundary events first."""

    token_id: str
    escalation_code: str


@dataclass(slots=True)
class TimerFired:
    """A timer fell due. ``due`` is when it was scheduled for (shells pass it): a cycle re-arms from
    its schedule, so a late worker neither drifts the next occurrence nor skips one."""

    timer_id: str
    due: datetime | None = None


@dataclass(slots=True)
class MessageReceived:
    """A message matched the subscription (the shell correlates by name and key)."""

    subscription_id: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SignalReceived:
    """A broadcast signal reached the subscription (every subscription of the signal's name gets one)."""

    subscription_id: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RetryIncident:
    """Somebody fixed the cause of an incident and asks to try the work again. ``node_id`` is the incident's node:
    when it is not the token's own (a boundary event on the token's activity, an event sub-process start the
    token listens for), that event's wait is armed or evaluated again instead."""

    token_id: str
    node_id: str | None = None


@dataclass(slots=True)
class StepFailed:
    """The shell could not apply an event (``ref``: its token, timer or subscription id) because computing or
    writing the step raised ``error``: the token it concerned gets an incident instead of a retry forever."""

    ref: str
    error: str


@dataclass(slots=True)
class SetVariables:
    """Variables changed from outside (an operator, an API call): recorded like any other change."""

    values: dict[str, Any]
    actor: str | None = None


@dataclass(slots=True)
class Cancel:
    reason: str = "cancelled"


Event = (WorkDone | WorkFailed | WorkEscalated | TimerFired | MessageReceived | SignalReceived | RetryIncident
         | StepFailed | SetVariables | Cancel)
