"""Signals: broadcast to every waiting catch, and start every definition with a matching signal start.

The rule (BPMN 2.0 §10.5.2-4, "Signal"; the same for a signal throw or end event and ``Engine.signal``):

1. **Broadcast.** A signal reaches every subscription waiting for its name when it is broadcast: signal catch
   events, signal boundary events, branches of an event-based gateway, in every running instance. There is no
   correlation key and no single receiver (unlike a message, ``engine.runtime.correlation``).
2. **Starts.** Every definition whose latest deployed version has a signal start event of that name starts one
   instance, the signal's payload as its variables (checked against the declared ones).
3. **Nobody waits.** A signal nobody waits for is gone: it is not buffered (a later catch does not see it).
4. **Once each.** Each delivery runs in its own transaction that removes the subscription it fires, so a
   signal is delivered to a subscription at most once. A thrown signal is a job: deliveries first, then the
   starts in one transaction with the job's removal, so a crash between them re-runs only what is left. Only
   subscriptions made before the signal was thrown receive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from engine.errors import EngineError
from engine.limits import check_key
from engine.runtime.parts import EngineParts
from engine.runtime.plain import values_problems
from engine.runtime.tables import DefinitionRow, SubscriptionRow
from engine.runtime.writes import Writes
from engine.security import guard
from engine.semantics import events as ev
from engine.semantics.core import message_variables

S, D = SubscriptionRow.__table__, DefinitionRow.__table__


class SignalApi(EngineParts):
    """Mixed into ``Engine``: ``signal()`` and the delivery of thrown signals (see the module docstring)."""

    def signal(self, name: str, variables: Mapping[str, Any] | None = None) -> list[str]:
        """Broadcast the signal ``name`` (an operator's action, rule ``signal``): every waiting signal catch
        receives it and every definition with a matching signal start starts an instance; ``variables`` are
        the payload (each receiver gets them as variables). Returns the ids of the instances it reached or
        started, in that order ([] when nobody waits: a signal is not buffered). Raises ``EngineError`` for a
        payload that cannot be stored or that does not fit a started definition's variables (then nothing
        starts), ``AuthorizationError`` without the rule."""
        guard.authorize(self, "signal", name)  # type: ignore[arg-type]
        check_key(name, "signal name")
        payload = dict(variables or {})
        problems = values_problems(payload)
        if problems:
            raise EngineError(f"cannot broadcast signal {name!r}: " + "; ".join(problems))
        now = self.clock.now()
        reached = self._deliver_signal(name, payload, now)
        return reached + self._start_by_signal(name, payload, None)

    def evaluate_conditions(self, variables: Mapping[str, Any] | None = None) -> list[str]:
        """Start every definition (latest version) whose top-level conditional start event's condition holds for
        ``variables`` (Camunda 7's ``evaluateConditions``; BPMN 2.0 §10.5.2), one instance each with those
        variables, all in one transaction; returns their ids. The operator's ``start`` rule. Raises
        ``EngineError`` (nothing started) when the variables do not fit a definition that would start."""
        guard.authorize(self, "start", "conditional start events")  # type: ignore[arg-type]
        values = dict(variables or {})
        problems = values_problems(values)
        if problems:
            raise EngineError("cannot evaluate conditions: " + "; ".join(problems))
        with self.reader.connect() as conn:
            latest = conn.execute(select(D.c.name, func.max(D.c.version)).group_by(D.c.name).order_by(D.c.name)).all()
        targets = [(n, v, held[0]) for n, v in latest if (held := self.semantics(n, v).conditional_starts(values))]
        started: list[str] = []
        if not targets:
            return started
        writes = Writes()
        with self.db.begin() as conn:
            for definition_name, version, start in targets:
                definition = self.definition(definition_name, version, conn)
                checked = dict(values)
                self._check_variables(definition, checked)
                started.append(self._start_in(conn, writes, definition, checked, None, start_node=start))
            writes.flush(conn)
        return started

    def _broadcast_thrown(self, job: Any, payload: dict[str, Any]) -> None:
        """A signal throw or end event's job."""
        from engine.runtime.clock import aware

        thrown = aware(job.due_at)
        name, body = payload["signal"], payload.get("payload", {})
        self._deliver_signal(name, body, thrown)
        try:
            self._start_by_signal(name, body, job.id)
        except EngineError as exc:  # a payload a signal start refuses: recorded on the thrower, not retried
            import logging

            logging.getLogger("waooaw.engine").warning("instance %s: signal %r started nothing: %s",
                                                       job.instance_id, name, exc)
            with self.db.begin() as conn:
                self._settle(conn, job.id)

    def _deliver_signal(self, name: str, payload: dict[str, Any], thrown: datetime) -> list[str]:
        query = (select(S.c.id, S.c.instance_id).where(S.c.kind == "signal", S.c.message == name,
                                                       S.c.created_at <= thrown).order_by(S.c.created_at, S.c.id))
        with self.reader.connect() as conn:
            subs = conn.execute(query).all()
        reached: list[str] = []
        for sub in subs:
            def take(conn: Connection, sub_id: str = sub.id) -> bool:
                return conn.execute(S.delete().where(S.c.id == sub_id)).rowcount == 1

            core_id = sub.id.split(":", 1)[1]  # rows are keyed instance:subscription
            try:
                if self._apply(sub.instance_id, [ev.SignalReceived(core_id, payload)], before=take) \
                        and sub.instance_id not in reached:
                    reached.append(str(sub.instance_id))
            except EngineError:  # the instance went away meanwhile
                continue
        return reached

    def _start_by_signal(self, name: str, payload: dict[str, Any], job_id: int | None) -> list[str]:
        """Start the latest version of every definition with a signal start named ``name``, all in one
        transaction (with the job's removal, when a thrown signal's job is given)."""
        with self.reader.connect() as conn:
            latest = conn.execute(select(D.c.name, func.max(D.c.version)).group_by(D.c.name).order_by(D.c.name)).all()
        targets = [(n, v, start) for n, v in latest if (start := self.semantics(n, v).signal_starts().get(name))]
        if not targets and job_id is None:
            return []
        started: list[str] = []
        writes = Writes()
        with self.db.begin() as conn:
            if job_id is not None and not self._settle(conn, job_id):
                return []  # another worker holds it now
            for definition_name, version, start in targets:
                definition = self.definition(definition_name, version, conn)
                values = message_variables(definition.node(start), payload)
                self._check_variables(definition, values)
                started.append(self._start_in(conn, writes, definition, values, None, start_node=start))
            writes.flush(conn)
        return started


__all__ = ["SignalApi"]
