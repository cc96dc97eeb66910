"""Script tasks (issue 16, item 6): the safe expression language plus assignments, run by the same bounded
evaluator as conditions; anything else refused with the line and the reason. Everywhere at once: the script
parser, the model and builder, the core (pure), the engine (SQLite and PostgreSQL), the simulator, BPMN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError, ExpressionError
from engine.limits import override
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.scripts import check_script, parse_script, script_variables
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PRICING = """subtotal = price * quantity
total = subtotal * (1 + vat)   # VAT included
count += 1
size = (
    "large" if total > 100
    else "small")"""


def test_a_script_assigns_in_order_and_each_line_sees_the_earlier_ones() -> None:
    script = parse_script(PRICING)
    assert script.run({"price": 30, "quantity": 4, "vat": 0.25, "count": 1}) == {
        "subtotal": 120, "total": 150.0, "count": 2, "size": "large"}
    assert script.targets == ["subtotal", "total", "count", "size"]
    assert script_variables(PRICING) == {"price", "quantity", "vat", "count"}


@pytest.mark.parametrize(("script", "said"), [
    ("import os", "line 1 imports a module"),
    ("a = 1\nx.y = 1", "line 2: only variables can be assigned"),
    ("print(x)", "assigns it to nothing"),
    ("for i in items: total = i", "line 1 is a loop"),
    ("if big:\n    x = 1", "use a conditional expression"),
    ("a, b = 1, 2", "unpacking"),
    ("x = __import__('os')", "calls something other than"),
    ("x = y.__class__", "private attribute"),
    ("x = 9**9**9**9", "max_int_digits"),
    ("   \n", "the script is empty"),
    ("# only a comment", "the script is empty"),
    ("kcontext.setVariable('a', 1)", "assigns it to nothing"),
    ("total = = 1", "line 1: does not parse"),
])
def test_anything_else_is_refused_with_the_line_and_the_reason(script: str, said: str) -> None:
    reason = check_script(script)
    assert reason is not None and said in reason, reason


def test_def_and_var_declare_script_locals_that_later_lines_read_but_no_variable_gets() -> None:
    script = parse_script("def rate = vat + 1;\nvar net = price * quantity\nnet = net + 1\ntotal = net * rate;")
    assert script.run({"price": 10, "quantity": 2, "vat": 0.5, "rate": "kept"}) == {"total": 31.5}
    assert script.targets == ["total"] and script_variables(script.text) == {"vat", "price", "quantity"}
    assert parse_script("def i = 1;").run({}) == {}  # Camunda's test file: a local and nothing else


@pytest.mark.parametrize(("script", "said"), [
    ("def i = 1\ndef i = 2", "line 2: 'i' is declared twice"),
    ("i = 1\ndef i = 2", "line 2: 'i' is declared after it was assigned as a process variable"),
    ("def f(x): return x", "line 1 defines a function"),
    ("def i == 1", "line 1: does not parse"),
])
def test_a_declaration_is_made_once_before_any_assignment(script: str, said: str) -> None:
    reason = check_script(script)
    assert reason is not None and said in reason, reason


def test_the_core_keeps_script_locals_out_of_the_process_variables() -> None:
    b = ProcessBuilder("locals")
    b.start().script("calc", "def twice = n * 2\nresult = twice + 1").end("e")
    h = Harness(b.build()).start(n=4)
    assert h.status == "completed" and h.variables == {"n": 4, "result": 9}


def test_the_engine_keeps_script_locals_out_of_the_process_variables(db_url: str) -> None:
    b = ProcessBuilder("locals")
    b.start().script("calc", "def twice = n * 2;\nresult = twice + 1;", script_format="groovy").user(
        "look", assignee="ann").end("e")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("locals", {"n": 4})
    assert engine.instance(iid).variables == {"n": 4, "result": 9}


def test_a_failing_line_names_itself_and_assigns_nothing() -> None:
    with pytest.raises(ExpressionError, match=r"line 2 \(b = \.\.\.\)"):
        parse_script("a = 1\nb = a + name").run({"name": "x"})


def test_the_limits_of_conditions_apply() -> None:
    with override(max_string_length=10), pytest.raises(ExpressionError, match="max_string_length"):
        parse_script("s = 'abc' + text").run({"text": "x" * 20})


def priced() -> ProcessDefinition:
    b = ProcessBuilder("priced", variables={"price": "number", "quantity": "integer", "vat": "number",
                                            "count": "integer", "subtotal": "number", "total": "number",
                                            "size": "string"})
    gate = b.start().script("compute", PRICING).exclusive("how_big")
    gate.when("size == 'large'").user("approve", assignee="ann").end("approved")
    gate.otherwise().end("done")
    return b.build()


def test_the_model_refuses_a_bad_script_with_its_place() -> None:
    b = ProcessBuilder("bad")
    with pytest.raises(Exception, match="imports a module"):
        b.start().script("compute", "import os").end("e")


def test_the_core_runs_the_script_and_the_gateway_sees_its_values() -> None:
    h = Harness(priced()).start(price=30, quantity=4, vat=0.25, count=0)
    assert h.variables["total"] == 150.0 and h.variables["count"] == 1
    assert h.entered()[-1] == "approve"
    small = Harness(priced()).start(price=1, quantity=1, vat=0.0, count=0)
    assert small.status == "completed" and small.variables["size"] == "small"


def test_a_failing_script_is_an_incident_that_can_be_retried() -> None:
    h = Harness(priced()).start(price="x", quantity=None, vat=0.0, count=0)
    (incident,) = h.incidents
    assert incident.node_id == "compute" and "line 1" in incident.error


def test_the_engine_runs_scripts(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(priced())
    iid = engine.start("priced", {"price": 30, "quantity": 4, "vat": 0.25, "count": 0})
    view = engine.instance(iid)
    assert view.active_nodes == ["approve"]
    assert {k: view.variables[k] for k in ("subtotal", "total", "count", "size")} == {
        "subtotal": 120, "total": 150.0, "count": 1, "size": "large"}


def test_the_simulator_takes_the_path_the_script_chooses() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, pools={"ann": {"size": 1}},
                 variables={"price": 30, "quantity": 4, "vat": 0.25, "count": 0},
                 tasks={"approve": {"duration": 900}})
    (row,) = simulate(priced(), s).cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=15)


def test_bpmn_round_trip_and_import_of_scripts_from_other_engines() -> None:
    d = priced()
    xml = to_bpmn(d)
    assert '<bpmn:scriptTask id="compute"' in xml and "total = subtotal * (1 + vat)" in xml
    assert import_bpmn(xml).definition == d
    foreign = doc('''<bpmn:startEvent id="s"/>
      <bpmn:scriptTask id="calc" scriptFormat="groovy">
        <bpmn:script>total = price * quantity</bpmn:script></bpmn:scriptTask>
      <bpmn:scriptTask id="java" scriptFormat="java">
        <bpmn:script>kcontext.setVariable("a", 1);</bpmn:script></bpmn:scriptTask>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="calc"/>
      <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="java"/>
      <bpmn:sequenceFlow id="f3" sourceRef="java" targetRef="e"/>''')
    with pytest.raises(DefinitionError) as caught:
        import_bpmn(foreign)
    (problem,) = [p for p in caught.value.problems if p.where != "import"]
    assert problem.where == "scriptTask 'java'" and "line 1" in problem.message and problem.line
    lenient = import_bpmn(foreign, lenient=True)
    calc = lenient.definition.node("calc")
    assert (calc.kind, calc.script, calc.script_format) == ("script_task", "total = price * quantity", "groovy")
    assert any("read as the safe expression language" in f.message for f in lenient.findings if f.id == "calc")
