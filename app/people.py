"""Who can use the app, in one place: the demo's people and their groups, and the "acting as" choice.

The people are the identity model's demo personas (``engine.security.DEMO_PERSONAS``); who the visitor acts
as is decided by ``app/auth.py`` (sign-in, or the demo persona switcher).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.security import DEMO_PERSONAS


@dataclass(frozen=True)
class Person:
    """A demo user: ``user`` is the id the designs name (assignee, escalation target)."""

    user: str
    title: str
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"{self.title} ({self.user})"


# The demo personas of the identity model (engine/security/demo.py: groups and roles), as the pages list them.
DEMO_PEOPLE: tuple[Person, ...] = tuple(Person(p.name, p.display_name, p.groups) for p in DEMO_PERSONAS)


def demo_people() -> list[Person]:
    return list(DEMO_PEOPLE)


def person(user: str) -> Person | None:
    return next((p for p in DEMO_PEOPLE if p.user == user), None)


def groups_of(user: str) -> list[str]:
    """The groups ``user`` belongs to (none for someone not in the list)."""
    found = person(user)
    return list(found.groups) if found else []
