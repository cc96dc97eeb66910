"""The simulator against queueing theory: M/M/c mean wait matches Erlang C within the replication CI."""

from __future__ import annotations

import pytest
from sim_support import erlang_c_wait, mmc_design, mmc_scenario

from simulator import simulate


@pytest.mark.parametrize(("c", "rho"), [(1, 0.5), (2, 0.7), (3, 0.8), (5, 0.6)])
def test_mmc_mean_wait_matches_erlang_c(c: int, rho: float) -> None:
    service = 600.0
    results = simulate(mmc_design(), mmc_scenario(c, rho, service))
    row = results.summary().set_index(["kpi", "subject"]).loc[("waiting_time_mean_h", "serve")]
    theory = erlang_c_wait(c, rho, service)
    mean, half = row["mean"] * 3600, row["half_width"] * 3600
    assert row["n"] == 10
    assert half < 0.2 * theory, "the CI is too wide to say anything"
    assert abs(mean - theory) <= half, f"c={c} rho={rho}: simulated {mean:.1f} s ± {half:.1f}, Erlang C {theory:.1f} s"


def test_mmc_utilisation_matches_offered_load() -> None:
    results = simulate(mmc_design(), mmc_scenario(3, 0.8, replications=6))
    row = results.summary().set_index(["kpi", "subject"]).loc[("utilisation", "clerk")]
    # rates are measured while cases arrive (warm-up to horizon), not over the drain that lets them finish
    assert abs(row["mean"] - 0.8) <= max(row["half_width"], 0.01) * 2
    # ... and so is throughput: in steady state the departure rate is the arrival rate
    s = results.scenario
    window_days = (s.horizon - s.warmup).total_seconds() / 86400
    arrived = results.summary().set_index(["kpi", "subject"]).loc[("cases_arrived", "")]["mean"]
    through = results.summary().set_index(["kpi", "subject"]).loc[("throughput_per_day", "")]
    assert abs(through["mean"] - arrived / window_days) <= max(through["half_width"], 0.01 * through["mean"]) * 2
