"""The engine's side of the rules: one call at the top of each action (``authorize``), the task actor
check (``task_actor``), and who a call acts as (``acting_person``). Each decision is audited.

The audit row of an allowed action says what became of it, so the trail never claims an action that did
not happen. An action method is decorated with ``@audited``; its ``authorize`` call checks the rule and
keeps the allowed row pending. The action writes it in its own transaction (``within(conn)``: with the
change, committed or rolled back with it); otherwise it is written when the action returns
(``succeeded``). If the action raises and its row did not commit, a ``failed`` row with the error is
written instead, and the action itself wrote nothing. A refusal is written at once (``refused``).

Kept apart from ``engine/runtime/engine.py`` so the engine's methods stay one line longer, not ten.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy.engine import Engine as SAEngine

from engine.errors import AuthorizationError
from engine.runtime.clock import Clock
from engine.security.audit import exists, record
from engine.security.principal import Principal
from engine.security.rules import check_task, require

NO_PRINCIPAL = ("Engine() needs principal= when WAOOAW_PRODUCTION is set: who acts through it. The embedded "
                "single-user mode (notebooks, tests, scripts, the worker): Engine(url, principal=Principal.system()); "
                "a person: Engine(url, principal=UserStore(url).principal('ada')) or engine.acting_as(principal) "
                "(from engine.security import Principal, UserStore)")
PRODUCTION_ENV = "WAOOAW_PRODUCTION"
ERROR_CHARS = 500  # an error kept in a failed action's audit row is cut to this many characters
log = logging.getLogger("waooaw.audit")
P = ParamSpec("P")
R = TypeVar("R")


def production() -> bool:
    """Whether ``WAOOAW_PRODUCTION`` is set to a true value (1, true, yes, on): no implicit embedded mode."""
    return (os.environ.get(PRODUCTION_ENV) or "").strip().lower() in ("1", "true", "yes", "on")


class Acting(Protocol):
    db: SAEngine
    clock: Clock
    principal: Principal


def checked_principal(principal: object) -> Principal:
    """``principal`` itself, or an ``AuthorizationError`` saying how to choose one.

    ``None`` is the embedded single-user mode, ``Principal.system()`` (as an embedded Camunda engine runs
    with authorization checks off): a script or notebook on its own database says ``Engine(url)``. The
    rules still run and every action is audited as ``system``. With ``WAOOAW_PRODUCTION`` set there is
    no implicit mode: every engine names who acts through it."""
    if principal is None and not production():
        return Principal.system()
    if not isinstance(principal, Principal):
        raise AuthorizationError(NO_PRINCIPAL + (f"; got {type(principal).__name__}" if principal is not None
                                                 else ""), "principal")
    return principal


@dataclass
class _Pending:
    """An allowed action's audit row, waiting for the action's outcome."""

    db: SAEngine
    principal: Principal
    action: str
    at: datetime
    target: str | None
    detail: dict[str, Any] | None
    row_id: int | None = None  # set when written in the action's transaction (committed only if it did)


_SCOPE: ContextVar[list[_Pending] | None] = ContextVar("waooaw_audit_scope", default=None)


def audited(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate an engine action whose ``authorize`` call should record the action's outcome (see the module
    docstring). Nested actions each keep their own rows."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        pending: list[_Pending] = []
        token = _SCOPE.set(pending)
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            _SCOPE.reset(token)
            try:
                _settle(pending, exc)
            except Exception:  # the database went away too: the action's own error is the one to raise
                log.exception("could not write the failed action's audit row")
            raise
        _SCOPE.reset(token)
        _settle(pending, None)
        return result

    return run


def _settle(pending: list[_Pending], error: Exception | None) -> None:
    for row in pending:
        if error is None:
            if row.row_id is None:
                record(row.db, row.principal, row.action, True, row.at, row.action, row.target, row.detail,
                       outcome="succeeded")
        elif row.row_id is None or not exists(row.db, row.row_id):  # the action's transaction rolled back
            text = f"{type(error).__name__}: {error}"[:ERROR_CHARS]
            record(row.db, row.principal, row.action, True, row.at, row.action, row.target,
                   {**(row.detail or {}), "error": text}, outcome="failed")


def within(conn: Any) -> bool:
    """Write the current action's pending audit rows in ``conn``, the action's own transaction (they commit
    or roll back with its change). Returns True (so it can end a ``before`` check); a no-op outside an
    ``@audited`` action."""
    for row in _SCOPE.get() or ():
        if row.row_id is None:
            row.row_id = record(conn, row.principal, row.action, True, row.at, row.action, row.target, row.detail,
                                outcome="succeeded")
    return True


def rolled_back() -> None:
    """The action's transaction rolled back and the action runs it again: its pending audit rows are written
    again by the next ``within``."""
    for row in _SCOPE.get() or ():
        row.row_id = None


def authorize(engine: Acting, action: str, target: str | None = None, **detail: Any) -> None:
    """Check ``engine.principal`` against ``RULES[action]``. A refusal is audited at once and raises
    ``AuthorizationError`` naming the rule. An allowed action's row waits for its outcome inside an
    ``@audited`` method (see the module docstring); outside one it is written now, outcome unrecorded."""
    try:
        require(engine.principal, action, target)
    except AuthorizationError as exc:
        record(engine.db, engine.principal, action, False, engine.clock.now(), exc.rule, target,
               {**detail, "error": str(exc)})
        raise
    scope = _SCOPE.get()
    if scope is None:
        record(engine.db, engine.principal, action, True, engine.clock.now(), action, target, detail or None,
               outcome=None)
    else:
        scope.append(_Pending(engine.db, engine.principal, action, engine.clock.now(), target, detail or None))


def acting_person(principal: Principal, user: str | None, groups: Iterable[str] | None) -> Principal:
    """Who a task action is done by.

    A person acts as themselves: ``user`` must be None or their own name (their groups are the account's,
    ``groups`` is ignored). The system principal acts as itself when ``user`` is None, or on behalf of the
    person ``user`` in ``groups`` (None: no groups): the trusted embedded caller names the person, and the
    task rules apply to that person."""
    if principal.is_system:
        return principal if user is None else Principal(user, frozenset(groups or ()))
    if user is not None and user != principal.user:
        raise AuthorizationError(f"{principal.user!r} may not act as {user!r}: a person acts only as themselves "
                                 "(rule 'act_as')", "act_as")
    return principal


def task_actor(engine: Acting, task: Any, verb: str, user: str | None,
               groups: Iterable[str] | None) -> Principal:
    """The person doing ``verb`` on ``task`` if the task rules allow it; else the refusal is audited and raised."""
    try:
        person = acting_person(engine.principal, user, groups)
        check_task(person, task, verb)
    except AuthorizationError as exc:
        record(engine.db, engine.principal, f"task.{verb}", False, engine.clock.now(), exc.rule,
               f"task {task.id}", {"as": user, "error": str(exc)})
        raise
    return person


def audit_task(conn: Any, engine: Acting, verb: str, task: Any, person: Principal) -> None:
    """The allowed task action's audit row, in the caller's transaction (with the change itself)."""
    detail = {"as": person.user} if person is not engine.principal else None
    record(conn, engine.principal, f"task.{verb}", True, engine.clock.now(), f"task.{verb}", f"task {task.id}",
           detail)


def recorded_actor(principal: Principal, actor: str | None) -> str | None:
    """The name an action records as its actor: a person's own (naming another is refused), or what the
    system principal says (it may record the person it acts for, or None for itself)."""
    return actor if principal.is_system else acting_person(principal, actor, None).user


def definition_problems(definition: Any) -> list[Any]:
    """Why a definition may not be deployed in this process: agent and handler references it cannot honour."""
    from engine.registry import check_refs

    return check_refs(definition)
