"""Demo personas: the people the library designs name, as accounts, for demo mode.

``seed_demo_users(store)`` adds them (idempotent: an existing account is left as it is). They have no
password: in demo mode the app lets a visitor switch between them; outside demo mode nobody can sign
in as one. The app refuses demo mode when the production flag is set (``app/auth.py``).

Who they are, and why (the designs in ``designs/``):

=====================  ======================  ======================  =============================
user                   who                     groups                  roles
=====================  ======================  ======================  =============================
engineer               an engineer             engineering             designer
on-call                the engineer on call    engineering, on-call    operator
engineering-manager    the engineering lead    engineering, on-call    designer, deployer, operator
cto                    the CTO                 leadership              deployer, operator, admin
marketing-lead         the marketing lead      marketing               operator
=====================  ======================  ======================  =============================

``incident_response`` offers "Acknowledge incident" to the ``on-call`` group and escalates to
``engineering-manager``, then to ``cto``; ``marketing_campaign`` assigns "Approve campaign" to
``marketing-lead`` and escalates it to ``cto``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.security.principal import Principal, Role
from engine.security.users import UserInfo, UserStore


@dataclass(frozen=True)
class Persona:
    name: str
    display_name: str
    groups: tuple[str, ...]
    roles: tuple[Role, ...]

    def principal(self) -> Principal:
        return Principal(self.name, frozenset(self.groups), frozenset(self.roles))


D, P, OP, A = Role.DESIGNER, Role.DEPLOYER, Role.OPERATOR, Role.ADMIN
DEMO_PERSONAS: tuple[Persona, ...] = (
    Persona("engineer", "Engineer", ("engineering",), (D,)),
    Persona("on-call", "On-call engineer", ("engineering", "on-call"), (OP,)),
    Persona("engineering-manager", "Engineering lead", ("engineering", "on-call"), (D, P, OP)),
    Persona("cto", "CTO", ("leadership",), (P, OP, A)),
    Persona("marketing-lead", "Marketing lead", ("marketing",), (OP,)),
)


def seed_demo_users(store: UserStore) -> list[UserInfo]:
    """Add the demo personas that are missing (as the system principal); returns every demo account."""
    system = Principal.system("demo-seed")
    existing = {u.name for u in store.users()}
    for p in DEMO_PERSONAS:
        if p.name not in existing:
            store.add_user(system, p.name, None, p.groups, p.roles, display_name=p.display_name, demo=True)
    return [u for u in store.users() if u.demo]
