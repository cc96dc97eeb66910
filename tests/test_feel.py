"""FEEL as a second condition language (issue 16: the corpus's Camunda 8 and Trisotech conditions), names with
spaces, and the BPMN elements that came with them: business rule tasks run by an agent, print-only scripts.

FEEL is translated into the syntax tree our conditions parse to (``engine.model.feel``), so the engine and the
simulator evaluate it with one evaluator and the same limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError, ExpressionError
from engine.limits import override
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.expressions import check, evaluate, is_feel, variable_names
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RED = '= some risk in riskLevels satisfies risk = "red"'


@pytest.mark.parametrize(("source", "variables", "expected"), [
    ('Vacation Approval = "Approved"', {"Vacation Approval": "Approved"}, True),
    ('Vacation Approval = "Approved"', {"Vacation Approval": "Rejected"}, False),
    ('Vacation Approval != "Approved"', {}, True),  # a missing variable is null
    (RED, {"riskLevels": ["green", "red"]}, True),
    (RED, {"riskLevels": ["green"]}, False),
    (RED, {"riskLevels": []}, False),
    ('= every risk in riskLevels satisfies risk = "yellow"', {"riskLevels": ["yellow", "yellow"]}, True),
    ('= every risk in riskLevels satisfies risk = "yellow"', {"riskLevels": ["yellow", "red"]}, False),
    ('= every risk in riskLevels satisfies risk = "yellow"', {"riskLevels": []}, True),  # DMN 1.3 §10.3.2.10
    ("some a in xs, b in ys satisfies a + b = 10", {"xs": [1, 2], "ys": [8, 9]}, True),
    ("x in [1..5]", {"x": 5}, True),
    ("x in (1..5)", {"x": 5}, False),
    ("x in ]1..5]", {"x": 1}, False),
    ('level in ["gold", "platinum"]', {"level": "gold"}, True),
    ("amount between 100 and 200 and not(blocked)", {"amount": 150, "blocked": False}, True),
    ("if order != null then order.total > 100 else false", {"order": {"total": 120}}, True),
    ("if order != null then order.total > 100 else false", {"order": None}, False),
    ('string length(customer name) >= 3 and upper case(customer name) = "ANN"', {"customer name": "ann"}, True),
    ("= amount * 2 ** 2 > 10", {"amount": 3}, True),
    ('"a\\"b" = quote', {"quote": 'a"b'}, True),
    ("Service Level == 'Premium'", {"Service Level": "Premium"}, True),  # ours, with a name with spaces
])
def test_feel_subset_evaluates(source: str, variables: dict[str, object], expected: bool) -> None:
    assert evaluate(source, variables) is expected


def test_names_with_spaces_are_one_variable_and_bound_names_are_not_read() -> None:
    assert variable_names('Vacation Approval = "Approved" and Days Off > 3') == {"Vacation Approval", "Days Off"}
    assert variable_names(RED) == {"riskLevels"}
    assert variable_names("Service Level == 'Premium' and not approved") == {"Service Level", "approved"}
    # JUEL's word operators and FEEL's keywords never join a name
    assert check("${not empty orders}") is not None
    assert variable_names("x in [1..5] and y > 2") == {"x", "y"}


def test_which_language_a_condition_is_in() -> None:
    assert not is_feel("score >= 70 and not churned")
    assert not is_feel("Service Level == 'Premium'")
    assert is_feel('Vacation Approval = "Approved"')
    assert is_feel("= approved")  # Zeebe's mark


@pytest.mark.parametrize(("source", "said"), [
    ('= date("2020-01-01") < today', "not in the subset"),  # not a function of the subset
    ("{a: 1}.a = 1", "contexts"),
    ("xs[1] = 2", "filters and indexes"),
    ("for x in xs return x * 2", "'for' expressions"),
    ("x instance of number", "'instance of'"),
    ('Vacation Approval = ', "expected a value, found the end at column"),
    ('= "open', "unexpected '\"'"),
    ("import os", "Python keyword"),
    ('= a = "\\q"', "unknown escape"),
])
def test_what_is_not_in_the_subset_is_refused_with_the_reason(source: str, said: str) -> None:
    problem = check(source)
    assert problem is not None and said in problem


def test_feel_keeps_the_limits_of_conditions() -> None:
    with override(max_expression_nodes=20):
        assert "too large" in (check(" or ".join(f'x = "{i}"' for i in range(20)) + " or y = z") or "")
    with override(max_string_length=10), pytest.raises(ExpressionError, match=r"too long"):
        evaluate('= a + "0123456789" = b', {"a": "xyz", "b": ""})
    assert "nested too deeply" in (check("= " + "(" * 400 + "1" + ")" * 400) or "")


def risk_check() -> ProcessDefinition:
    """A Camunda 8 style gateway: a FEEL some ... satisfies routes red risks to a person."""
    b = ProcessBuilder("risk_check", variables={"riskLevels": "any"})
    gate = b.start().exclusive("risky")
    gate.when(RED).user("review", assignee="ann").end("reviewed")
    gate.otherwise().end("auto")
    return b.build()


@pytest.mark.parametrize(("levels", "reviewed"), [(["green", "red"], True), (["green", "yellow"], False)])
def test_engine_and_simulator_take_the_same_branch(db_url: str, levels: list[str], reviewed: bool) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(risk_check())
    view = engine.instance(engine.start("risk_check", {"riskLevels": levels}))
    assert (view.active_nodes == ["review"]) is reviewed
    assert (view.status == "completed") is not reviewed
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, pools={"ann": {"size": 1}},
                 variables={"riskLevels": levels}, tasks={"review": {"duration": 900}})
    (row,) = simulate(risk_check(), s).cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == (timedelta(minutes=15) if reviewed else timedelta(0))


def test_feel_conditions_import_as_written_and_export_with_their_language() -> None:
    xml = doc('''<bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="g" default="f3"/>
      <bpmn:endEvent id="yes"/><bpmn:endEvent id="no"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g"/>
      <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="yes">
        <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
  language="https://www.omg.org/spec/DMN/20191111/FEEL/">Vacation Approval = "Approved"</bpmn:conditionExpression>
      </bpmn:sequenceFlow>
      <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="no"/>''')
    d = import_bpmn(xml).definition
    assert d.index.flows["f2"].condition == 'Vacation Approval = "Approved"'
    out = to_bpmn(d)
    assert 'language="https://www.omg.org/spec/DMN/20191111/FEEL/">Vacation Approval = "Approved"<' in out
    assert import_bpmn(out).definition == d
    zeebe = to_bpmn(risk_check())
    assert ">" + RED + "<" in zeebe
    assert "DMN/20191111/FEEL" not in zeebe  # '=' marks it already
    assert import_bpmn(zeebe).definition == risk_check()


def test_a_condition_neither_ours_nor_feel_is_refused_with_both_reasons() -> None:
    xml = doc('''<bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="g" default="f3"/>
      <bpmn:endEvent id="yes"/><bpmn:endEvent id="no"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g"/>
      <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="yes">
        <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
          language="http://www.java.com/java">return "True".equalsIgnoreCase(x);</bpmn:conditionExpression>
      </bpmn:sequenceFlow>
      <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="no"/>''')
    with pytest.raises(DefinitionError) as caught:
        import_bpmn(xml)
    (problem,) = [p for p in caught.value.problems if p.where != "import"]
    assert problem.where == "sequenceFlow 'f2'" and "does not parse" in problem.message
    assert "nor as FEEL" in problem.message and problem.line


BUSINESS_RULES = '''<bpmn:startEvent id="s"/>
  <bpmn:businessRuleTask id="assign" name="Assign approver" camunda:decisionRef="invoice-assign-approver"
                         camunda:resultVariable="approverGroups" camunda:mapDecisionResult="collectEntries"/>
  <bpmn:businessRuleTask id="risk" name="Check risk">
    <bpmn:extensionElements><zeebe:taskDefinition type="risk_worker" retries="5"/></bpmn:extensionElements>
  </bpmn:businessRuleTask>
  <bpmn:businessRuleTask id="dmn8" name="Zeebe decision">
    <bpmn:extensionElements><zeebe:calledDecision decisionId="discount" resultVariable="discount"/>
    </bpmn:extensionElements>
  </bpmn:businessRuleTask>
  <bpmn:businessRuleTask id="plain"/>
  <bpmn:endEvent id="e"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="assign"/>
  <bpmn:sequenceFlow id="f2" sourceRef="assign" targetRef="risk"/>
  <bpmn:sequenceFlow id="f3" sourceRef="risk" targetRef="dmn8"/>
  <bpmn:sequenceFlow id="f4" sourceRef="dmn8" targetRef="plain"/>
  <bpmn:sequenceFlow id="f5" sourceRef="plain" targetRef="e"/>'''


def test_a_business_rule_task_is_a_service_task_run_by_an_agent() -> None:
    result = import_bpmn(doc(BUSINESS_RULES))
    d = result.definition
    n = d.node
    assert (n("assign").kind, n("assign").agent, n("assign").output_variables) == (
        "service_task", "invoice-assign-approver", ["approverGroups"])
    assert (n("risk").agent, n("risk").retry.attempts) == ("risk_worker", 5)  # a Camunda 8 job worker
    assert (n("dmn8").agent, n("dmn8").output_variables) == ("discount", ["discount"])
    assert n("plain").agent == "plain"
    assert {n(i).metadata["bpmn"] for i in ("assign", "risk", "dmn8", "plain")} == {"businessRuleTask"}
    said = [(w.where, w.message) for w in result.warnings]
    assert any(where == "businessRuleTask 'assign'" and "evaluates no DMN" in m for where, m in said)
    assert any(where == "businessRuleTask 'plain'" and "named after the task id" in m for where, m in said)
    xml = to_bpmn(d)
    assert xml.count("<bpmn:businessRuleTask ") == 4
    back = import_bpmn(xml).definition
    assert back == d and to_bpmn(back) == xml


def test_a_script_that_only_prints_is_a_task_that_does_nothing() -> None:
    xml = doc('''<bpmn:startEvent id="s"/>
      <bpmn:scriptTask id="hello" scriptFormat="groovy"><bpmn:script>println 'hello world'</bpmn:script>
      </bpmn:scriptTask>
      <bpmn:scriptTask id="java" scriptFormat="java"><bpmn:script>System.out.println("a" + b);
// done
System.out.print("c");</bpmn:script></bpmn:scriptTask>
      <bpmn:scriptTask id="sets" scriptFormat="java"><bpmn:script>System.out.println("a");
kcontext.setVariable("a", 1);</bpmn:script></bpmn:scriptTask>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="hello"/>
      <bpmn:sequenceFlow id="f2" sourceRef="hello" targetRef="java"/>
      <bpmn:sequenceFlow id="f3" sourceRef="java" targetRef="sets"/>
      <bpmn:sequenceFlow id="f4" sourceRef="sets" targetRef="e"/>''')
    with pytest.raises(DefinitionError) as caught:
        import_bpmn(xml)
    assert [p.where for p in caught.value.problems if p.where != "import"] == ["scriptTask 'sets'"]
    result = import_bpmn(xml, lenient=True)
    hello = result.definition.node("hello")
    assert (hello.kind, hello.metadata["script"], hello.metadata["script_format"]) == (
        "task", "println 'hello world'", "groovy")
    assert any("only prints" in w.message for w in result.warnings if w.where == "scriptTask 'hello'")
    out = to_bpmn(result.definition)
    assert "println 'hello world'</bpmn:script>" in out and 'scriptFormat="groovy"' in out
    assert import_bpmn(out, lenient=True).definition == result.definition
