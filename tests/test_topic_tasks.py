"""A service task that names a topic, everywhere at once: model, validation, BPMN, simulator."""

from __future__ import annotations

import pytest
from sim_support import scenario

from engine.bpmn import from_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import ProcessBuilder, from_yaml
from simulator import simulate


def topic_design():
    b = ProcessBuilder("bus_review", variables={"pr_number": int, "vision_approved": bool})
    b.start().service("validate", topic="agent.wowvision.task.validate", inputs=["pr_number"],
                      outputs=["vision_approved"]).end("done")
    return b.build()


def test_a_topic_is_enough_and_round_trips_through_yaml_and_bpmn() -> None:
    d = topic_design()
    node = d.node("validate")
    assert (node.agent, node.topic) == (None, "agent.wowvision.task.validate")
    assert from_yaml(d.to_yaml()).node("validate").topic == node.topic
    assert from_bpmn(to_bpmn(d)).node("validate").topic == node.topic


def test_neither_agent_nor_topic_is_named_with_its_line() -> None:
    with pytest.raises(DefinitionError) as exc:
        from_yaml("id: p\nnodes:\n  - id: s\n    kind: service_task\n")
    (problem,) = exc.value.problems
    assert (problem.where, problem.line) == ("node 's'", 3)
    assert problem.message == "needs an agent (in-process) or a topic (external workers on the bus)"


def test_a_bad_topic_name_is_refused() -> None:
    with pytest.raises(DefinitionError, match="topic"):
        from_yaml("id: p\nnodes:\n  - {id: s, kind: service_task, topic: 'has spaces'}\n")


def test_the_simulator_treats_a_topic_task_as_work_with_a_duration() -> None:
    r = simulate(topic_design(), scenario(horizon="PT1H", drain="PT1H", arrivals={"interval": "PT10M", "limit": 3},
                                          tasks={"validate": {"duration": "PT5M"}}))
    summary = r.summary().set_index(["kpi", "subject"])
    assert summary.loc[("cases_completed", ""), "mean"] == 3
    assert summary.loc[("working_time_mean_h", "validate"), "mean"] == pytest.approx(5 / 60)
    assert summary.loc[("cycle_time_mean_h", ""), "mean"] == pytest.approx(5 / 60)
