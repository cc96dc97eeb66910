"""Figures the app and notebooks reuse: cycle-time histogram, queue length over time, utilisation bars.

Each returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, safe in
Streamlit's threads); show it with ``st.pyplot(fig)`` or ``fig.savefig(path)``. In Jupyter it displays
inline as the value of a cell, without ``%matplotlib inline`` (:class:`InlineFigure` has ``_repr_png_``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from simulator.kpis import Results


class InlineFigure(Figure):
    """A Figure that Jupyter shows as a PNG when it is a cell's value (no pyplot, no magics needed)."""

    def _repr_png_(self) -> bytes:
        from io import BytesIO

        buffer = BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    def __repr__(self) -> str:
        title = " ".join(ax.get_title() for ax in self.axes if ax.get_title())
        return f"<InlineFigure {title!r}>" if title else super().__repr__()


def cycle_time_histogram(results: Results, bins: int = 40, replication: int | None = None) -> Figure:
    """Cycle times of completed cases that arrived after warm-up (the sample of the cycle-time KPIs), with the
    mean and p90 marked. Over all replications the marks are the KPIs themselves (the mean over replications
    of each one's mean and p90), so they equal what ``results.summary()`` and the app's cards say. Days on the
    axis when the mean is 48 h or more, hours otherwise."""
    from simulator.display import hours_text

    cases = results.cases(replication)
    warm = results.scenario.warmup.total_seconds()
    done = cases[(cases["status"] == "completed") & (cases["arrived_s"] >= warm)]["cycle_time_h"].to_numpy()
    fig = InlineFigure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if len(done):
        if replication is None:
            mean, p90 = (float(results.kpi(k).mean()) for k in ("cycle_time_mean_h", "cycle_time_p90_h"))
        else:
            mean, p90 = float(np.mean(done)), float(np.percentile(done, 90))
        scale, unit = (24.0, "days") if mean >= 48 else (1.0, "hours")
        ax.hist(done / scale, bins=bins, color="#4C72B0", alpha=0.85)
        for value, label, style in ((mean, "mean", "-"), (p90, "90% within", "--")):
            ax.axvline(value / scale, color="#C44E52", linestyle=style, label=f"{label} {hours_text(value)}")
        ax.legend()
    else:
        unit = "hours"
        ax.text(0.5, 0.5, "no completed cases", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"cycle time ({unit}), finished cases")
    runs = len(results.kpis["replication"].unique()) if replication is None else 1
    ax.set_ylabel("cases" if runs == 1 else f"cases (all {runs} replications)")
    ax.set_title(f"Cycle time: {results.compiled.definition.id}")
    return fig


def queue_length(results: Results, pool: str | None = None, replication: int = 0) -> Figure:
    """Queue length over time per pool (one replication; a step plot)."""
    trace = results.queue(replication)
    fig = InlineFigure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    pools = [pool] if pool is not None else sorted(trace["pool"].unique())
    end_h = results.scenario.end / 3600.0
    for name in pools:
        part = trace[trace["pool"] == name]
        if part.empty:
            continue
        t = np.append(part["time_h"].to_numpy(), end_h)
        q = np.append(part["length"].to_numpy(), part["length"].to_numpy()[-1])
        ax.step(t, q, where="post", label=name)
    if pools:
        ax.legend()
    ax.set_xlabel("simulated time (hours)")
    ax.set_ylabel("work waiting")
    ax.set_title("Queue length")
    return fig


def utilisation_bars(results: Results) -> Figure:
    """Utilisation per pool with the 95% confidence interval across replications."""
    summary = results.summary()
    util = summary[summary["kpi"] == "utilisation"]
    fig = InlineFigure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if len(util):
        err = util["half_width"].fillna(0).to_numpy()
        ax.bar(util["subject"].astype(str), util["mean"].to_numpy() * 100, yerr=err * 100, capsize=4,
               color="#55A868")
        ax.set_ylim(0, max(100, float((util["mean"] + util["half_width"].fillna(0)).max() * 100) + 5))
    else:
        ax.text(0.5, 0.5, "no pools with a size", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("utilisation (%)")
    ax.set_title("Resource utilisation")
    return fig


def what_if(results: dict[str, Results], kpis: list[tuple[str, str]] | None = None) -> Figure:
    """What-if side by side: per KPI (``(kpi, subject)``, default cycle time mean and p90) one panel with
    each scenario's mean and 95% confidence interval (the error bar)."""
    kpis = kpis or [("cycle_time_mean_h", ""), ("cycle_time_p90_h", "")]
    fig = InlineFigure(figsize=(3.2 * len(kpis) + 1, 3.8), layout="constrained")
    names = list(results)
    colours = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]
    for i, (kpi, subject) in enumerate(kpis):
        ax = fig.add_subplot(1, len(kpis), i + 1)
        means, errors = [], []
        for name in names:
            s = results[name].summary()
            row = s[(s["kpi"] == kpi) & (s["subject"] == subject)]
            means.append(float(row["mean"].iloc[0]) if len(row) else np.nan)
            errors.append(float(row["half_width"].fillna(0).iloc[0]) if len(row) else 0.0)
        ax.bar(names, means, yerr=errors, capsize=4, color=[colours[j % len(colours)] for j in range(len(names))])
        ax.set_title(f"{kpi}{f' ({subject})' if subject else ''}", fontsize=9)
        ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    return fig
