"""What the ``Engine`` mixins (``HumanTaskApi``, ``MessageApi``, ``SignalApi``, ``InspectApi``) may use of the
engine they are mixed into, declared once for type checkers: the engine's connections, clock and principal, and
the few internal steps they call. Nothing here runs; ``Engine`` (``engine.runtime.engine``) defines each."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine as SAEngine

    from engine.model.definition import ProcessDefinition
    from engine.runtime.clock import Clock
    from engine.runtime.writes import Writes
    from engine.security import Principal
    from engine.semantics import Semantics
    from engine.semantics import events as ev


class EngineParts:
    """The base of every ``Engine`` mixin: declarations only (see the module docstring)."""

    if TYPE_CHECKING:
        db: SAEngine
        reader: SAEngine
        clock: Clock
        principal: Principal
        message_ttl: timedelta

        def _apply(self, instance_id: str, events: Iterable[ev.Event],
                   before: Callable[[Connection], bool] | None = None, traceback: str | None = None) -> bool: ...
        def _settle(self, conn: Connection, job_id: int) -> bool: ...
        def semantics(self, name: str, version: int) -> Semantics: ...
        def definition(self, name: str, version: int | None = None, conn: Connection | None = None
                       ) -> ProcessDefinition: ...
        def _check_variables(self, definition: ProcessDefinition, values: dict[str, Any],
                             action: str | None = None) -> None: ...
        def _start_in(self, conn: Connection, writes: Writes, definition: ProcessDefinition,
                      variables: dict[str, Any], business_key: str | None, start_node: str | None = None,
                      actor: str | None = None, instance_id: str | None = None,
                      caller: dict[str, Any] | None = None) -> str: ...


__all__ = ["EngineParts"]
