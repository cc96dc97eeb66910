"""The Simulator page's logic (no Streamlit): a starting scenario for a new design, the scenario form's
reading and writing of distribution specs, and results in a manager's language (KPI cards with intervals,
what dominates the cycle time, SLA breach per user task, what-if).

Units: hours for times unless a name says otherwise; shares and rates as fractions 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from engine.model import ProcessDefinition
from engine.model.nodes import (
    EventBasedGateway,
    ExclusiveGateway,
    MessageBoundaryEvent,
    MessageCatchEvent,
    MessageStartEvent,
    StartEvent,
    TimerBoundaryEvent,
    TimerCatchEvent,
    TimerStartEvent,
    UserTask,
)
from simulator import Results

DISTRIBUTIONS = ["fixed", "exponential", "normal", "lognormal", "triangular", "uniform"]
PARAMETERS = {"fixed": "value", "exponential": "mean", "normal": "mean, sd", "lognormal": "mean, sd",
              "triangular": "low, mode, high", "uniform": "low, high"}


# --- a starting scenario ------------------------------------------------------------------------------------

def pools_of(definition: ProcessDefinition) -> dict[str, int]:
    """Who does the user tasks: each assignee (1 person), each candidate group (2), each escalation target."""
    pools: dict[str, int] = {}
    for node in definition.all_nodes():
        if isinstance(node, UserTask):
            if node.assignee:
                pools.setdefault(node.assignee, 1)
            for group in node.candidate_groups:
                pools.setdefault(group, 2)
            if node.on_timeout is not None and node.on_timeout.assignee:
                pools.setdefault(node.on_timeout.assignee, 1)
    return pools


def awaited_messages(definition: ProcessDefinition) -> list[str]:
    names = []
    for node in definition.all_nodes():
        if isinstance(node, MessageCatchEvent | MessageBoundaryEvent) and node.message not in names:
            names.append(node.message)
    return names


def starting_scenario(definition: ProcessDefinition) -> dict[str, Any]:
    """A first scenario for ``definition``: 2 cases an hour for a week (1 day warm-up, 5 replications),
    agents 5 min (exponential), people 30 min (lognormal, sd 15 min) from pools named after the assignees and
    groups, even branch probabilities at exclusive gateways, every awaited message after about an hour.
    A guess to edit, not a measurement: the page says so."""
    tasks: dict[str, Any] = {}
    for node in definition.all_nodes():
        if isinstance(node, UserTask):
            pool = node.assignee or (node.candidate_groups[0] if node.candidate_groups else None)
            tasks[node.id] = {"duration": {"lognormal": {"mean": "PT30M", "sd": "PT15M"}},
                              **({"pool": pool} if pool else {})}
        elif node.is_activity and node.kind != "sub_process":
            tasks[node.id] = {"duration": {"exponential": "PT5M"}}
    branches: dict[str, dict[str, float]] = {}
    for node in definition.all_nodes():
        out = definition.outgoing(node.id)
        if isinstance(node, ExclusiveGateway) and len(out) > 1:
            shares = [round(1 / len(out), 4)] * len(out)
            shares[-1] = round(1 - sum(shares[:-1]), 4)
            branches[node.id] = {f.id: s for f, s in zip(out, shares, strict=True)}
    arrivals: dict[str, Any] = {"poisson": {"rate": 2, "per": "hour"}}
    starts = [n for n in definition.nodes if isinstance(n, StartEvent | MessageStartEvent | TimerStartEvent)]
    if starts and not any(type(n) is StartEvent for n in starts):
        arrivals["start_node"] = starts[0].id
    longest = max((_timer_days(n) for n in definition.all_nodes()), default=0.0)
    data: dict[str, Any] = {
        "name": f"{definition.label}, a first guess", "design": definition.id, "horizon": "P7D", "warmup": "P1D",
        "drain": f"P{max(1, math.ceil(longest) + 1)}D", "replications": 5, "seed": 1, "arrivals": arrivals}
    if pools := pools_of(definition):
        data["pools"] = {name: {"size": size} for name, size in pools.items()}
    if tasks:
        data["tasks"] = tasks
    if branches:
        data["branches"] = branches
    if messages := awaited_messages(definition):
        data["messages"] = {m: {"after": {"exponential": "PT1H"}} for m in messages}
    return data


def _timer_days(node: Any) -> float:
    """A timer event's duration in days (0 for other nodes, dates and cycles)."""
    from engine.model.timers import parse_duration

    timer = getattr(node, "timer", None)
    if not isinstance(node, TimerCatchEvent | TimerBoundaryEvent) or timer is None or not timer.duration:
        return 0.0
    try:
        return parse_duration(timer.duration).total_seconds() / 86400
    except Exception:  # a duration the simulator rejects later, with its own message
        return 0.0


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# --- distribution specs in the form -------------------------------------------------------------------------

