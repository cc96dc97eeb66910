"""What the Tasks page needs around the live engine: opening it, driving its embedded worker, reading
start variables and form values from widgets, and the tables it shows.

Plain functions (no Streamlit) so the page stays thin and this part is tested directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

import designs
from engine.errors import DefinitionError
from engine.model import ProcessDefinition
from engine.model.definition import VariableDecl
from engine.model.nodes import UserTask
from engine.runtime import Engine
from engine.runtime.clock import aware
from engine.runtime.ids import short_id
from engine.security import Principal

DB_ENV = "WAOOAW_DB"
DEFAULT_DB = "sqlite:///waooaw.db"
DEFAULT_USER = "marketing-lead"  # marketing_campaign's approver: the first inbox with something in it

# One embedded worker per process: Streamlit sessions are threads sharing the cached engine, and on
# SQLite the engine expects a single worker.
_WORKER = threading.Lock()


def open_engine(url: str) -> tuple[Engine, list[str]]:
    """The engine on ``url`` with every library design deployed (idempotent: same content, same version).

    A design that fails to deploy is reported, not fatal: the others still run."""
    engine = Engine(url, principal=Principal.system())  # the app's own: deploys its library, runs the jobs
    problems = []
    for name in designs.names():
        try:
            engine.deploy(designs.load_design(name))
        except DefinitionError as exc:
            problems.append(f"{name}: {exc}")
    drive(engine)
    return engine, problems


def drive(engine: Engine) -> int:
    """Run the embedded worker until nothing is due (agents, timers, SLA escalations); the jobs it ran."""
    with _WORKER:
        return engine.run_until_idle()


def user_tasks(definitions: Iterable[ProcessDefinition]) -> list[UserTask]:
    return [n for d in definitions for n in d.all_nodes() if isinstance(n, UserTask)]


def people(definitions: Iterable[ProcessDefinition]) -> tuple[list[str], list[str]]:
    """(users, groups) the definitions name: assignees and escalation targets, candidate groups."""
    users: set[str] = set()
    groups: set[str] = set()
    for task in user_tasks(definitions):
        users.update(u for u in (task.assignee, task.on_timeout.assignee if task.on_timeout else None) if u)
        groups.update(task.candidate_groups)
    return sorted(users), sorted(groups)


# --- starting an instance ---------------------------------------------------------------------------------

def parse_variable(decl: VariableDecl, raw: Any) -> Any:
    """A widget's value as the declared type; None when left empty. ValueError names the variable."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if decl.type == "integer":
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError(f"{decl.name!r} must be a whole number, got {raw}")
        return int(raw)
    if decl.type == "number":
        return float(raw) if isinstance(raw, float) else raw
    if decl.type in ("object", "array", "any") and isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            if decl.type == "any":
                return raw  # plain text is a fine value of type any
            raise ValueError(f"{decl.name!r} must be JSON ({decl.type}): {exc.msg} at column {exc.colno}") from None
    return raw


def written_by_nodes(definition: ProcessDefinition) -> set[str]:
    """Variables some node sets: service-task outputs, user-task form fields, message catch outputs."""
    written: set[str] = set()
    for node in definition.all_nodes():
        written.update(getattr(node, "output_variables", None) or [])
        for f in getattr(node, "form", None) or []:
            written.update({f.name, getattr(f, "variable", None) or f.name})
        written.update(getattr(node, "outputs", None) or [])
    return written


def start_inputs(definition: ProcessDefinition) -> list[VariableDecl]:
    """The variables a start form asks for: declared ``input: true``, or (``input`` unset) required ones and
    those no node writes. An outcome such as a form's ``approved`` is not asked for."""
    written = written_by_nodes(definition)
    return [d for d in definition.variables
            if d.input or (d.input is None and (d.required or d.name not in written))]


