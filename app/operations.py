"""What the Deployments, Runs and Instance pages read and do, as plain functions over the engine's tables
(no Streamlit, tested directly).

- Deploy a saved design (refused with its problem list when invalid; same content, same version).
- Versions of each definition and a node-level diff between two versions.
- Instances page by page with filters through ``Engine.instance_page`` (indexed, counted in SQL).
- One instance's details: the path taken (flow-node history when ``engine.runtime.history`` is present,
  otherwise what the task and task-execution tables record), task executions, open human tasks, armed
  timers and message subscriptions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, select

from app.workspace import Workspace
from engine.errors import AuthorizationError, DefinitionError, EngineError, Problem
from engine.model import ProcessDefinition
from engine.runtime import Engine
from engine.runtime.clock import aware
from engine.runtime.ids import short_id
from engine.runtime.tables import (
    ActivityRow,
    DefinitionRow,
    HumanTaskRow,
    IncidentRow,
    InstanceRow,
    JobRow,
    SubscriptionRow,
    TaskExecutionRow,
)
from engine.validate import validate
from engine.versions import rollouts

D, INST, J, HT, S, X = (DefinitionRow.__table__, InstanceRow.__table__, JobRow.__table__, HumanTaskRow.__table__,
                        SubscriptionRow.__table__, TaskExecutionRow.__table__)
A, INC = ActivityRow.__table__, IncidentRow.__table__
END_KINDS = ("end", "terminate_end", "error_end", "escalation_end", "message_end", "signal_end", "compensation_end",
             "cancel_end")
#: The Runs page's status choices. INCIDENT is a running instance with an open incident on a token: what
#: ``mark_runs`` shows as "running · incident" and an operator filters for first.
INCIDENT = "running · incident"
STATUSES = ["running", INCIDENT, "completed", "failed", "cancelled", "terminated"]


# --- deploying ---------------------------------------------------------------------------------------------

@dataclass
class DeployResult:
    """``definition`` deployed (``new`` False when the content was already the latest version), or refused
    with ``problems`` (errors first) and nothing written."""

    definition: ProcessDefinition | None
    new: bool = False
    problems: list[Problem] = field(default_factory=list)
    refusal: str | None = None  # a permission refusal (the engine's rule), not a problem of the design

    @property
    def refused(self) -> bool:
        return self.definition is None


def deploy_saved(engine: Engine, workspace: Workspace, name: str) -> DeployResult:
    """Deploy the saved design ``name``. Invalid: refused with every problem (validation errors, or the load
    errors of a design edited into something that does not load)."""
    try:
        definition = workspace.load(name)
    except DefinitionError as exc:
        return DeployResult(None, problems=exc.problems)
    from engine.cli import place  # the line of each problem in the saved YAML

    problems = place(validate(definition), workspace.text(name))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        return DeployResult(None, problems=errors + [p for p in problems if p.severity != "error"])
    before = versions(engine, name)
    try:
        deployed = engine.deploy(definition)
    except DefinitionError as exc:  # the engine's own check (same rules): nothing written
        return DeployResult(None, problems=exc.problems)
    except AuthorizationError as exc:  # the visitor is no deployer: refused, the rule named
        return DeployResult(None, refusal=permission_refusal(str(exc), "deploy"))
    new = before.empty or int(before["version"].max()) < deployed.version
    return DeployResult(deployed, new=new, problems=problems)


def permission_refusal(error: str, action: str, demo: bool = True) -> str:
    """The engine's refusal ``error`` for ``action`` said as a permission problem, naming the demo personas who
    may do it (``engine.security.allowed`` over ``DEMO_PERSONAS``) so the visitor knows whom to act as."""
    from engine.security import allowed
    from engine.security.demo import DEMO_PERSONAS

    who = [f"{p.display_name} ({p.name})" for p in DEMO_PERSONAS if allowed(p.principal(), action)]
    return f"Not permitted: {error}." + (f" In the demo, {', '.join(who)} may; switch persona in the sidebar."
                                         if who else "")


def versions(engine: Engine, name: str | None = None) -> pd.DataFrame:
    """Deployed versions (``name``, ``version``, ``deployed_at``, ``instances``, ``running``, ``new instances``:
    the share of new instances that get it, from the rollout policy, else 1.0 for the latest), newest first."""
    counts = (select(INST.c.definition_name, INST.c.definition_version, func.count().label("instances"),
                     func.sum(case((INST.c.status == "running", 1), else_=0)).label("running"))
              .group_by(INST.c.definition_name, INST.c.definition_version).subquery())
    query = (select(D.c.name, D.c.version, D.c.deployed_at, func.coalesce(counts.c.instances, 0).label("instances"),
                    func.coalesce(counts.c.running, 0).label("running"))
             .outerjoin(counts, and_(counts.c.definition_name == D.c.name,
                                     counts.c.definition_version == D.c.version))
             .order_by(D.c.name, D.c.version.desc()))
    if name is not None:
        query = query.where(D.c.name == name)
    with engine.reader.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all(),
                             columns=["name", "version", "deployed_at", "instances", "running"])
    latest = frame.groupby("name")["version"].transform("max") if not frame.empty else pd.Series(dtype=int)
    policies = rollouts(engine)
    shares = {(p.name, v): share for p in policies for v, share in p.shares.items()}
    ruled = {p.name for p in policies}
    frame["new instances"] = [shares.get((n, v), 0.0) if n in ruled else float(v == top)
                              for n, v, top in zip(frame["name"], frame["version"], latest, strict=True)]
    return frame


def node_diff(old: ProcessDefinition, new: ProcessDefinition) -> pd.DataFrame:
    """Per node and flow that differs between two versions: ``element``, ``kind``, ``change`` (added, removed,
    changed) and ``fields`` (the changed attributes)."""
    rows = []

    def items(d: ProcessDefinition) -> dict[str, tuple[str, dict[str, Any]]]:
        out = {n.id: (n.kind, n.model_dump(mode="json", exclude_defaults=True)) for n in d.all_nodes()}
        out.update({f.id: ("flow", f.model_dump(mode="json", exclude_defaults=True)) for f in d.all_flows()})
        return out

    a, b = items(old), items(new)
    for element in sorted(set(a) | set(b)):
        if element not in a:
            rows.append({"element": element, "kind": b[element][0], "change": "added", "fields": ""})
        elif element not in b:
            rows.append({"element": element, "kind": a[element][0], "change": "removed", "fields": ""})
        elif a[element][1] != b[element][1]:
            da, db = a[element][1], b[element][1]
            changed = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k) and k != "nodes")
            rows.append({"element": element, "kind": b[element][0], "change": "changed",
                         "fields": ", ".join(changed) or "contents"})
    variables_a = {v.name: v for v in old.variables}
    variables_b = {v.name: v for v in new.variables}
    for name in sorted(set(variables_a) | set(variables_b)):
        if variables_a.get(name) != variables_b.get(name):
            change = ("added" if name not in variables_a else "removed" if name not in variables_b else "changed")
            rows.append({"element": f"variable {name}", "kind": "variable", "change": change, "fields": ""})
    return pd.DataFrame(rows, columns=["element", "kind", "change", "fields"])


# --- runs --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunFilter:
    definition: str | None = None
    version: int | None = None  # needs ``definition``
    status: str | None = None
    business_key: str | None = None  # exact
    started_from: date | None = None
    started_to: date | None = None  # inclusive


RUN_COLUMNS = ["id", "definition", "version", "business key", "status", "started", "ended", "steps"]


def _run_query(f: RunFilter) -> dict[str, Any]:
    """``Engine.instance_page``'s filters for ``f`` (dates as whole days, UTC; INCIDENT as running + incident)."""
    incident = f.status == INCIDENT
    return {"definition": f.definition, "version": f.version if f.definition else None,
            "status": "running" if incident else f.status, "with_incident": True if incident else None,
            "business_key": f.business_key,
            "started_from": datetime.combine(f.started_from, time.min, UTC) if f.started_from else None,
            "started_before": (datetime.combine(f.started_to + timedelta(days=1), time.min, UTC)
                               if f.started_to else None)}


