"""Gradual rollout: which version of a definition a new instance gets.

A rollout policy gives weights over deployed versions of one definition name (``{3: 90, 4: 10}``:
90 % of new instances run version 3, 10 % version 4). It is a row in the database, so changing it
takes effect at the next start in every process, without a restart; every change is recorded with
who made it, when and why (``rollout_history``).

The choice is deterministic (Temporal's worker versioning and feature-flag ramps work the same way):
the key is the business key, else the instance id; ``sha256(name, key)`` maps it to a point ``u`` in
[0, 1), and the versions take bands of [0, 1) in proportion to their weights, **newest version
first**. So a retried start with the same business key lands on the same version, and a ramp that
only grows the new version's share (10 % → 50 % → 100 %) never moves a key back to the old one: a key
with ``u < 0.10`` got v4 at 10 % and still gets it at 50 %.

Without a policy, new instances get the latest version (as before). ``Engine.start(..., version=N)``
still starts a named version explicitly, whatever the policy says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.runtime.clock import aware
from engine.runtime.ids import new_instance_id
from engine.runtime.prepared import Prepared
from engine.runtime.tables import DefinitionRow, RolloutChangeRow, RolloutRow
from engine.security import guard

if TYPE_CHECKING:
    import pandas as pd

    from engine.runtime.engine import Engine

D, R, RC = DefinitionRow.__table__, RolloutRow.__table__, RolloutChangeRow.__table__
# A start's one lookup: the rollout policy's weights (or NULL) and the latest deployed version (or NULL).
_POLICY_AND_LATEST = Prepared(select(
    select(R.c.weights).where(R.c.name == bindparam("n")).scalar_subquery().label("weights"),
    select(func.max(D.c.version)).where(D.c.name == bindparam("n")).scalar_subquery().label("latest")))


@dataclass(frozen=True)
class Guardrail:
    """Roll the candidate back automatically (its weight to 0, the baseline takes its share) when its
    failure rate or SLA breach rate is significantly worse than the baseline's.

    - ``candidate``/``baseline``: versions compared (instances started since the guardrail was set).
    - ``min_instances``: started instances each version needs before any verdict (no early peeking on 3 runs).
    - ``alpha``: one-sided significance level of the two-proportion z-test (candidate worse than baseline).
    - ``metrics``: any of ``failure_rate`` (instances failed or with an incident / started) and
      ``sla_breach_rate`` (human tasks breached or escalated / human tasks with an SLA).
    """

    candidate: int
    baseline: int
    min_instances: int = 50
    alpha: float = 0.05
    metrics: tuple[str, ...] = ("failure_rate", "sla_breach_rate")
    since: datetime | None = None  # set when stored: instances started before do not count

    def to_json(self) -> str:
        return json.dumps({"candidate": self.candidate, "baseline": self.baseline, "min_instances": self.min_instances,
                           "alpha": self.alpha, "metrics": list(self.metrics),
                           "since": self.since.isoformat() if self.since else None})

    @classmethod
    def from_json(cls, text: str) -> Guardrail:
        data = json.loads(text)
        return cls(candidate=int(data["candidate"]), baseline=int(data["baseline"]),
                   min_instances=int(data["min_instances"]), alpha=float(data["alpha"]),
                   metrics=tuple(data["metrics"]),
                   since=datetime.fromisoformat(data["since"]) if data.get("since") else None)


@dataclass(frozen=True)
class Rollout:
    """A definition's policy: ``weights`` version -> weight (any non-negative numbers, shares are
    weight / total), the optional guardrail, and who changed it last."""

    name: str
    weights: dict[int, float]
    guardrail: Guardrail | None
    updated_at: datetime
    updated_by: str | None

    @property
    def shares(self) -> dict[int, float]:
        """Weights as fractions of 1, newest version first."""
        total = sum(self.weights.values())
        return {v: self.weights[v] / total for v in sorted(self.weights, reverse=True)}


def bucket(name: str, key: str) -> float:
    """The key's stable point in [0, 1): the first 8 bytes of sha256(name NUL key), as a fraction."""
    digest = hashlib.sha256(f"{name}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def choose_version(name: str, weights: Mapping[int, float], key: str) -> int:
    """The version a key gets under ``weights`` (bands newest first; see the module docstring)."""
    live = [(v, w) for v, w in sorted(weights.items(), reverse=True) if w > 0]
    if not live:
        raise EngineError(f"rollout of {name!r} gives no version a positive weight")
    point = bucket(name, key) * sum(w for _, w in live)
    edge = 0.0
    for version, weight in live:
        edge += weight
        if point < edge:
            return version
    return live[-1][0]  # rounding at the very top of the range


def _check_weights(conn: Connection, name: str, weights: Mapping[int, float]) -> dict[int, float]:
    deployed = {r.version for r in conn.execute(select(D.c.version).where(D.c.name == name))}
    if not deployed:
        raise EngineError(f"no deployed definition {name!r}: deploy it before setting a rollout")
    clean: dict[int, float] = {}
    for version, weight in weights.items():
        try:
            v, w = int(version), float(weight)
        except (TypeError, ValueError):
            raise EngineError(f"rollout of {name!r}: version {version!r} weight {weight!r} must be numbers") from None
        if v not in deployed:
            raise EngineError(f"rollout of {name!r}: version {v} is not deployed (deployed: "
                              f"{', '.join(map(str, sorted(deployed)))})")
        if not (0 <= w < float("inf")):
            raise EngineError(f"rollout of {name!r}: weight of version {v} must be a finite number >= 0, "
                              f"got {weight!r}")
        clean[v] = w
    if not clean or sum(clean.values()) <= 0:
        raise EngineError(f"rollout of {name!r} must give at least one version a positive weight")
    return clean


@guard.audited
def set_rollout(engine: Engine, name: str, weights: Mapping[int, float], actor: str | None = None,
                reason: str | None = None, guardrail: Guardrail | None = None) -> Rollout:
    """Set (or replace) the weights of ``name``'s versions, recorded with ``actor`` and ``reason``.

    ``guardrail``: roll the candidate back automatically (see :class:`Guardrail`); ``None`` keeps no
    guardrail. Raises ``EngineError`` for an undeployed version or weights that give nothing a share."""
    guard.authorize(engine, "rollout", name)
    actor = guard.recorded_actor(engine.principal, actor)
    now = engine.clock.now()
    with engine.db.begin() as conn:
        clean = _check_weights(conn, name, weights)
        if guardrail is not None:
            for v in (guardrail.candidate, guardrail.baseline):
                if v not in clean:
                    raise EngineError(f"guardrail of {name!r} names version {v}, which the rollout does not weigh")
            if guardrail.since is None:
                guardrail = Guardrail(**{**guardrail.__dict__, "since": now})
        guard.within(conn)
        _store(conn, name, clean, guardrail, actor, reason, now)
    return Rollout(name, clean, guardrail, now, actor)


def _store(conn: Connection, name: str, weights: dict[int, float], guardrail: Guardrail | None, actor: str | None,
           reason: str | None, now: datetime) -> None:
    text = json.dumps({str(v): w for v, w in sorted(weights.items())})
    rail = guardrail.to_json() if guardrail else None
    values = {"weights": text, "guardrail": rail, "updated_at": now, "updated_by": actor}
    if conn.execute(update(R).where(R.c.name == name).values(**values)).rowcount == 0:
        conn.execute(insert(R).values(name=name, **values))
    conn.execute(insert(RC).values(name=name, weights=text, guardrail=rail, reason=reason, actor=actor, at=now))


def clear_rollout(engine: Engine, name: str, actor: str | None = None, reason: str | None = None) -> None:
    """Remove the policy: new instances get the latest version again (recorded like any change)."""
    now = engine.clock.now()
    with engine.db.begin() as conn:
        if conn.execute(delete(R).where(R.c.name == name)).rowcount:
            conn.execute(insert(RC).values(name=name, weights="{}", guardrail=None,
                                           reason=reason or "rollout removed: latest version", actor=actor, at=now))


def _row_to_rollout(row: Any) -> Rollout:
    return Rollout(row.name, {int(v): float(w) for v, w in json.loads(row.weights).items()},
                   Guardrail.from_json(row.guardrail) if row.guardrail else None, aware(row.updated_at),
                   row.updated_by)


def get_rollout(engine: Engine, name: str) -> Rollout | None:
    """The policy of ``name``, or None (new instances get the latest version)."""
    with engine.reader.connect() as conn:
        row = conn.execute(select(R).where(R.c.name == name)).first()
    return _row_to_rollout(row) if row is not None else None


def rollouts(engine: Engine) -> list[Rollout]:
    with engine.reader.connect() as conn:
        return [_row_to_rollout(r) for r in conn.execute(select(R).order_by(R.c.name))]


def rollout_history(engine: Engine, name: str | None = None) -> pd.DataFrame:
    """Every change, oldest first: ``name, weights (dict), reason, actor, at``."""
    import pandas as pd

    query = select(RC).order_by(RC.c.id)
    if name is not None:
        query = query.where(RC.c.name == name)
    with engine.reader.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame([{"name": r["name"], "weights": {int(v): w for v, w in json.loads(r["weights"]).items()},
                          "guardrail": json.loads(r["guardrail"]) if r["guardrail"] else None,
                          "reason": r["reason"], "actor": r["actor"], "at": aware(r["at"])} for r in rows],
                        columns=["name", "weights", "guardrail", "reason", "actor", "at"])


def assign(conn: Connection, name: str, version: int | None,
           business_keys: Sequence[str | None]) -> list[tuple[str, int | None]]:
    """Instance ids (time-ordered: ``engine.runtime.ids``) and versions for new instances of ``name``
    (inside the start transaction).

    An explicit ``version`` wins; otherwise the rollout policy picks per instance (keyed by business
    key, else by the new instance id); without a policy, the latest deployed version (``None`` when
    nothing is deployed: the caller names the problem). One statement reads the policy and the latest
    version together, so a start costs one lookup whatever process deployed last."""
    row = None if version is not None else lookup(conn, name)
    return plan(name, version, business_keys, row)


def lookup(conn: Connection, name: str) -> tuple[str | None, int | None]:
    """The start's lookup: (the rollout policy's weights as stored, or None; the latest version, or None)."""
    found = _POLICY_AND_LATEST.first(conn, {"n": name})
    return (found[0], found[1]) if found is not None else (None, None)


def send_lookup(conn: Connection, name: str) -> Any:
    """The lookup sent, its result read later (``tuple(cursor.fetchone())``): on PostgreSQL it can then travel
    in a pipeline with the start's writes (see ``Engine.start_many``)."""
    return _POLICY_AND_LATEST.execute(conn, {"n": name})


def plan(name: str, version: int | None, business_keys: Sequence[str | None],
         row: tuple[str | None, int | None] | None) -> list[tuple[str, int | None]]:
    """``assign`` given the lookup's ``row`` (None with an explicit ``version``)."""
    ids = [new_instance_id() for _ in business_keys]
    if version is not None:
        return [(i, version) for i in ids]
    if row is None or row[0] is None:
        return [(i, row[1] if row is not None else None) for i in ids]
    weights = {int(v): float(w) for v, w in json.loads(row[0]).items()}
    return [(i, choose_version(name, weights, key if key is not None else i))
            for i, key in zip(ids, business_keys, strict=True)]
