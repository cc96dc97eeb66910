"""Replay: run what finished instances of one version recorded through another version, without side
effects, and report which would take a different path (Temporal's replayer, for BPMN versions).

A :class:`Recording` is what the engine stored about one instance, as plain JSON-able data: the start
variables and start event, and the answers the world gave, each at its moment — an agent's outputs (or
its failure) per service task activation, a person's form values per user task, a message's payload
per catch event. It comes from the engine's own tables (``wf_variable_history``, ``wf_task_executions``,
``wf_human_tasks``), so any finished instance can be recorded; ``record`` builds one, ``to_dict``
saves it as a test fixture.

:func:`replay` drives the pure semantics core (``engine.semantics``) with a recording and a definition:
a small discrete-event loop in the recording's own time. Work gets the next recorded answer of its
node at the answer's moment (or at once, if the replayed run gets there later); timers fire at their
due time; a subscription gets the next recorded message of its node. Nothing is called, nothing is
written. The result is the path (the nodes entered, in order) and how the run ended; where the
definition asks for an answer the recording does not have, the run stops there (``stuck``).

:func:`replay_versions` replays each finished instance of version N through N (the baseline: the
path the recording reproduces) and through M, and reports, per instance, ``same`` or ``diverged`` with
the first node where the paths part. Limits, stated: an output that did not change a variable leaves
no trace in the variable history, so it is not replayed; an agent failure replays as a technical
failure (the task's retry policy applies), since the tables do not say whether it was a BPMN error.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.errors import EngineError
from engine.model.definition import ProcessDefinition
from engine.runtime.clock import aware
from engine.runtime.tables import HumanTaskRow, InstanceRow, TaskExecutionRow, VariableHistoryRow
from engine.semantics import Semantics
from engine.semantics import effects as fx
from engine.semantics import events as ev

if TYPE_CHECKING:
    import pandas as pd

    from engine.runtime.engine import Engine

INST, H, X, HT = (InstanceRow.__table__, VariableHistoryRow.__table__, TaskExecutionRow.__table__,
                  HumanTaskRow.__table__)
FINISHED = ("completed", "terminated", "failed", "cancelled")


@dataclass
class Answer:
    """One answer the world gave: ``kind`` is ``done`` (outputs), ``failed`` (error) or ``message`` (payload)."""

    node: str
    kind: str
    at: str  # ISO 8601, so a recording is plain JSON
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Recording:
    """What one instance recorded: enough to run it again through any version."""

    instance_id: str
    definition: str
    version: int
    business_key: str | None
    started_at: str
    start_node: str | None
    variables: dict[str, Any]
    answers: list[Answer]
    status: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recording:
        return cls(**{**data, "answers": [Answer(**a) for a in data["answers"]]})


@dataclass
class ReplayRun:
    """A replayed run: the nodes entered in order, how it ended (``status`` as an instance's, or
    ``running`` when it stopped waiting), and ``stuck``: why it stopped early, if it did."""

    path: list[str]
    status: str
    stuck: str | None = None


def _changes_by_node(rows: list[Any]) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
    """Variable changes grouped into activations: per node, the changes written at one moment."""
    out: dict[str, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    for r in rows:
        node = r.node_id
        if node is None:
            continue
        at = aware(r.at)
        value = json.loads(r.new_value) if r.new_value is not None else None
        if out[node] and out[node][-1][0] == at:
            out[node][-1][1][r.name] = value
        else:
            out[node].append((at, {r.name: value}))
    return out


def record(engine: Engine, instance_id: str) -> Recording:
    """The recording of one instance (finished or not) from the engine's tables."""
    with engine.reader.connect() as conn:
        row = conn.execute(select(INST).where(INST.c.id == instance_id)).first()
        if row is None:
            raise EngineError(f"no instance {instance_id!r}")
        history = conn.execute(select(H.c.name, H.c.new_value, H.c.node_id, H.c.at)
                               .where(H.c.instance_id == instance_id).order_by(H.c.id)).all()
        executions = conn.execute(select(X.c.node_id, X.c.status, X.c.error, X.c.ended_at)
                                  .where(X.c.instance_id == instance_id).order_by(X.c.id)).all()
        tasks = conn.execute(select(HT.c.node_id, HT.c.status, HT.c.outcome, HT.c.completed_at)
                             .where(HT.c.instance_id == instance_id, HT.c.status == "completed")
                             .order_by(HT.c.completed_at, HT.c.id)).all()
    definition = engine.definition(row.definition_name, row.definition_version)
    started = aware(row.started_at)
    changes = _changes_by_node(history)
    start_ids = {n.id for n in definition.nodes if n.kind in ("start", "timer_start", "message_start")}
    start_node = next((r.node_id for r in history if r.node_id in start_ids), None)
    variables = dict(changes.pop(start_node)[0][1]) if start_node in changes and changes[start_node] and \
        changes[start_node][0][0] == started else {}
    answers: list[Answer] = []
    by_node: dict[str, list[Any]] = defaultdict(list)
    for e in executions:
        by_node[e.node_id].append(e)
    for node, runs in by_node.items():
        outputs = deque(changes.pop(node, []))
        for k, run in enumerate(runs):
            at = aware(run.ended_at)
            if run.status != "completed":
                answers.append(Answer(node, "failed", at.isoformat(), error=run.error or run.status))
                continue
            # the step that applied the outputs ran at or after the agent ended, before the next activation
            until = aware(runs[k + 1].ended_at) if k + 1 < len(runs) else None
            values: dict[str, Any] = {}
            while outputs and (until is None or outputs[0][0] < until):
                values.update(outputs.popleft()[1])
            answers.append(Answer(node, "done", at.isoformat(), values))
    for t in tasks:
        values = json.loads(t.outcome) if t.outcome else {}
        changes.pop(t.node_id, None)
        answers.append(Answer(t.node_id, "done", aware(t.completed_at).isoformat(), values))
    kinds = {n.id: n.kind for n in definition.all_nodes()}
    for node, activations in changes.items():  # what is left: message payloads at catch events
        if kinds.get(node) in ("message_catch", "boundary_message", "receive_task"):
            answers.extend(Answer(node, "message", at.isoformat(), values) for at, values in activations)
    answers.sort(key=lambda a: a.at)
    return Recording(row.id, row.definition_name, row.definition_version, row.business_key, started.isoformat(),
                     start_node, variables, answers, row.status)