def page_of_runs(engine: Engine, f: RunFilter, page: int = 0, size: int = 50) -> tuple[pd.DataFrame, str]:
    """One page of instances (newest first) matching ``f``, and how many match ("1,234", "10,000+"), through
    ``Engine.instance_page`` (indexed paging and a capped count: fast at 100,000s of instances).
    EngineError for a filter the engine refuses (a version without its definition)."""
    result = engine.instance_page(**_run_query(f), limit=size, offset=max(page, 0) * size)
    frame = result.rows.copy()
    frame.columns = RUN_COLUMNS
    return frame, result.total_text


def mark_runs(engine: Engine, frame: pd.DataFrame) -> pd.DataFrame:
    """One page of runs (``page_of_runs``) made readable: ``status`` says "running · incident" when the instance
    has an open incident on one of its tokens (as the A/B tab counts it), ``outcome`` is the end event the
    instance reached (its name, else its id; "" while running), and times lose their "+00:00"."""
    out = frame.copy()
    ids = out["id"].tolist()
    if not ids:
        return out.assign(outcome=[])
    with engine.reader.connect() as conn:
        incidents = {r[0] for r in conn.execute(select(INC.c.instance_id).where(
            INC.c.instance_id.in_(ids), INC.c.resolved_at.is_(None), INC.c.job.is_(None)))}
        ends = conn.execute(select(A.c.instance_id, A.c.node_id).where(
            A.c.instance_id.in_(ids), A.c.kind.in_(END_KINDS), A.c.scope.is_(None)).order_by(A.c.id)).all()
    reached: dict[str, str] = {}
    definitions: dict[tuple[str, int], ProcessDefinition] = {}
    versions = dict(zip(out["id"], zip(out["definition"], out["version"], strict=True), strict=True))
    for instance_id, node_id in ends:
        name, version = versions[instance_id]
        if (name, version) not in definitions:
            definitions[(name, version)] = engine.definition(name, int(version))
        reached[instance_id] = node_name(definitions[(name, version)], node_id)
    out["status"] = [f"{s} · incident" if i in incidents and s == "running" else s
                     for i, s in zip(ids, out["status"], strict=True)]
    out.insert(out.columns.get_loc("status") + 1, "outcome", [reached.get(i, "") for i in ids])
    for column in ("started", "ended"):
        out[column] = [when(v) for v in out[column]]
    return out


