"""The human-task API of the engine: inboxes, claiming, delegation, completion with a form, the task
audit trail and SLA statistics. ``Engine`` inherits it (``HumanTaskApi``).

Who may do what: the task actor rules of ``engine.security.rules`` (``check_task``), applied to the
person acting. With a person's engine (``engine.acting_as(principal)``) that is the principal: ``user``/
``actor`` may be omitted (or must be their own name) and ``groups`` is ignored (the account's groups
count). With the system principal (``Principal.system()``, embedded use) the call names the person
(``user``/``actor``) and their ``groups`` (None: no groups), and the rules apply to that person; without
a person the system acts itself and may do anything (reassign, complete).
- ``claim``: the task is open and unassigned (or already the person's), and offered to one of their groups.
- ``unclaim``: the task is the person's and has candidate groups (so it goes back to them).
- ``delegate`` and ``complete_task``: the person holds the task, or nobody does and it is offered to one of
  their groups.

A refused action raises ``AuthorizationError`` naming the rule (``FormError`` for form values,
``EngineError`` for a task that is not open), is recorded in ``wf_audit``, and writes nothing else. Every
change is one conditional UPDATE (``WHERE status = 'open' AND assignee ...``) checked by its row count,
in the transaction that also writes its audit row: of two concurrent claims exactly one wins.
Creation, SLA actions and cancellation are written by the engine's step (``engine.runtime.engine``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from engine.errors import EngineError, FormError
from engine.limits import check_key
from engine.model.nodes import FormField
from engine.model.values import coerce, dumps, loads
from engine.runtime.clock import aware
from engine.runtime.parts import EngineParts
from engine.runtime.plain import values_problems
from engine.runtime.tables import HumanTaskRow, InstanceRow, TaskAuditRow
from engine.security.guard import audit_task, task_actor
from engine.security.sensitive import mask_nested, may_see, sensitive_names, shown
from engine.semantics import events as ev

if TYPE_CHECKING:  # pandas is imported where a frame is built: a worker never pays its ~100 MB
    import pandas as pd

    from engine.security.principal import Principal

HT, TA, INST = HumanTaskRow.__table__, TaskAuditRow.__table__, InstanceRow.__table__
# Built once (a completion only binds its values): close an open task, held by nobody or by the one assignee.
_COMPLETE = update(HT).where(HT.c.id == bindparam("b_id"), HT.c.status == "open").values(
    status="completed", completed_at=bindparam("b_at"), completed_by=bindparam("b_by"),
    within_sla=bindparam("b_within"), outcome=bindparam("b_outcome"))
_COMPLETE_UNHELD = _COMPLETE.where(HT.c.assignee.is_(None))
_COMPLETE_HELD = _COMPLETE.where(HT.c.assignee == bindparam("b_held"))
_INSERT_TASK_AUDIT = insert(TA)
_TASK = select(HT).where(HT.c.id == bindparam("id"))

AUDIT_COLUMNS = ["id", "task_id", "instance_id", "node_id", "action", "actor", "detail", "at"]
SLA_COLUMNS = ["definition", "node_id", "count", "open", "completed", "cancelled", "within_sla", "within_sla_pct",
               "escalated", "p50_hours", "p90_hours"]


def _dumps(value: Any) -> str:
    return dumps(value)



def _task_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "candidate_groups": json.loads(row["candidate_groups"]), "form": json.loads(row["form"])}


class HumanTaskApi(EngineParts):
    """Mixed into ``Engine``: everything people do with human tasks."""

    # --- reading -------------------------------------------------------------------------------

    def tasks(self, assignee: str | None = None, instance_id: str | None = None,
              status: str | None = "open") -> list[dict[str, Any]]:
        query = select(HT).order_by(HT.c.id)
        if assignee:
            query = query.where(HT.c.assignee == assignee)
        if instance_id:
            query = query.where(HT.c.instance_id == instance_id)
        if status:
            query = query.where(HT.c.status == status)
        with self.reader.connect() as conn:
            rows = [_task_dict(r) for r in conn.execute(query).mappings()]
        return self._masked(rows, "outcome")

    def inbox(self, user: str, groups: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Open tasks assigned to ``user``, then unclaimed open tasks offered to one of ``groups``;
        soonest due first (no due time last), then oldest. Same dicts as ``tasks()``."""
        groups = set(groups)
        mine = HT.c.assignee == user
        if groups:  # JSON text: a LIKE narrows the rows, the exact check happens below
            offered = or_(*(HT.c.candidate_groups.like(f"%{_dumps(g)}%") for g in sorted(groups)))
            mine = or_(mine, (HT.c.assignee.is_(None)) & offered)
        with self.reader.connect() as conn:
            rows = [_task_dict(r) for r in conn.execute(select(HT).where(HT.c.status == "open", mine)).mappings()]
        rows = self._masked([r for r in rows if r["assignee"] == user or groups.intersection(r["candidate_groups"])],
                            "outcome")
        never = datetime.max.replace(tzinfo=UTC)
        return sorted(rows, key=lambda r: (aware(r["due_at"]) if r["due_at"] is not None else never, r["id"]))

    def inbox_frame(self, user: str, groups: Iterable[str] = ()) -> pd.DataFrame:
        """``inbox()`` as a DataFrame (notebooks)."""
        import pandas as pd

        columns = [c.name for c in HT.columns]
        return pd.DataFrame(self.inbox(user, groups), columns=columns)

    def task_audit(self, task_id: int | None = None, instance_id: str | None = None) -> pd.DataFrame:
        """The audit trail (one row per action, oldest first); ``detail`` is a dict."""
        import pandas as pd

        query = select(TA).order_by(TA.c.id)
        if task_id is not None:
            query = query.where(TA.c.task_id == task_id)
        if instance_id is not None:
            query = query.where(TA.c.instance_id == instance_id)
        with self.reader.connect() as conn:
            rows = [{**r, "detail": loads(r["detail"] or "{}")} for r in conn.execute(query).mappings()]
        rows = self._masked(rows, "detail")
        frame = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
        frame["actor"] = pd.Series([r["actor"] for r in rows], dtype=object)  # keep None, not NaN
        return frame

    def sla_stats(self, definition: str | None = None) -> pd.DataFrame:
        """Per (definition, node_id): tasks, open / completed / cancelled, completed within the SLA (count and
        % of completed), escalated, and the median and 90th percentile hours from creation to completion."""
        import pandas as pd

        query = (select(INST.c.definition_name, HT.c.node_id, HT.c.status, HT.c.within_sla, HT.c.escalated,
                        HT.c.created_at, HT.c.completed_at)
                 .join(INST, INST.c.id == HT.c.instance_id))
        if definition is not None:
            query = query.where(INST.c.definition_name == definition)
        with self.reader.connect() as conn:
            rows = conn.execute(query).all()
        groups: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            groups.setdefault((r.definition_name, r.node_id), []).append(r)
        out = []
        for (name, node), items in sorted(groups.items()):
            done = [r for r in items if r.status == "completed"]
            within = sum(1 for r in done if r.within_sla)
            hours = pd.Series([(aware(r.completed_at) - aware(r.created_at)).total_seconds() / 3600 for r in done],
                              dtype=float)
            out.append({"definition": name, "node_id": node, "count": len(items),
                        "open": sum(1 for r in items if r.status == "open"), "completed": len(done),
                        "cancelled": sum(1 for r in items if r.status == "cancelled"), "within_sla": within,
                        "within_sla_pct": 100.0 * within / len(done) if done else float("nan"),
                        "escalated": sum(1 for r in items if r.escalated),
                        "p50_hours": hours.quantile(0.5) if done else float("nan"),
                        "p90_hours": hours.quantile(0.9) if done else float("nan")})
        return pd.DataFrame(out, columns=SLA_COLUMNS)

    # --- acting --------------------------------------------------------------------------------

    def claim(self, task_id: int, user: str | None = None, groups: Iterable[str] | None = None) -> None:
        """Take an unassigned open task offered to one of the person's groups (see the module docstring)."""
        if user is not None:
            check_key(user, "the user claiming")
        task = self._open_task(task_id, "claim")
        person = task_actor(self, task, "claim", user, groups)
        if task.assignee == person.user:
            return  # already the person's: nothing to do
        self._change(task, HT.c.assignee.is_(None), {"assignee": person.user}, "claimed", person,
                     {"to": person.user}, "claim")

    def unclaim(self, task_id: int, user: str | None = None) -> None:
        """Give a claimed task back to its candidate groups."""
        task = self._open_task(task_id, "unclaim")
        person = task_actor(self, task, "unclaim", user, None)
        if not json.loads(task.candidate_groups):
            raise EngineError(f"cannot unclaim task {task_id}: it has no candidate groups, so it would be in "
                              "nobody's inbox; delegate it instead")
        held = HT.c.assignee == task.assignee if task.assignee is not None else HT.c.assignee.is_(None)
        self._change(task, held, {"assignee": None}, "unclaimed", person, {"from": task.assignee}, "unclaim")

    def delegate(self, task_id: int, to_user: str, actor: str | None = None,
                 groups: Iterable[str] | None = None) -> None:
        """Reassign an open task to ``to_user``: the person acting holds it, or nobody does and it is offered to
        one of their groups; the system principal acting itself (``actor=None``) may reassign any task."""
        check_key(to_user, "the user to delegate to")
        task = self._open_task(task_id, "delegate")
        if task.assignee == to_user:
            raise EngineError(f"cannot delegate task {task_id}: it is already assigned to {to_user!r}")
        person = task_actor(self, task, "delegate", actor, groups)
        held = HT.c.assignee.is_(None) if task.assignee is None else HT.c.assignee == task.assignee
        self._change(task, held, {"assignee": to_user}, "delegated", person,
                     {"from": task.assignee, "to": to_user}, "delegate")

    def complete_task(self, task_id: int, values: Mapping[str, Any] | None = None, actor: str | None = None,
                      groups: Iterable[str] | None = None) -> None:
        """Complete a human task with form values (checked against its form; a bad value keeps it open).
        The person acting must hold the task, or nobody does and it is offered to one of their groups."""
        with self.reader.connect() as conn:
            task = conn.execute(_TASK, {"id": task_id}).first()
        if task is None or task.status != "open":
            raise EngineError(f"no open human task {task_id}")
        person = task_actor(self, task, "complete", actor, groups)
        actor = person.user
        form = [FormField(**f) for f in json.loads(task.form)]
        given = dict(values or {})
        # Beyond its form, a task accepts the definition's declared variables (each of its type) - or any
        # variable when the definition declares none, as Camunda's complete(task, variables) does - so an
        # imported process is always completable. Form fields bound to another variable (Camunda's
        # formProperty variable=...) set that variable.
        names = {f.name for f in form}
        extra = {k: v for k, v in given.items() if k not in names}
        clean = check_form(form, {k: v for k, v in given.items() if k in names}, task.node_id)
        clean = {next((f.variable or f.name for f in form if f.name == k), k): v for k, v in clean.items()}
        problems = values_problems({**clean, **extra})
        if extra and not problems:
            problems = self._declared_problems(task.instance_id, extra)
            if problems and form:
                problems.append(f"the form has {sorted(names)}")
        clean.update(extra)
        if problems:
            raise FormError(f"task {task.node_id!r}: " + "; ".join(problems))
        now = self.clock.now()

        def close(conn: Connection) -> bool:
            within = task.due_at is None or now < aware(task.due_at)  # the SLA fires at due_at
            statement = (_COMPLETE if person.is_system  # else: nobody took it over meanwhile
                         else _COMPLETE_UNHELD if task.assignee is None else _COMPLETE_HELD)
            if conn.execute(statement, {"b_id": task_id, "b_at": now, "b_by": actor, "b_within": within,
                                        "b_outcome": _dumps(clean), "b_held": task.assignee}).rowcount != 1:
                return False
            conn.execute(_INSERT_TASK_AUDIT, {"task_id": task_id, "instance_id": task.instance_id,
                                              "node_id": task.node_id, "action": "completed", "actor": actor,
                                              "detail": _dumps({"values": clean, "within_sla": within}), "at": now})
            audit_task(conn, self, "complete", task, person)
            return True

        if not self._apply(task.instance_id, [ev.WorkDone(task.token_id, clean, actor)], before=close):
            raise EngineError(f"human task {task_id} was completed, cancelled or reassigned meanwhile")

    # --- helpers -------------------------------------------------------------------------------

    def _masked(self, rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        """``rows`` (each with ``instance_id``) with sensitive variables inside ``column`` (form values: JSON
        text or a dict) masked unless the principal may see them (``engine.security.sensitive``)."""
        if may_see(self.principal) or not rows:
            return rows
        ids = sorted({r["instance_id"] for r in rows})
        with self.reader.connect() as conn:
            kinds = {r.id: (r.definition_name, r.definition_version) for r in conn.execute(
                select(INST.c.id, INST.c.definition_name, INST.c.definition_version).where(INST.c.id.in_(ids)))}
        hidden = {i: sensitive_names(self.definition(*k)) for i, k in kinds.items()}
        out = []
        for r in rows:
            names, value = hidden.get(r["instance_id"]), r.get(column)
            if names and value is not None:
                if isinstance(value, str):
                    value = _dumps(mask_nested(loads(value), names))
                else:
                    value = mask_nested(value, names)
                r = {**r, column: value}
            out.append(r)
        return out

    def _declared_problems(self, instance_id: str, values: dict[str, Any]) -> list[str]:
        """Values for a task without a form: when the definition declares variables, only those, each of its
        declared type (the rule ``start`` applies); otherwise any storable value."""
        from engine.model.definition import type_matches

        with self.reader.connect() as conn:
            row = conn.execute(select(INST.c.definition_name, INST.c.definition_version)
                               .where(INST.c.id == instance_id)).first()
        if row is None:
            return []
        declared = {v.name: v for v in self.definition(row.definition_name, row.definition_version).variables}
        if not declared:
            return []
        problems = []
        for name, value in values.items():
            if name not in declared:
                problems.append(f"{name!r} is not a declared variable (declared: {', '.join(declared)})")
            elif value is not None and not type_matches(declared[name].type, value):
                problems.append(f"{name!r} must be {declared[name].type}, got {type(value).__name__} "
                                f"{shown(declared[name], value)}")
        return problems

    def _open_task(self, task_id: int, verb: str) -> Any:
        with self.reader.connect() as conn:
            task = conn.execute(_TASK, {"id": task_id}).first()
        if task is None:
            raise EngineError(f"cannot {verb} task {task_id}: no such human task")
        if task.status != "open":
            raise EngineError(f"cannot {verb} task {task_id}: it is {task.status}")
        return task

    def _change(self, task: Any, held: Any, values: dict[str, Any], action: str, person: Principal,
                detail: dict[str, Any], verb: str) -> None:
        """One conditional UPDATE of an open task and its audit row, or an EngineError and nothing written."""
        now = self.clock.now()
        with self.db.begin() as conn:
            changed = conn.execute(update(HT).where(HT.c.id == task.id, HT.c.status == "open", held)
                                   .values(**values)).rowcount
            if changed == 1:
                conn.execute(_INSERT_TASK_AUDIT, {"task_id": task.id, "instance_id": task.instance_id,
                                                  "node_id": task.node_id, "action": action, "actor": person.user,
                                                  "detail": _dumps(detail), "at": now})
                audit_task(conn, self, verb, task, person)
                return
            now_row = conn.execute(select(HT.c.status, HT.c.assignee).where(HT.c.id == task.id)).first()
        state = (f"it is {now_row.status}" if now_row is not None and now_row.status != "open"
                 else f"it was assigned to {now_row.assignee!r} meanwhile" if now_row is not None
                 else "it no longer exists")
        raise EngineError(f"cannot {verb} task {task.id}: {state}")


TYPED_FIELDS = frozenset({"date", "datetime", "time", "duration", "decimal"})


def _field_name(f: FormField) -> str:
    """A form field as its user sees it: its label, with the variable name when they differ."""
    label = getattr(f, "label", None)
    return f"{label!r} ({f.name})" if label and label != f.name else repr(f.name)


def check_form(form: list[FormField], values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate form values: every problem in one FormError naming the field by its label (and variable)."""
    problems = []
    fields = {f.name: f for f in form}
    clean = dict(values)
    for f in form:
        value = values.get(f.name, f.default)
        if value is None:
            if f.required:
                problems.append(f"{_field_name(f)} is required")
            continue
        if f.type in TYPED_FIELDS:  # ISO text or the Python value: stored typed (engine.model.values)
            try:
                value = coerce(f.type, value)
            except ValueError as exc:
                problems.append(f"{_field_name(f)} {exc}")
                continue
        ok = {
            "string": isinstance(value, str), "text": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool), "enum": value in (f.choices or []),
        }.get(f.type, True)
        if not ok:
            expected = f"one of {f.choices}" if f.type == "enum" else f.type
            problems.append(f"{_field_name(f)} must be {expected}, got {value!r}")
        clean[f.name] = value
    if form:
        unknown = [k for k in values if k not in fields]
        if unknown:
            problems.append(f"unknown fields {unknown}; the form has {list(fields)}")
    if problems:
        raise FormError(f"task {where!r}: " + "; ".join(problems))
    return clean
