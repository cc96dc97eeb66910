"""What-if comparisons, figures and the simulate command."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from sim_support import mmc_design, mmc_scenario
from typer.testing import CliRunner

from engine.model import save
from simulator import compare, simulate
from simulator import plots as figures
from simulator.scenario import dump_yaml


def test_one_more_person_cuts_the_wait_significantly() -> None:
    base = mmc_scenario(2, 0.85, cases=1500, replications=6)
    a = simulate(mmc_design(), base)
    b = simulate(mmc_design(), base.with_pool("clerk", 3))
    table = compare(a, b, labels=("2 clerks", "3 clerks")).set_index(["kpi", "subject"])
    wait = table.loc[("waiting_time_mean_h", "serve")]
    assert wait["3 clerks"] < wait["2 clerks"] and wait["significant"] and wait["ci_high"] < 0
    assert wait["p_value"] < 0.05
    # same arrivals (common random numbers): the arrival count does not change
    arrived = table.loc[("cases_arrived", "")]
    assert arrived["difference"] == 0 and not arrived["significant"]
    paired = compare(a, b, paired=True).set_index(["kpi", "subject"]).loc[("waiting_time_mean_h", "serve")]
    assert paired["significant"] and paired["difference"] == wait["difference"]


def test_same_scenario_is_not_significant() -> None:
    s = mmc_scenario(2, 0.6, cases=500, replications=5)
    a = simulate(mmc_design(), s)
    b = simulate(mmc_design(), s, seed=s.seed + 100)
    row = compare(a, b).set_index(["kpi", "subject"]).loc[("waiting_time_mean_h", "serve")]
    assert row["ci_low"] <= 0 <= row["ci_high"] or not row["significant"]


def test_figures_are_figures() -> None:
    r = simulate(mmc_design(), mmc_scenario(2, 0.7, cases=300, replications=2))
    for fig in (figures.cycle_time_histogram(r), figures.queue_length(r), figures.utilisation_bars(r)):
        assert isinstance(fig, Figure) and fig.axes and fig.axes[0].has_data()


def test_simulate_command(tmp_path) -> None:
    from engine.cli import app  # the project's CLI: its top-level handler reports bad input

    design = save(mmc_design(), tmp_path / "mmc.yaml")
    (tmp_path / "mmc.scenario.yaml").write_text(dump_yaml(mmc_scenario(2, 0.7, cases=300, replications=2)))
    log, kpis, plots = tmp_path / "log.csv", tmp_path / "kpis.csv", tmp_path / "plots"
    result = CliRunner().invoke(app, ["simulate", str(design), "--replications", "3", "--log", str(log),
                                      "--kpis", str(kpis), "--plots", str(plots), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "waiting_time_mean_h" in result.output and "3 replication(s)" in result.output
    assert pd.read_csv(log)["replication"].nunique() == 3
    assert set(pd.read_csv(kpis)["n"]) == {3}
    assert sorted(p.name for p in plots.iterdir()) == ["cycle_time.png", "queue_length.png", "utilisation.png"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon: P1D\narrivals: {interval: PT1M}\ntasks: {nope: {duration: PT1M}}\n")
    result = CliRunner().invoke(app, ["simulate", str(design), "-s", str(bad), "--no-progress"])
    assert result.exit_code == 1 and "tasks.nope (line 3)" in result.output  # input problems: exit 1
