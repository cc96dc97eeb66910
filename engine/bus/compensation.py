"""The design review's compensation helper, for code outside a process (a saga in one function call).

    results = execute_with_compensation([
        (create_issue, delete_issue),
        (update_db, rollback_db),
        (send_email, send_cancellation),
    ])

Steps run in order. If one fails, the steps done before it are undone newest first, each undo called once
with its own step's result (an undo that takes no argument is called without). Then
:class:`CompensationError` is raised naming the failed step, what was undone and what was not: an undo
that fails is recorded and the remaining undos still run (the rule of BPMN compensation and of sagas:
undo as much as can be undone, then tell a person exactly what is left). Inside a process, use a
compensation handler on the activity instead (``compensation=`` on a service task).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import WaooawError

Step = tuple[Callable[[], Any], Callable[..., Any] | None]


def _name(fn: Callable[..., Any] | None) -> str:
    if fn is None:
        return "nothing"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


@dataclass(eq=False)
class CompensationError(WaooawError):
    """A step failed. ``failed`` is its name and ``error`` its exception; ``undone`` the steps undone
    (newest first), ``not_undone`` those whose undo failed or that had none, with ``undo_errors`` by name."""

    failed: str
    error: BaseException
    undone: list[str] = field(default_factory=list)
    not_undone: list[str] = field(default_factory=list)
    undo_errors: dict[str, BaseException] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @property
    def fully_undone(self) -> bool:
        return not self.not_undone

    def __str__(self) -> str:
        text = f"step {self.failed!r} failed ({type(self.error).__name__}: {self.error}); "
        text += f"undone: {', '.join(self.undone) or 'nothing'}"
        if self.not_undone:
            reasons = [f"{name} ({type(self.undo_errors[name]).__name__}: {self.undo_errors[name]})"
                       if name in self.undo_errors else f"{name} (no undo)" for name in self.not_undone]
            text += f"; NOT undone: {', '.join(reasons)}"
        return text


def _undo(undo: Callable[..., Any], result: Any) -> None:
    try:
        params = [p for p in inspect.signature(undo).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):  # builtins without a signature: give them the result
        params = [None]  # type: ignore[list-item]
    if params:
        undo(result)
    else:
        undo()


def execute_with_compensation(steps: Sequence[Step]) -> list[Any]:
    """Run ``(action, undo)`` pairs in order; return the actions' results.

    ``action()`` takes no argument (bind arguments with ``functools.partial`` or a lambda); ``undo(result)``
    gets its action's result (or nothing, if it takes no parameter); ``undo`` may be None (nothing to undo).
    Raises CompensationError (with the step's exception as ``__cause__``) after undoing what was done;
    TypeError for a step that is not a pair of callables."""
    pairs = list(steps)
    for i, step in enumerate(pairs, start=1):
        if not (isinstance(step, tuple | list) and len(step) == 2 and callable(step[0])
                and (step[1] is None or callable(step[1]))):
            raise TypeError(f"step {i} must be (action, undo) with callables (undo may be None), got {step!r}")
    done: list[tuple[str, Callable[..., Any] | None, Any]] = []
    for action, undo in pairs:
        try:
            result = action()
        except Exception as exc:
            failure = CompensationError(_name(action), exc)
            for name, handler, value in reversed(done):
                if handler is None:
                    failure.not_undone.append(name)
                    continue
                try:
                    _undo(handler, value)
                    failure.undone.append(name)
                except Exception as undo_exc:
                    failure.not_undone.append(name)
                    failure.undo_errors[name] = undo_exc
            failure.args = (str(failure),)
            raise failure from exc
        done.append((_name(action), undo, result))
    return [value for _, _, value in done]