def spec_to_form(spec: Any) -> tuple[str, str] | None:
    """A duration spec as (distribution, parameters text), or None when the form cannot show it (edit YAML)."""
    if spec is None:
        return ("fixed", "PT0S")
    if isinstance(spec, str | int | float):
        return ("fixed", str(spec))
    if isinstance(spec, dict) and len(spec) == 1:
        kind, value = next(iter(spec.items()))
        if kind == "exponential" and isinstance(value, str | int | float):
            return (kind, str(value))
        if kind in ("normal", "lognormal") and isinstance(value, dict) and set(value) == {"mean", "sd"}:
            return (kind, f"{value['mean']}, {value['sd']}")
        if kind in ("triangular", "uniform") and isinstance(value, list):
            return (kind, ", ".join(str(v) for v in value))
    return None


def form_to_spec(kind: str, text: str) -> Any:
    """(distribution, parameters text) back to a spec; ValueError names what is missing."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    values: list[Any] = [float(p) if _is_number(p) else p for p in parts]
    need = {"fixed": 1, "exponential": 1, "normal": 2, "lognormal": 2, "triangular": 3, "uniform": 2}[kind]
    if len(values) != need:
        raise ValueError(f"{kind} needs {need} value(s) ({PARAMETERS[kind]}), got {len(values)}: {text!r}")
    if kind == "fixed":
        return values[0]
    if kind == "exponential":
        return {kind: values[0]}
    if kind in ("normal", "lognormal"):
        return {kind: {"mean": values[0], "sd": values[1]}}
    return {kind: values}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- results in a manager's language ------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """One KPI for ``st.metric``: ``label``, ``value`` (text), ``interval`` (the 95% interval, text)."""

    label: str
    value: str
    interval: str


def hours_text(hours: float) -> str:
    """Hours as a person reads them: "45 min", "3.2 h", "7.0 days"."""
    if math.isnan(hours):
        return "–"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _row(summary: pd.DataFrame, kpi: str, subject: str = "") -> pd.Series | None:
    rows = summary[(summary["kpi"] == kpi) & (summary["subject"] == subject)]
    return rows.iloc[0] if len(rows) else None


def _interval(row: pd.Series, fmt: Any, floor: float | None = 0.0, ceiling: float | None = None) -> str:
    low, high = row["ci_low"], row["ci_high"]
    if pd.isna(low):
        return "one replication: no interval"
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return f"95% interval {fmt(low)} – {fmt(high)}"


def kpi_cards(results: Results, definition: ProcessDefinition) -> list[Card]:
    """Cycle time (mean, p90), cases completed, throughput a day, SLA breach share, busiest pool or agent; each
    with its 95% interval, lower bounds clipped at 0 (none of these can be negative) and shares at 100 %."""
    s = results.summary()
    cards = []
    for kpi, label in (("cycle_time_mean_h", "Cycle time (mean)"), ("cycle_time_p90_h", "Cycle time (90% within)")):
        if (row := _row(s, kpi)) is not None:
            cards.append(Card(label, hours_text(row["mean"]), _interval(row, hours_text)))
    if (row := _row(s, "cases_completed")) is not None:
        cards.append(Card("Cases completed", f"{row['mean']:,.0f}", _interval(row, lambda v: f"{v:,.0f}")))
    if (row := _row(s, "throughput_per_day")) is not None:
        cards.append(Card("Throughput", f"{row['mean']:,.1f} a day", _interval(row, lambda v: f"{v:,.1f}")))
    breach = sla_breach(results, definition)
    if not breach.empty:
        worst = breach.iloc[0]
        cards.append(Card(f"SLA breached ({worst['task']})", f"{worst['breach']:.0%}",
                          f"95% interval {worst['low']:.0%} – {worst['high']:.0%}"))
    busy = s[s["kpi"].isin(["utilisation", "busy_mean"])]
    if not busy.empty:
        top = busy.sort_values("mean", ascending=False).iloc[0]
        pct = top["kpi"] == "utilisation"
        fmt = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:.2f}")
        cards.append(Card(f"Busiest: {top['subject']}", fmt(top["mean"]),
                          _interval(top, fmt, ceiling=1.0 if pct else None)))
    return cards


def sla_breach(results: Results, definition: ProcessDefinition) -> pd.DataFrame:
    """Per user task with an SLA: share of its completions past the SLA (``breach``) with a 95% interval over
    replications (``low``, ``high``, clipped to 0..1), worst first."""
    from scipy import stats

    log = results.activity_log()
    log = log[log["kind"] == "user_task"]
    rows = []
    for task, part in log.groupby("activity_id"):
        per_rep = part.groupby("replication")["sla_breached"].mean().astype(float)
        if not part["sla_breached"].any() and not _has_sla(definition, str(task)):
            continue
        mean = float(per_rep.mean())
        if len(per_rep) > 1 and per_rep.std(ddof=1) > 0:
            half = float(stats.t.ppf(0.975, len(per_rep) - 1) * per_rep.std(ddof=1) / math.sqrt(len(per_rep)))
        else:
            half = 0.0
        rows.append({"task": str(task), "breach": mean, "low": max(0.0, mean - half), "high": min(1.0, mean + half),
                     "completions": len(part)})
    frame = pd.DataFrame(rows, columns=["task", "breach", "low", "high", "completions"])
    return frame.sort_values("breach", ascending=False, kind="stable").reset_index(drop=True)


def _has_sla(definition: ProcessDefinition, task: str) -> bool:
    try:
        return getattr(definition.node(task), "sla", None) is not None
    except KeyError:
        return False


def dominant_line(results: Results, definition: ProcessDefinition) -> str:
    """What the cycle time is made of, in one sentence: the largest share among the activities (waiting plus
    working, per case) and the time spent in timers and messages (the rest of the cycle time)."""
    cases = results.cases()
    done = cases[cases["status"] == "completed"]
    if done.empty:
        return "No case completed: nothing to break the cycle time down."
    cycle = float(done["cycle_time_h"].mean())
    log = results.activity_log()
    n_cases = max(len(cases), 1)
    per_activity = ((log["waiting_s"].fillna(0) + log["working_s"].fillna(0)).groupby(log["activity_id"]).sum()
                    / 3600 / n_cases)
    waits = [n for n in definition.all_nodes() if isinstance(n, TimerCatchEvent | TimerBoundaryEvent
                                                             | MessageCatchEvent | EventBasedGateway)]
    rest = max(cycle - float(per_activity.sum()), 0.0)
    parts = {_part(definition, str(k)): float(v) for k, v in per_activity.items()}
    if waits:
        timers = [n for n in waits if isinstance(n, TimerCatchEvent)]
        label = (f"the {timers[0].label} timer" if len(waits) == 1 and timers
                 else "waiting in " + ", ".join(n.label for n in waits[:3]))
        parts[label] = parts.get(label, 0.0) + rest
    name, value = max(parts.items(), key=lambda kv: kv[1])
    share = value / cycle if cycle > 0 else 0.0
    return (f"{_h(value)} of the {_h(cycle, 1)} cycle time ({share:.0%}) is {name}."
            if share >= 0.01 else f"The cycle time is {_h(cycle, 1)}, spread over many steps.")


def _part(definition: ProcessDefinition, node_id: str) -> str:
    try:
        node = definition.node(node_id)
    except KeyError:
        return node_id
    if isinstance(node, TimerCatchEvent | TimerBoundaryEvent):
        return f"the {node.label} timer"
    if isinstance(node, MessageCatchEvent):
        return f"waiting for the message at {node.label}"
    if isinstance(node, UserTask):
        return f"{node.label} (waiting for a person, then the work)"
    return f"in {node.label}"


def _h(hours: float, digits: int | None = None) -> str:
    if digits is None:
        digits = 0 if hours >= 10 else 1 if hours >= 1 else 2
    return f"{hours:,.{digits}f} h"


def what_if(a: Results, b: Results) -> pd.DataFrame:
    """B against A per KPI: means, difference with its 95% interval, p-value and whether it is significant.
    Paired (common random numbers) when both ran with the same seed and replications."""
    from simulator import compare

    paired = (a.scenario.seed == b.scenario.seed and len(a.runs) == len(b.runs))
    table = compare(a, b, paired=paired, labels=("A", "B"))
    return table


# --- predicted vs observed ----------------------------------------------------------------------------------

def batch_interval(values: np.ndarray, n: int, stat: Any, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of ``stat`` over ``n`` cases drawn from the simulated per-case ``values`` (bootstrap):
    where the statistic of ``n`` observed cases should fall if the simulation is right."""
    rng = np.random.default_rng(seed)
    if len(values) == 0 or n == 0:
        return (math.nan, math.nan)
    samples = values[rng.integers(0, len(values), size=(draws, n))]
    stats_ = np.apply_along_axis(stat, 1, samples) if not isinstance(stat, str) else getattr(np, stat)(samples, 1)
    return float(np.quantile(stats_, 0.025)), float(np.quantile(stats_, 0.975))


