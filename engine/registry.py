"""Named Python callables: agents, compensation handlers and timeout handlers.

A definition stores a *name*, never a function object, so it serialises and can be found again
after a restart. ``ref_of`` turns a callable into its name (``module:qualname``) and remembers it,
so a function defined in a notebook works without ceremony; ``resolve`` finds it again, first in
the registry and then by importing ``module:qualname``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from engine.errors import UnknownHandlerError

_registry: dict[str, Any] = {}


def register(name: str | None = None, obj: Any = None) -> Any:
    """Register a callable or class under a name. Works as ``register("x", f)`` or ``@register("x")``."""

    def add(target: Any) -> Any:
        _registry[name or ref_of(target, remember=False)] = target
        return target

    if obj is not None:
        return add(obj)
    if callable(name) and not isinstance(name, str):
        target, name = name, None
        return add(target)
    return add


def ref_of(obj: Any, remember: bool = True) -> str:
    """The name a definition stores for a callable: its ``agent_name``/``name`` attribute or module:qualname."""
    if isinstance(obj, str):
        return obj
    if not callable(obj):
        raise TypeError(f"expected a callable, a class or a registered name, got {type(obj).__name__}")
    explicit = getattr(obj, "agent_name", None)
    ref = explicit if isinstance(explicit, str) else f"{obj.__module__}:{obj.__qualname__}"
    if remember:
        _registry.setdefault(ref, obj)
    return ref


def resolve(ref: str) -> Any:
    """Find a registered callable by name, or import it from ``module:qualname``."""
    if ref in _registry:
        return _registry[ref]
    if ":" in ref:
        module_name, _, qualname = ref.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError):
            pass
        else:
            _registry[ref] = target
            return target
    known = ", ".join(sorted(_registry)) or "none registered"
    raise UnknownHandlerError(
        f"no agent or handler named {ref!r}; register it with engine.register({ref!r}, fn) (known: {known})"
    )


def registered() -> dict[str, Callable[..., Any]]:
    return dict(_registry)


def unregister(name: str) -> None:
    _registry.pop(name, None)
