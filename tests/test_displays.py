"""What a notebook shows: results as a bounded KPI table, figures as PNG without magics, no stray progress output."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

import designs
from simulator import load_scenario, plots, simulate
from simulator import progress as progress_module
from simulator.display import MAX_ROWS

DESIGNS = Path(designs.__file__).parent


@pytest.fixture(scope="module")
def onboarding():
    return simulate(designs.load_design("customer_onboarding"),
                    load_scenario(DESIGNS / "customer_onboarding.scenario.yaml"), replications=3)


def test_results_show_the_kpi_table_not_the_raw_data(onboarding) -> None:
    html = onboarding._repr_html_()
    text = repr(onboarding)
    summary = onboarding.summary()
    assert len(html) < 20_000 and len(text) < 20_000, "a result's display stays a few kB"
    assert len(onboarding.event_log()) > 1_000  # ... whatever the size of the run behind it
    assert "95% CI" in html and "cycle_time_mean_h" in html
    assert html.count("<tr>") == 1 + min(len(summary), MAX_ROWS)
    mean = summary.set_index(["kpi", "subject"]).loc[("cycle_time_mean_h", ""), "mean"]
    assert f"{mean:,.1f}" in html
    assert "case:concept:name" not in html and "time:timestamp" not in text
    assert text.splitlines()[0].startswith("customer_onboarding: 3 replications")


def test_long_kpi_tables_are_cut_with_a_pointer(onboarding) -> None:
    from simulator.display import html

    short = html(onboarding, max_rows=3)
    assert short.count("<tr>") == 4 and f"{len(onboarding.summary()) - 3} more KPI rows" in short


def test_figures_render_as_png_without_pyplot(onboarding) -> None:
    for fig in (plots.cycle_time_histogram(onboarding), plots.queue_length(onboarding),
                plots.utilisation_bars(onboarding)):
        png = fig._repr_png_()
        assert png.startswith(b"\x89PNG") and 5_000 < len(png) < 200_000
        assert "Figure" in repr(fig) and len(repr(fig)) < 200


def test_no_progress_bar_when_nobody_sees_it(monkeypatch) -> None:
    err = io.StringIO()  # a pipe or a log file: not a terminal
    monkeypatch.setattr(sys, "stderr", err)
    assert progress_module.bar(100, "x") is None
    simulate(designs.load_design("pr_review"), load_scenario(DESIGNS / "pr_review.scenario.yaml"), replications=2,
             progress=True)
    assert err.getvalue() == ""


def test_progress_bar_in_a_terminal(monkeypatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    simulate(designs.load_design("pr_review"), load_scenario(DESIGNS / "pr_review.scenario.yaml"), replications=2,
             progress=True)
    out = err.getvalue()
    assert "simulating pr_review" in out and "2.0/2 replications" in out
    assert out.count("\r") < 50, "redrawn at most every 0.2 s, not once per tick"


def test_inbox_and_history_are_frames(tmp_path) -> None:
    from engine.runtime import Engine, VirtualClock
    from engine.security import Principal

    engine = Engine(f"sqlite:///{tmp_path}/x.db", clock=VirtualClock(), principal=Principal.system())
    engine.deploy(designs.load_design("marketing_campaign"))
    instance = engine.start("marketing_campaign", {"campaign": "spring"})
    engine.run_until_idle()
    inbox = engine.inbox_frame("marketing-lead")
    assert isinstance(inbox, pd.DataFrame) and list(inbox["node_id"]) == ["approval"]
    assert len(inbox._repr_html_()) < 10_000
    view = engine.instance(instance)
    assert isinstance(view.history, pd.DataFrame) and len(view._repr_html_()) < 60_000
