"""What-if: two scenarios side by side, the difference per KPI and whether it is significant.

Welch's t-test on the replication values (unequal variances, the usual choice for simulation
output). When both runs used the same seed and replication count, their random streams are paired
by name (common random numbers) and ``paired=True`` gives the sharper paired t-test.
"""

from __future__ import annotations

import pandas as pd

from engine.statistics import difference
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
        rows.append({"kpi": kpi, "subject": subject, **difference(va, vb, alpha, paired, labels)})
    return pd.DataFrame(rows)
