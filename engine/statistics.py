"""Significance of a difference between two samples: Welch's t-test for means, the two-proportion
z-test for rates. Shared by the simulator's what-if comparison and the engine's A/B comparison of
versions, so both speak the same statistics.

Sources: Welch (1947), "The generalization of 'Student's' problem when several different population
variances are involved"; the pooled two-proportion z-test as in Agresti, *Categorical Data Analysis*, §2.1.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy, pandas and scipy are imported where a test runs: importing the engine stays light
    import pandas as pd


def difference(va: pd.Series, vb: pd.Series, alpha: float = 0.05, paired: bool = False,
               labels: tuple[str, str] = ("A", "B")) -> dict[str, float | bool]:
    """Means of A and B, B - A with its (1 - alpha) interval, Welch's (or, ``paired``, the paired)
    t-test p-value and ``significant``. Series are indexed by replication when paired."""
    import numpy as np
    from scipy import stats

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
            with warnings.catch_warnings():  # nearly equal samples: scipy warns of precision loss, p is still right
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(stats.ttest_ind(y, x, equal_var=False).pvalue)
        else:
            low = high = diff
            p = 1.0 if diff == 0 else 0.0
    out["ci_low"], out["ci_high"], out["p_value"] = low, high, p
    out["significant"] = bool(not math.isnan(p) and p < alpha)
    return out


def proportions(successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05,
                labels: tuple[str, str] = ("A", "B"), alternative: str = "two-sided") -> dict[str, float | bool]:
    """Rates ``successes / n`` of A and B, B - A with its Wald (1 - alpha) interval, and the pooled
    two-proportion z-test's p-value. ``alternative``: ``two-sided``, ``greater`` (B's rate is higher) or
    ``less``. With an empty sample the rates and p-value are NaN and nothing is significant."""
    la, lb = labels
    pa = successes_a / n_a if n_a else math.nan
    pb = successes_b / n_b if n_b else math.nan
    out: dict[str, float | bool] = {la: pa, lb: pb, "difference": pb - pa,
                                    "relative": (pb - pa) / pa if n_a and pa else math.nan}
    low = high = p = math.nan
    if n_a and n_b:
        from scipy import stats

        wald = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
        z_half = float(stats.norm.ppf(1 - alpha / 2))
        low, high = (pb - pa) - z_half * wald, (pb - pa) + z_half * wald
        pooled = (successes_a + successes_b) / (n_a + n_b)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        if se > 0:
            z = (pb - pa) / se
            if alternative == "greater":
                p = float(stats.norm.sf(z))
            elif alternative == "less":
                p = float(stats.norm.cdf(z))
            else:
                p = float(2 * stats.norm.sf(abs(z)))
        else:
            p = 1.0
    out["ci_low"], out["ci_high"], out["p_value"] = low, high, p
    out["significant"] = bool(not math.isnan(p) and p < alpha)
    return out