def count_runs(engine: Engine, f: RunFilter) -> int:
    """How many instances match ``f``, counted up to 10,000 (enough to page through)."""
    return int(engine.instance_page(**_run_query(f), limit=1).total or 0)


# --- one instance ------------------------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%d %H:%M"


def when(value: Any) -> str:
    """A moment as the tables show it: ``2026-12-08 00:06`` (UTC, no "+00:00"); "—" for none (still running).
    Takes a datetime, a pandas Timestamp, ISO text or epoch milliseconds (the task audit's ``due_at``)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value / 1000, UTC)
    try:
        return pd.Timestamp(value).strftime(TIME_FORMAT)
    except (ValueError, TypeError):
        return str(value)


def node_name(definition: ProcessDefinition, node_id: str) -> str:
    """The node as every page shows it (``Node.label``: "Paid", else its id in words), or its id when it is not
    in ``definition``."""
    try:
        node = definition.node(node_id)
    except KeyError:
        return node_id
    return node.label


def _flag(definition: ProcessDefinition | None, node_id: str, name: str) -> bool:
    """The node's boolean field ``name`` (False when there is no definition or no such node)."""
    node = definition.index.nodes.get(node_id) if definition is not None else None
    return bool(getattr(node, name, False))


def _is_handler(definition: ProcessDefinition | None, node_id: str) -> bool:
    """The row's node is a compensation handler activity (named for itself), not the activity it undoes."""
    return _flag(definition, node_id, "for_compensation")


