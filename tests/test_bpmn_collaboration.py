"""A collaboration with several executable participants imports all of them (issue 16, item 9), each a
definition of its own; their message flows work through message names in the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_bpmn_import import NS

from engine.bpmn import import_all, import_bpmn, to_bpmn
from engine.bpmn.collaboration import executable_processes
from engine.errors import DefinitionError
from engine.runtime import Engine, VirtualClock
from engine.security import Principal

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def two_pools(supplier_task: str = '<bpmn:userTask id="pack" camunda:assignee="sam"/>') -> str:
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs" targetNamespace="x">
  <bpmn:message id="m_order" name="order.placed"/>
  <bpmn:collaboration id="c">
    <bpmn:participant id="customer_pool" name="Customer" processRef="customer"/>
    <bpmn:participant id="supplier_pool" name="Supplier" processRef="supplier"/>
    <bpmn:participant id="bank_pool" name="Bank" processRef="bank"/>
    <bpmn:messageFlow id="mf" sourceRef="order" targetRef="received"/>
  </bpmn:collaboration>
  <bpmn:process id="customer" isExecutable="true">
    <bpmn:startEvent id="s"/>
    <bpmn:sendTask id="order" messageRef="m_order"/>
    <bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="order"/>
    <bpmn:sequenceFlow id="f2" sourceRef="order" targetRef="e"/>
  </bpmn:process>
  <bpmn:process id="supplier" isExecutable="true">
    <bpmn:startEvent id="received"><bpmn:messageEventDefinition messageRef="m_order"/></bpmn:startEvent>
    {supplier_task}
    <bpmn:endEvent id="packed"/>
    <bpmn:sequenceFlow id="g1" sourceRef="received" targetRef="pack"/>
    <bpmn:sequenceFlow id="g2" sourceRef="pack" targetRef="packed"/>
  </bpmn:process>
  <bpmn:process id="bank" isExecutable="false">
    <bpmn:startEvent id="b_s"/><bpmn:endEvent id="b_e"/>
    <bpmn:sequenceFlow id="h1" sourceRef="b_s" targetRef="b_e"/>
  </bpmn:process>
</bpmn:definitions>'''


def test_every_executable_participant_is_imported() -> None:
    assert executable_processes(two_pools()) == ["customer", "supplier"]
    results = import_all(two_pools())
    assert [r.definition.id for r in results] == ["customer", "supplier"]
    assert results[1].definition.node("received").message == "order.placed"
    for result in results:  # each round trips on its own
        assert import_bpmn(to_bpmn(result.definition)).definition == result.definition
    # a single import still takes the first and names the others
    single = import_bpmn(two_pools())
    assert single.definition.id == "customer" and any("'supplier'" in w.message for w in single.warnings)


def test_strict_import_of_all_refuses_when_one_participant_cannot_run() -> None:
    broken = two_pools('<bpmn:complexGateway id="pack"/>')
    with pytest.raises(DefinitionError, match="complexGateway"):
        import_all(broken)
    assert [r.definition.id for r in import_all(broken, lenient=True)] == ["customer", "supplier"]


def test_the_participants_talk_through_their_message_in_the_engine(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    for result in import_all(two_pools()):
        engine.deploy(result.definition)
    engine.start("customer")
    engine.run_until_idle()
    (task,) = engine.tasks(assignee="sam")
    assert task["node_id"] == "pack"


def test_the_corpus_collaboration_has_one_executable_process() -> None:
    path = CORPUS / "executable" / "collaboration.bpmn"
    if not path.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    assert [r.definition.id for r in import_all(path.read_bytes())] == ["process_buddy"]


def test_a_file_without_processes_is_refused_as_by_a_single_import() -> None:
    empty = f'<?xml version="1.0"?><bpmn:definitions {NS} id="d" targetNamespace="x"/>'
    with pytest.raises(DefinitionError, match="has no <process>"):
        import_all(empty)


def test_lanes_are_kept_and_become_candidate_groups_when_asked() -> None:
    from engine.bpmn.lanes import lanes_as_candidate_groups

    xml = f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="l1" name="accounting"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>check</bpmn:flowNodeRef><bpmn:flowNodeRef>pay</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="l2" name="management"><bpmn:flowNodeRef>approve</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s"/>
    <bpmn:userTask id="check"/>
    <bpmn:userTask id="pay" camunda:assignee="carol"/>
    <bpmn:userTask id="approve"/>
    <bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="pay"/>
    <bpmn:sequenceFlow id="f3" sourceRef="pay" targetRef="approve"/>
    <bpmn:sequenceFlow id="f4" sourceRef="approve" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>'''
    d = import_bpmn(xml).definition
    assert [d.node(n).metadata["lane"] for n in ("check", "pay", "approve")] == ["accounting", "accounting",
                                                                                  "management"]
    back = import_bpmn(to_bpmn(d)).definition  # the export draws the lanes again
    assert back == d
    grouped = lanes_as_candidate_groups(d)
    assert grouped.node("check").candidate_groups == ["accounting"]
    assert grouped.node("approve").candidate_groups == ["management"]
    assert grouped.node("pay").candidate_groups == [] and grouped.node("pay").assignee == "carol"
    assert lanes_as_candidate_groups(d, overwrite=True).node("pay").candidate_groups == ["accounting"]
    assert d.node("check").candidate_groups == []  # the original is unchanged
