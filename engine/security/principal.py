"""Who acts: a ``Principal`` (user, groups, roles) and the four roles.

A principal is a value, not a session: the app builds one from the signed-in account (or the demo
persona), a notebook or worker builds ``Principal.system()``, and the engine checks every action
against it (``engine.security.rules``). Roles follow the issue's split of duties:

- ``designer``: save and validate designs;
- ``deployer``: deploy definitions, change rollout weights, migrate instances;
- ``operator``: start and cancel instances, retry incidents, send messages, move the virtual clock;
- ``admin``: manage users, groups and roles.

Human tasks need no role: who may claim, complete or delegate one follows from the task (its
assignee and candidate groups), see ``rules.check_task``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

SYSTEM_USER = "system"


class Role(StrEnum):
    """The roles a principal may hold (stored by value: ``"designer"``, ...)."""

    DESIGNER = "designer"
    DEPLOYER = "deployer"
    OPERATOR = "operator"
    ADMIN = "admin"


ALL_ROLES: frozenset[Role] = frozenset(Role)


def parse_roles(roles: Iterable[str | Role]) -> frozenset[Role]:
    """Role names to ``Role``; an unknown name is a ``ValueError`` naming the known ones."""
    out = set()
    for role in roles:
        try:
            out.add(Role(role))
        except ValueError:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(r.value for r in Role)}") from None
    return frozenset(out)


@dataclass(frozen=True)
class Principal:
    """``Principal(user, groups, roles)``: who is acting.

    ``groups`` are the candidate groups the user belongs to (``"on-call"``, ``"marketing"``: the names
    definitions use in ``candidate_groups``); ``roles`` are ``Role`` values (strings are accepted).
    ``is_system`` marks the embedded single-user principal (``Principal.system()``): it holds every
    role and may act on any human task, on its own behalf or on behalf of a named person.
    """

    user: str
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[Role] = field(default_factory=frozenset)
    is_system: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.user, str) or not self.user.strip():
            raise ValueError("a principal needs a non-empty user name")
        object.__setattr__(self, "groups", frozenset(self.groups))
        object.__setattr__(self, "roles", parse_roles(self.roles))
        if self.is_system and self.roles != ALL_ROLES:
            object.__setattr__(self, "roles", ALL_ROLES)

    @classmethod
    def system(cls, user: str = SYSTEM_USER) -> Principal:
        """The embedded single-user principal: notebooks, tests, the CLI and the worker process.

        Choosing it is a decision (``Engine(url, principal=Principal.system())``), recorded in the audit
        trail under ``user``; the app never uses it for a visitor."""
        return cls(user, frozenset(), ALL_ROLES, is_system=True)

    def has(self, role: Role | str) -> bool:
        return Role(role) in self.roles

    def in_any(self, groups: Iterable[str]) -> bool:
        return not self.groups.isdisjoint(groups)

    def __str__(self) -> str:
        if self.is_system:
            return f"{self.user} (system)"
        roles = ", ".join(sorted(r.value for r in self.roles)) or "no roles"
        return f"{self.user} ({roles})"
