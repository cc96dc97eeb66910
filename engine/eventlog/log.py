"""The activity log (one row per activation) and the event log built from it (one row per lifecycle transition).

Lifecycle transitions follow the XES standard lifecycle extension (IEEE 1849-2016, ``lifecycle:model
"standard"``): ``schedule`` (a user task is offered), ``start``, ``complete``, ``ate_abort`` (the activity
instance ended without completing: a failed attempt, a business error, or cancelled after it started) and
``withdraw`` (cancelled before it started). Work still open at the end of a log has no end transition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ACTIVITY_COLUMNS = [
    "case:concept:name", "concept:name", "concept:instance", "activity_id", "kind", "org:resource", "org:group",
    "enabled_timestamp", "start_timestamp", "time:timestamp", "lifecycle:transition", "outcome", "attempt",
    "sla_breached", "waiting_s", "working_s",
]
EVENT_COLUMNS = [
    "case:concept:name", "concept:name", "lifecycle:transition", "time:timestamp", "org:resource", "org:group",
    "concept:instance", "activity_id", "kind", "attempt", "outcome",
]
# ended normally (an SLA may complete a user task for the person; a compensated activity completed, then was undone)
COMPLETED = ("completed", "sla_completed", "compensated")
UNFINISHED = ("open", "queued", None)  # still running or waiting when the log ends: no end transition
_ORDER = {"schedule": 0, "start": 1, "complete": 2, "ate_abort": 2, "withdraw": 2}


def activity_label(node: Any, kind: str | None = None) -> str:
    """The ``concept:name`` of a node's activation: its BPMN name (else id); ``"Undo: <name>"`` for compensation."""
    name = getattr(node, "name", None) or getattr(node, "id", None) or str(node)
    return f"Undo: {name}" if kind == "compensation" else name


def agent_resource(handler: object) -> str | None:
    """``agent:<handler>``: how an agent appears as ``org:resource`` in every log (None without a handler)."""
    if not isinstance(handler, str) or not handler:
        return None
    return handler if handler.startswith("agent:") else f"agent:{handler}"


def instance_numbers(case: pd.Series, node: pd.Series) -> pd.Series:
    """``<node>#<n>``: the n-th activation of the node within its case, in the frame's order."""
    n = pd.DataFrame({"c": case.to_numpy(), "n": node.to_numpy()}).groupby(["c", "n"], sort=False).cumcount() + 1
    return node.astype(str).reset_index(drop=True) + "#" + n.astype(str)


def transitions(activities: pd.DataFrame) -> pd.DataFrame:
    """One row per lifecycle transition from an activity log (``ACTIVITY_COLUMNS``), sorted by time.

    Per activation: ``schedule`` at ``enabled_timestamp`` for user tasks; ``start`` at ``start_timestamp``
    when it started; then ``complete`` (outcome completed or sla_completed), ``ate_abort`` (failed, error,
    or cancelled after its start) or ``withdraw`` (cancelled before its start) at ``time:timestamp``.
    Timer and message waits are events, not activities: one ``complete`` row when they fire.
    Ties keep schedule < start < end of one activation and the log's case order.
    """
    a = activities.reset_index(drop=True)
    if a.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    kind = a["kind"].astype(object)
    outcome = a["outcome"].astype(object)
    started = a["start_timestamp"].notna()
    is_wait = kind.isin(["timer", "message"]).to_numpy()
    parts = []

    def part(mask: np.ndarray, transition: str | np.ndarray, column: str) -> None:
        if mask.any():
            rows = a.loc[mask, ["case:concept:name", "concept:name", "org:resource", "org:group", "concept:instance",
                                "activity_id", "kind", "attempt", "outcome"]].copy()
            rows["lifecycle:transition"] = transition if isinstance(transition, str) else transition[mask]
            rows["time:timestamp"] = a.loc[mask, column]
            rows["_row"] = np.flatnonzero(mask)
            parts.append(rows)

    activity = ~is_wait
    part(activity & (kind == "user_task").to_numpy() & a["enabled_timestamp"].notna().to_numpy(), "schedule",
         "enabled_timestamp")
    part(activity & started.to_numpy(), "start", "start_timestamp")
    ended = a["time:timestamp"].notna().to_numpy() & ~outcome.isin(UNFINISHED).to_numpy()
    end_name = np.where(outcome.isin(COMPLETED).to_numpy() | is_wait, "complete",
                        np.where(started.to_numpy(), "ate_abort", "withdraw"))
    part(ended, end_name.astype(object), "time:timestamp")
    log = pd.concat(parts, ignore_index=True)
    # People are known from the start on; a withdrawn offer had nobody (its row keeps the group only).
    log.loc[log["lifecycle:transition"].isin(["schedule", "withdraw"]) & (log["kind"] == "user_task"),
            "org:resource"] = None
    log["_order"] = log["lifecycle:transition"].map(_ORDER)
    log = log.sort_values(["time:timestamp", "_row", "_order"], kind="stable").reset_index(drop=True)
    return log[EVENT_COLUMNS]
