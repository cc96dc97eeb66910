"""JSON and YAML: round trips are exact, and bad input is reported with node, field and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from model_strategies import GeneratedModel, generated_models
from seed_workflows import campaign, onboarding, pr_review

from engine.errors import DefinitionError, Problem
from engine.model import ProcessDefinition, from_dict, from_json, from_yaml, load, save
from engine.model.nodes import NODE_CLASSES
from engine.validate import errors_only


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line containing ``fragment``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def only(exc: pytest.ExceptionInfo[DefinitionError]) -> Problem:
    (problem,) = exc.value.problems
    return problem


# --- round trips ------------------------------------------------------------------------------------------


SEEDS = [pr_review, onboarding, campaign]


@pytest.mark.parametrize("builder", SEEDS)
def test_seed_workflows_round_trip_through_json_and_yaml(builder: object) -> None:
    d: ProcessDefinition = builder().build()  # type: ignore[operator]
    assert from_json(d.to_json()) == d
    assert from_yaml(d.to_yaml()) == d
    assert from_yaml(d.to_yaml()).content_hash() == d.content_hash()
    assert from_dict(json.loads(d.to_json(indent=None))) == d


def test_files_are_short_and_put_id_and_kind_first() -> None:
    d = pr_review().build()
    data = yaml.safe_load(d.to_yaml())
    for node in data["nodes"]:
        assert list(node)[:2] == ["id", "kind"]
    service = next(n for n in data["nodes"] if n["kind"] == "service_task")
    assert "retry" not in service and "metadata" not in service  # defaults are left out
    assert data["variables"] == [{"name": "pr_number", "type": "integer"},
                                 {"name": "vision_approved", "type": "boolean"}]


def test_save_and_load_by_extension(tmp_path: Path) -> None:
    d = campaign().build()
    for name in ("c.yaml", "c.yml", "c.json"):
        path = save(d, tmp_path / name)
        assert load(path) == d
    with pytest.raises(DefinitionError, match=r"unknown file type '\.txt'"):
        save(d, tmp_path / "c.txt")
    with pytest.raises(DefinitionError, match="cannot read"):
        load(tmp_path / "missing.yaml")


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(generated_models())
def test_generated_models_round_trip(m: GeneratedModel) -> None:
    d = m.definition
    assert from_yaml(d.to_yaml()) == d
    assert from_json(d.to_json()) == d
    assert from_json(d.to_json()).content_hash() == d.content_hash()


def test_generated_models_use_every_node_kind() -> None:
    """The property tests above are only as wide as the generator: check it reaches every kind."""
    seen: set[str] = set()

    @settings(max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated_models())
    def collect(m: GeneratedModel) -> None:
        seen.update(n.kind for n in m.definition.all_nodes())  # type: ignore[attr-defined]

    collect()
    assert seen == set(NODE_CLASSES)


# --- bad input: clear errors that name the place ------------------------------------------------------------

TYPO = """\
id: review
nodes:
  - id: start
    kind: start
  - id: validate
    kind: servce_task
    agent: agents:validate
  - id: done
    kind: end
flows: []
"""


def test_node_kind_typo_suggests_the_right_kind_and_gives_the_line() -> None:
    with pytest.raises(DefinitionError) as exc:
        from_yaml(TYPO, source="review.yaml")
    problem = only(exc)
    assert problem.where == "node 'validate'" and problem.line == line_of(TYPO, "id: validate")
    assert "unknown node kind 'servce_task'; did you mean 'service_task'?" in problem.message
    assert str(exc.value).startswith("review.yaml: node 'validate' (line 5)")


BAD_DURATIONS = """\
id: review
nodes:
  - id: start
    kind: start
  - id: call
    kind: service_task
    agent: a
    timeout: 5 minutes
  - id: wait
    kind: timer_catch
    timer: P1Y
  - id: approve
    kind: user_task
    sla: four hours
"""


def test_unparsable_durations_name_node_field_and_line() -> None:
    with pytest.raises(DefinitionError) as exc:
        from_yaml(BAD_DURATIONS)
    by_where = {p.where: p for p in exc.value.problems}
    assert set(by_where) == {"node 'call'", "node 'wait'", "node 'approve'"}  # every one, not only the first
    call, wait, approve = by_where["node 'call'"], by_where["node 'wait'"], by_where["node 'approve'"]
    assert call.message.startswith("field 'timeout': '5 minutes' is not an ISO-8601 duration")
    assert call.line == line_of(BAD_DURATIONS, "timeout:")
    assert wait.message.startswith("field 'timer': 'P1Y' uses years or months") and wait.line == line_of(
        BAD_DURATIONS, "timer: P1Y")
    assert approve.message.startswith("field 'sla'") and approve.line == line_of(BAD_DURATIONS, "sla:")


def test_unknown_and_missing_fields_are_placed() -> None:
    text = "id: p\nnodes:\n  - id: u\n    kind: user_task\n    asignee: ann\n  - {id: s, kind: service_task}\n" \
           "flows:\n  - {id: f, source: u}\n"
    with pytest.raises(DefinitionError) as exc:
        from_yaml(text)
    assert [(p.where, p.message, p.line) for p in exc.value.problems] == [
        ("node 'u'", "unknown field 'asignee'", 5),
        ("node 's'", "needs an agent (in-process) or a topic (external workers on the bus)", 6),
        ("flow 'f'", "field 'target' is required", 8),
    ]


def test_bad_fields_inside_a_sub_process_are_placed() -> None:
    text = """\
id: p
nodes:
  - id: sub
    kind: sub_process
    nodes:
      - id: inner
        kind: service_task
        agent: a
        retry: {attempts: 0}
"""
    with pytest.raises(DefinitionError) as exc:
        from_yaml(text)
    problem = only(exc)
    assert problem.where == "node 'inner'" and "retry.attempts" in problem.message
    assert problem.line == line_of(text, "retry:")


def test_flow_to_a_missing_node_is_named_by_validation(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("id: p\nnodes:\n  - {id: s, kind: start}\n  - {id: e, kind: end}\n"
                    "flows:\n  - {id: s_e, source: s, target: e}\n  - {id: to_nowhere, source: s, target: ghost}\n")
    d = load(path)  # loading checks fields; the graph is validation's job
    (problem,) = errors_only(d)
    assert problem.where == "to_nowhere" and "'ghost'" in problem.message


@pytest.mark.parametrize(("text", "line"), [
    ("id: p\nnodes:\n  - id: a\n    kind: start\n   - id: b\n", 5),
    ("id: p\nnodes: [ {id: a, kind: start}\nflows: []\n", 3),
    ("id: p\nname: 'unterminated\n", 3),
    ("id: p\n\tnodes: []\n", 2),
])
def test_malformed_yaml_gives_the_line(text: str, line: int) -> None:
    with pytest.raises(DefinitionError) as exc:
        from_yaml(text, source="bad.yaml")
    problem = only(exc)
    assert problem.where == "yaml" and problem.line == line
    assert f"bad.yaml: yaml (line {line})" in str(exc.value)


def test_malformed_json_gives_the_line() -> None:
    with pytest.raises(DefinitionError) as exc:
        from_json('{"id": "p",\n "nodes": [\n}')
    assert only(exc).where == "json" and only(exc).line == 3


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text"])
def test_a_file_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(DefinitionError, match="expected a mapping with id, nodes and flows"):
        from_yaml(text)
