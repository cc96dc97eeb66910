"""Messages: which waiting instance a message reaches, and what happens when none (or several) wait.

The rule, the same for every path a message takes (``Engine.correlate``, a message throw event, the bus) and
the same in the simulator: its definition is :mod:`engine.semantics.messages` (key matching, narrowing, one
receiver or ambiguous, which buffered message an opening catch takes); this module keeps it in the database.

1. **Matching.** A message matches a waiting catch (intermediate catch, receive task, message boundary
   event, a branch of an event-based gateway) with the same message name and, when the message carries a
   correlation key, the same key value (compared as stored JSON: ``"A-1"`` is not ``1``). ``correlate`` can
   narrow the match by process data, as Camunda's ``processInstanceVariableEquals``/``processInstanceBusinessKey``
   /``processInstanceId``: ``where={"order_id": "A-1"}`` (every named variable equals the value),
   ``business_key=...``, ``instance_id=...``.
2. **One receiver.** A message is delivered once. When several catches match, ``correlate`` refuses with
   :class:`AmbiguousCorrelation` naming the candidates (Camunda 7's ``MismatchingMessageCorrelationException``)
   and nothing is delivered; ``correlate(..., all=True)`` delivers to every match (``correlateAll``). A throw
   event cannot be told, so its ambiguous message is recorded with status ``ambiguous`` and the candidates
   in ``error`` (see :meth:`MessageApi.messages`), never handed to one of them by chance.
3. **Nobody waits.** A message start event of the latest deployed version starts an instance. Otherwise the
   message is *buffered* for a time-to-live (as Zeebe does) and delivered to the first catch that opens and
   matches before it expires: a throw event buffers for ``Engine(message_ttl=...)`` (default one hour); the
   API refuses at once with an ``EngineError`` unless the caller passes ``ttl=`` (Camunda 7's behaviour is the
   default for a caller who can see the error). A buffered message past its time is ``expired``: listed, not
   delivered. ``message_id`` de-duplicates: a second message with the same name and id is not buffered again
   while the first is buffered (Zeebe's message id).
4. **Visible.** :meth:`MessageApi.messages` lists buffered, delivered (from the buffer), expired and ambiguous
   messages as a DataFrame. A message is never dropped without a row.

Delivery of a buffered message happens in the transaction of the step that opens the catch: the catch
subscribes, finds the message (a conditional UPDATE ``WHERE status = 'buffered'``, so exactly one instance
gets it), and receives it in the same step.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exists, func, insert, select, text, update
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.limits import check_key
from engine.model.values import dumps, loads
from engine.runtime.clock import aware
from engine.runtime.parts import EngineParts
from engine.runtime.plain import values_problems
from engine.runtime.tables import DefinitionRow, InstanceRow, MessageRow, SubscriptionRow, VariableRow
from engine.runtime.writes import Writes
from engine.security import guard
from engine.semantics import events as ev
from engine.semantics import messages
from engine.semantics.core import message_variables

if TYPE_CHECKING:
    import pandas as pd

S, INST, V, M, D = (SubscriptionRow.__table__, InstanceRow.__table__, VariableRow.__table__, MessageRow.__table__,
                    DefinitionRow.__table__)

MESSAGE_COLUMNS = ["id", "message_id", "name", "correlation", "payload", "status", "source", "error", "created_at",
                   "expires_at", "delivered_at", "instance_id"]


class AmbiguousCorrelation(EngineError):
    """More than one waiting catch matches a single-delivery correlation; ``candidates`` lists them
    (dicts with instance_id, business_key, node_id)."""

    def __init__(self, message: str, candidates: list[dict[str, Any]]) -> None:
        self.candidates = candidates
        names = ", ".join(f"{c['instance_id']} (business key {c['business_key']!r}, waiting at {c['node_id']!r})"
                          for c in candidates)
        super().__init__(f"message {message!r} matches {len(candidates)} waiting catches: {names}; narrow it (a "
                         "correlation key, where=, business_key= or instance_id=) or deliver to all (all=True)")


def _filters(where: Mapping[str, Any] | None, instance_id: str | None, business_key: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if where:
        out["where"] = dict(where)
    if instance_id is not None:
        out["instance_id"] = instance_id
    if business_key is not None:
        out["business_key"] = business_key
    return out


def _candidates_query(message: str, correlation: Any, filters: Mapping[str, Any]) -> Any:
    query = (select(S.c.id, S.c.instance_id, S.c.node_id, INST.c.business_key)
             .join(INST, INST.c.id == S.c.instance_id).where(S.c.message == message, S.c.kind == "message"))
    if correlation is not None:
        query = query.where(S.c.correlation == dumps(correlation))
    if "instance_id" in filters:
        query = query.where(S.c.instance_id == filters["instance_id"])
    if "business_key" in filters:
        query = query.where(INST.c.business_key == filters["business_key"])
    for name, value in filters.get("where", {}).items():
        query = query.where(exists(select(V.c.name).where(V.c.instance_id == S.c.instance_id, V.c.name == name,
                                                           V.c.value == dumps(value))))
    return query.order_by(S.c.created_at, S.c.id)


_BUFFERED = (select(M.c.id, M.c.correlation, M.c.payload, M.c.filters)  # built once: it runs at every catch
             .where(M.c.name == bindparam("name"), M.c.status == "buffered", M.c.expires_at > bindparam("now"))
             .order_by(M.c.id))


def message_lock(conn: Connection, message: str) -> None:
    """Serialise, per message name, a catch that opens against a message that is buffered.

    The step that opens a catch subscribes and then looks in the buffer; a delivery that found no catch looks
    for one again and then buffers. Under READ COMMITTED both could miss the other (each looks before the
    other commits) and strand the message in the buffer beside a waiting catch. On PostgreSQL both take this
    transaction-scoped advisory lock first, so the later one sees what the earlier one committed; SQLite's
    write transactions (``BEGIN IMMEDIATE``) are serial already."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": "waooaw.message:" + message})