def predicted_vs_observed(results: Results, observed: pd.DataFrame, sla: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per measure: ``measure``, ``predicted`` (simulation mean), ``low``/``high`` (the 95% range a
    batch of the observed size should show), ``observed``, ``off by`` (how far outside the range, in the
    measure's unit; 0 inside) and ``inside``.

    ``observed``: finished instances with ``cycle_time_h`` and ``end_node`` (may be None when unknown).
    ``sla``: completed human tasks with ``node_id`` and ``within_sla``.
    The interval is a bootstrap of batches of n observed cases from the simulated cases, so it answers "would
    n real cases plausibly look like this if the simulation were right" (not the much narrower interval of
    the simulation's own long-run mean)."""
    cases = results.cases()
    sim = cases[cases["status"] == "completed"]
    n = len(observed)
    rows = []
    cycle = sim["cycle_time_h"].to_numpy(dtype=float)
    seen = observed["cycle_time_h"].to_numpy(dtype=float)
    for label, q in (("cycle time, median (h)", 0.5), ("cycle time, 90th percentile (h)", 0.9)):
        low, high = batch_interval(cycle, n, lambda x, q=q: np.quantile(x, q))
        value = float(np.quantile(seen, q)) if n else math.nan
        rows.append({"measure": label, "predicted": float(np.quantile(cycle, q)) if len(cycle) else math.nan,
                     "low": low, "high": high, "observed": value})
    known = observed["end_node"].dropna()
    for end in sorted(sim["end_node"].dropna().unique()):
        flags = (sim["end_node"] == end).to_numpy(dtype=float)
        low, high = batch_interval(flags, len(known), "mean")
        value = float((known == end).mean()) if len(known) else math.nan
        rows.append({"measure": f"share ending at {end}", "predicted": float(flags.mean()), "low": low, "high": high,
                     "observed": value})
    if sla is not None and not sla.empty:
        log = results.activity_log()
        for node, part in sla.groupby("node_id"):
            simulated = log[(log["activity_id"] == node)]["sla_breached"].to_numpy(dtype=float)
            if len(simulated) == 0:
                continue
            low, high = batch_interval(simulated, len(part), "mean")
            rows.append({"measure": f"SLA breached at {node}", "predicted": float(simulated.mean()), "low": low,
                         "high": high, "observed": float((~part["within_sla"].astype(bool)).mean())})
    frame = pd.DataFrame(rows, columns=["measure", "predicted", "low", "high", "observed"])
    frame["off by"] = [0.0 if math.isnan(v) or math.isnan(lo) or lo <= v <= hi else (v - hi if v > hi else v - lo)
                       for lo, hi, v in zip(frame["low"], frame["high"], frame["observed"], strict=True)]
    frame["inside"] = [bool(lo - 1e-9 <= v <= hi + 1e-9) if not math.isnan(v) and not math.isnan(lo) else None
                       for lo, hi, v in zip(frame["low"], frame["high"], frame["observed"], strict=True)]
    return frame
