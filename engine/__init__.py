"""waooaw engine: the process model, its validation and rendering, and the runtime that executes it."""

from engine.errors import (
    DefinitionError,
    ExpressionError,
    Problem,
    TimerSpecError,
    UnknownHandlerError,
    WaooawError,
)
from engine.model import *  # noqa: F403
from engine.model import __all__ as _model_all
from engine.registry import register, resolve

__all__ = [
    "DefinitionError", "ExpressionError", "Problem", "TimerSpecError", "UnknownHandlerError", "WaooawError",
    "register", "resolve", *_model_all,
]