def replay(definition: ProcessDefinition, recording: Recording, calendars: Any = None,
           max_events: int = 100_000) -> ReplayRun:
    """Run ``recording`` through ``definition`` in the pure core (see the module docstring)."""
    sem = Semantics(definition, calendars=calendars)
    work: dict[str, deque[Answer]] = defaultdict(deque)
    messages: dict[str, deque[Answer]] = defaultdict(deque)
    for a in recording.answers:
        (messages if a.kind == "message" else work)[a.node].append(a)
    now = datetime.fromisoformat(recording.started_at)
    queue: list[tuple[datetime, int, ev.Event]] = []
    order = itertools.count()
    cancelled: set[str] = set()  # timer and subscription ids no longer wanted
    path: list[str] = []
    start_ids = {n.id for n in definition.nodes if n.kind in ("start", "timer_start", "message_start")}
    start_node = recording.start_node if recording.start_node in start_ids else None
    try:
        state, effects = sem.start(recording.variables, now, start_node=start_node)
    except Exception as exc:  # the new version cannot even start it
        return ReplayRun(path, "running", f"cannot start: {exc}")

    def later(moment: datetime, event: ev.Event) -> None:
        heapq.heappush(queue, (max(moment, now), next(order), event))

    stuck: str | None = None
    for _ in range(max_events):
        follow: list[ev.Event] = []
        for effect in effects:
            if isinstance(effect, fx.Entered):
                path.append(effect.node_id)
            elif isinstance(effect, fx.StartWork):
                if effect.kind in ("task", "compensation"):
                    follow.append(ev.WorkDone(effect.token_id, {}))
                elif work[effect.node_id]:
                    answer = work[effect.node_id].popleft()
                    at = datetime.fromisoformat(answer.at)
                    later(at, ev.WorkDone(effect.token_id, dict(answer.values)) if answer.kind == "done"
                          else ev.WorkFailed(effect.token_id, answer.error or "failed"))
                else:
                    stuck = stuck or f"no recorded answer for {effect.node_id!r}"
            elif isinstance(effect, fx.ScheduleTimer):
                later(effect.due, ev.TimerFired(effect.timer_id, effect.due))
            elif isinstance(effect, fx.CancelTimer):
                cancelled.add(effect.timer_id)
            elif isinstance(effect, fx.Subscribe) and messages[effect.node_id]:
                answer = messages[effect.node_id].popleft()
                later(datetime.fromisoformat(answer.at), ev.MessageReceived(effect.subscription_id,
                                                                             dict(answer.values)))
            elif isinstance(effect, fx.Unsubscribe):
                cancelled.add(effect.subscription_id)
        effects = []
        for event in follow:
            effects.extend(sem.step(state, event, now))
        if effects:
            continue
        if state.finished or not queue:
            break
        now, _, event = heapq.heappop(queue)
        if isinstance(event, ev.TimerFired) and event.timer_id in cancelled:
            continue
        if isinstance(event, ev.MessageReceived) and event.subscription_id in cancelled:
            continue
        effects = sem.step(state, event, now)
    return ReplayRun(path, state.status, None if state.finished else stuck or "waits for something not recorded")


