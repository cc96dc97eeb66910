"""The engine's side of the rules: one call at the top of each action (``authorize``), the task actor
check (``task_actor``), and who a call acts as (``acting_person``). Each decision is audited.

Kept apart from ``engine/runtime/engine.py`` so the engine's methods stay one line longer, not ten.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy.engine import Engine as SAEngine

from engine.errors import AuthorizationError
from engine.runtime.clock import Clock
from engine.security.audit import record
from engine.security.principal import Principal
from engine.security.rules import check_task, require

NO_PRINCIPAL = ("Engine() needs principal= when WAOOAW_PRODUCTION is set: who acts through it. The embedded "
                "single-user mode (notebooks, tests, scripts, the worker): Engine(url, principal=Principal.system()); "
                "a person: Engine(url, principal=UserStore(url).principal('ada')) or engine.acting_as(principal) "
                "(from engine.security import Principal, UserStore)")
PRODUCTION_ENV = "WAOOAW_PRODUCTION"


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


def authorize(engine: Acting, action: str, target: str | None = None, **detail: Any) -> None:
    """Check ``engine.principal`` against ``RULES[action]`` and audit the decision (its own transaction);
    a refusal raises ``AuthorizationError`` naming the rule."""
    try:
        require(engine.principal, action, target)
    except AuthorizationError as exc:
        record(engine.db, engine.principal, action, False, engine.clock.now(), exc.rule, target,
               {**detail, "error": str(exc)})
        raise
    record(engine.db, engine.principal, action, True, engine.clock.now(), action, target, detail or None)


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