_LOCK = text("select pg_advisory_xact_lock(hashtext(:key))")


class _CatchOpened(Exception):
    """Raised inside a buffering transaction when a matching catch opened meanwhile: deliver to it instead."""


def take_buffered(conn: Connection, instance_id: str, business_key: str | None, message: str, correlation: Any,
                  variables: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """Inside a step that opens a catch: the payload of the oldest buffered, unexpired message that matches
    it (now marked delivered to ``instance_id``), or None. Which messages match is
    :func:`engine.semantics.messages.deliverable`, the simulator's rule too."""
    message_lock(conn, message)
    rows = {row.id: row for row in conn.execute(_BUFFERED, {"name": message, "now": now}).all()}
    candidates = ((row.id, row.correlation, loads(row.filters or "{}"), None) for row in rows.values())
    for row_id in messages.deliverable(candidates, messages.key_text(correlation), now, instance_id, business_key,
                                       variables, stored=True):
        taken = conn.execute(update(M).where(M.c.id == row_id, M.c.status == "buffered").values(
            status="delivered", delivered_at=now, instance_id=instance_id)).rowcount
        if taken == 1:
            return dict(loads(rows[row_id].payload or "{}"))
    return None


class MessageApi(EngineParts):
    """Mixed into ``Engine``: correlation, the message buffer and its listing (see the module docstring)."""

    @guard.audited
    def correlate(self, message: str, correlation: Any = None, payload: Mapping[str, Any] | None = None, *,
                  where: Mapping[str, Any] | None = None, instance_id: str | None = None,
                  business_key: str | None = None, all: bool = False, ttl: timedelta | None = None,
                  message_id: str | None = None) -> Any:
        """Deliver a message (the rule is in :mod:`engine.runtime.correlation`).

        Returns the id of the instance that received it (or that a message start event started); with
        ``all=True`` the list of them. With ``ttl`` a message nobody waits for is buffered and None is returned;
        without, ``EngineError``. Raises :class:`AmbiguousCorrelation` when several catches match and not ``all``.
        Needs the operator's ``correlate`` rule (``AuthorizationError``).
        """
        guard.authorize(self, "correlate", message)  # type: ignore[arg-type]
        check_key(message, "message name")
        if isinstance(correlation, str):
            check_key(correlation, "correlation key")
        body = dict(payload or {})
        problems = values_problems(body)
        if problems:
            raise EngineError(f"cannot deliver message {message!r}: " + "; ".join(problems))
        filters = _filters(where, instance_id, business_key)
        for _ in range(5):  # a catch that opens between the look and the buffering gets the message
            delivered = self._deliver(message, correlation, body, filters=filters, all=all)
            if delivered:
                return delivered if all else delivered[0]
            if ttl is None or ttl <= timedelta(0):
                break
            try:
                with self.db.begin() as conn:
                    self._buffer(conn, message, correlation, body, filters, ttl, message_id, "api")
            except _CatchOpened:
                continue
            return [] if all else None
        if all:
            return []
        narrowed = "".join(f" {k}={v!r}" for k, v in filters.items())
        raise EngineError(f"no instance waits for message {message!r}"
                          + (f" with key {correlation!r}" if correlation is not None else "") + narrowed
                          + "; pass ttl= to buffer it until a catch opens")

    def messages(self, status: str | None = None, name: str | None = None) -> pd.DataFrame:
        """Messages that did not reach a waiting catch at once: buffered (with expires_at), delivered from the
        buffer (to instance_id), expired, ambiguous (candidates in ``error``). Newest first."""
        import pandas as pd

        now = self.clock.now()
        with self.reader.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(M).order_by(M.c.id.desc())).mappings()]
        for row in rows:
            if row["status"] == "buffered" and row["expires_at"] is not None and aware(row["expires_at"]) <= now:
                row["status"] = "expired"
            row["correlation"] = loads(row["correlation"]) if row["correlation"] is not None else None
            row["payload"] = loads(row["payload"] or "{}")
        if status:
            rows = [r for r in rows if r["status"] == status]
        if name:
            rows = [r for r in rows if r["name"] == name]
        return pd.DataFrame(rows, columns=MESSAGE_COLUMNS)

    # --- internals -------------------------------------------------------------------------------

    def _deliver(self, message: str, correlation: Any, payload: dict[str, Any], job_id: int | None = None,
                 filters: Mapping[str, Any] | None = None, all: bool = False) -> list[str]:
        """Deliver to the matching catch(es); [] when none waits and no message start event fits."""
        filters = dict(filters or {})
        query = _candidates_query(message, correlation, filters)
        delivered: list[str] = []
        for _ in range(10):  # another delivery may take a subscription first: look again
            with self.reader.connect() as conn:
                subs = conn.execute(query.limit(50)).all()
            if not subs:
                break
            decision, subs = messages.route(subs, all)
            if decision == "ambiguous":
                raise AmbiguousCorrelation(message, [{"instance_id": s.instance_id, "business_key": s.business_key,
                                                      "node_id": s.node_id} for s in subs])
            lost = False
            for sub in subs:
                settle = job_id if not delivered else None

                def take(conn: Connection, sub_id: str = sub.id, settle: int | None = settle) -> bool:
                    if settle is not None and not self._settle(conn, settle):
                        return False
                    return conn.execute(S.delete().where(S.c.id == sub_id)).rowcount == 1

                core_id = sub.id.split(":", 1)[1]  # rows are keyed instance:subscription
                if self._apply(sub.instance_id, [ev.MessageReceived(core_id, payload)], before=take):
                    delivered.append(str(sub.instance_id))
                else:
                    lost = True
            if delivered and (not all or not lost):
                return delivered
        if delivered:
            return delivered
        if filters:  # a message narrowed to existing instances starts none
            return []
        started = self._start_by_message(message, payload, job_id)
        return [started] if started else []

    def _start_by_message(self, message: str, payload: dict[str, Any], job_id: int | None) -> str | None:
        with self.reader.connect() as conn:  # the latest version of each definition, in one query
            latest = conn.execute(select(D.c.name, func.max(D.c.version)).group_by(D.c.name).order_by(D.c.name)).all()
        for name, version in latest:
            starts = self.semantics(name, version).message_starts()
            if message in starts:
                writes = Writes()
                with self.db.begin() as conn:  # the message is consumed and the instance starts together
                    if job_id is not None and not self._settle(conn, job_id):
                        return None
                    definition = self.definition(name, None, conn)
                    values = message_variables(definition.node(starts[message]), payload)
                    self._check_variables(definition, values)
                    instance_id = self._start_in(conn, writes, definition, values, None, start_node=starts[message])
                    writes.flush(conn)
                return instance_id
        return None

    def _buffer(self, conn: Connection, message: str, correlation: Any, payload: dict[str, Any],
                filters: Mapping[str, Any], ttl: timedelta, message_id: str | None, source: str,
                status: str = "buffered", error: str | None = None) -> bool:
        """Record a message (buffered until now + ttl, or ambiguous); False if ``message_id`` is buffered already.
        Raises ``_CatchOpened`` (the transaction rolls back) when a matching catch opened since the delivery
        looked: the caller delivers again (see :func:`message_lock`)."""
        now = self.clock.now()
        if status == "buffered":
            message_lock(conn, message)
            if conn.execute(_candidates_query(message, correlation, filters).limit(1)).first() is not None:
                raise _CatchOpened(message)
        if message_id is not None:
            dup = conn.execute(select(M.c.id).where(M.c.name == message, M.c.message_id == message_id,
                                                     M.c.status == "buffered", M.c.expires_at > now)).first()
            if dup is not None:
                return False
        conn.execute(insert(M).values(
            message_id=message_id or uuid.uuid4().hex, name=message,
            correlation=dumps(correlation) if correlation is not None else None, payload=dumps(payload),
            filters=dumps(dict(filters)), status=status, source=source, error=error, created_at=now,
            expires_at=now + ttl if status == "buffered" else None))
        return True

    def _deliver_thrown(self, job: Any, payload: dict[str, Any]) -> None:
        """A message throw event's job: deliver, else buffer for ``message_ttl``; ambiguity is recorded."""
        message, correlation, body = payload["message"], payload.get("correlation"), payload.get("payload", {})
        source = f"throw:{job.instance_id}:{payload.get('node_id', '')}"
        for _ in range(5):  # a catch that opens between the look and the buffering gets the message
            try:
                if self._deliver(message, correlation, body, job_id=job.id):
                    return
                status, error = "buffered", None
            except AmbiguousCorrelation as exc:
                status, error = "ambiguous", str(exc)
            try:
                with self.db.begin() as conn:
                    if not self._settle(conn, job.id):
                        return  # another worker holds it now
                    self._buffer(conn, message, correlation, body, {}, self.message_ttl,
                                 f"{job.instance_id}:{job.id}", source, status=status, error=error)
                return
            except _CatchOpened:
                continue


__all__ = ["AmbiguousCorrelation", "MessageApi", "take_buffered"]
