"""Named Python callables: agents, compensation handlers and timeout handlers.

A definition stores a *name*, never a function object, so it serialises and can be found again
after a restart. ``ref_of`` turns a callable into its name (``module:qualname``) and remembers it,
so a function defined in a notebook works without ceremony; ``resolve`` finds it again, first in
the registry and then by importing ``module:qualname``.

Definitions are data, not code: a definition read from a file, an upload, BPMN or the database never
chooses what this process imports. ``resolve`` imports ``module:qualname`` only when the module is on
the deployment's allow-list: ``WAOOAW_AGENT_MODULES`` (comma-separated module names; a name allows its
sub-modules too), ``allow_modules(...)``, and the modules a worker is started with (``--agents``).
The library's own ``designs`` is listed by default. The qualname is walked without private names
(``_x``) and must end at an object defined in an allowed module (``designs.agents:os.system`` is
refused even though ``designs.agents`` imports ``os``). ``check_refs`` applies the same rules to a whole
definition at deploy time, so a bad reference is refused before anything is written.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from engine.errors import Problem, UnknownHandlerError

if TYPE_CHECKING:
    from engine.model.definition import ProcessDefinition

_registry: dict[str, Any] = {}
MODULES_ENV = "WAOOAW_AGENT_MODULES"
DEFAULT_MODULES = ("designs",)
_allowed: set[str] = set()


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


def allow_modules(*modules: str) -> None:
    """Add modules to the allow-list of ``module:qualname`` references (deployment configuration)."""
    _allowed.update(m.strip() for m in modules if m and m.strip())


def allowed_modules() -> list[str]:
    """The allow-list now: the defaults, ``WAOOAW_AGENT_MODULES`` and ``allow_modules`` calls."""
    from_env = [m.strip() for m in os.environ.get(MODULES_ENV, "").split(",") if m.strip()]
    return sorted({*DEFAULT_MODULES, *from_env, *_allowed})


def module_allowed(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in allowed_modules())


def _refused(ref: str) -> str | None:
    """Why ``ref`` may not be imported (None: it may)."""
    module_name, _, qualname = ref.partition(":")
    if not module_allowed(module_name):
        return (f"module {module_name!r} is not on the allow-list of agent modules ({', '.join(allowed_modules())});"
                f" list it in {MODULES_ENV} or register the callable with engine.register({ref!r}, fn)")
    if not qualname or any(not part.isidentifier() or part.startswith("_") for part in qualname.split(".")):
        return f"{qualname!r} is not a public name (letters, digits and _, not starting with _)"
    return None


def _import(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
            if inspect.ismodule(target):
                raise UnknownHandlerError(f"agent {ref!r}: {part!r} is a module, not a callable defined in "
                                          f"{module_name!r}")
    except (ImportError, AttributeError):
        return None
    owner = getattr(target, "__module__", None) or ""
    if not (callable(target) or hasattr(target, "execute")) or not module_allowed(owner):
        raise UnknownHandlerError(f"agent {ref!r} is not a callable defined in an allowed module "
                                  f"(it comes from {owner or 'nowhere'!r})")
    return target


def resolve(ref: str) -> Any:
    """Find a registered callable by name, or import it from ``module:qualname`` when its module is allowed.

    Raises ``UnknownHandlerError`` naming the reference and what to do."""
    if ref in _registry:
        return _registry[ref]
    if ":" in ref:
        why = _refused(ref)
        if why is not None:
            raise UnknownHandlerError(f"agent {ref!r} refused: {why}")
        target = _import(ref)
        if target is not None:
            _registry[ref] = target
            return target
    known = ", ".join(sorted(_registry)) or "none registered"
    raise UnknownHandlerError(
        f"no agent or handler named {ref!r}; register it with engine.register({ref!r}, fn) (known: {known})"
    )


def definition_refs(definition: ProcessDefinition) -> Iterator[tuple[str, str, str]]:
    """``(node id, field, reference)`` for every agent and handler a definition names."""
    handlers = {n.id for n in definition.all_nodes() if getattr(n, "for_compensation", False)}
    for node in definition.all_nodes():
        for name in ("agent", "compensation"):
            value = getattr(node, name, None)
            if isinstance(value, str) and not (name == "compensation" and value in handlers):
                yield node.id, name, value  # (a compensation handler activity of the process is a node, not code)
        handler = getattr(getattr(node, "on_timeout", None), "handler", None)
        if isinstance(handler, str):
            yield node.id, "on_timeout.handler", handler


def check_refs(definition: ProcessDefinition, refs: Iterable[tuple[str, str, str]] | None = None) -> list[Problem]:
    """Every agent or handler reference this process cannot honour: a name nobody registered, a module
    off the allow-list, a qualname that is private or leaves its module. Imports only allowed modules."""
    problems = []
    for node_id, field, ref in (definition_refs(definition) if refs is None else refs):
        try:
            resolve(ref)
        except UnknownHandlerError as exc:
            problems.append(Problem(node_id, f"{field}: {exc}"))
    return problems


def registered() -> dict[str, Callable[..., Any]]:
    return dict(_registry)


def unregister(name: str) -> None:
    _registry.pop(name, None)
