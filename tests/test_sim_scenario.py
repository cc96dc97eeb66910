"""Scenarios: validated fields with placed errors, checks against a design, distributions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sim_support import mmc_design

from engine.model import ProcessBuilder
from simulator.distributions import Distribution, DistributionError
from simulator.scenario import ScenarioError, dump_yaml, from_json, from_yaml, load

BAD = """\
horizon: P1D
arrivals:
  poisson: {rate: 4, per: hour}
pools:
  clerk: {size: 0}
tasks:
  serve:
    durration: PT5M
  other:
    duration: {exponential: {mean: -3}}
branches:
  gw: {a: 1.5}
"""


def test_field_errors_name_field_and_line() -> None:
    with pytest.raises(ScenarioError) as info:
        from_yaml(BAD, "s.yaml")
    found = {(p.where, p.line) for p in info.value.problems}
    assert found == {("pools.clerk.size", 5), ("tasks.serve.durration", 8), ("tasks.other.duration", 10),
                     ("branches.gw.a", 12)}
    text = str(info.value)
    assert "did you mean 'duration'" in text and "exponential.mean must be > 0" in text and "s.yaml" in text


@pytest.mark.parametrize(("arrivals", "message"), [
    ({}, "exactly one of"),
    ({"poisson": {"rate": 1}, "interval": "PT1M"}, "got poisson, interval"),
    ({"interval": "PT0S"}, "interval must be > 0"),
    ({"profile": {"weekdays": {"mon": 0}}}, "at least one > 0"),
    ({"profile": {"weekdays": {"mon": 5}, "hours": {"9-25": 1}}}, "whole hours"),
    ({"profile": {"weekdays": {"mon": 5}, "timezone": "Mars/Olympus"}}, "unknown time zone"),
    ({"poisson": {"rate": 1, "per": "fortnight"}}, "per"),
])
def test_arrival_errors(arrivals: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        from_json(json.dumps({"horizon": "P1D", "arrivals": arrivals}))


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ScenarioError) as info:
        from_yaml("horizon: P1D\narrivals: [\n")
    assert info.value.problems[0].line is not None


def test_missing_file_and_required_fields(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match=r"horizon.*is required"):
        from_yaml("arrivals: {interval: PT1M}\n")


def test_warmup_must_fit() -> None:
    with pytest.raises(ScenarioError, match="warmup"):
        from_yaml("horizon: PT1H\nwarmup: PT2H\narrivals: {interval: PT1M}\n")


def design():
    b = ProcessBuilder("d", variables={"ok": bool})
    gate = b.start().service("check", agent="a", outputs=["ok"]).exclusive("gw")
    gate.when("ok").user("approve", title="A", assignee="lead", sla="PT4H", sla_calendar="office",
                         on_timeout="escalate:cto").end("e1")
    gate.otherwise().task("reject").end("e2")
    return b.build()


CHECKED = """\
horizon: P1D
arrivals: {interval: PT1M}
tasks:
  chek: {duration: PT1M}
  check: {outputs: {okay: {bernoulli: 0.5}}}
  reject: {pool: nobody}
branches:
  gw: {e1: 0.5, approve: 0.2}
pools:
  helpers: {size: 2, calendar: weekend}
"""


def test_check_against_the_design_places_every_problem() -> None:
    s = from_yaml(CHECKED, "c.yaml")
    problems = s.check(design())
    errors = {(p.where, p.line): p.message for p in problems if p.severity == "error"}
    assert "did you mean 'check'" in errors[("tasks.chek", 4)]
    assert "would be dropped" in errors[("tasks.check.outputs.okay", 5)]
    assert "not declared under pools" in errors[("tasks.reject.pool", 6)]
    assert "not an outgoing flow" in errors[("branches.gw.e1", 8)]
    assert "add up to 1" in errors[("branches.gw", 8)]
    assert "weekend" in errors[("pools.helpers.calendar", 10)]
    assert any("'office'" in m for m in errors.values())
    warnings = [p.message for p in problems if p.severity == "warning"]
    assert any("unlimited people" in m for m in warnings) and any("escalates to 'cto'" in m for m in warnings)
    with pytest.raises(ScenarioError):
        s.validate_for(design())


def test_scenario_round_trips_through_yaml() -> None:
    text = ("horizon: P30D\nwarmup: P1D\nreplications: 5\nseed: 3\n"
            "arrivals: {poisson: {rate: 40, per: day}}\npools: {lead: {size: 2}}\n"
            "tasks: {serve: {duration: {triangular: [PT5M, PT10M, PT30M]}, outputs: {x: {choice: {a: 0.5, b: 0.5}}}}}\n"
            "variables: {score: {uniform: [0, 100]}, tier: gold}\n")
    s = from_yaml(text)
    again = from_yaml(dump_yaml(s))
    assert again == s
    assert s.with_pool("lead", 3).pools["lead"].size == 3 and s.pools["lead"].size == 2
    assert s.check(mmc_design()) == [] or all(p.severity != "error" for p in s.check(mmc_design()))


@pytest.mark.parametrize(("spec", "mean"), [
    ({"exponential": "PT10M"}, 600), ({"normal": {"mean": 100, "sd": 10}}, 100),
    ({"lognormal": {"mean": "PT1H", "sd": "PT30M"}}, 3600), ({"triangular": [0, 30, 60]}, 30),
    ({"uniform": {"low": 10, "high": 20}}, 15), ({"empirical": [1, 2, 3, 10]}, 4), ({"gamma": {"mean": 5, "sd": 2}}, 5),
    ("PT2M", 120), (7, 7),
])
def test_distribution_means(spec, mean) -> None:
    d = Distribution(spec)
    assert d.mean == pytest.approx(mean)
    draw = d.sampler(np.random.default_rng(1))
    values = np.array([draw() for _ in range(20000)])
    assert values.mean() == pytest.approx(mean, rel=0.03)
    assert (values >= 0).all()


def test_normal_is_truncated_at_zero_not_clipped() -> None:
    draw = Distribution({"normal": {"mean": 1, "sd": 2}}).sampler(np.random.default_rng(2))
    values = np.array([draw() for _ in range(5000)])
    assert (values >= 0).all() and (values == 0).mean() < 0.001


def test_value_distributions() -> None:
    rng = np.random.default_rng(3)
    flips = [Distribution({"bernoulli": 0.2}, values=True).sampler(rng)() for _ in range(1)]
    assert isinstance(flips[0], bool)
    tiers = Distribution({"choice": {"gold": 0.25, "silver": 0.75}}, values=True).sampler(rng)
    seen = [tiers() for _ in range(4000)]
    assert set(seen) == {"gold", "silver"} and abs(seen.count("gold") / 4000 - 0.25) < 0.03
    assert Distribution("gold", values=True).sampler(rng)() == "gold"


@pytest.mark.parametrize(("spec", "message"), [
    ({"poisson": 3}, "unknown distribution"), ({"exponential": 1, "normal": 2}, "one of"),
    ({"triangular": [3, 1, 2]}, "low <= mode"), ({"uniform": [2, 1]}, "low < high"),
    ({"bernoulli": 1.5}, "between 0 and 1"), ({"choice": {"a": 0.5}}, "add up to 1"),
    ({"normal": {"mean": 1}}, "missing"), ({"empirical": []}, "non-empty"), ("soon", "ISO-8601"),
])
def test_distribution_errors(spec, message) -> None:
    with pytest.raises(DistributionError, match=message):
        Distribution(spec)
