"""Rollout by weight, the A/B table and the guardrail, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import register
from engine.model import ProcessBuilder
from engine.model.nodes import RetryPolicy
from engine.runtime import AgentContext, Engine, EngineError, VirtualClock
from engine.runtime.tables import RolloutChangeRow
from engine.security import Principal
from engine.versions import Guardrail, choose_version, get_rollout, rollout_history, set_rollout
from engine.versions.compare import compare_versions, version_table
from engine.versions.guardrail import check_guardrails


def _fails_for(share_in_tenths: int) -> Any:
    """An agent that fails (no retries) for business keys whose number ends in 0..share-1: a share of
    exactly ``share_in_tenths``/10 of keys ``K-0 .. K-n``, decided by the key, so the test is repeatable."""

    def agent(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
        if int(str(context.business_key).rsplit("-", 1)[1]) % 10 < share_in_tenths:
            raise ConnectionError("downstream refused")
        return {"ok": True}

    return agent


register("rollout_ok", _fails_for(1))       # 10 % fail
register("rollout_same", _fails_for(1))     # as good as rollout_ok
register("rollout_worse", _fails_for(3))    # 30 % fail


def _design(agent: str, title: str = "Check") -> Any:
    b = ProcessBuilder("checkout", variables={"ok": bool})
    b.start().service("check", agent=agent, outputs=["ok"], name=title,
                      retry=RetryPolicy(attempts=1)).end("done")
    return b.build()


@pytest.fixture
def engine(db_url: str) -> Engine:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_design("rollout_ok"))  # v1
    e.deploy(_design("rollout_ok", title="Check again"))  # v2 (same agent, other content)
    return e


def test_weights_split_new_instances_within_binomial_tolerance(engine: Engine) -> None:
    """1,000 starts without a business key (random instance ids) under 10/90: the count on v2 is
    Binomial(1000, 0.1), sd 9.5; we allow 4.5 sd (±43), a false failure with probability < 1e-5."""
    set_rollout(engine, "checkout", {1: 90, 2: 10}, actor="ramp-test", reason="canary")
    ids = engine.start_many("checkout", [{}] * 1000)
    frame = engine.instances(definition="checkout")
    assert len(ids) == 1000
    on_v2 = int((frame["definition_version"] == 2).sum())
    assert abs(on_v2 - 100) <= 43, on_v2


def test_business_key_is_sticky_and_a_growing_ramp_never_moves_a_key_back(engine: Engine) -> None:
    keys = [f"PR-{i}" for i in range(400)]
    set_rollout(engine, "checkout", {1: 90, 2: 10})
    first = {k: engine.instance(engine.start("checkout", {}, business_key=k)).version for k in keys[:200]}
    again = {k: engine.instance(engine.start("checkout", {}, business_key=k)).version for k in keys[:200]}
    assert first == again  # a retried start with the same key lands on the same version
    set_rollout(engine, "checkout", {1: 50, 2: 50})
    ramped = {k: choose_version("checkout", {1: 50, 2: 50}, k) for k in keys}
    at_ten = {k: choose_version("checkout", {1: 90, 2: 10}, k) for k in keys}
    assert all(ramped[k] == 2 for k in keys if at_ten[k] == 2)  # 10 % -> 50 %: keys only move to v2
    assert 0 < sum(v == 2 for v in at_ten.values()) < sum(v == 2 for v in ramped.values())
    set_rollout(engine, "checkout", {2: 100})
    assert {engine.instance(engine.start("checkout", {}, business_key=k)).version for k in keys[:50]} == {2}


def test_explicit_version_wins_and_no_policy_means_latest(engine: Engine) -> None:
    assert engine.instance(engine.start("checkout", {})).version == 2
    set_rollout(engine, "checkout", {1: 100})
    assert engine.instance(engine.start("checkout", {})).version == 1
    assert engine.instance(engine.start("checkout", {}, version=2)).version == 2


def test_bad_weights_are_refused_and_nothing_is_written(engine: Engine) -> None:
    def changes() -> int:
        with engine.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(RolloutChangeRow.__table__)).scalar_one()

    before = changes()
    with pytest.raises(EngineError, match="version 7 is not deployed"):
        set_rollout(engine, "checkout", {1: 50, 7: 50})
    with pytest.raises(EngineError, match="positive weight"):
        set_rollout(engine, "checkout", {1: 0, 2: 0})
    with pytest.raises(EngineError, match="must be a finite number"):
        set_rollout(engine, "checkout", {1: -1, 2: 5})
    with pytest.raises(EngineError, match="no deployed definition 'nope'"):
        set_rollout(engine, "nope", {1: 100})
    assert changes() == before and get_rollout(engine, "checkout") is None


def test_every_change_is_recorded_with_who_and_why(engine: Engine) -> None:
    set_rollout(engine, "checkout", {1: 90, 2: 10}, actor="ada", reason="canary")
    engine.clock.advance(timedelta(hours=1))
    set_rollout(engine, "checkout", {1: 50, 2: 50}, actor="grace", reason="looks fine")
    history = rollout_history(engine, "checkout")
    assert list(history["actor"]) == ["ada", "grace"]
    assert list(history["reason"]) == ["canary", "looks fine"]
    assert history["weights"].iloc[-1] == {1: 50.0, 2: 50.0}
    assert history["at"].iloc[1] - history["at"].iloc[0] == timedelta(hours=1)


def test_ab_table_and_comparison(db_url: str) -> None:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_design("rollout_ok"))
    e.deploy(_design("rollout_worse"))
    e.start_many("checkout", [{}] * 100, [f"K-{i}" for i in range(100)], version=1)
    e.start_many("checkout", [{}] * 100, [f"K-{i}" for i in range(100, 200)], version=2)
    e.run_until_idle()
    table = version_table(e, "checkout").set_index("version")
    assert table.loc[1, "started"] == 100 and table.loc[2, "started"] == 100
    assert table.loc[1, "failure_rate"] == pytest.approx(0.10)
    assert table.loc[2, "failure_rate"] == pytest.approx(0.30)
    assert table.loc[1, "completed"] == 90
    assert table.loc[1, "outcomes"] == {"done": 1.0}  # the end event each completed instance reached
    diff = compare_versions(e, "checkout", 1, 2).set_index(["metric", "subject"])
    failure = diff.loc[("failure_rate", "")]
    assert failure["difference"] == pytest.approx(0.20)
    assert failure["significant"] and failure["p_value"] < 0.01
    assert diff.loc[("outcome_share", "done"), "v1"] == 1.0
    assert not math.isnan(diff.loc[("cycle_time_h", "mean"), "v1"])
    with pytest.raises(EngineError, match="no instances"):
        compare_versions(e, "checkout", 1, 3)


@pytest.mark.parametrize(("candidate_agent", "rolled_back"), [("rollout_worse", True), ("rollout_same", False)])
def test_guardrail_rolls_back_a_worse_version_only(db_url: str, candidate_agent: str, rolled_back: bool) -> None:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_design("rollout_ok"))
    e.deploy(_design(candidate_agent))
    set_rollout(e, "checkout", {1: 50, 2: 50}, actor="ada", reason="A/B",
                guardrail=Guardrail(candidate=2, baseline=1, min_instances=150, alpha=0.05))
    for day in range(4):  # 100 starts a day; the guardrail is checked after each day
        e.start_many("checkout", [{}] * 100, [f"K-{day * 100 + i}" for i in range(100)])
        e.advance(timedelta(days=1))
        verdicts = check_guardrails(e)
        if day == 0:
            assert verdicts == []  # fewer than 150 started on each: no verdict yet, whatever the rates
    policy = get_rollout(e, "checkout")
    assert policy is not None
    history = rollout_history(e, "checkout")
    if rolled_back:
        assert policy.weights == {1: 100.0, 2: 0.0}
        assert history["actor"].iloc[-1] == "guardrail"
        assert "failure_rate of v2" in history["reason"].iloc[-1]
        assert {e.instance(i).version for i in e.start_many("checkout", [{}] * 20)} == {1}
    else:
        assert policy.weights == {1: 50.0, 2: 50.0} and len(history) == 1


def test_the_worker_checks_guardrails_while_it_runs_jobs(db_url: str) -> None:
    from engine.runtime.worker import run_worker

    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_design("rollout_ok"))
    e.deploy(_design("rollout_worse"))
    set_rollout(e, "checkout", {1: 50, 2: 50}, guardrail=Guardrail(candidate=2, baseline=1, min_instances=100))
    e.start_many("checkout", [{}] * 300, [f"K-{i}" for i in range(300)])
    ran = run_worker(db_url, poll=0.05, max_idle=0.3, guardrail_interval=0.0)
    assert ran >= 300
    assert get_rollout(e, "checkout").weights[2] == 0.0  # type: ignore[union-attr]
