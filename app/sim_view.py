"""The Simulator page's logic (no Streamlit): a starting scenario for a new design, the scenario form's
reading and writing of distribution specs, and results in a manager's language (KPI cards with intervals,
what dominates the cycle time, SLA breach per user task, what-if).

Units: hours for times unless a name says otherwise; shares and rates as fractions 0..1.
"""

from __future__ import annotations

import math
import re
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
    SubProcess,
    TimerBoundaryEvent,
    TimerCatchEvent,
    TimerStartEvent,
    UserTask,
)
from simulator import Results
from simulator.display import hours_text

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
        elif node.is_activity and not isinstance(node, SubProcess):  # a container: its inside takes the time
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


def scenario_mapping(text: str) -> dict[str, Any]:
    """Scenario YAML text as a mapping; ValueError says why it is not one (the form needs a mapping)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"the YAML does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a scenario is a mapping (horizon, arrivals, tasks, …)")
    return data


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# --- durations in plain words --------------------------------------------------------------------------------

DURATION_HINT = ("A duration in plain words (30 min, 2 h, 1.5 days, 45 s) or ISO-8601 (PT30M, PT2H, P1D); "
                 "a bare number is seconds.")
_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def duration_seconds(value: Any) -> float:
    """A duration (ISO-8601 text, plain words such as "30 min" or "1 h 30 min", or a number of seconds) in
    seconds; ValueError says which forms are understood."""
    from engine.errors import TimerSpecError
    from engine.model.timers import parse_duration

    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("empty: " + DURATION_HINT)
    if text.upper().startswith("P"):
        try:
            return parse_duration(text.upper()).total_seconds()
        except TimerSpecError as exc:
            raise ValueError(str(exc)) from None
    if _is_number(text):
        return duration_seconds(float(text))
    lowered = text.lower().replace(",", " ").replace(" and ", " ")
    parts = _PART.findall(lowered)
    if not parts or _PART.sub("", lowered).strip() or any(unit not in _UNITS for _, unit in parts):
        raise ValueError(f"{text!r} is not a duration. " + DURATION_HINT)
    return sum(float(n) * _UNITS[unit] for n, unit in parts)


def duration_words(value: Any) -> str:
    """A duration as a person writes it: 1800 s -> "30 min", PT2H -> "2 h", P1DT12H -> "1.5 days"; a value that
    does not parse is returned as it is (the form then says what is wrong)."""
    try:
        seconds = duration_seconds(value)
    except ValueError:
        return str(value)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and (seconds / size >= 1.5 or seconds % size == 0 or unit == "min"):
            amount = seconds / size
            text = f"{amount:.2f}".rstrip("0").rstrip(".")
            return f"{text} {'day' if unit == 'days' and amount == 1 else unit}"
    return f"{seconds:g} s"


def iso_duration(value: Any) -> str:
    """Any accepted duration (see ``duration_seconds``) as ISO-8601 text for the scenario: "30 min" -> "PT30M"."""
    from datetime import timedelta

    from engine.model.timers import format_duration

    return format_duration(timedelta(seconds=duration_seconds(value)))


def same_duration(a: Any, b: Any) -> bool:
    try:
        return math.isclose(duration_seconds(a), duration_seconds(b))
    except ValueError:
        return False


# --- distribution specs in the form -------------------------------------------------------------------------

def spec_to_form(spec: Any) -> tuple[str, list[Any]] | None:
    """A duration spec as (distribution, its parameter values in ``PARAMETERS`` order), or None when the form
    cannot show it (edit the YAML)."""
    if spec is None:
        return ("fixed", ["PT0S"])
    if isinstance(spec, str | int | float):
        return ("fixed", [spec])
    if isinstance(spec, dict) and len(spec) == 1:
        kind, value = next(iter(spec.items()))
        if kind == "exponential" and isinstance(value, str | int | float):
            return (kind, [value])
        if kind in ("normal", "lognormal") and isinstance(value, dict) and set(value) == {"mean", "sd"}:
            return (kind, [value["mean"], value["sd"]])
        if kind in ("triangular", "uniform") and isinstance(value, list) and len(value) == len(_names(kind)):
            return (kind, list(value))
    return None


def _names(kind: str) -> list[str]:
    return [p.strip() for p in PARAMETERS[kind].split(",")]


def default_params(kind: str, params: list[Any]) -> list[str]:
    """Starting parameters (plain words) for ``kind`` when the distribution is switched, from the mean of the
    previous ones: fixed/exponential m; normal/lognormal m, m/2; triangular m/2, m, 2m; uniform m/2, 3m/2."""
    try:
        seconds = [duration_seconds(p) for p in params]
    except ValueError:
        seconds = []
    mean = (sum(seconds) / len(seconds) if len(seconds) != 2 else seconds[0]) if seconds else 1800.0
    if len(seconds) == 3:  # triangular: its mode
        mean = seconds[1]
    factors = {"fixed": [1], "exponential": [1], "normal": [1, 0.5], "lognormal": [1, 0.5],
               "triangular": [0.5, 1, 2], "uniform": [0.5, 1.5]}[kind]
    return [duration_words(mean * f) for f in factors]


def form_to_spec(kind: str, texts: list[str], previous: list[Any] | None = None) -> Any:
    """(distribution, parameter texts in plain words or ISO-8601) back to a scenario spec with ISO-8601 texts.
    A parameter that means the same duration as ``previous``'s is kept as written there (no churn in the YAML).
    ValueError names the parameter that is wrong."""
    names = _names(kind)
    if len(texts) != len(names):
        raise ValueError(f"{kind} needs {len(names)} value(s) ({PARAMETERS[kind]}), got {len(texts)}")
    values: list[Any] = []
    for i, (name, text) in enumerate(zip(names, texts, strict=True)):
        old = previous[i] if previous is not None and i < len(previous) else None
        if old is not None and same_duration(old, text):
            values.append(old)
            continue
        try:
            values.append(iso_duration(text))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
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


def compose(data: dict[str, Any], form: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The scenario ``data`` with what the form shows (``form``: horizon/warmup/drain texts, replications, seed,
    rate or None, tasks {id: (distribution, [parameter texts], pool or None)}, pools {name: (size, calendar or
    "always")}, branches {gateway: {flow: p}}, messages {name: (distribution, [texts], probability)}).

    Returns (scenario, problems): a value that does not read is left as it was in ``data`` and named in
    ``problems`` ("Approve expense, mean: '3 parsecs' is not a duration…"). Values that mean the same as
    before are kept as written, so showing a scenario in the form and reading it back changes nothing."""
    out = dict(data)
    problems: list[str] = []
    for field_, label in (("horizon", "Horizon"), ("warmup", "Warm-up"), ("drain", "Drain")):
        if field_ not in form:
            continue
        text = str(form[field_]).strip()
        if field_ in data and same_duration(data[field_], text):
            continue
        try:
            out[field_] = iso_duration(text)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    for field_ in ("replications", "seed"):
        if field_ in form and form[field_] is not None and form[field_] != data.get(field_):
            out[field_] = int(form[field_])
    arrivals = data.get("arrivals")
    if (form.get("rate") is not None and isinstance(arrivals, dict) and isinstance(arrivals.get("poisson"), dict)
            and form["rate"] != arrivals["poisson"].get("rate")):
            out["arrivals"] = {**arrivals, "poisson": {**arrivals["poisson"], "rate": form["rate"]}}
    labels = form.get("labels", {})
    if form.get("tasks"):
        tasks = {k: dict(v or {}) for k, v in (data.get("tasks") or {}).items()}
        for task, (kind, texts, pool) in form["tasks"].items():
            spec = tasks.setdefault(task, {})
            shown = spec_to_form(spec.get("duration"))
            try:
                new = form_to_spec(kind, texts, shown[1] if shown and shown[0] == kind else None)
            except ValueError as exc:
                problems.append(f"{labels.get(task, task)}, {exc}")
            else:
                if new != spec.get("duration"):
                    spec["duration"] = new
            if pool is not None:
                spec["pool"] = pool
        out["tasks"] = tasks
    if form.get("pools"):
        pools = {k: dict(v or {}) for k, v in (data.get("pools") or {}).items()}
        for pool, (size, calendar) in form["pools"].items():
            spec = pools.setdefault(pool, {})
            spec["size"] = int(size)
            if calendar in (None, "always"):
                spec.pop("calendar", None)
            else:
                spec["calendar"] = calendar
        out["pools"] = pools
    if form.get("branches"):
        out["branches"] = {g: {**(data.get("branches") or {}).get(g, {}), **flows}
                           for g, flows in form["branches"].items()}
    if form.get("messages"):
        messages = {k: dict(v or {}) for k, v in (data.get("messages") or {}).items()}
        for name, (kind, texts, probability) in form["messages"].items():
            spec = messages.setdefault(name, {})
            shown = spec_to_form(spec.get("after"))
            try:
                new = form_to_spec(kind, texts, shown[1] if shown and shown[0] == kind else None)
            except ValueError as exc:
                problems.append(f"message {name}, {exc}")
            else:
                if new != spec.get("after"):
                    spec["after"] = new
            if probability != spec.get("probability", 1.0):
                spec["probability"] = probability
        out["messages"] = messages
    return out, problems


