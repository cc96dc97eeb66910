"""Results as pandas DataFrames: the event log, cases, queue traces and KPIs with confidence intervals.

Everything is built once at the end of a run from the plain rows the shell collected. Times in the
KPIs are in hours (the processes here run for hours and days); the event log keeps timestamps.
Warm-up: case KPIs count cases that arrived after it, activity KPIs work enabled after it, pool
KPIs the time after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from engine.eventlog import ACTIVITY_COLUMNS, activity_label, agent_resource, transitions
from engine.eventlog.log import instance_numbers
from simulator.shell import Compiled, RunData

HOUR = 3600.0
LOG_COLUMNS = ACTIVITY_COLUMNS  # the activity log's columns (one row per activation)


def activity_log(run: RunData, compiled: Compiled, prefix: str = "") -> pd.DataFrame:
    """One row per activity activation and per timer/message wait (``engine.eventlog.ACTIVITY_COLUMNS``).

    ``time:timestamp`` is the end (pm4py's complete time), ``start_timestamp`` when a person or agent
    began, ``enabled_timestamp`` when the work became ready; NaT where it has not happened by the end.
    Names follow ``engine.eventlog``: BPMN names, ``Undo: <name>`` for compensation, agents as
    ``agent:<handler>``, people as ``<pool>#<n>``.
    """
    nodes = compiled.nodes
    rows = run.work_rows
    cols = list(zip(*rows, strict=True)) if rows else [()] * 11
    case, node, kind, person, pool, enabled, start, end, outcome, attempt, breached = cols
    frame = pd.DataFrame({
        "case": np.asarray(case, dtype=np.int64), "node": list(node), "kind": list(kind),
        "org:resource": list(person), "org:group": list(pool),
        "enabled": np.asarray(enabled, dtype=float), "start": np.asarray(start, dtype=float),
        "end": np.asarray(end, dtype=float), "outcome": list(outcome),
        "attempt": np.asarray(attempt, dtype=np.int64), "sla_breached": np.asarray(breached, dtype=bool)})
    frame.loc[frame["start"] < 0, "start"] = np.nan
    # Calendar pools hand work out at times rounded to the microsecond: never before it was enabled.
    frame["start"] = frame["start"].where(~(frame["start"] < frame["enabled"]), frame["enabled"])
    if len(frame):  # agents: one name in every log, whichever pool ran them
        handler = {nid: getattr(n, "agent", None) for nid, n in nodes.items()}
        undo = {nid: getattr(n, "compensation", None) for nid, n in nodes.items()}
        agents = frame["kind"].isin(["service_task", "compensation"])
        who = np.where(frame["kind"] == "compensation", frame["node"].map(undo), frame["node"].map(handler))
        names = pd.Series(who, index=frame.index).map(agent_resource)
        frame.loc[agents, "org:group"] = names[agents]
        frame.loc[agents & frame["start"].notna(), "org:resource"] = names[agents & frame["start"].notna()]
    if run.wait_rows:
        wcase, wnode, wkind, armed, fired = zip(*run.wait_rows, strict=True)
        waits = pd.DataFrame({
            "case": np.asarray(wcase, dtype=np.int64), "node": list(wnode), "kind": list(wkind),
            "org:resource": None, "org:group": None, "enabled": np.asarray(armed, dtype=float),
            "start": np.asarray(armed, dtype=float), "end": np.asarray(fired, dtype=float), "outcome": "completed",
            "attempt": 1, "sla_breached": False})
        frame = pd.concat([frame, waits], ignore_index=True) if len(frame) else waits
    frame = frame.sort_values(["end", "case"], kind="stable", na_position="last").reset_index(drop=True)
    labels = {nid: activity_label(n) for nid, n in nodes.items()}
    label = frame["node"].map(labels).fillna(frame["node"])
    compensation = frame["kind"] == "compensation"
    label[compensation] = "Undo: " + label[compensation]
    t0 = pd.Timestamp(run.t0)
    case_name = prefix + frame["case"].astype(str)
    out = pd.DataFrame({
        "case:concept:name": case_name,
        "concept:name": label,
        "concept:instance": instance_numbers(case_name, frame["node"].where(~compensation, "undo:" + frame["node"])),
        "activity_id": frame["node"],
        "kind": frame["kind"],
        "org:resource": frame["org:resource"],
        "org:group": frame["org:group"],
        "enabled_timestamp": t0 + pd.to_timedelta(frame["enabled"], unit="s"),
        "start_timestamp": t0 + pd.to_timedelta(frame["start"], unit="s"),
        "time:timestamp": t0 + pd.to_timedelta(frame["end"], unit="s"),
        "lifecycle:transition": "complete",
        "outcome": frame["outcome"],
        "attempt": frame["attempt"],
        "sla_breached": frame["sla_breached"].astype(bool),
        "waiting_s": frame["start"] - frame["enabled"],
        "working_s": frame["end"] - frame["start"],
    })
    return out[LOG_COLUMNS]


def event_log(run: RunData, compiled: Compiled, prefix: str = "") -> pd.DataFrame:
    """One row per lifecycle transition (schedule, start, complete, ...): see ``engine.eventlog.transitions``."""
    return transitions(activity_log(run, compiled, prefix))


def cases(run: RunData) -> pd.DataFrame:
    if run.case_rows:
        cid, arrived, ended, status, end_node = zip(*run.case_rows, strict=True)
    else:
        cid, arrived, ended, status, end_node = (), (), (), (), ()
    frame = pd.DataFrame({"case": np.asarray(cid, dtype=np.int64), "arrived_s": np.asarray(arrived, dtype=float),
                          "ended_s": np.asarray(ended, dtype=float), "status": list(status),
                          "end_node": list(end_node)})
    frame["cycle_time_h"] = (frame["ended_s"] - frame["arrived_s"]) / HOUR
    return frame.sort_values("case").reset_index(drop=True)


def queue_trace(run: RunData) -> pd.DataFrame:
    """Queue length per pool over time (a step function: the length holds until the next row)."""
    parts = []
    for pool, trace in run.queue_traces.items():
        t, q = zip(*trace, strict=True) if trace else ((), ())
        parts.append(pd.DataFrame({"pool": pool, "time_h": np.asarray(t, dtype=float) / HOUR,
                                   "length": np.asarray(q, dtype=np.int64)}))
    if not parts:
        return pd.DataFrame({"pool": [], "time_h": [], "length": []})
    return pd.concat(parts, ignore_index=True)


def _time_average(trace: list[tuple[float, int]], lo: float, hi: float) -> float:
    if not trace or hi <= lo:
        return math.nan
    t = np.asarray([p[0] for p in trace] + [hi], dtype=float)
    q = np.asarray([p[1] for p in trace], dtype=float)
    start = np.clip(t[:-1], lo, hi)
    stop = np.clip(t[1:], lo, hi)
    return float(np.sum(q * (stop - start)) / (hi - lo))


def replication_kpis(run: RunData, compiled: Compiled) -> list[tuple[str, str, float]]:
    """(kpi, subject, value) for one replication. Subject is '' for process-wide KPIs."""
    out: list[tuple[str, str, float]] = []
    # Rates (throughput, utilisation, queue length) are measured over the arrival window [warm-up, horizon]:
    # the drain after it only lets the window's cases finish, so counting its idle time would understate them.
    warm, end = run.warmup, run.horizon if run.horizon is not None else run.end
    days = (end - warm) / 86400.0
    c = cases(run)
    after = c[c["arrived_s"] >= warm]
    done = after[after["status"] == "completed"]
    ct = done["cycle_time_h"].to_numpy()
    out.append(("cases_arrived", "", float(len(after))))
    out.append(("cases_completed", "", float(len(done))))
    out.append(("cases_failed", "", float((after["status"] == "failed").sum())))
    out.append(("wip_at_end", "", float((c["status"] == "running").sum())))
    # Completions of the cases that arrived in the window (the drain lets them finish): in steady state the
    # departure rate equals the arrival rate, and cases still open at the end are not counted.
    arrived_in_window = done[done["arrived_s"] < end]
    out.append(("throughput_per_day", "", len(arrived_in_window) / days if days > 0 else math.nan))
    for name, value in (("cycle_time_mean_h", np.mean), ("cycle_time_p50_h", 50), ("cycle_time_p90_h", 90),
                        ("cycle_time_p95_h", 95)):
        if len(ct) == 0:
            out.append((name, "", math.nan))
        elif callable(value):
            out.append((name, "", float(value(ct))))
        else:
            out.append((name, "", float(np.percentile(ct, value))))
    out.append(("incidents", "", float(sum(1 for i in run.incidents if i[2] >= warm))))
    if len(done):
        ends = done["end_node"].value_counts(normalize=True)
        for node_id in sorted(n for n, k in compiled.kinds.items() if k in ("end", "terminate_end")):
            out.append(("end_share", node_id, float(ends.get(node_id, 0.0))))

    rows = run.work_rows
    if rows:
        node = np.asarray([r[1] for r in rows], dtype=object)
        kind = np.asarray([r[2] for r in rows], dtype=object)
        enabled = np.asarray([r[5] for r in rows], dtype=float)
        start = np.asarray([r[6] for r in rows], dtype=float)
        finish = np.asarray([r[7] for r in rows], dtype=float)
        outcome = np.asarray([r[8] for r in rows], dtype=object)
        breached = np.asarray([r[10] for r in rows], dtype=bool)
        in_window = enabled >= warm
        ended = in_window & np.isin(outcome, ["completed", "failed", "error", "sla_completed"]) & (start >= 0)
        # A compensation run carries the compensated activity's id: it is its own subject ("undo:<id>", as
        # the log's concept:instance names it), never averaged into the activity's own runs.
        undo = kind == "compensation"
        subject = np.where(undo, np.char.add("undo:", node.astype(str)), node)
        for node_id in sorted(set(subject.tolist())):
            mask = subject == node_id
            m = ended & mask
            if m.any():
                out.append(("waiting_time_mean_h", node_id, float(np.mean(start[m] - enabled[m]) / HOUR)))
                out.append(("working_time_mean_h", node_id, float(np.mean(finish[m] - start[m]) / HOUR)))
            activations = in_window & mask & (kind == "user_task")
            sla = getattr(compiled.nodes.get(node_id), "sla", None)
            if sla and activations.any():
                out.append(("sla_breach_rate", node_id, float(np.mean(breached[activations]))))
    for pool, info in run.pools.items():
        if info["unlimited"]:
            busy = info["busy_seconds"] / info["available_seconds"] if info["available_seconds"] > 0 else math.nan
            out.append(("busy_mean", pool, busy))
        else:
            capacity = info["size"] * info["available_seconds"]
            out.append(("utilisation", pool, info["busy_seconds"] / capacity if capacity > 0 else math.nan))
            out.append(("queue_length_mean", pool, _time_average(run.queue_traces.get(pool, []), warm, end)))
            if info.get("cost_per_hour") is not None:
                out.append(("cost", pool, info["size"] * info["available_seconds"] / HOUR * info["cost_per_hour"]))
    return out


def summarize(kpis: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation and a t-based confidence interval per KPI across replications."""
    def agg(values: pd.Series) -> pd.Series:
        v = values.dropna().to_numpy(dtype=float)
        n = len(v)
        mean = float(np.mean(v)) if n else math.nan
        sd = float(np.std(v, ddof=1)) if n > 1 else math.nan
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
        return pd.Series({"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half,
                          "sd": sd, "n": n})

    if kpis.empty:
        return pd.DataFrame(columns=["kpi", "subject", "mean", "ci_low", "ci_high", "half_width", "sd", "n"])
    grouped = kpis.groupby(["kpi", "subject"], sort=False)["value"].apply(agg).unstack()
    grouped = grouped.reset_index()
    grouped["n"] = grouped["n"].astype(int)
    return grouped


@dataclass(repr=False)
class Results:
    """Every replication's raw data plus the frames built from it.

    Shows as its KPI table with 95% intervals and a short summary (``simulator.display``), never the raw data.
    """

    compiled: Compiled
    runs: list[RunData]
    warnings: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    _kpis: pd.DataFrame | None = None

    def __repr__(self) -> str:
        from simulator.display import text

        return text(self)

    def _repr_html_(self) -> str:
        from simulator.display import html

        return html(self)

    @property
    def scenario(self) -> Any:
        return self.compiled.scenario

    @property
    def events(self) -> int:
        return sum(r.events for r in self.runs)

    @property
    def kpis(self) -> pd.DataFrame:
        """Long format: replication, kpi, subject, value."""
        if self._kpis is None:
            rows = [(run.replication, k, s, v) for run in self.runs for k, s, v in replication_kpis(run, self.compiled)]
            self._kpis = pd.DataFrame(rows, columns=["replication", "kpi", "subject", "value"])
        return self._kpis

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        return summarize(self.kpis, confidence)

    def kpi(self, name: str, subject: str = "") -> pd.Series:
        """One KPI's value per replication."""
        k = self.kpis
        return k[(k["kpi"] == name) & (k["subject"] == subject)].set_index("replication")["value"]

    def activity_log(self, replication: int | None = None) -> pd.DataFrame:
        """One row per activation (enabled, start and end time, waiting and working seconds) of one
        replication, or of all with case ids ``r<replication>.<case>`` and a ``replication`` column."""
        return self._logs(activity_log, replication)

    def event_log(self, replication: int | None = None) -> pd.DataFrame:
        """The process-mining log: one row per lifecycle transition (``engine.eventlog``), XES names;
        one replication, or all with case ids ``r<replication>.<case>`` and a ``replication`` column."""
        return self._logs(event_log, replication)

    def _logs(self, build: Any, replication: int | None) -> pd.DataFrame:
        if replication is not None:
            return build(self.runs[replication], self.compiled)
        frames = []
        for run in self.runs:
            frame = build(run, self.compiled, prefix=f"r{run.replication}." if len(self.runs) > 1 else "")
            frame.insert(0, "replication", run.replication)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def cases(self, replication: int | None = None) -> pd.DataFrame:
        runs = self.runs if replication is None else [self.runs[replication]]
        frames = []
        for run in runs:
            frame = cases(run)
            frame.insert(0, "replication", run.replication)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def messages(self, replication: int | None = None) -> pd.DataFrame:
        """Thrown messages that did not reach one waiting case at once, as ``Engine.messages()`` lists them
        (``engine.semantics.messages``): name, correlation, status (buffered / delivered / expired /
        ambiguous), source (``case <n>:<throw node>``), the receiving case, and created_s / delivered_s /
        expires_s in seconds from the scenario's start; ``error`` names the candidates of an ambiguous one."""
        runs = self.runs if replication is None else [self.runs[replication]]
        columns = ["name", "correlation", "status", "source", "case", "created_s", "delivered_s", "expires_s",
                   "error"]
        frames = []
        for run in runs:
            frame = pd.DataFrame(getattr(run, "messages", []), columns=columns)
            frame.insert(0, "replication", run.replication)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def queue(self, replication: int | None = None) -> pd.DataFrame:
        runs = self.runs if replication is None else [self.runs[replication]]
        frames = []
        for run in runs:
            frame = queue_trace(run)
            frame.insert(0, "replication", run.replication)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def to_csv(self, path: str | Path, replication: int | None = None) -> Path:
        """Write the event log as CSV (ISO timestamps), readable by pm4py.read_csv / format_dataframe."""
        from engine.eventlog import write_csv

        return write_csv(self.event_log(replication), path)

    def to_xes(self, path: str | Path, replication: int | None = None) -> Path:
        """Write the event log as XES (IEEE 1849-2016): pm4py.read_xes, ProM and Disco read it."""
        from engine.eventlog import write_xes

        return write_xes(self.event_log(replication), path, name=self.compiled.definition.id)

    def table(self) -> str:
        """The KPI summary as aligned text (the CLI prints it)."""
        s = self.summary()
        width = min(max([7, *(len(str(x)) for x in s["subject"])]), 44)
        lines = [f"{'kpi':<20} {'subject':<{width}} {'mean':>12} {'95% CI':>27} {'n':>4}"]
        for row in s.itertuples(index=False):
            ci = "" if math.isnan(row.half_width) else f"[{row.ci_low:,.3f}, {row.ci_high:,.3f}]"
            lines.append(f"{row.kpi:<20} {str(row.subject)[:width]:<{width}} {row.mean:>12,.3f} {ci:>27} {row.n:>4}")
        return "\n".join(lines)
