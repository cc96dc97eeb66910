"""The event log of live instances, read from the engine's history tables: the same columns and names as
the simulator's, so a simulated and a real log compare in one process-mining tool.

Sources: agent calls from ``wf_task_executions`` (one row per attempt: start, then complete or ate_abort),
user tasks from ``wf_human_tasks`` with their audit trail (schedule when created, start when first
claimed, else when completed, then complete / withdraw / ate_abort when cancelled), and timer and message
events that fired from the activity history (``wf_activities``, one ``complete`` event each, as in the
simulator's log).
A compensation handler's call is recognised as a call for an activity that already completed once in that
instance with a compensation handler declared; it is labelled ``Undo: <name>`` and its resource is
``agent:<compensation handler>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select

from engine.eventlog.log import ACTIVITY_COLUMNS, activity_label, agent_resource, instance_numbers, transitions

if TYPE_CHECKING:
    from engine.runtime import Engine


def activity_log(engine: Engine, instance_ids: Iterable[str] | None = None,
                 definition: str | None = None) -> pd.DataFrame:
    """One row per activation of the chosen instances (all by default; or those of ``definition``)."""
    from engine.runtime.tables import HumanTaskRow, InstanceRow, TaskAuditRow, TaskExecutionRow

    inst, x, ht, ta = (InstanceRow.__table__, TaskExecutionRow.__table__, HumanTaskRow.__table__,
                       TaskAuditRow.__table__)
    query = select(inst.c.id, inst.c.definition_name, inst.c.definition_version)
    if definition is not None:
        query = query.where(inst.c.definition_name == definition)
    wanted = set(instance_ids) if instance_ids is not None else None
    with engine.reader.connect() as conn:
        instances = {r.id: (r.definition_name, r.definition_version) for r in conn.execute(query)
                     if wanted is None or r.id in wanted}
        ids = list(instances)
        executions = conn.execute(select(x).where(x.c.instance_id.in_(ids)).order_by(x.c.id)).mappings().all() \
            if ids else []
        tasks = conn.execute(select(ht).where(ht.c.instance_id.in_(ids)).order_by(ht.c.id)).mappings().all() \
            if ids else []
        claims = {}
        if tasks:
            for r in conn.execute(select(ta.c.task_id, ta.c.actor, ta.c.at).where(
                    ta.c.instance_id.in_(ids), ta.c.action == "claimed").order_by(ta.c.id)):
                claims.setdefault(r.task_id, (r.actor, r.at))
    nodes: dict[tuple[str, int], dict[str, Any]] = {}

    def node_of(instance_id: str, node_id: str) -> Any:
        key = instances[instance_id]
        if key not in nodes:
            nodes[key] = engine.definition(*key).index.nodes
        return nodes[key].get(node_id)

    rows: list[dict[str, Any]] = []
    done: set[tuple[str, str]] = set()  # (instance, node) with a completed call: a later call is compensation
    for r in executions:
        node = node_of(r["instance_id"], r["node_id"])
        undo = (r["instance_id"], r["node_id"]) in done and getattr(node, "compensation", None)
        kind = "compensation" if undo else getattr(node, "kind", "service_task")
        who = agent_resource(getattr(node, "compensation" if undo else "agent", None))
        if r["status"] == "completed" and not undo:
            done.add((r["instance_id"], r["node_id"]))
        rows.append({"case": r["instance_id"], "node": r["node_id"], "name": activity_label(node or r["node_id"], kind),
                     "kind": kind, "resource": who, "group": who, "enabled": r["started_at"],
                     "start": r["started_at"], "end": r["ended_at"], "attempt": r["attempt"],
                     "outcome": r["status"] if r["status"] != "dropped" else "cancelled", "breached": False})
    for t in tasks:
        node = node_of(t["instance_id"], t["node_id"])
        claimed = claims.get(t["id"])
        start = claimed[1] if claimed else (t["completed_at"] if t["status"] == "completed" else None)
        who = t["completed_by"] or (claimed[0] if claimed else None) or t["assignee"]
        outcome = {"completed": "completed", "cancelled": "cancelled"}.get(t["status"], "open")
        if t["status"] == "completed" and t["completed_by"] is None and t["outcome"] == "sla_completed":
            outcome = "sla_completed"
        groups = json.loads(t["candidate_groups"]) if t["candidate_groups"] else []
        rows.append({"case": t["instance_id"], "node": t["node_id"], "name": activity_label(node or t["node_id"]),
                     "kind": "user_task", "resource": who if start is not None else None,
                     "group": t["assignee"] if not groups else groups[0], "enabled": t["created_at"], "start": start,
                     "end": t["completed_at"], "attempt": 1, "outcome": outcome,
                     "breached": t["within_sla"] is False})
    rows += _waits(engine, ids, node_of)
    return _frame(rows)


WAIT_KINDS = {"timer_catch": "timer", "boundary_timer": "timer", "message_catch": "message",
              "boundary_message": "message"}


def _waits(engine: Engine, ids: list[str], node_of: Any) -> list[dict[str, Any]]:
    """Timer and message events that fired, from the activity history (``Engine.activities``): one event each,
    armed at ``started_at`` and fired at ``ended_at``, like the simulator's waits."""
    rows: list[dict[str, Any]] = []
    for instance_id in ids:
        passed = engine.activities(instance_id)
        fired = passed[passed["kind"].isin(list(WAIT_KINDS)) & (passed["outcome"] == "completed")]
        for a in fired.itertuples(index=False):
            node = node_of(instance_id, a.node_id)
            rows.append({"case": instance_id, "node": a.node_id, "name": activity_label(node or a.node_id),
                         "kind": WAIT_KINDS[a.kind], "resource": None, "group": None, "enabled": a.started_at,
                         "start": a.started_at, "end": a.ended_at, "attempt": 1, "outcome": "completed",
                         "breached": False})
    return rows


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
              definition: str | None = None) -> pd.DataFrame:
    """One row per lifecycle transition of the chosen live instances (``engine.eventlog.transitions``)."""
    return transitions(activity_log(engine, instance_ids, definition))
