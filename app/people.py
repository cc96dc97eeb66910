"""Who can use the app, in one place: the demo's people and their groups, and the "acting as" choice.

Until the identity model (engine/security/, issue 13) is on main, the demo people are this module's list;
the pages only call :func:`demo_people` and :func:`groups_of`, so switching to that model touches this
file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Person:
    """A demo user: ``user`` is the id the designs name (assignee, escalation target)."""

    user: str
    title: str
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return f"{self.title} ({self.user})"


# The brief's company: the designs assign to these ids (marketing_campaign: marketing-lead, escalating to cto;
# incident_response: the on-call group, engineering-manager, cto).
DEMO_PEOPLE: tuple[Person, ...] = (
    Person("engineer", "Engineer", ("engineering",)),
    Person("engineering-manager", "Engineering lead", ("engineering", "on-call")),
    Person("cto", "CTO", ("leadership",)),
    Person("marketing-lead", "Marketing lead", ("marketing",)),
    Person("on-call", "On-call engineer", ("engineering", "on-call")),
)


def demo_people() -> list[Person]:
    return list(DEMO_PEOPLE)


def person(user: str) -> Person | None:
    return next((p for p in DEMO_PEOPLE if p.user == user), None)


def groups_of(user: str) -> list[str]:
    """The groups ``user`` belongs to (none for someone not in the list)."""
    found = person(user)
    return list(found.groups) if found else []