def replay_versions(engine: Engine, name: str, source: int, target: int, limit: int | None = None,
                    instance_ids: list[str] | None = None) -> pd.DataFrame:
    """Per finished instance of ``name`` v``source``: ``instance_id, business_key, result (same | diverged |
    unreplayable), diverges_at, recorded_path, new_path, recorded_end, new_end, note``.

    ``unreplayable``: replaying the recording through its own version does not reproduce how it ended (a
    recording from before a table existed, an answer that left no trace); such instances prove nothing."""
    import pandas as pd

    old, new = engine.definition(name, source), engine.definition(name, target)
    query = (select(INST.c.id).where(INST.c.definition_name == name, INST.c.definition_version == source,
                                     INST.c.status.in_(FINISHED)).order_by(INST.c.started_at, INST.c.id))
    if instance_ids is not None:
        query = query.where(INST.c.id.in_(instance_ids))
    if limit:
        query = query.limit(limit)
    with engine.reader.connect() as conn:
        ids = [r.id for r in conn.execute(query)]
    rows = []
    for instance_id in ids:
        rec = record(engine, instance_id)
        base = replay(old, rec, engine.calendars)
        after = replay(new, rec, engine.calendars)
        row: dict[str, Any] = {"instance_id": instance_id, "business_key": rec.business_key,
                               "recorded_path": base.path, "new_path": after.path, "recorded_end": base.status,
                               "new_end": after.status, "diverges_at": None, "note": after.stuck}
        if base.status != rec.status:
            row.update(result="unreplayable", note=f"its own version replays to {base.status!r}, recorded "
                                                    f"{rec.status!r}" + (f" ({base.stuck})" if base.stuck else ""))
        elif base.path == after.path and base.status == after.status:
            row["result"] = "same"
        else:
            row["result"] = "diverged"
            at = next((i for i, (a, b) in enumerate(zip(base.path, after.path, strict=False)) if a != b),
                      min(len(base.path), len(after.path)))
            row["diverges_at"] = (base.path[at] if at < len(base.path) else f"after {base.path[-1]!r}") \
                if base.path else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["instance_id", "business_key", "result", "diverges_at", "recorded_path",
                                       "new_path", "recorded_end", "new_end", "note"])
