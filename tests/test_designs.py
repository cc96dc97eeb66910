"""The seed designs: loadable by name, equal to their builders, valid, short, and runnable on the core."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from semantics_harness import Harness

import designs
from engine.registry import resolve
from engine.semantics import effects as fx
from engine.validate import validate


def test_all_four_designs_are_present() -> None:
    assert set(designs.names()) >= set(designs.NAMES)


@pytest.mark.parametrize("name", designs.NAMES)
def test_design_yaml_equals_its_builder_and_is_valid(name: str) -> None:
    loaded = designs.load_design(name)
    assert loaded == designs.build_design(name)
    assert [str(p) for p in validate(loaded)] == []


@pytest.mark.parametrize("name", designs.NAMES)
def test_builder_code_is_short_and_agents_resolve(name: str) -> None:
    module = __import__(f"designs.{name}", fromlist=["build"])
    body = [line for line in inspect.getsource(module.build).splitlines() if line.strip()]
    assert len(body) <= 25, f"{name} builder has {len(body)} lines"
    for node in designs.load_design(name).all_nodes():
        for ref in (getattr(node, "agent", None), getattr(node, "compensation", None)):
            if ref:
                assert callable(resolve(ref))


def test_unknown_design_name_lists_the_known_ones() -> None:
    with pytest.raises(FileNotFoundError, match="pr_review"):
        designs.load_design("nope")


def _auto(h: Harness) -> None:
    """Complete every service task with its demo agent, as an engine would."""
    for node in h.sem.definition.all_nodes():
        if node.kind == "service_task":
            agent = resolve(node.agent)
            h.auto[node.id] = lambda work, agent=agent: agent(work.inputs, None)


def test_pr_review_runs_both_ways() -> None:
    for pr, end in ((2, "deployed"), (3, "issue_created")):
        h = Harness(designs.load_design("pr_review"))
        _auto(h)
        h.start(pr_number=pr)
        assert h.status == "completed" and h.entered()[-1] == end


def test_onboarding_waits_the_trial_week() -> None:
    h = Harness(designs.load_design("customer_onboarding"))
    _auto(h)
    h.start(email="ada@example.com")
    assert h.status == "running"
    h.advance(timedelta(days=7))
    assert h.status == "completed" and h.entered()[-1] in ("active", "nurtured", "churned")


def test_campaign_rejection_discards_every_draft() -> None:
    h = Harness(designs.load_design("marketing_campaign"))
    _auto(h)
    h.auto.pop("approval", None)
    h.start(campaign="launch")
    h.done("approval", approved=False)
    while comp := [w for w in h.open_work() if w.kind == "compensation"]:
        h.done_token(comp[0].token_id)
    undone = [w.node_id for w in h.of(fx.StartWork) if w.kind == "compensation"]
    assert sorted(undone) == ["create_blog", "create_email", "create_social"]
    assert h.status == "completed" and h.entered()[-1] == "rejected"


def test_incident_escalates_without_acknowledgement_and_reminds_meanwhile() -> None:
    h = Harness(designs.load_design("incident_response"))
    _auto(h)
    h.start(incident_id="INC-1", summary="site down")
    h.advance(timedelta(minutes=15))
    # reminders at 5 and 10 minutes; at 15 the deadline (armed first) wins the tie and cancels the cycle
    assert len(h.sent) == 2
    assert [w.node_id for w in h.open_work()] == ["escalated_ack"]
    h.done("escalated_ack")
    assert h.message("incident.resolved", correlation="INC-1")
    assert h.status == "completed" and h.entered()[-1] == "closed"
