"""The event log of live instances, built from the activity history (``wf_activities``, what
``Engine.activities`` shows): the same columns and names as the simulator's, so a simulated and a real log
compare in one process-mining tool.

Every activation in the log is a passage of the history, with the history's outcome; the rows it came
with give what the history does not hold:

- service tasks and compensation handlers that call an agent: one row per attempt from ``wf_task_executions``
  (start, then complete or ate_abort), within the passage's time;
- user tasks (and user-task compensation handlers): ``wf_human_tasks`` with their audit trail (schedule when
  created, start when first claimed, else when completed, then complete / withdraw / ate_abort);
- timer and message events that fired: one ``complete`` event each, as in the simulator's log;
- a compensation handler's run (history kind ``compensation``) is labelled ``Undo: <name of the activity it
  undoes>``, its resource ``agent:<handler>`` when code undoes it; a plain handler task is a start and a
  complete at the moment it ran. The activity it undid keeps its own transitions with outcome
  ``compensated`` (its ``complete`` stays: XES's standard lifecycle has no undo transition; the undoing is
  the ``Undo:`` activity's).

A passage cancelled before any attempt or task started is one ``withdraw`` event.

With ``variables=True`` each case also carries its instance's current variables as ``case:<name>`` columns
(XES trace attributes), the values as the engine's principal may see them: a sensitive variable is masked
unless the principal is an operator or admin (``engine.security.sensitive``), the rule ``instance()`` and the
variable history follow. Without it the log holds no variable values at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from engine.eventlog.log import ACTIVITY_COLUMNS, activity_label, agent_resource, instance_numbers, transitions
from engine.runtime.clock import aware
from engine.runtime.history import passages

if TYPE_CHECKING:
    from engine.runtime import Engine

WAIT_KINDS = {"timer_catch": "timer", "boundary_timer": "timer", "message_catch": "message",
              "boundary_message": "message"}
WORK_KINDS = ("service_task", "user_task", "compensation")


def activity_log(engine: Engine, instance_ids: Iterable[str] | None = None,
                 definition: str | None = None) -> pd.DataFrame:
    """One row per activation of the chosen instances (all by default; or those of ``definition``)."""
    from engine.runtime.tables import ActivityRow, HumanTaskRow, InstanceRow, TaskAuditRow, TaskExecutionRow

    inst, x, ht, ta, act = (InstanceRow.__table__, TaskExecutionRow.__table__, HumanTaskRow.__table__,
                            TaskAuditRow.__table__, ActivityRow.__table__)
    query = select(inst.c.id, inst.c.definition_name, inst.c.definition_version)
    if definition is not None:
        query = query.where(inst.c.definition_name == definition)
    wanted = set(instance_ids) if instance_ids is not None else None
    stored: dict[str, list[Any]] = {}
    executions: dict[tuple[str, str], list[Any]] = {}  # (instance, node) -> attempts, oldest first
    tasks: dict[tuple[str, str], list[Any]] = {}  # (instance, node) -> human tasks, oldest first
    claims: dict[int, tuple[str, datetime]] = {}
    with engine.reader.connect() as conn:
        instances = {r.id: (r.definition_name, r.definition_version) for r in conn.execute(query)
                     if wanted is None or r.id in wanted}
        ids = list(instances)
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for r in conn.execute(select(act.c.instance_id, act.c.node_id, act.c.kind, act.c.scope, act.c.token_id,
                                         act.c.started_at, act.c.ended_at, act.c.outcome)
                                  .where(act.c.instance_id.in_(part)).order_by(act.c.id)).mappings():
                stored.setdefault(r["instance_id"], []).append(r)
            for r in conn.execute(select(x).where(x.c.instance_id.in_(part)).order_by(x.c.id)).mappings():
                executions.setdefault((r["instance_id"], r["node_id"]), []).append(r)
            for r in conn.execute(select(ht).where(ht.c.instance_id.in_(part)).order_by(ht.c.id)).mappings():
                tasks.setdefault((r["instance_id"], r["node_id"]), []).append(r)
            for r in conn.execute(select(ta.c.task_id, ta.c.actor, ta.c.at).where(
                    ta.c.instance_id.in_(part), ta.c.action == "claimed").order_by(ta.c.id)):
                claims.setdefault(r.task_id, (r.actor, r.at))
    nodes: dict[tuple[str, int], dict[str, Any]] = {}
    undoes: dict[tuple[str, int], dict[str, Any]] = {}  # handler activity id -> the activity it undoes

    def index(instance_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        key = instances[instance_id]
        if key not in nodes:
            nodes[key] = engine.definition(*key).index.nodes
            undoes[key] = {n.compensation: n for n in nodes[key].values() if isinstance(
                getattr(n, "compensation", None), str)}
        return nodes[key], undoes[key]

    rows: list[dict[str, Any]] = []
    for instance_id in ids:
        by_id, undone_by = index(instance_id)
        passed = passages(stored.get(instance_id, []))
        runs = {p["token_id"] for p in passed if p["kind"] == "compensation"}  # handler runs' work ids
        taken: set[tuple[str, int]] = set()  # work rows already in a passage: each appears once
        for p in passed:
            kind = p["kind"]
            if kind in WAIT_KINDS:
                if p["outcome"] == "completed":
                    node = by_id.get(p["node_id"])
                    rows.append(_row(instance_id, p["node_id"], activity_label(node or p["node_id"]),
                                     WAIT_KINDS[kind], None, None, p["started_at"], p["started_at"], p["ended_at"],
                                     "completed"))
                continue
            if kind not in WORK_KINDS:
                continue
            node = by_id.get(p["node_id"])
            if kind == "compensation":  # the run of a handler activity, or of the activity's handler reference
                handler = node if getattr(node, "for_compensation", False) else None
                undone = undone_by.get(p["node_id"]) if handler is not None else node
                label = activity_label(undone or p["node_id"], "compensation")
                is_user = getattr(handler, "kind", None) == "user_task"
                agent = getattr(handler, "agent", None) if handler is not None else getattr(
                    undone, "compensation", None)
            else:
                label, is_user, agent = activity_label(node or p["node_id"]), kind == "user_task", getattr(
                    node, "agent", None)
            # the passage's work: a handler run's by its work id; an activity's by time, not a handler run's
            run = p["token_id"] if kind == "compensation" else None
            window = (aware(p["started_at"]), aware(p["ended_at"]) if p["ended_at"] is not None else None)
            if is_user:
                found = _work_of(p, tasks.get((instance_id, p["node_id"]), []), "task", window, run, runs, taken)
                rows += [_task_row(instance_id, p["node_id"], label, kind, t, claims.get(t["id"]), p["outcome"])
                         for t in found]
            else:
                found = _work_of(p, executions.get((instance_id, p["node_id"]), []), "call", window, run, runs,
                                 taken)
                who = agent_resource(agent)
                for r in found:
                    outcome = r["status"] if r["status"] != "dropped" else "cancelled"
                    if outcome == "completed" and p["outcome"] == "compensated":
                        outcome = "compensated"
                    rows.append(_row(instance_id, p["node_id"], label, kind, who, who, r["started_at"],
                                     r["started_at"], r["ended_at"], outcome, r["attempt"]))
                if not found and kind == "compensation":  # a handler without work (a plain task): passed at once
                    rows.append(_row(instance_id, p["node_id"], label, kind, None, None, p["started_at"],
                                     p["started_at"], p["ended_at"], p["outcome"]))
            if not found and p["ended_at"] is not None and p["outcome"] not in ("completed", "compensated") \
                    and kind != "compensation":
                rows.append(_row(instance_id, p["node_id"], label, kind, None, None, p["started_at"], None,
                                 p["ended_at"], "cancelled"))  # withdrawn before any work started
    return _frame(rows)


def _work_of(passage: dict[str, Any], rows: list[Any], table: str, window: tuple[datetime, datetime | None],
             run: str | None, runs: set[str], taken: set[tuple[str, int]]) -> list[Any]:
    """The work rows of one passage: a handler run's by its work id (``run``); an activity's, the rows not yet
    in a passage that began within its time (a node passed twice has two passages), up to the one that
    completed it (the instances of a multi-instance activity share a node and a time); a human task also by
    its token. Never a handler run's."""
    if run is not None:
        return [r for r in rows if r["work_id"] == run]
    start, end = window
    column = "created_at" if table == "task" else "started_at"
    found = []
    for r in rows:
        if (table, r["id"]) in taken or r["work_id"] in runs or (table == "task" and r["token_id"] !=
                                                                   passage["token_id"]):
            continue
        at = aware(r[column])
        if at < start or (end is not None and at > end):
            continue
        found.append(r)
        taken.add((table, r["id"]))
        if r["status"] == "completed":
            break
    return found


