"""Behaving like the engines people migrate from (issue 10): implicit ends, import = validate = deploy,
no silent drop on import, agent names checked at deploy. Each on SQLite and PostgreSQL where it runs."""

from __future__ import annotations

from typing import Any

import pytest
from bpmn_support import CORPUS
from lxml import etree

import engine as wf
from engine.bpmn import import_bpmn
from engine.bpmn.conformance import corpus_files
from engine.bpmn.reader import FLOW_NODE_TAGS
from engine.errors import DefinitionError
from engine.model import ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.validate import deploy_problems, errors_only, validate

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def _definition(nodes: list[dict[str, Any]], flows: list[tuple[str, str]]) -> ProcessDefinition:
    return ProcessDefinition.model_validate({
        "id": "implicit", "nodes": nodes,
        "flows": [{"id": f"{a}__{b}", "source": a, "target": b} for a, b in flows]})


# --- kind 1: implicit end ------------------------------------------------------------------------------


def test_a_process_without_end_event_runs_and_completes(db_url: str) -> None:
    """BPMN 2.0: a flow node without outgoing flow ends its token; no end event is needed (Camunda, Spiff, jBPM)."""
    d = _definition([{"id": "s", "kind": "start"}, {"id": "fork", "kind": "parallel_gateway"},
                     {"id": "a", "kind": "task"}, {"id": "b", "kind": "user_task", "assignee": "ada"}],
                    [("s", "fork"), ("fork", "a"), ("fork", "b")])
    assert errors_only(d) == [] and deploy_problems(d) == []
    assert {p.where for p in validate(d) if "implicit end" in p.message} == {"implicit", "a", "b"}
    e = Engine(db_url, clock=VirtualClock())
    e.deploy(d)
    i = e.start("implicit")
    e.run_until_idle()
    assert e.instance(i).status == "running" and e.instance(i).active_nodes == ["b"]  # 'a' ended its token
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], actor="ada")
    assert e.instance(i).status == "completed"


def test_a_sub_process_and_a_boundary_event_may_end_implicitly(db_url: str) -> None:
    d = ProcessDefinition.model_validate({
        "id": "implicit_sub", "nodes": [
            {"id": "s", "kind": "start"},
            {"id": "sub", "kind": "sub_process", "nodes": [{"id": "in", "kind": "start"},
                                                           {"id": "work", "kind": "task"}],
             "flows": [{"id": "f_in", "source": "in", "target": "work"}]},
            {"id": "wait", "kind": "user_task", "assignee": "ada"},
            {"id": "late", "kind": "boundary_timer", "attached_to": "wait", "timer": "PT1H"},
            {"id": "done", "kind": "end"}],
        "flows": [{"id": "f1", "source": "s", "target": "sub"}, {"id": "f2", "source": "sub", "target": "wait"},
                  {"id": "f3", "source": "wait", "target": "done"}]})
    assert deploy_problems(d) == []
    e = Engine(db_url, clock=VirtualClock())
    e.deploy(d)
    i = e.start("implicit_sub")
    e.run_until_idle()
    assert e.instance(i).active_nodes == ["wait"]  # the sub-process completed through its implicit end
    from datetime import timedelta

    e.advance(timedelta(hours=2))
    assert e.instance(i).status == "completed"  # the boundary path ended without any node after it


def test_import_validate_and_deploy_agree_on_an_implicit_end(tmp_path: Any) -> None:
    xml = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="p" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="t"/><task id="t"/>
    </process></definitions>"""
    result = import_bpmn(xml)  # strict
    assert [p for p in result.warnings if "Engine.deploy refuses" in p.message] == []
    e = Engine(f"sqlite:///{tmp_path / 'e.db'}", clock=VirtualClock())
    e.deploy(result.definition)
    i = e.start("p")
    e.run_until_idle()
    assert e.instance(i).status == "completed"


def test_an_import_that_cannot_be_deployed_says_why() -> None:
    xml = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="p" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="g"/><parallelGateway id="g"/>
      <serviceTask id="charge"/><startEvent id="s2"/><sequenceFlow id="f2" sourceRef="s2" targetRef="charge"/>
    </process></definitions>"""
    result = import_bpmn(xml)
    why = [str(p) for p in result.warnings]
    assert any(w.startswith("parallelGateway 'g'") and "Engine.deploy refuses it until this is fixed" in w
               for w in why)
    assert any(w.startswith("serviceTask 'charge'") and "agent 'charge' is not registered" in w for w in why)
    with pytest.raises(DefinitionError) as refused:
        Engine("sqlite://", clock=VirtualClock()).deploy(result.definition)
    # every reason deploy gives was named by the import, on the same element
    assert {p.where for p in refused.value.problems} >= {"g", "charge"}
    assert all(any(w.startswith(f"{tag} {p.where!r}") for tag in ("parallelGateway", "serviceTask", "startEvent")
                   for w in why) for p in refused.value.problems)


