"""The pure core: token-flow rules shared by the engine and the simulator (no I/O, no clock)."""

from engine.semantics import effects, events
from engine.semantics.core import Calendar, Semantics, SemanticsError
from engine.semantics.state import CompensationEntry, InstanceState, Token

__all__ = [
    "Calendar", "CompensationEntry", "InstanceState", "Semantics", "SemanticsError", "Token", "effects", "events",
]