def _kind_text(definition: ProcessDefinition | None, node_id: str, kind: str) -> str:
    """A row's kind as the path shows it: a transaction and an ad-hoc sub-process by their BPMN names."""
    if kind == "ad_hoc_sub_process":
        return "ad-hoc sub-process"
    if kind == "sub_process" and _flag(definition, node_id, "transaction"):
        return "transaction"
    return kind


def path_taken(engine: Engine, instance_id: str, definition: ProcessDefinition | None = None) -> pd.DataFrame:
    """Every node the instance's tokens passed, in the order they started (``Engine.activities``): ``step``
    (the node's name), ``node`` (id), ``kind``, ``started``, ``ended`` (text, "—" while a token is still
    there), ``took`` (text), ``outcome``."""
    frame = engine.activities(instance_id)
    took = [("" if pd.isna(d) else _duration_text(d.total_seconds())) for d in frame["duration"]]
    names = [node_name(definition, n) if definition else n for n in frame["node_id"]]
    names = [f"Undo: {name}" if kind == "compensation" and not _is_handler(definition, node) else name
             for name, kind, node in zip(names, frame["kind"], frame["node_id"], strict=True)]
    kinds = [_kind_text(definition, node, kind) for node, kind in zip(frame["node_id"], frame["kind"], strict=True)]
    return pd.DataFrame({"step": names, "node": frame["node_id"], "kind": kinds,
                         "started": [when(t) for t in frame["started_at"]],
                         "ended": [when(t) for t in frame["ended_at"]], "took": took,
                         "outcome": frame["outcome"].fillna("")})


def visited(engine: Engine, instance_id: str) -> list[str]:
    """The ids of the nodes the instance passed (its path, to highlight on a finished instance's diagram)."""
    return sorted(set(engine.activities(instance_id)["node_id"]))


def variable_history(history: pd.DataFrame) -> pd.DataFrame:
    """The variable history for a table: values as JSON text (a column mixing numbers, text and None is
    not one Arrow type), times formatted, "—" for no value."""
    out = history.copy()
    for column in ("old_value", "new_value"):
        if column in out:
            out[column] = ["—" if v is None else json.dumps(v, default=str) for v in out[column]]
    for column in out.columns:
        if column.endswith("_at"):
            out[column] = [when(v) for v in out[column]]
    return out


def task_audit(engine: Engine, instance_id: str) -> pd.DataFrame:
    """The instance's human-task audit, readable: time, task, action, actor and the detail as "key: value"
    text with times as dates (``due_at`` is stored in epoch milliseconds)."""
    frame = engine.task_audit(instance_id=instance_id)
    if frame.empty:
        return frame

    def detail(d: dict[str, Any]) -> str:
        parts = []
        for key, value in (d or {}).items():
            if key.endswith("_at") and isinstance(value, int | float | str):
                value = when(value)
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            parts.append(f"{key.replace('_', ' ')}: {value}")
        return "; ".join(parts)

    out = frame.drop(columns=[c for c in ("instance_id",) if c in frame]).copy()
    for column in out.columns:
        if column.endswith("_at"):
            out[column] = [when(v) for v in out[column]]
    out["detail"] = [detail(d) for d in frame["detail"]]
    return out


def _duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _kind(definition: ProcessDefinition, node_id: str) -> str:
    try:
        return definition.node(node_id).kind
    except KeyError:
        return ""


def executions(engine: Engine, instance_id: str, definition: ProcessDefinition | None = None) -> pd.DataFrame:
    """Agent calls: node, agent (the registered agent the node calls), attempt, status, started, ended (text),
    error."""
    with engine.reader.connect() as conn:
        rows = conn.execute(select(X.c.node_id, X.c.attempt, X.c.status, X.c.started_at, X.c.ended_at, X.c.error)
                            .where(X.c.instance_id == instance_id).order_by(X.c.id)).all()

    def agent(node_id: str) -> str:
        try:
            return str(getattr(definition.node(node_id), "agent", "") or "") if definition else ""
        except KeyError:
            return ""

    return pd.DataFrame([(r.node_id, agent(r.node_id), r.attempt, r.status, when(r.started_at), when(r.ended_at),
                          r.error or "") for r in rows],
                        columns=["node", "agent", "attempt", "status", "started", "ended", "error"])