def _row(case: str, node: str, name: str, kind: str, resource: str | None, group: str | None, enabled: Any,
         start: Any, end: Any, outcome: str | None, attempt: int = 1, breached: bool = False) -> dict[str, Any]:
    return {"case": case, "node": node, "name": name, "kind": kind, "resource": resource, "group": group,
            "enabled": enabled, "start": start, "end": end, "attempt": attempt, "outcome": outcome,
            "breached": breached}


def _task_row(case: str, node: str, name: str, kind: str, t: Any, claimed: tuple[str, datetime] | None,
              passage_outcome: str | None) -> dict[str, Any]:
    start = claimed[1] if claimed else (t["completed_at"] if t["status"] == "completed" else None)
    who = t["completed_by"] or (claimed[0] if claimed else None) or t["assignee"]
    outcome = {"completed": "completed", "cancelled": "cancelled"}.get(t["status"], "open")
    if t["status"] == "completed" and t["completed_by"] is None and t["outcome"] == "sla_completed":
        outcome = "sla_completed"
    if outcome == "completed" and passage_outcome == "compensated":
        outcome = "compensated"
    groups = json.loads(t["candidate_groups"]) if t["candidate_groups"] else []
    return _row(case, node, name, kind, who if start is not None else None,
                t["assignee"] if not groups else groups[0], t["created_at"], start, t["completed_at"], outcome,
                breached=t["within_sla"] is False)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=ACTIVITY_COLUMNS)
    f = pd.DataFrame(rows)
    for column in ("enabled", "start", "end"):
        f[column] = pd.to_datetime(f[column], utc=True)
    f = f.sort_values(["end", "enabled"], kind="stable", na_position="last").reset_index(drop=True)
    compensation = f["kind"] == "compensation"
    out = pd.DataFrame({
        "case:concept:name": f["case"].astype(str),
        "concept:name": f["name"],
        "concept:instance": instance_numbers(f["case"], f["node"].where(~compensation, "undo:" + f["node"])),
        "activity_id": f["node"],
        "kind": f["kind"],
        "org:resource": f["resource"].astype(object),
        "org:group": f["group"].astype(object),
        "enabled_timestamp": f["enabled"],
        "start_timestamp": f["start"],
        "time:timestamp": f["end"],
        "lifecycle:transition": "complete",
        "outcome": f["outcome"],
        "attempt": f["attempt"].astype("int64"),
        "sla_breached": f["breached"].astype(bool),
        "waiting_s": (f["start"] - f["enabled"]).dt.total_seconds(),
        "working_s": (f["end"] - f["start"]).dt.total_seconds(),
    })
    return out[ACTIVITY_COLUMNS]


