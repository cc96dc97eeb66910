"""Accounts in the engine's database: users, their groups and roles, argon2 password hashes.

``UserStore(db)`` (a SQLAlchemy engine, e.g. ``Engine.db``, or a URL) is the one place accounts live:
the app signs people in through it, the engine's callers turn an account into a ``Principal`` with
``principal(name)``. Passwords are hashed with argon2id through ``argon2-cffi`` (its RFC 9106
defaults); a hash made with older parameters is upgraded at the next successful sign-in.

Who may change accounts: ``users.manage`` (the admin role) for anyone, every user for their own
password; ``create_first_admin`` only while no admin account exists (the first-run flow). Each change
and each sign-in attempt lands in the audit trail (``wf_audit``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine as SAEngine

from engine.errors import AuthorizationError, EngineError
from engine.security import audit
from engine.security.principal import ALL_ROLES, Principal, Role, parse_roles
from engine.security.rules import require
from engine.security.tables import AuditRow, UserRow

U = UserRow.__table__
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2id with its RFC 9106 defaults, made on first use: hashing takes 64 MiB and ~0.1 s, which a worker
    or a script that never signs anyone in must not pay at import."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy() -> str:
    return _hasher().hash("not a password: equalises the time of unknown-user sign-ins")


@dataclass(frozen=True)
class UserInfo:
    """An account as shown to people (never the hash)."""

    name: str
    display_name: str | None
    email: str | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    disabled: bool
    demo: bool
    has_password: bool

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.name})" if self.display_name else self.name

    def principal(self) -> Principal:
        return Principal(self.name, frozenset(self.groups), parse_roles(self.roles))


def _info(row: object) -> UserInfo:
    r = row
    return UserInfo(r.name, r.display_name, r.email, tuple(json.loads(r.groups)), tuple(json.loads(r.roles)),
                    bool(r.disabled), bool(r.demo), r.password_hash is not None)


def check_password(password: str) -> None:
    """``EngineError`` when a new password is too weak to store (length only: NIST SP 800-63B)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise EngineError(f"a password needs at least {MIN_PASSWORD} characters")