INCIDENT_COLUMNS = ["id", "node_id", "error", "created_at", "resolved_at"]


def incident_table(incidents: list[dict[str, Any]]) -> pd.DataFrame:
    """Incidents as a visitor sees them: where, the readable error, when. The Python traceback stays in the
    database (``wf_incidents.traceback``, for operators with database access): a page never shows server
    paths or code."""
    return pd.DataFrame([{c: when(i.get(c)) if c.endswith("_at") else i.get(c) for c in INCIDENT_COLUMNS}
                         for i in incidents], columns=INCIDENT_COLUMNS)


def timers(engine: Engine, instance_id: str) -> pd.DataFrame:
    """The instance's armed timers, soonest first (``Engine.waits``): node, purpose (catch, boundary, race,
    sla, retry), due."""
    waits = engine.waits(instance_id)
    waits = waits[waits["kind"] == "timer"]
    return pd.DataFrame({"node": waits["node_id"], "purpose": waits["purpose"],
                         "due": [aware(d) for d in waits["due_at"]]}).reset_index(drop=True)


def waiting_messages(engine: Engine, instance_id: str) -> list[dict[str, Any]]:
    """The messages the instance waits for (``Engine.waits``): ``message``, ``correlation``, ``node`` (behind an
    event-based gateway, the catch event it races)."""
    waits = engine.waits(instance_id)
    waits = waits[waits["kind"] == "message"]
    return [{"message": r.message, "correlation": r.correlation, "node": r.node_id} for r in waits.itertuples()]


def open_work(engine: Engine, instance_id: str) -> list[dict[str, Any]]:
    """The work the instance waits on besides timers and messages: its open human tasks (``kind`` "task",
    with ``who``: the assignee or candidate groups, ``due``) and its agent calls and messages to send that
    are queued or running (``Engine.waits``: ``kind`` "work" or "send", ``who``: the worker holding it)."""
    rows: list[dict[str, Any]] = []
    for task in engine.tasks(instance_id=instance_id):
        groups = task.get("candidate_groups") or []
        who = task.get("assignee") or (", ".join(map(str, groups)) if groups
                                       else "nobody (no assignee and no candidate groups: it is in no inbox)")
        rows.append({"kind": "task", "node": task["node_id"], "title": task.get("title") or "",
                     "who": who, "due": aware(task["due_at"]) if task.get("due_at") else None})
    waits = engine.waits(instance_id)
    for r in waits[waits["kind"].isin(["work", "send"])].itertuples():
        rows.append({"kind": r.kind, "node": r.node_id, "title": r.message or "",
                     "who": r.locked_by if isinstance(r.locked_by, str) else None, "due": None})
    return rows


def parse_payload(text: str) -> dict[str, Any]:
    """A message payload typed as JSON (an object); ValueError says what is wrong."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ValueError(f"payload must be a JSON object ({{\"field\": value}}), got {type(value).__name__}")
    return value


def parse_correlation(text: str) -> Any:
    """A correlation key as typed: JSON when it parses (42, "abc"), else the text itself; None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# --- what the engine's instances did (for predicted vs observed) -------------------------------------------