def node_label(definition: ProcessDefinition, node_id: str) -> str:
    """A node as the diagram shows it (``Node.label``: its name, else its id in words); the id when unknown."""
    try:
        node = definition.node(node_id)
    except KeyError:
        return node_id
    return node.label


def flow_label(definition: ProcessDefinition, flow_id: str) -> str:
    """A sequence flow as a reader names it: its name, else "to <target's name>" (plus its condition)."""
    flow = next((f for f in definition.all_flows() if f.id == flow_id), None)
    if flow is None:
        return flow_id
    if flow.name:
        return flow.name
    text = f"to {node_label(definition, flow.target)}"
    return text + (f" (if {flow.condition})" if flow.condition else "")


# --- results in a manager's language ------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """One KPI for ``st.metric``: ``label``, ``value`` (text), ``interval`` (the 95% interval, text)."""

    label: str
    value: str
    interval: str


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
    # A pool's utilisation is a share of its people; an unlimited resource's busy_mean is how many run at once:
    # the two do not compare, so the busiest pool wins and an unlimited resource only stands in for none.
    busy = s[s["kpi"] == "utilisation"]
    if busy.empty:
        busy = s[s["kpi"] == "busy_mean"]
    if not busy.empty:
        top = busy.sort_values("mean", ascending=False).iloc[0]
        pct = top["kpi"] == "utilisation"
        fmt = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:.2f} at once")
        node = definition.index.nodes.get(top["subject"])
        who = node.label if node is not None else top["subject"]
        cards.append(Card(f"Busiest: {who}", fmt(top["mean"]),
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
        rows.append({"task": node_label(definition, str(task)), "breach": mean,
                     "low": max(0.0, mean - half), "high": min(1.0, mean + half),
                     "completions": len(part)})
    frame = pd.DataFrame(rows, columns=["task", "breach", "low", "high", "completions"])
    return frame.sort_values("breach", ascending=False, kind="stable").reset_index(drop=True)


def _has_sla(definition: ProcessDefinition, task: str) -> bool:
    try:
        return getattr(definition.node(task), "sla", None) is not None
    except KeyError:
        return False


def finished_sample(results: Results) -> pd.DataFrame:
    """The cases every cycle-time figure counts: completed, arrived after warm-up (``simulator.kpis``), with
    their activity-log case name in ``case_name``."""
    cases = results.cases()
    warm = results.scenario.warmup.total_seconds()
    done = cases[(cases["status"] == "completed") & (cases["arrived_s"] >= warm)].copy()
    prefix = done["replication"].map(lambda r: f"r{r}.") if len(results.runs) > 1 else ""
    done["case_name"] = prefix + done["case"].astype(str)
    return done


def mean_cycle_time(results: Results) -> float:
    """The cycle-time KPI in hours: the mean over replications of each one's mean over ``finished_sample``."""
    values = results.kpi("cycle_time_mean_h").dropna()
    return float(values.mean()) if len(values) else math.nan


def dominant_line(results: Results, definition: ProcessDefinition) -> str:
    """What the mean cycle time is made of, in one sentence: the largest share among the activities (waiting plus
    working) and the time in timers and messages (the rest). Same sample and figure as the "Cycle time (mean)"
    card and the histogram: finished cases that arrived after warm-up, the mean over replications."""
    done = finished_sample(results)
    cycle = mean_cycle_time(results)
    if done.empty or math.isnan(cycle):
        return "No case finished: nothing to break the cycle time down."
    log = results.activity_log()
    log = log[log["case:concept:name"].isin(set(done["case_name"]))]
    spent = (log["waiting_s"].fillna(0) + log["working_s"].fillna(0)) / 3600
    per_rep_cases = done.groupby("replication").size()
    if "replication" not in log.columns:
        log = log.assign(replication=results.runs[0].replication)
    totals = spent.groupby([log["replication"], log["activity_id"]]).sum().unstack(fill_value=0.0)
    per_activity = totals.div(per_rep_cases, axis=0).reindex(per_rep_cases.index, fill_value=0.0).mean()
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
    share = min(value / cycle, 1.0) if cycle > 0 else 0.0
    return (f"Mean cycle time {hours_text(cycle)} (finished cases): {share:.0%} of it ({hours_text(value)}) is "
            f"{name}." if share >= 0.01 else f"Mean cycle time {hours_text(cycle)} (finished cases), spread over "
            "many steps.")


@dataclass(frozen=True)
class Load:
    """Whether the process keeps up with its arrivals. Means over replications: ``arrived`` (after warm-up),
    ``finished`` (of those), ``open_at_end`` (cases still running when the run stopped), ``utilisation`` and
    ``offered`` per pool (offered load ρ = work asked of the pool / its capacity: work items enabled × their
    mean service time / (size × available time); ρ ≥ 1 means the queue grows without bound, queueing theory's
    stability condition). ``overloaded`` when a pool's ρ ≥ 1, or when it is ≥ 95 % busy and at least a tenth of
    the cases were still open at the end."""

    arrived: float
    finished: float
    open_at_end: float
    utilisation: dict[str, float]
    offered: dict[str, float]

    @property
    def overloaded(self) -> bool:
        if any(rho >= 1.0 for rho in self.offered.values()):
            return True
        busy = any(u >= 0.95 for u in self.utilisation.values())
        return busy and self.arrived > 0 and self.open_at_end >= 0.1 * self.arrived

    def message(self) -> str:
        """The plain-words verdict for an overloaded run (empty when it keeps up)."""
        if not self.overloaded:
            return ""
        worst = max(self.offered or self.utilisation, key=lambda p: (self.offered or self.utilisation)[p])
        rho = self.offered.get(worst)
        asked = (f"{worst} is asked for {rho:.2f}× the work it can do (offered load ρ = {rho:.2f} ≥ 1)" if rho
                 and rho >= 1 else f"{worst} is busy {self.utilisation.get(worst, math.nan):.0%} of the time")
        return (f"**Overloaded: the queue grows and never empties.** {asked}. Of {self.arrived:,.0f} cases that "
                f"arrived, {self.finished:,.0f} finished and {self.open_at_end:,.0f} were still open at the horizon "
                f"(utilisation {', '.join(f'{p} {u:.0%}' for p, u in self.utilisation.items())}). The cycle times "
                "below count finished cases only, so they understate: the longer the run, the longer they get. "
                "Add people to the pool, shorten the work, or lower the arrival rate.")


def load_report(results: Results) -> Load:
    """``Load`` of a run (see there); pools without a size limit have no ρ."""
    kpi = results.kpis

    def mean_of(name: str, subject: str = "") -> float:
        values = kpi[(kpi["kpi"] == name) & (kpi["subject"] == subject)]["value"].dropna()
        return float(values.mean()) if len(values) else 0.0

    utilisation = {str(p): float(v) for p, v in
                   kpi[kpi["kpi"] == "utilisation"].groupby("subject")["value"].mean().items()}
    offered: dict[str, list[float]] = {}
    for run in results.runs:
        rows = [r for r in run.work_rows if r[5] >= run.warmup]
        for pool, info in run.pools.items():
            if info.get("unlimited"):
                continue
            mine = [r for r in rows if r[4] == pool]
            served = [r[7] - r[6] for r in mine if r[6] >= 0 and r[7] >= r[6]]
            capacity = info["size"] * info["available_seconds"]
            if served and capacity > 0:
                offered.setdefault(str(pool), []).append(len(mine) * (sum(served) / len(served)) / capacity)
    return Load(arrived=mean_of("cases_arrived"), finished=mean_of("cases_completed"),
                open_at_end=mean_of("wip_at_end"), utilisation=utilisation,
                offered={p: sum(v) / len(v) for p, v in offered.items()})


def _part(definition: ProcessDefinition, node_id: str) -> str:
    try:
        node = definition.node(node_id)
    except KeyError:
        return node_id
    if isinstance(node, TimerCatchEvent | TimerBoundaryEvent):
        return f"the {node.label} timer"
    if isinstance(node, MessageCatchEvent):
        return f"waiting for the message at {node.label}"
    label = node_label(definition, node_id)
    if isinstance(node, UserTask):
        return f"{label} (waiting for a person, then the work)"
    return f"in {label}"


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
            simulated = log[(log["activity_id"] == node) & (log["kind"] != "compensation")]["sla_breached"].to_numpy(
                dtype=float)
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
