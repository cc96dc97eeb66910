"""The rules, as data: which role each engine action needs, and who may act on a human task.

``RULES`` maps an action name to the roles that allow it (any one of them). The engine calls
``require(principal, action)`` at the top of each action; the app asks ``allowed()`` to hide what a
visitor may not do, but the engine's check is the one that counts. Changing who may do what is a
change to this table, reviewed like code, not a scattered ``if``.

Human tasks need no role. ``check_task`` applies the task actor rules (Camunda's Tasklist semantics):

- ``task.claim``: the task is open and unassigned, and the user is in one of its candidate groups;
- ``task.complete``: the user is the assignee, or the task is unassigned and the user is in one of its
  candidate groups (completing it claims it), unless the task requires a claim (``UserTask.requires_claim``,
  as Camunda's Tasklist): then a candidate claims it first and completes it as its assignee;
- ``task.delegate``: as ``task.complete`` (the holder, or a candidate when nobody holds it);
- ``task.unclaim``: the user is the assignee.

A task with neither an assignee nor candidate groups is offered to nobody: only the system principal
(or a delegation by it) can give it to someone. Delegation and escalation change the assignee, so they
change who may act: the rules always read the task's current row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import AuthorizationError
from engine.security.principal import Principal, Role

D, P, OP, A = Role.DESIGNER, Role.DEPLOYER, Role.OPERATOR, Role.ADMIN


@dataclass(frozen=True)
class Rule:
    """One action and the roles that allow it (any one); ``what`` says the action in words."""

    action: str
    roles: frozenset[Role]
    what: str


def _rules(*rows: tuple[str, Iterable[Role], str]) -> dict[str, Rule]:
    return {action: Rule(action, frozenset(roles), what) for action, roles, what in rows}


RULES: dict[str, Rule] = _rules(
    ("design.save", [D], "save or validate a design"),
    ("deploy", [P], "deploy a definition"),
    ("rollout", [P], "change rollout weights"),
    ("migrate", [P], "migrate instances to another version"),
    ("start", [OP], "start an instance"),
    ("cancel", [OP], "cancel an instance"),
    ("retry", [OP], "retry an incident"),
    ("correlate", [OP], "send a message"),
    ("signal", [OP], "broadcast a signal"),
    ("set_variables", [OP], "change an instance's variables"),
    ("clock.advance", [OP], "move the virtual clock"),
    ("jobs.release", [OP], "release job locks"),
    ("users.manage", [A], "manage users, groups and roles"),
    ("variables.sensitive.read", [OP, A], "see sensitive variable values"),
)

TASK_RULES = {
    "claim": "task.claim: an unassigned task may be claimed by a member of one of its candidate groups",
    "complete": "task.complete: only the assignee, or a member of a candidate group while nobody holds the task, "
                "may complete it",
    "complete.claim": "task.complete: this task requires a claim; a member of a candidate group claims it first, "
                      "then completes it as its assignee",
    "delegate": "task.delegate: only the assignee, or a member of a candidate group while nobody holds the task, "
                "may delegate it",
    "unclaim": "task.unclaim: only the assignee may give a task back",
}


def allowed(principal: Principal, action: str) -> bool:
    """Whether ``principal`` may do ``action`` (a key of ``RULES``; an unknown action is a ``KeyError``)."""
    rule = RULES[action]
    return principal.is_system or not rule.roles.isdisjoint(principal.roles)


def require(principal: Principal, action: str, target: str | None = None) -> Rule:
    """The rule that allows ``action``, or ``AuthorizationError`` naming it (``target``: what was acted on)."""
    if not isinstance(principal, Principal):
        raise AuthorizationError(f"cannot {RULES[action].what}: no principal (got {type(principal).__name__}); "
                                 "pass a Principal, e.g. Principal.system() for embedded single-user use", action)
    rule = RULES[action]
    if allowed(principal, action):
        return rule
    needs = " or ".join(sorted(r.value for r in rule.roles))
    has = ", ".join(sorted(r.value for r in principal.roles)) or "none"
    on = f" ({target})" if target else ""
    raise AuthorizationError(f"{principal.user!r} may not {rule.what}{on}: rule {action!r} needs the {needs} role; "
                             f"{principal.user!r} has roles: {has}", action)


def _requires_claim(get: Any) -> bool:
    try:
        return bool(get("requires_claim"))
    except (KeyError, AttributeError):  # a row read before the column existed
        return False


def check_task(principal: Principal, task: Mapping[str, Any] | Any, verb: str) -> None:
    """Apply the task actor rule for ``verb`` (claim, complete, delegate, unclaim) to a task row
    (mapping or row with ``id``, ``assignee``, ``candidate_groups`` as a list or JSON text).

    The system principal passes; anyone else gets ``AuthorizationError`` with rule ``task.<verb>``."""
    if principal.is_system:
        return
    get = task.get if isinstance(task, Mapping) else lambda k: getattr(task, k)
    candidates = get("candidate_groups")
    if isinstance(candidates, str):
        import json

        candidates = json.loads(candidates)
    assignee, task_id, user = get("assignee"), get("id"), principal.user
    rule = f"task.{verb}"
    if assignee == user:
        return
    if assignee is not None:
        reason = f"it is assigned to {assignee!r}"
    elif verb == "unclaim":
        reason = "nobody holds it"
    elif not candidates:
        reason = "it is offered to nobody (no assignee, no candidate groups)"
    elif principal.in_any(candidates):
        if verb == "complete" and _requires_claim(get):
            raise AuthorizationError(f"{user!r} may not complete task {task_id} before claiming it: it requires a "
                                     f"claim (claim first) ({TASK_RULES['complete.claim']})", "task.complete")
        return
    else:
        mine = ", ".join(sorted(principal.groups)) or "no groups"
        reason = f"it is offered to groups {', '.join(candidates)} and {user!r} is in {mine}"
    raise AuthorizationError(f"{user!r} may not {verb} task {task_id}: {reason} ({TASK_RULES[verb]})", rule)
