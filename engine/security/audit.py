"""The audit trail of authorization decisions (``wf_audit``): who tried what, allowed or refused, by which rule.

Human-task changes also keep their own trail (``wf_task_audit``, written with the change); this one
adds every engine action and every refusal, which change nothing else and so leave no other trace.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from engine.security.principal import Principal
from engine.security.tables import AuditRow

if TYPE_CHECKING:
    import pandas as pd

AUDIT = AuditRow.__table__
AUDIT_COLUMNS = ["id", "at", "principal", "roles", "action", "target", "allowed", "rule", "detail"]


def record(db: SAEngine | Connection, principal: Principal | None, action: str, allowed: bool, at: datetime,
           rule: str | None = None, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Write one decision: in the caller's transaction when ``db`` is a Connection, else in its own."""
    user = principal.user if isinstance(principal, Principal) else "(none)"
    roles = sorted(r.value for r in principal.roles) if isinstance(principal, Principal) else []
    if target is not None and "\x00" in target:  # the action itself refuses it; the record must still be written
        target = target.replace("\x00", "\\x00")
    values = {"at": at, "principal": user, "roles": json.dumps(roles), "action": action, "target": target,
              "allowed": allowed, "rule": rule, "detail": json.dumps(detail or {}, default=str, sort_keys=True)}
    if isinstance(db, Connection):
        db.execute(insert(AUDIT).values(**values))
    else:
        with db.begin() as conn:
            conn.execute(insert(AUDIT).values(**values))


def audit_trail(db: SAEngine, principal: str | None = None, action: str | None = None,
                allowed: bool | None = None, limit: int | None = None) -> pd.DataFrame:
    """Decisions, oldest first (``limit``: the newest ``limit``); ``roles`` a list, ``detail`` a dict."""
    import pandas as pd

    query = select(AUDIT).order_by(AUDIT.c.id.desc() if limit else AUDIT.c.id)
    if principal is not None:
        query = query.where(AUDIT.c.principal == principal)
    if action is not None:
        query = query.where(AUDIT.c.action == action)
    if allowed is not None:
        query = query.where(AUDIT.c.allowed == allowed)
    if limit:
        query = query.limit(limit)
    with db.connect() as conn:
        rows = [{**r, "roles": json.loads(r["roles"]), "detail": json.loads(r["detail"])}
                for r in conn.execute(query).mappings()]
    if limit:
        rows.reverse()
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)