class UserStore:
    """Accounts on ``db`` (creates ``wf_users`` and ``wf_audit`` when missing)."""

    def __init__(self, db: SAEngine | str) -> None:
        if isinstance(db, str):
            from engine.runtime.db import connect

            db = connect(db)
        self.db = db
        UserRow.metadata.create_all(db, tables=[U, AuditRow.__table__])

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    # --- reading -------------------------------------------------------------------------------

    def users(self, include_demo: bool = True) -> list[UserInfo]:
        query = select(U).order_by(U.c.name)
        if not include_demo:
            query = query.where(U.c.demo.is_(False))
        with self.db.connect() as conn:
            return [_info(r) for r in conn.execute(query)]

    def get(self, name: str) -> UserInfo | None:
        with self.db.connect() as conn:
            row = conn.execute(select(U).where(U.c.name == name)).first()
        return _info(row) if row is not None else None

    def by_email(self, email: str) -> UserInfo | None:
        """The account whose e-mail matches (case-insensitive): how an OpenID Connect sign-in finds its roles."""
        with self.db.connect() as conn:
            row = conn.execute(select(U).where(func.lower(U.c.email) == email.lower())).first()
        return _info(row) if row is not None else None

    def has_admin(self) -> bool:
        """Whether a real (non-demo, enabled) account holds the admin role: if not, the app runs first-run."""
        return any(Role.ADMIN.value in u.roles and not u.demo and not u.disabled for u in self.users())

    def principal(self, name: str) -> Principal:
        """The principal of an enabled account; ``EngineError`` for an unknown or disabled one."""
        info = self.get(name)
        if info is None:
            raise EngineError(f"no user {name!r}")
        if info.disabled:
            raise EngineError(f"user {name!r} is disabled")
        return info.principal()

    # --- signing in ----------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The principal when ``password`` is the account's, else None (same for unknown users, wrong
        passwords, disabled accounts and accounts without a password). Each attempt is audited."""
        with self.db.connect() as conn:
            row = conn.execute(select(U).where(U.c.name == name)).first()
        stored = row.password_hash if row is not None else None
        ok = False
        import argon2.exceptions  # loaded with the hasher (see _hasher)

        try:
            ok = _hasher().verify(stored or _dummy(), password) and stored is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            ok = False
        ok = ok and row is not None and not row.disabled
        principal = _info(row).principal() if ok and row is not None else None
        with self.db.begin() as conn:
            if ok and stored is not None and _hasher().check_needs_rehash(stored):
                conn.execute(update(U).where(U.c.name == name).values(password_hash=_hasher().hash(password)))
            audit.record(conn, principal or Principal(name or "(empty)"), "sign_in", ok, self._now(),
                         rule="password", target=name)
        return principal

    # --- changing ------------------------------------------------------------------------------

    def create_first_admin(self, name: str, password: str, display_name: str | None = None,
                           email: str | None = None) -> Principal:
        """The first-run flow: an account holding every role, allowed only while no admin account exists."""
        if self.has_admin():
            raise AuthorizationError("an admin account exists already: sign in, or ask an admin for an account",
                                     "users.first_admin")
        return self._add(Principal.system("first-run"), name, password, (), ALL_ROLES, display_name, email, False)

    def add_user(self, by: Principal, name: str, password: str | None = None, groups: Iterable[str] = (),
                 roles: Iterable[str | Role] = (), display_name: str | None = None, email: str | None = None,
                 demo: bool = False) -> Principal:
        """A new account (``by`` needs ``users.manage``); ``password=None`` makes one that signs in only
        through OpenID Connect (matched by ``email``) or as a demo persona (``demo=True``)."""
        self._require(by, name)
        return self._add(by, name, password, groups, parse_roles(roles), display_name, email, demo)

    def _add(self, by: Principal, name: str, password: str | None, groups: Iterable[str], roles: frozenset[Role],
             display_name: str | None, email: str | None, demo: bool) -> Principal:
        if not isinstance(name, str) or not _NAME.match(name):
            raise EngineError(f"user name {name!r}: 1-64 letters, digits or . _ @ + -, starting with a letter or "
                              "digit")
        if password is not None:
            check_password(password)
        values = {"name": name, "display_name": display_name, "email": email,
                  "password_hash": _hasher().hash(password) if password is not None else None,
                  "groups": json.dumps(sorted(set(groups))), "roles": json.dumps(sorted(r.value for r in roles)),
                  "disabled": False, "demo": demo, "created_at": self._now()}
        with self.db.begin() as conn:
            if conn.execute(select(U.c.name).where(U.c.name == name)).first() is not None:
                raise EngineError(f"user {name!r} exists already")
            conn.execute(insert(U).values(**values))
            audit.record(conn, by, "users.add", True, self._now(), rule="users.manage", target=name,
                         detail={"groups": sorted(set(groups)), "roles": sorted(r.value for r in roles)})
        return Principal(name, frozenset(groups), roles)

    def set_password(self, by: Principal, name: str, password: str) -> None:
        """Change a password: the user's own, or anyone's with ``users.manage``."""
        if by.user != name or by.is_system:
            self._require(by, name)
        check_password(password)
        self._update(by, name, "users.password", password_hash=_hasher().hash(password))

    def set_roles(self, by: Principal, name: str, roles: Iterable[str | Role]) -> None:
        self._require(by, name)
        self._update(by, name, "users.roles", roles=json.dumps(sorted(r.value for r in parse_roles(roles))))

    def set_groups(self, by: Principal, name: str, groups: Iterable[str]) -> None:
        self._require(by, name)
        self._update(by, name, "users.groups", groups=json.dumps(sorted(set(groups))))

    def set_disabled(self, by: Principal, name: str, disabled: bool = True) -> None:
        self._require(by, name)
        self._update(by, name, "users.disable" if disabled else "users.enable", disabled=disabled)

    def _require(self, by: Principal, target: str) -> None:
        try:
            require(by, "users.manage", f"user {target!r}")
        except AuthorizationError:
            audit.record(self.db, by, "users.manage", False, self._now(), rule="users.manage", target=target)
            raise

    def _update(self, by: Principal, name: str, action: str, **values: object) -> None:
        with self.db.begin() as conn:
            if conn.execute(update(U).where(U.c.name == name).values(**values)).rowcount != 1:
                raise EngineError(f"no user {name!r}")
            shown = {k: v for k, v in values.items() if k != "password_hash"}
            audit.record(conn, by, action, True, self._now(), rule="users.manage", target=name, detail=shown)