def start_values(definition: ProcessDefinition, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The start variables the user filled in (empty fields left out, so declared defaults apply)."""
    values = {}
    for decl in start_inputs(definition):
        value = parse_variable(decl, raw.get(decl.name))
        if value is not None:
            values[decl.name] = value
    return values


# --- the inbox ---------------------------------------------------------------------------------------------

def claim_first(task: Mapping[str, Any]) -> bool:
    """Whether the task must be claimed before it can be completed (``UserTask.requires_claim``, nobody holds it):
    the engine refuses completing it under rule ``task.complete`` until then."""
    return bool(task.get("requires_claim")) and task.get("assignee") is None


def is_overdue(task: Mapping[str, Any], now: datetime) -> bool:
    due = task.get("due_at")
    return due is not None and aware(due) < aware(now)


def countdown(due: datetime | None, now: datetime) -> str:
    """The SLA as a person reads it: "due in 3 h 12 min", "overdue by 25 min", "" without an SLA."""
    if due is None:
        return ""
    seconds = (aware(due) - aware(now)).total_seconds()
    left = abs(int(seconds)) // 60
    days, rest = divmod(left, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else []) + (
        [f"{minutes} min"] if minutes or not (days or hours) else [])
    text = " ".join(parts[:2])
    return f"due in {text}" if seconds > 0 else f"overdue by {text}"


def why_gone(engine: Engine, task_id: int) -> str:
    """Why task ``task_id`` left your inbox, from its audit trail: who did what, when."""
    audit = engine.task_audit(task_id=task_id)
    if audit.empty:
        return f"Task {task_id} is no longer open."
    last = audit.iloc[-1]
    who = last["actor"] or "the engine"
    at = aware(last["at"]).strftime("%H:%M UTC")
    action = str(last["action"])
    verb = {"completed": "completed", "claimed": "claimed", "delegated": "delegated", "cancelled": "cancelled",
            "escalated": "escalated", "reassigned": "reassigned", "unclaimed": "handed back"}.get(action, action)
    detail = last["detail"] if isinstance(last["detail"], dict) else {}
    to = detail.get("to") or detail.get("assignee")
    return f"Task {task_id} was {verb} by {who} at {at}" + (f" (now with {to})" if to else "") + "."


def task_label(task: Mapping[str, Any], now: datetime) -> str:
    flags = [f for f, on in (("overdue", is_overdue(task, now)), ("escalated", task.get("escalated"))) if on]
    label = f"#{task['id']} {task['title']} · {short_id(task['instance_id'])}"
    return label + (f" ({', '.join(flags)})" if flags else "")


def inbox_table(tasks: list[dict[str, Any]], now: datetime) -> pd.DataFrame:
    """One row per task of ``engine.inbox()``: title, instance, who holds it, due (UTC), overdue, escalated."""
    rows = []
    for t in tasks:
        due = aware(t["due_at"]) if t["due_at"] is not None else None
        rows.append({"task": t["id"], "title": t["title"], "instance": short_id(t["instance_id"]),
                     "assignee": t["assignee"] or "", "offered to": ", ".join(t["candidate_groups"]),
                     "due (UTC)": due.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if due else "",
                     "overdue": is_overdue(t, now), "escalated": bool(t["escalated"])})
    return pd.DataFrame(rows, columns=["task", "title", "instance", "assignee", "offered to", "due (UTC)", "overdue",
                                       "escalated"])


def task_context(engine: Engine, task: Mapping[str, Any]) -> dict[str, Any]:
    """What the person working ``task`` should see of its instance: ``definition``, ``version``,
    ``business_key``, ``status``, ``variables`` (name -> value; sensitive ones masked by the engine for
    non-operators) and ``unset`` (declared variables with no value yet, such as a decision a form should make)."""
    view = engine.instance(task["instance_id"])
    declared = [d.name for d in (view.diagram.variables if view.diagram is not None else [])]
    return {"definition": view.definition, "version": view.version, "business_key": view.business_key,
            "status": view.status, "variables": dict(view.variables),
            "unset": [n for n in declared if view.variables.get(n) is None]}


def variables_table(variables: Mapping[str, Any]) -> pd.DataFrame:
    """Variables as two text columns (``variable``, ``value``): mixed types in one column stay readable."""
    rows = [{"variable": k, "value": v if isinstance(v, str) else json.dumps(v, default=str)}
            for k, v in sorted(variables.items())]
    return pd.DataFrame(rows, columns=["variable", "value"])


def field_label(field: Mapping[str, Any]) -> str:
    return (field.get("label") or field["name"]) + (" *" if field.get("required") else "")


def form_values(form: list[Mapping[str, Any]], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values for a task's form: empty fields left out (the engine then reports a missing required
    one), whole numbers as int for integer fields, dates as ISO text."""
    values = {}
    for field in form:
        value = raw.get(field["name"])
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field["type"] == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif field["type"] == "date" and isinstance(value, date):
            value = value.isoformat()
        values[field["name"]] = value
    return values


# --- instances and the SLA -------------------------------------------------------------------------------

INSTANCE_COLUMNS = ["id", "status", "definition", "version", "business key", "started", "ended", "steps"]


def instances_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``engine.instances()``, most recent first, with readable column names."""
    if frame.empty:
        return pd.DataFrame(columns=INSTANCE_COLUMNS)
    out = frame.rename(columns={"definition_name": "definition", "definition_version": "version",
                                "business_key": "business key", "started_at": "started", "ended_at": "ended"})
    return out.sort_values("started", ascending=False, kind="stable")[INSTANCE_COLUMNS].reset_index(drop=True)


def instance_label(row: Mapping[str, Any]) -> str:
    """What never changes about an instance (Streamlit keeps showing a selected option's old text, so a
    status here would go stale; the table and the details show it)."""
    key = f" · {row['business key']}" if row.get("business key") else ""
    return f"{row['definition']}{key} · {short_id(row['id'])}"


def token_overlay(active_nodes: list[str]) -> dict[str, Any]:
    """``to_dot`` overlays for where the tokens are: the nodes highlighted, a badge with the token count."""
    counts: dict[str, int] = {}
    for node in active_nodes:
        counts[node] = counts.get(node, 0) + 1
    return {"highlight": sorted(counts), "counts": counts}


def audit_table(frame: pd.DataFrame, last: int = 50) -> pd.DataFrame:
    """The last ``last`` rows of ``engine.task_audit()``, newest first, ``detail`` as JSON text."""
    out = frame.tail(last).iloc[::-1].copy()
    out["detail"] = [json.dumps(d, default=str, sort_keys=True) for d in out["detail"]]
    out["instance_id"] = out["instance_id"].map(short_id)
    return out.reset_index(drop=True)
