"""How autogenerate writes column types: plain SQLAlchemy types, so a revision never imports the models
(``UtcDateTime`` is ``DateTime(timezone=True)`` in the database; SQLModel's ``AutoString`` is ``String``)."""

from __future__ import annotations

from typing import Any


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    if kind == "type":
        name = type(obj).__name__
        if name == "UtcDateTime":
            return "sa.DateTime(timezone=True)"
        if name == "AutoString":
            return f"sa.String({obj.length})" if getattr(obj, "length", None) else "sa.String()"
    return False