# --- kind 9: agent and handler names ------------------------------------------------------------------


def test_deploy_refuses_agents_and_handlers_that_resolve_to_nothing(db_url: str) -> None:
    import uuid

    from engine.model import ProcessBuilder

    n = uuid.uuid4().hex[:8]  # the registry is global: names of this run only
    agent, undo, late = f"conformance.nowhere_{n}", f"conformance.refund_{n}", f"no_such_module_{n}:fn"
    b = ProcessBuilder("unknown_agents")
    (b.start().service("charge", agent=agent, compensation=undo)
     .user("check", assignee="ada", sla="PT1H", on_timeout={"action": "handler", "handler": late}).end())
    d = b.build()  # designing: warnings only, the agents may be registered later
    e = Engine(db_url, clock=VirtualClock())
    with pytest.raises(DefinitionError) as refused:
        e.deploy(d)
    messages = [str(p) for p in refused.value.problems]
    assert any(f"agent {agent!r} is not registered" in m for m in messages)
    assert any(f"compensation handler {undo!r}" in m for m in messages)
    assert any(f"on_timeout handler {late!r}" in m for m in messages)
    assert e.definitions() == []  # nothing written
    for name in (agent, undo, late):
        wf.register(name, lambda inputs, ctx: {})
    assert e.deploy(d).version == 1


def test_the_designer_check_warns_about_unknown_agents() -> None:
    from app.support import check_yaml

    checked = check_yaml("""\
id: draft
nodes:
  - {id: s, kind: start}
  - {id: call, kind: service_task, agent: conformance.not_yet}
  - {id: e, kind: end}
flows:
  - {id: f1, source: s, target: call}
  - {id: f2, source: call, target: e}
""")
    assert not checked.errors
    (warning,) = [p for p in checked.problems if "not registered" in p.message]
    assert warning.severity == "warning" and warning.line == 4


# --- kind 2: never a silent drop --------------------------------------------------------------------