def observed_runs(engine: Engine, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Completed instances of ``name`` (every version): ``id``, ``cycle_time_h``, ``end_node`` (the end event its
    last token reached, from the activity history; None when it cannot be told); and their completed human
    tasks: ``node_id``, ``within_sla``."""
    from engine.runtime.tables import ActivityRow

    A = ActivityRow.__table__
    with engine.reader.connect() as conn:
        runs = conn.execute(select(INST.c.id, INST.c.started_at, INST.c.ended_at)
                            .where(INST.c.definition_name == name, INST.c.status == "completed")).all()
        ids = [r.id for r in runs]
        ends: dict[str, str] = {}
        tasks: list[tuple[str, bool]] = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for r in conn.execute(select(A.c.instance_id, A.c.node_id)
                                  .where(A.c.instance_id.in_(part), A.c.kind.in_(("end", "terminate_end")),
                                         A.c.started_at.is_not(None)).order_by(A.c.id)):
                ends[r.instance_id] = r.node_id
            for r in conn.execute(select(HT.c.node_id, HT.c.within_sla)
                                  .where(HT.c.instance_id.in_(part), HT.c.status == "completed")):
                tasks.append((r.node_id, bool(r.within_sla)))
    rows = [{"id": r.id, "cycle_time_h": (aware(r.ended_at) - aware(r.started_at)).total_seconds() / 3600,
             "end_node": ends.get(r.id)} for r in runs]
    return (pd.DataFrame(rows, columns=["id", "cycle_time_h", "end_node"]),
            pd.DataFrame(tasks, columns=["node_id", "within_sla"]))


# --- messages ----------------------------------------------------------------------------------------------

MESSAGE_KINDS = ("message_throw", "message_catch", "message_start", "boundary_message")


def engine_messages(engine: Engine, limit: int = 200) -> pd.DataFrame:
    """The BPMN messages of the engine's instances, newest first, at most ``limit`` of each source: thrown and
    caught by message events (the activity history; the message name from the node) and sent through
    ``Engine.correlate`` (the audit trail: who, whether it was delivered). Columns: ``at`` (text), ``message``,
    ``event`` (thrown | caught | started | sent), ``by``, ``instance`` (8 characters), ``node``, ``outcome``."""
    from engine.security.audit import audit_trail

    with engine.reader.connect() as conn:
        passed = conn.execute(select(A.c.instance_id, A.c.node_id, A.c.kind, A.c.started_at, INST.c.definition_name,
                                     INST.c.definition_version)
                              .join(INST, INST.c.id == A.c.instance_id)
                              .where(A.c.kind.in_(MESSAGE_KINDS), A.c.started_at.is_not(None))
                              .order_by(A.c.id.desc()).limit(limit)).all()
    definitions: dict[tuple[str, int], ProcessDefinition] = {}
    event = {"message_throw": "thrown", "message_catch": "caught", "message_start": "started",
             "boundary_message": "caught"}
    rows = []
    for r in passed:
        key = (r.definition_name, int(r.definition_version))
        if key not in definitions:
            definitions[key] = engine.definition(*key)
        try:
            message = getattr(definitions[key].node(r.node_id), "message", "") or ""
        except KeyError:
            message = ""
        rows.append((aware(r.started_at), message, event[r.kind], r.definition_name, short_id(r.instance_id),
                     node_name(definitions[key], r.node_id), "completed"))
    sent = audit_trail(engine.db, action="correlate", limit=limit)
    for r in sent.itertuples():
        detail = r.detail or {}
        rows.append((aware(r.at), r.target, "sent", r.principal, "", "",
                     r.outcome if not detail.get("error") else f"{r.outcome}: {detail['error']}"))
    rows.sort(key=lambda row: row[0], reverse=True)
    return pd.DataFrame([(when(at), *rest) for at, *rest in rows],
                        columns=["at", "message", "event", "by", "instance", "node", "outcome"])



def resolve_instance_id(engine: Engine, typed: str) -> str:
    """The full id of the instance ``typed`` names: the id itself, its start, or its end as the app's tables show
    it (``short_id``; at least 6 characters, one instance only). Raises ``EngineError`` naming the problem otherwise."""
    typed = typed.strip()
    with engine.reader.connect() as conn:
        if conn.execute(select(INST.c.id).where(INST.c.id == typed)).first() is not None or len(typed) < 6:
            return typed
        escaped = typed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = [r[0] for r in conn.execute(select(INST.c.id).where(INST.c.id.like(escaped + "%", escape="\\"))
                                            .limit(3))]
        if not found:  # the end of the id, as the app's tables show it (engine.runtime.ids.short_id)
            found = [r[0] for r in conn.execute(select(INST.c.id).where(INST.c.id.like("%" + escaped, escape="\\"))
                                                .limit(3))]
    if len(found) == 1:
        return str(found[0])
    if found:
        raise EngineError(f"several instances start with {typed!r}: paste more of the id")
    return typed  # engine.instance() says there is no such instance
