"""Every seed design simulates with the scenario file kept next to it in designs/."""

from __future__ import annotations

import math

import pytest

import designs
from simulator import load_scenario, simulate

NAMES = [n for n in designs.NAMES if designs.scenario_path(n) is not None]


def test_every_design_has_a_scenario() -> None:
    assert list(designs.NAMES) == NAMES


@pytest.fixture(scope="module", params=NAMES)
def run(request):
    name = request.param
    definition = designs.load_design(name)
    scenario = load_scenario(designs.scenario_path(name))
    assert scenario.design == name
    return name, simulate(definition, scenario, replications=3)


def test_design_simulates_cleanly(run) -> None:
    _, results = run
    assert results.warnings == []
    summary = results.summary().set_index(["kpi", "subject"])
    assert summary.loc[("cases_completed", ""), "mean"] > 0
    assert summary.loc[("incidents", ""), "mean"] == 0
    assert not math.isnan(summary.loc[("cycle_time_mean_h", ""), "half_width"])
    log = results.activity_log()
    assert len(log) > 0 and log["case:concept:name"].str.startswith("r").all()


def test_design_specific_behaviour(run) -> None:
    name, results = run
    entered = {k: sum(r.entered.get(k, 0) for r in results.runs) for k in results.runs[0].entered}
    summary = results.summary().set_index(["kpi", "subject"])["mean"]
    if name == "pr_review":
        decided = entered["deployed"] + entered["issue_created"]
        assert abs(entered["deployed"] / decided - 0.8) < 0.05
        retried = results.activity_log().query("activity_id == 'deploy' and attempt > 1")
        assert len(retried) > 0
    elif name == "customer_onboarding":
        assert summary[("cycle_time_p50_h", "")] == pytest.approx(7 * 24, abs=0.5)
        ends = entered["active"] + entered["nurtured"] + entered["churned"]
        assert abs(entered["active"] / ends - 0.25) < 0.05
        assert abs(entered["nurtured"] / ends - 0.75 * 0.5) < 0.05
    elif name == "marketing_campaign":
        assert 0 < summary[("sla_breach_rate", "approval")] < 1
        log = results.activity_log()
        assert (log["org:group"] == "cto").any()  # escalated approvals
        assert entered.get("rolled_back", 0) > 0 and (log["kind"] == "compensation").any()
    elif name == "incident_response":
        assert entered["escalated_ack"] > 0 and entered["reminded"] > 0
        assert abs(entered["closed"] / (entered["closed"] + entered["reviewed"]) - 0.9) < 0.06
