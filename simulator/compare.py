"""What-if: two scenarios side by side, the difference per KPI and whether it is significant.

Welch's t-test on the replication values (unequal variances, the usual choice for simulation
output). When both runs used the same seed and replication count, their random streams are paired
by name (common random numbers) and ``paired=True`` gives the sharper paired t-test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from simulator.kpis import Results


def compare(a: Results, b: Results, alpha: float = 0.05, paired: bool = False,
            labels: tuple[str, str] = ("A", "B")) -> pd.DataFrame:
    """Per KPI: mean in A and B, B - A with its (1 - alpha) CI, p-value and ``significant``."""
    ka, kb = a.kpis, b.kpis
    keys = list(dict.fromkeys(list(zip(ka["kpi"], ka["subject"], strict=True))
                              + list(zip(kb["kpi"], kb["subject"], strict=True))))
    rows = []
    for kpi, subject in keys:
        va = ka[(ka["kpi"] == kpi) & (ka["subject"] == subject)].set_index("replication")["value"]
        vb = kb[(kb["kpi"] == kpi) & (kb["subject"] == subject)].set_index("replication")["value"]
        rows.append({"kpi": kpi, "subject": subject, **_difference(va, vb, alpha, paired, labels)})
    return pd.DataFrame(rows)


def _difference(va: pd.Series, vb: pd.Series, alpha: float, paired: bool,
                labels: tuple[str, str]) -> dict[str, float | bool]:
    la, lb = labels
    x, y = va.dropna(), vb.dropna()
    out: dict[str, float | bool] = {la: float(x.mean()) if len(x) else math.nan,
                                    lb: float(y.mean()) if len(y) else math.nan}
    diff = out[lb] - out[la]  # type: ignore[operator]
    out["difference"] = diff
    out["relative"] = diff / out[la] if out[la] not in (0, 0.0) and not math.isnan(out[la]) else math.nan  # type: ignore[arg-type]
    low = high = p = math.nan
    if paired:
        common = x.index.intersection(y.index)
        d = (y[common] - x[common]).to_numpy(dtype=float)
        if len(d) > 1:
            sd = float(np.std(d, ddof=1))
            half = float(stats.t.ppf(1 - alpha / 2, len(d) - 1) * sd / math.sqrt(len(d)))
            low, high = float(d.mean()) - half, float(d.mean()) + half
            p = float(stats.ttest_rel(y[common], x[common]).pvalue) if sd > 0 else (1.0 if d.mean() == 0 else 0.0)
    elif len(x) > 1 and len(y) > 1:
        va_, vb_ = float(np.var(x, ddof=1)) / len(x), float(np.var(y, ddof=1)) / len(y)
        se = math.sqrt(va_ + vb_)
        if se > 0:
            dof = (va_ + vb_) ** 2 / ((va_ ** 2) / (len(x) - 1) + (vb_ ** 2) / (len(y) - 1))
            half = float(stats.t.ppf(1 - alpha / 2, dof)) * se
            low, high = diff - half, diff + half
            p = float(stats.ttest_ind(y, x, equal_var=False).pvalue)
        else:
            low = high = diff
            p = 1.0 if diff == 0 else 0.0
    out["ci_low"], out["ci_high"], out["p_value"] = low, high, p
    out["significant"] = bool(not math.isnan(p) and p < alpha)
    return out