def test_an_association_without_id_does_not_hide_flows_without_id() -> None:
    """Camunda's test files often omit ids on associations and flows: both must survive the import."""
    xml = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="p" isExecutable="true">
      <startEvent id="s"/><serviceTask id="book"/><endEvent id="e"/>
      <sequenceFlow sourceRef="s" targetRef="book"/><sequenceFlow sourceRef="book" targetRef="e"/>
      <boundaryEvent id="undo_b" attachedToRef="book"><compensateEventDefinition/></boundaryEvent>
      <serviceTask id="undo" isForCompensation="true"/>
      <association associationDirection="One" sourceRef="undo_b" targetRef="undo"/>
    </process></definitions>"""
    d = import_bpmn(xml).definition
    assert [(f.source, f.target) for f in d.flows] == [("s", "book"), ("book", "e")]
    assert d.node("book").compensation == "undo"  # type: ignore[attr-defined]


def _process_of(root: etree._Element, process_id: str) -> etree._Element:
    return next(p for p in root.iter(f"{{{BPMN}}}process") if p.get("id") == process_id)


@pytest.mark.parametrize("path", corpus_files(CORPUS) if CORPUS.is_dir() else [],
                         ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_flow_node_and_sequence_flow_of_the_corpus_is_imported_or_named(path: Any) -> None:
    """The importer's promise, checked over the whole public corpus: each flow node and sequence flow of the
    imported process is in the definition or named (by id) in a finding."""
    result = import_bpmn(path.read_bytes(), lenient=True)
    root = etree.fromstring(path.read_bytes())
    process = _process_of(root, result.definition.id)
    index = result.definition.index
    named = {f.id for f in result.findings if f.id} | {
        word.strip("'\"(),") for f in result.findings for word in f.message.split()}
    missing = []
    for el in process.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN:
            continue
        tag = etree.QName(el).localname
        if tag not in FLOW_NODE_TAGS and tag != "sequenceFlow":
            continue
        ident = el.get("id")
        if tag == "sequenceFlow":
            source, target = el.get("sourceRef"), el.get("targetRef")
            kept = (ident in index.flows if ident else
                    any(f.source == source and f.target == target for f in index.flows.values()))
        else:
            kept = ident in index.nodes
        container = next((a for a in el.iterancestors() if a is not process and a.get("id") in named
                          and etree.QName(a).localname in FLOW_NODE_TAGS), None)
        if not kept and ident not in named and container is None:  # a reported container covers its content
            missing.append(f"<{tag} id={ident!r}> line {el.sourceline}")
    assert not missing, "dropped without a finding: " + ", ".join(missing)


# --- kind 6: forms and variables -----------------------------------------------------------------------

CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
FORM_BINDING = f"""<definitions xmlns="{BPMN}" xmlns:camunda="{CAMUNDA}" targetNamespace="t">
  <process id="expense" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review" camunda:assignee="lead"><extensionElements>
      <camunda:formProperty id="ok" name="Approve?" type="boolean" variable="approved" required="true"/>
    </extensionElements></userTask>
    <sequenceFlow id="f2" sourceRef="review" targetRef="gw"/>
    <exclusiveGateway id="gw" default="no"/>
    <sequenceFlow id="yes" sourceRef="gw" targetRef="paid">
      <conditionExpression>${{approved}}</conditionExpression></sequenceFlow>
    <sequenceFlow id="no" sourceRef="gw" targetRef="refused"/>
    <endEvent id="paid"/><endEvent id="refused"/>
  </process></definitions>"""


def test_a_form_property_keeps_its_variable_binding_through_import_and_completion(db_url: str) -> None:
    from engine.bpmn import from_bpmn, to_bpmn

    d = import_bpmn(FORM_BINDING).definition
    (field,) = d.node("review").form  # type: ignore[attr-defined]
    assert (field.name, field.variable) == ("ok", "approved")
    assert from_bpmn(to_bpmn(d)).node("review").form == d.node("review").form  # type: ignore[attr-defined]
    e = Engine(db_url, clock=VirtualClock())
    e.deploy(d)
    i = e.start("expense")
    (task,) = e.tasks(instance_id=i)
    from engine.errors import FormError

    with pytest.raises(FormError, match=r"'cost_centre' is not a declared variable .*the form has"):
        e.complete_task(task["id"], {"ok": True, "cost_centre": "R&D"}, actor="lead")  # declared ones only
    e.complete_task(task["id"], {"ok": True}, actor="lead")
    view = e.instance(i)
    assert view.status == "completed" and view.variables["approved"] is True and "ok" not in view.variables
    assert list(e.activities(i)["node_id"])[-1] == "paid"  # the gateway read the bound variable


def test_a_process_that_declares_no_variables_takes_any_on_completion(tmp_path: Any) -> None:
    """Camunda's complete(task, variables): without declarations, a task takes any storable variable."""
    xml = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="free" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="u"/><userTask id="u"/>
    </process></definitions>"""
    e = Engine(f"sqlite:///{tmp_path / 'e.db'}", clock=VirtualClock())
    e.deploy(import_bpmn(xml).definition)
    i = e.start("free")
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], {"cost_centre": "R&D", "amount": 12})
    assert e.instance(i).variables == {"cost_centre": "R&D", "amount": 12}


def test_set_variables_names_its_own_call_and_checks_declared_types(tmp_path: Any) -> None:
    from engine.errors import EngineError
    from engine.model import ProcessBuilder

    b = ProcessBuilder("typed_form", variables={"approved": bool, "amount": int})
    b.start().user("review", assignee="lead").end()
    e = Engine(f"sqlite:///{tmp_path / 'e.db'}", clock=VirtualClock())
    e.deploy(b.build())
    i = e.start("typed_form")
    with pytest.raises(EngineError, match=r"^cannot set variables of instance '\w+': 'amount' must be integer"):
        e.set_variables(i, {"amount": "many"})
    e.set_variables(i, {"approved": True})  # a required-less partial update is fine
    assert e.instance(i).variables["approved"] is True


def test_an_element_even_a_placeholder_cannot_hold_is_named_not_a_traceback() -> None:
    """A node whose kept fields (here an id outside the model's id rule) fail validation is a finding with
    the element and line, in both modes - never a pydantic traceback (the id rule itself is the model's)."""
    xml = f"""<definitions xmlns="{BPMN}" targetNamespace="t"><process id="p" isExecutable="true">
      <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="bad id"/><userTask id="bad id"/>
    </process></definitions>"""
    with pytest.raises(DefinitionError, match=r"userTask 'bad id' \(line 2\): id: "):
        import_bpmn(xml)
    result = import_bpmn(xml, lenient=True)
    assert "bad id" not in result.definition.index.nodes
    assert any("'bad id'" in str(w) and "left out" in str(w) for w in result.warnings)
