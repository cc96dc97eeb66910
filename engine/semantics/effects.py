"""What the core asks the world to do: the outputs of :meth:`Semantics.step`.

The engine turns them into rows and jobs in one transaction; the simulator into SimPy events.
Ids (token, work, timer, subscription) are made by the core, deterministically, so both shells
name things the same way.

Plain slotted dataclasses, read-only by convention but not ``frozen``: a frozen dataclass sets each field
through ``object.__setattr__``, which made building one 2-2.5x dearer, and a step builds several (issue 19).
Compared by value; not hashable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Entered:
    """A token reached a node (for audit trails, heat maps, the simulator's event log)."""

    token_id: str
    node_id: str


@dataclass(slots=True)
class Left:
    """A token completed its node without moving on by a flow: one instance of a multi-instance or loop
    activity (its token is gone; the body goes on when all are done)."""

    token_id: str
    node_id: str


@dataclass(slots=True)
class StartWork:
    """Do the work of an activity: call an agent (service_task), open a human task (user_task),
    nothing or a sampled duration (task), or run a compensation handler (compensation).
    ``work_id`` names this activation; with the instance id it is the idempotency key."""

    token_id: str
    node_id: str
    kind: str  # "service_task" | "user_task" | "task" | "compensation"
    work_id: str
    attempt: int = 1
    inputs: dict[str, Any] = field(default_factory=dict)
    handler: str | None = None  # agent or compensation handler name
    due: datetime | None = None  # SLA due time of a user task


@dataclass(slots=True)
class CancelWork:
    """Work in progress is no longer wanted (a boundary event interrupted it, the instance ended)."""

    token_id: str
    node_id: str
    work_id: str


@dataclass(slots=True)
class ScheduleTimer:
    """Fire ``TimerFired(timer_id)`` at ``due``. ``purpose``: catch, boundary, race, sla or retry."""

    timer_id: str
    due: datetime
    token_id: str
    node_id: str
    purpose: str


@dataclass(slots=True)
class CancelTimer:
    timer_id: str


@dataclass(slots=True)
class Subscribe:
    """Deliver the next message ``message`` whose key equals ``correlation`` as MessageReceived; with
    ``kind="signal"``, every broadcast of the signal named ``message`` as SignalReceived (no key)."""

    subscription_id: str
    message: str
    correlation: Any
    token_id: str
    node_id: str
    kind: str = "message"  # "message" | "signal"


@dataclass(slots=True)
class Unsubscribe:
    subscription_id: str


@dataclass(slots=True)
class SendMessage:
    message: str
    correlation: Any
    payload: dict[str, Any]
    node_id: str


@dataclass(slots=True)
class BroadcastSignal:
    """Broadcast ``signal`` to every signal subscription waiting now (of any instance) and start every
    definition with a matching signal start event; ``payload`` becomes their variables."""

    signal: str
    payload: dict[str, Any]
    node_id: str


@dataclass(slots=True)
class Escalated:
    """An escalation thrown at ``node_id`` that nothing caught (recorded; the instance goes on)."""

    token_id: str
    node_id: str
    code: str


@dataclass(slots=True)
class VariablesChanged:
    """Every change of a process variable, with the node (or actor) that made it."""

    node_id: str | None
    changes: tuple[tuple[str, Any, Any], ...]  # (name, old, new)
    actor: str | None = None


@dataclass(slots=True)
class SlaBreached:
    """A user task's SLA passed; ``action`` is its on_timeout (None: only record the breach)."""

    token_id: str
    node_id: str
    work_id: str
    action: Any  # engine.model.nodes.OnTimeout | None


@dataclass(slots=True)
class Incident:
    """Work failed for good and nothing caught it: the token waits until RetryIncident."""

    token_id: str
    node_id: str
    error: str


@dataclass(slots=True)
class Compensation:
    """A compensation handler's run started (``outcome`` None) or ended (``completed``: the activity is
    compensated; ``failed``: an incident at the throw), for the activity history. ``activity_id`` is the
    activity it undoes, ``handler`` its handler activity's id or handler reference, ``work_id`` the run."""

    token_id: str
    activity_id: str
    handler: str
    work_id: str
    outcome: str | None = None


@dataclass(slots=True)
class InstanceEnded:
    status: str  # "completed" | "terminated" | "failed" | "cancelled"
    error: str | None = None
    error_code: str | None = None  # the code of the BPMN error that failed it (nothing caught it)


Effect = (
    Entered | Left | StartWork | CancelWork | ScheduleTimer | CancelTimer | Subscribe | Unsubscribe | SendMessage
    | BroadcastSignal | Escalated | VariablesChanged | SlaBreached | Incident | Compensation | InstanceEnded
)
