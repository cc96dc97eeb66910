"""The security tables, in the engine's database next to the workflow tables.

``wf_users``: one row per account; ``groups`` and ``roles`` are JSON lists (TEXT, as the engine's other
JSON columns); ``password_hash`` is an argon2id PHC string, or NULL for an account that cannot sign in
with a password (OpenID Connect users, demo personas).

``wf_audit``: every authorization decision, allowed or refused, with the principal: the engine writes
one row per action it checks, the app one per sign-in. ``rule`` is the rule that decided
(``"deploy"``, ``"task.complete"``), ``detail`` JSON. ``outcome`` says what became of the action:
``succeeded`` (written in the action's own transaction, or after it returned), ``failed`` (allowed, then
it raised: ``detail["error"]`` says why, and the action wrote nothing else) or ``refused``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from engine.runtime.tables import _ts


class UserRow(SQLModel, table=True):
    __tablename__ = "wf_users"
    name: str = Field(primary_key=True)
    display_name: str | None = None
    email: str | None = Field(default=None, index=True)
    password_hash: str | None = Field(default=None, sa_column=Column(Text))
    groups: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    roles: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    disabled: bool = False
    demo: bool = False  # a seeded demo persona: usable only in demo mode
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class AuditRow(SQLModel, table=True):
    __tablename__ = "wf_audit"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    principal: str = Field(index=True)
    roles: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    action: str
    target: str | None = None
    allowed: bool
    rule: str | None = None
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    outcome: str | None = None  # succeeded | failed (allowed) | refused; None: not recorded (before revision 0004)
