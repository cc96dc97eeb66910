"""How results show in a notebook or a terminal: a few lines and the KPI table, never the raw event data.

``Results`` delegates ``__repr__`` and ``_repr_html_`` here. The HTML is bounded: at most ``MAX_ROWS`` KPI
rows (the rest are named by count: ``results.summary()`` has them all) and no event rows at all, so a saved
notebook stays a few kilobytes whatever the size of the run.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.kpis import Results

MAX_ROWS = 40
HEADLINE = ("cycle_time_mean_h", "cycle_time_p90_h", "throughput_per_day", "cases_completed", "wip_at_end")


def hours_text(hours: float) -> str:
    """Hours as a person reads them: "45 min", "3.2 h", "7.0 days" (the app's KPI cards, headline and the
    cycle-time histogram all use it, so one figure reads the same everywhere)."""
    if hours is None or math.isnan(hours):
        return "–"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    return f"{value:,.3g}" if magnitude >= 0.01 or value == 0 else f"{value:.2e}"


def headline(results: Results) -> str:
    """One line: design, replications, cases, wall time."""
    runs = len(results.runs)
    arrived = results.kpis.query("kpi == 'cases_arrived'")["value"]
    cases = f"{arrived.mean():,.0f} cases per replication after warm-up" if len(arrived) else "no cases"
    return (f"{results.compiled.definition.id}: {runs} replication{'s' if runs != 1 else ''}, {cases}, "
            f"{results.events:,} events in {results.wall_seconds:.2f} s; times in hours, 95% confidence intervals")


def key_figures(results: Results) -> list[str]:
    """The few KPIs people ask for first, as 'name mean [low, high]' strings."""
    s = results.summary()
    out = []
    for kpi in HEADLINE:
        row = s[(s["kpi"] == kpi) & (s["subject"] == "")]
        if row.empty or math.isnan(float(row["mean"].iloc[0])):
            continue
        r = row.iloc[0]
        ci = "" if math.isnan(r["half_width"]) else f" [{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
        out.append(f"{kpi} {_num(r['mean'])}{ci}")
    return out


def text(results: Results) -> str:
    """``repr(results)``: the headline, warnings, then the KPI table (``Results.table``)."""
    lines = [headline(results)]
    lines += [f"warning: {w}" for w in results.warnings[:5]]
    if len(results.warnings) > 5:
        lines.append(f"... {len(results.warnings) - 5} more warning(s): results.warnings")
    lines.append(results.table())
    return "\n".join(lines)


def html(results: Results, max_rows: int = MAX_ROWS) -> str:
    """``Results._repr_html_``: headline, key figures, warnings, and the KPI table with intervals (bounded)."""
    s = results.summary()
    body = []
    for row in s.head(max_rows).itertuples(index=False):
        ci = "" if math.isnan(row.half_width) else f"[{_num(row.ci_low)}, {_num(row.ci_high)}]"
        body.append(f"<tr><td>{escape(row.kpi)}</td><td>{escape(str(row.subject))}</td>"
                    f"<td style='text-align:right'>{_num(row.mean)}</td><td style='text-align:right'>{ci}</td>"
                    f"<td style='text-align:right'>{row.n}</td></tr>")
    more = len(s) - max_rows
    tail = (f"<p><i>{more} more KPI rows: <code>results.summary()</code></i></p>" if more > 0 else "")
    warnings = "".join(f"<li>{escape(w)}</li>" for w in results.warnings[:5])
    figures = " · ".join(escape(f) for f in key_figures(results))
    return (f"<div><p><b>{escape(headline(results))}</b></p>"
            + (f"<p>{figures}</p>" if figures else "")
            + (f"<ul style='color:#a60'>{warnings}</ul>" if warnings else "")
            + "<table><thead><tr><th>kpi</th><th>subject</th><th>mean</th><th>95% CI</th><th>n</th></tr></thead>"
            + f"<tbody>{''.join(body)}</tbody></table>{tail}"
            + "<p style='color:#666'><code>.summary()</code> KPI frame · <code>.event_log()</code> XES event log · "
              "<code>.cases()</code> · <code>simulator.plots</code> figures</p></div>")
