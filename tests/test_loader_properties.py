"""Property tests (issue 14): the definition and scenario loaders and the expression evaluator, given arbitrary
input, raise only the project's own errors, and within bounds (no probe here may expand, nest or compute past
the limits of ``engine.limits``: a hang or a blow-up would show as a Hypothesis deadline or a crash).
"""

from __future__ import annotations

import contextlib
import json
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import WaooawError
from engine.model.expressions import evaluate
from engine.model.serialize import from_dict, from_json, from_yaml
from simulator.scenario import from_yaml as scenario_from_yaml

SETTINGS = settings(max_examples=150, deadline=5_000, suppress_health_check=[HealthCheck.too_slow])

# Plain data shaped like a definition or a scenario, with hostile values mixed in.
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-10**2000, 10**2000) | st.floats()
           | st.text(max_size=30) | st.sampled_from(["P7D", "PT1H", "R/PT0.001S", "P99999999999D", "x ** x",
                                                    "3999999**3999999 > 0", "2026-02-31", "start", "end",
                                                    "exclusive_gateway", "sub_process", "service_task"]))
KEYS = ["id", "name", "kind", "nodes", "flows", "source", "target", "condition", "timer", "sla", "retry",
        "attempts", "multiplier", "variables", "type", "metadata", "default", "design", "horizon", "arrivals",
        "tasks", "duration", "replications", "seed", "profile", "rate", "start", "warmup"]
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5),
                    max_leaves=30)

YAML_PIECES = ["id: x\n", "nodes:\n", "- {id: a, kind: start}\n", "&a [1, 2]\n", "*a\n", "[*a, *a, *a]\n",
               "a: &b [*b]\n", "!!python/object:os.system\n", "'" + "[" * 200, "{", "}", ": :", "\t", "\x00",
               "horizon: P7D\n", "design: customer_onboarding\n", "99999999999999999999999999\n", "? [a]\n",
               "<<: *a\n", "--- \n", "%YAML 1.1\n"]


def _only_project_errors(load: Any, value: Any) -> None:
    with contextlib.suppress(WaooawError):  # anything else escapes and fails the test
        load(value)


@SETTINGS
@given(data)
def test_definition_from_data_raises_only_project_errors(value: Any) -> None:
    _only_project_errors(lambda v: from_dict(v, "generated"), value)


@SETTINGS
@given(data)
def test_definition_yaml_and_json_raise_only_project_errors(value: Any) -> None:
    try:
        as_yaml = yaml.safe_dump(value)
    except (yaml.YAMLError, ValueError, RecursionError):
        as_yaml = str(value)
    _only_project_errors(lambda v: from_yaml(v, "generated.yaml"), as_yaml)
    _only_project_errors(lambda v: from_json(v, "generated.json"), json.dumps(value, default=str))


@SETTINGS
@given(st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=20), max_size=12).map("".join))
def test_definition_and_scenario_loaders_take_any_text(text: str) -> None:
    _only_project_errors(lambda v: from_yaml(v, "generated.yaml"), text)
    _only_project_errors(lambda v: from_json(v, "generated.json"), text)
    _only_project_errors(lambda v: scenario_from_yaml(v, "generated.scenario.yaml"), text)


@SETTINGS
@given(data)
def test_scenario_loader_raises_only_project_errors(value: Any) -> None:
    try:
        as_yaml = yaml.safe_dump(value)
    except (yaml.YAMLError, ValueError, RecursionError):
        as_yaml = str(value)
    _only_project_errors(lambda v: scenario_from_yaml(v, "generated.scenario.yaml"), as_yaml)


OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", " and ", " or ", " < ", " == ",
             " in ", " not in "]
ATOMS = ["x", "s", "xs", "d", "n", "9", "3999999", "10**9", "'ab'", "[1, 2]", "{'a': 1}", "None", "true",
         "len(s)", "max(xs)", "str(x)", "int(s)", "-1", "0.5", "1e308"]


@st.composite
def expressions_(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(ATOMS))]
    for _ in range(draw(st.integers(0, 6))):
        parts += [draw(st.sampled_from(OPERATORS)), draw(st.sampled_from(ATOMS))]
    source = "".join(parts)
    if draw(st.booleans()):
        source = f"[{source} for x in xs for y in s]"
    return source


@SETTINGS
@given(expressions_() | st.text(string.printable, max_size=40),
       st.fixed_dictionaries({"x": st.integers(-10**6, 10**7) | st.floats(), "n": st.integers(0, 10**9),
                              "s": st.text(max_size=50), "xs": st.lists(st.integers(), max_size=200),
                              "d": st.dictionaries(st.text(max_size=3), st.integers(), max_size=3)}))
def test_expression_evaluator_raises_only_project_errors(source: str, variables: dict[str, Any]) -> None:
    _only_project_errors(lambda v: evaluate(source, v), variables)
