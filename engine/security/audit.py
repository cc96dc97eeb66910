"""The audit trail of authorization decisions (``wf_audit``): who tried what, allowed or refused, by which rule.

Human-task changes also keep their own trail (``wf_task_audit``, written with the change); this one
adds every engine action and every refusal, which change nothing else and so leave no other trace.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from engine.runtime.prepared import Prepared
from engine.security.principal import Principal
from engine.security.tables import AuditRow

if TYPE_CHECKING:
    import pandas as pd

AUDIT = AuditRow.__table__
AUDIT_COLUMNS = ["id", "at", "principal", "roles", "action", "target", "allowed", "outcome", "rule", "detail"]
OUTCOMES = ("succeeded", "failed", "refused")
_DEFAULT = "default"
_INSERT = Prepared(insert(AUDIT).returning(AUDIT.c.id))  # compiled once (engine.runtime.prepared)


def record(db: SAEngine | Connection, principal: Principal | None, action: str, allowed: bool, at: datetime,
           rule: str | None = None, target: str | None = None, detail: dict[str, Any] | None = None,
           outcome: str | None = _DEFAULT) -> int:
    """Write one decision and return its id: in the caller's transaction when ``db`` is a Connection (the
    action's own: it commits or rolls back with it), else in its own. ``outcome`` defaults to
    ``succeeded`` when allowed (a row written with the action's change) and ``refused`` otherwise."""
    if outcome == _DEFAULT:
        outcome = "succeeded" if allowed else "refused"
    user = principal.user if isinstance(principal, Principal) else "(none)"
    roles = _roles_text(principal.roles) if isinstance(principal, Principal) else "[]"
    if target is not None and "\x00" in target:  # the action itself refuses it; the record must still be written
        target = target.replace("\x00", "\\x00")
    values = {"at": at, "principal": user, "roles": roles, "action": action, "target": target,
              "allowed": allowed, "outcome": outcome, "rule": rule,
              "detail": json.dumps(detail or {}, default=str, sort_keys=True)}
    if isinstance(db, Connection):
        return int(_INSERT.execute(db, values).fetchone()[0])
    with db.begin() as conn:
        return int(_INSERT.execute(conn, values).fetchone()[0])


@functools.lru_cache(maxsize=64)
def _roles_text(roles: frozenset[Any]) -> str:
    """A principal's roles as the audit row stores them (sorted JSON list), made once per set of roles."""
    return json.dumps(sorted(r.value for r in roles))


def exists(db: SAEngine, row_id: int) -> bool:
    """Whether audit row ``row_id`` is stored (committed): an action's row written in its transaction is
    gone if that transaction rolled back."""
    with db.connect() as conn:
        return conn.execute(select(AUDIT.c.id).where(AUDIT.c.id == row_id)).first() is not None


def audit_trail(db: SAEngine, principal: str | None = None, action: str | None = None,
                allowed: bool | None = None, limit: int | None = None, outcome: str | None = None) -> pd.DataFrame:
    """Decisions, oldest first (``limit``: the newest ``limit``); ``roles`` a list, ``detail`` a dict;
    ``outcome`` one of succeeded | failed | refused (None when not recorded)."""
    import pandas as pd

    query = select(AUDIT).order_by(AUDIT.c.id.desc() if limit else AUDIT.c.id)
    if principal is not None:
        query = query.where(AUDIT.c.principal == principal)
    if action is not None:
        query = query.where(AUDIT.c.action == action)
    if allowed is not None:
        query = query.where(AUDIT.c.allowed == allowed)
    if outcome is not None:
        query = query.where(AUDIT.c.outcome == outcome)
    if limit:
        query = query.limit(limit)
    with db.connect() as conn:
        rows = [{**r, "roles": json.loads(r["roles"]), "detail": json.loads(r["detail"])}
                for r in conn.execute(query).mappings()]
    if limit:
        rows.reverse()
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)
