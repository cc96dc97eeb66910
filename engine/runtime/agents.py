"""The agent protocol: how Python code does the work of a service task.

An agent is a callable ``agent(inputs, context) -> outputs`` or an object (or class, instantiated
once) with ``execute(inputs, context) -> outputs``. The same agent runs standalone (call it with
inputs and a context you make) and orchestrated (the engine calls it for a service task). The
context says which instance and step it serves and carries an idempotency key that stays the same
for every retry and every re-run after a crash: key external side effects by it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from engine.errors import WaooawError
from engine.registry import resolve


class BpmnError(WaooawError):
    """A business error: not retried, routed to an error boundary event whose code matches."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(message or code)


@dataclass(frozen=True)
class AgentContext:
    instance_id: str = "standalone"
    node_id: str = ""
    work_id: str = ""
    attempt: int = 1
    business_key: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """Stable for one activation of one task: the same across retries and crash re-runs."""
        return f"{self.instance_id}:{self.work_id}"


_instances: dict[str, Any] = {}


def call_agent(ref: str, inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    """Resolve ``ref`` and call it; a None result means no outputs."""
    target = resolve(ref)
    if inspect.isclass(target):
        target = _instances.setdefault(ref, target())
    result = target.execute(inputs, context) if hasattr(target, "execute") else target(inputs, context)
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"agent {ref!r} returned {type(result).__name__}; return a dict of outputs")
    return result