def event_log(engine: Engine, instance_ids: Iterable[str] | None = None,
              definition: str | None = None, variables: bool = False) -> pd.DataFrame:
    """One row per lifecycle transition of the chosen live instances (``engine.eventlog.transitions``);
    ``variables``: add each case's variables as ``case:<name>`` columns (sensitive ones masked, see above)."""
    log = transitions(activity_log(engine, instance_ids, definition))
    return with_variables(engine, log) if variables else log


def with_variables(engine: Engine, log: pd.DataFrame) -> pd.DataFrame:
    """``log`` (a column ``case:concept:name`` holding instance ids) with a ``case:<name>`` column per variable
    of its instances, as ``engine.principal`` may see them (``mask_values``); a variable a case lacks is None."""
    from engine.model.values import loads
    from engine.runtime.tables import InstanceRow, VariableRow
    from engine.security.sensitive import mask_values

    inst, var = InstanceRow.__table__, VariableRow.__table__
    ids = list(dict.fromkeys(log["case:concept:name"].astype(str))) if not log.empty else []
    values: dict[str, dict[str, Any]] = {}
    with engine.reader.connect() as conn:
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            kinds = {r.id: (r.definition_name, r.definition_version)
                     for r in conn.execute(select(inst.c.id, inst.c.definition_name, inst.c.definition_version)
                                           .where(inst.c.id.in_(part)))}
            raw: dict[str, dict[str, Any]] = {i: {} for i in kinds}
            rows = conn.execute(select(var.c.instance_id, var.c.name, var.c.value).where(var.c.instance_id.in_(part)))
            for r in rows:
                raw[r.instance_id][r.name] = loads(r.value)
            for i, found in raw.items():
                values[i] = mask_values(engine.definition(*kinds[i]), found, engine.principal)
    names = sorted({n for v in values.values() for n in v})
    out = log.copy()
    cases = out["case:concept:name"].astype(str)
    for name in names:
        out[f"case:{name}"] = pd.Series([values.get(c, {}).get(name) for c in cases], index=out.index, dtype=object)
    return out
