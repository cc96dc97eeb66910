"""Ad-hoc sub-processes and the implicit start and end (issue 16), everywhere at once: model and builder,
validation, the pure core, the engine (SQLite and PostgreSQL), the simulator, BPMN import and export.

BPMN 2.0 §10.5.2: a (sub-)process without start events starts every flow node without incoming sequence flow;
a path ends at a node without outgoing flow and the scope completes when no token is left in it. §10.3.6: an
ad-hoc sub-process runs its inner activities in no fixed order; it is run as Camunda 8 runs it
(``activeElementsCollection``, ``completionCondition``, ``cancelRemainingInstances``), the rule being stated in
``engine/semantics/core.py``'s docstring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bpmn_support import assert_schema_valid
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model import nodes as n
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"


def follow_ups(**fields: Any) -> ProcessDefinition:
    """start -> ad-hoc 'work' { a ; b -> c } -> after -> end: three user tasks for ann, no start or end inside."""
    b = ProcessBuilder("follow_ups", variables={"todo": "array", "enough": "boolean"})

    def body(inner: ProcessBuilder) -> None:
        inner.add(n.UserTask(id="a", assignee="ann"))
        inner.add(n.UserTask(id="b", assignee="ann")).user("c", assignee="ann")

    b.start().ad_hoc("work", body, **fields).user("after", assignee="bob").end("e")
    return b.build()


def open_at(h: Harness) -> list[str]:
    return sorted(w.node_id for w in h.open_work())


# --- the core (pure) ------------------------------------------------------------------------------------------


def test_without_active_elements_every_element_without_incoming_flow_starts_at_once() -> None:
    h = Harness(follow_ups()).start()
    assert open_at(h) == ["a", "b"]
    h.done("b")
    assert open_at(h) == ["a", "c"]  # the inner flow b -> c is followed as usual
    h.done("c")
    assert open_at(h) == ["a"]  # c's path ends (no outgoing flow); a still runs: not complete yet
    h.done("a")
    assert open_at(h) == ["after"]
    assert h.entered() == ["start", "work", "a", "b", "c", "after"]


def test_active_elements_name_what_runs_and_sequential_runs_them_one_after_another() -> None:
    h = Harness(follow_ups(active_elements="todo", sequential=True)).start(todo=["b", "a"])
    assert open_at(h) == ["b"]
    h.done("b")
    assert open_at(h) == ["c"]  # the next element waits until b's whole path is done
    h.done("c")
    assert open_at(h) == ["a"]
    h.done("a")
    assert open_at(h) == ["after"]


def test_an_element_named_twice_runs_twice() -> None:
    h = Harness(follow_ups(active_elements="['a', 'a']")).start()
    assert open_at(h) == ["a", "a"]


def test_a_completion_condition_that_holds_cancels_the_rest_by_default() -> None:
    h = Harness(follow_ups(completion_condition="enough")).start(enough=False)
    h.done("b")  # c starts; the condition does not hold yet
    assert open_at(h) == ["a", "c"]
    effects = h.done("a", enough=True)
    assert open_at(h) == ["after"]
    assert [e.node_id for e in effects if type(e).__name__ == "CancelWork"] == ["c"]


def test_without_cancel_remaining_it_waits_for_what_runs_and_activates_nothing_more() -> None:
    h = Harness(follow_ups(completion_condition="enough", cancel_remaining=False, sequential=True,
                           active_elements="['a', 'b']")).start(enough=False)
    h.done("a", enough=True)  # holds: b (next in the list) is never activated
    assert open_at(h) == ["after"]
    h = Harness(follow_ups(completion_condition="enough", cancel_remaining=False)).start(enough=False)
    h.done("a", enough=True)
    assert open_at(h) == ["b"]  # b still runs, and its flow to c is followed
    h.done("b")
    assert open_at(h) == ["c"]
    h.done("c")
    assert open_at(h) == ["after"]


@pytest.mark.parametrize(("todo", "said"), [
    (["x"], "name ['x'], which are not its inner elements ['a', 'b', 'c']"),
    ("a", "not a list of element ids"),
])
def test_active_elements_that_are_not_inner_element_ids_are_an_incident(todo: Any, said: str) -> None:
    h = Harness(follow_ups(active_elements="todo")).start(todo=todo)
    (incident,) = h.incidents
    assert incident.node_id == "work" and said in incident.error
    assert open_at(h) == []


def test_an_empty_activation_list_completes_at_once() -> None:
    h = Harness(follow_ups(active_elements="todo")).start(todo=[])
    assert open_at(h) == ["after"]


def test_an_interrupting_boundary_event_cancels_everything_inside() -> None:
    b = ProcessBuilder("bounded")
    work = b.start().ad_hoc("work", lambda i: (i.add(n.UserTask(id="a", assignee="ann")),
                                               i.add(n.UserTask(id="b", assignee="ann"))))
    work.end("done")
    work.on_timer("PT1H", id="late").end("timed_out")
    h = Harness(b.build()).start()
    h.done("a")
    h.advance(timedelta(hours=1))
    assert h.status == "completed" and h.entered()[-2:] == ["late", "timed_out"] and not h.open_work()


def test_a_sub_process_without_start_and_end_events_starts_every_node_without_incoming_flow() -> None:
    b = ProcessBuilder("implicit")
    b.start().sub_process("sub", lambda s: (s.add(n.UserTask(id="u1", assignee="ann")).user("u3", assignee="ann"),
                                            s.add(n.UserTask(id="u2", assignee="ann")))).end("e")
    h = Harness(b.build()).start()
    assert open_at(h) == ["u1", "u2"]
    h.done("u1")
    h.done("u2")
    assert open_at(h) == ["u3"]
    h.done("u3")
    assert h.status == "completed"


def test_an_empty_sub_process_completes_as_soon_as_it_is_entered() -> None:
    b = ProcessBuilder("empty")
    b.start().sub_process("sub", lambda s: None).user("next", assignee="ann").end("e")
    h = Harness(b.build()).start()
    assert h.entered() == ["start", "sub", "next"]


def test_a_process_without_start_events_starts_every_node_without_incoming_flow() -> None:
    b = ProcessBuilder("no_start")
    b.add(n.UserTask(id="u1", assignee="ann")).end("e1")
    b.add(n.UserTask(id="u2", assignee="ann")).end("e2")
    h = Harness(b.build()).start()
    assert open_at(h) == ["u1", "u2"]
    h.done("u1")
    assert h.status == "running"
    h.done("u2")
    assert h.status == "completed"


# --- validation -----------------------------------------------------------------------------------------------


def problems(d: ProcessDefinition, severity: str) -> list[str]:
    return [p.message for p in validate(d) if p.severity == severity]


def test_the_implicit_start_is_a_warning_and_an_empty_sub_process_too() -> None:
    b = ProcessBuilder("implicit")
    b.start().sub_process("sub", lambda s: s.add(n.Task(id="t"))).sub_process("hollow", lambda s: None).end("e")
    warnings = problems(b.build(), "warning")
    assert any("sub-process 'sub' has no start event: a token starts on each node without incoming flow ('t')"
               in w for w in warnings)
    assert any("sub-process 'hollow' is empty: it completes as soon as a token enters it" in w for w in warnings)


def test_a_scope_where_every_node_has_an_incoming_flow_never_starts() -> None:
    b = ProcessBuilder("loop_only")
    b.start().sub_process("sub", lambda s: s.add(n.Task(id="t1")).task("t2").to("t1")).end("e")
    with pytest.raises(DefinitionError, match="sub-process 'sub' has no start event and every node has an "
                                              "incoming flow, so nothing ever starts"):
        b.build()


@pytest.mark.parametrize(("body", "said"), [
    (lambda i: i.start("s").task("t"), "start event 's' is inside ad-hoc sub-process 'work', which has no start "
                                        "events"),
    (lambda i: i.add(n.ExclusiveGateway(id="g")), "ad-hoc sub-process 'work' has no activity"),
])
def test_validation_refuses_what_an_ad_hoc_sub_process_cannot_hold(body: Any, said: str) -> None:
    b = ProcessBuilder("bad")
    b.start().ad_hoc("work", body).end("e")
    with pytest.raises(DefinitionError, match=said):
        b.build()


def test_an_ad_hoc_sub_process_gets_no_implicit_end_warnings_inside() -> None:
    warnings = problems(follow_ups(), "warning")
    assert not [w for w in warnings if "no outgoing flow" in w or "no end event" in w or "no start event" in w]


def test_an_ad_hoc_sub_process_cannot_be_an_event_sub_process() -> None:
    with pytest.raises(ValueError, match="cannot be an event sub-process"):
        n.AdHocSubProcess(id="x", triggered_by_event=True, nodes=[n.Task(id="t")])


# --- the engine (SQLite and PostgreSQL) -----------------------------------------------------------------------


def complete(engine: Engine, iid: str, node: str, **values: Any) -> None:
    (task,) = [t for t in engine.tasks(instance_id=iid, status="open") if t["node_id"] == node]
    engine.complete_task(task["id"], values, actor="bob" if node == "after" else "ann")


def open_tasks(engine: Engine, iid: str) -> list[str]:
    return sorted(t["node_id"] for t in engine.tasks(instance_id=iid, status="open"))


def test_the_engine_runs_an_ad_hoc_sub_process(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(follow_ups(active_elements="todo", completion_condition="enough"))
    iid = engine.start("follow_ups", {"todo": ["a", "b"], "enough": False})
    assert open_tasks(engine, iid) == ["a", "b"]
    complete(engine, iid, "b")
    assert open_tasks(engine, iid) == ["a", "c"]
    complete(engine, iid, "a", enough=True)  # holds: c is cancelled, the sub-process completes
    assert open_tasks(engine, iid) == ["after"]
    complete(engine, iid, "after")
    assert engine.instance(iid).status == "completed"


def test_the_engine_runs_a_sequential_ad_hoc_sub_process(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(follow_ups(sequential=True))
    iid = engine.start("follow_ups")
    for node in ("a", "b", "c", "after"):
        assert open_tasks(engine, iid) == [node]
        complete(engine, iid, node)
    assert engine.instance(iid).status == "completed"


def test_the_engine_runs_the_jbpm_ad_hoc_corpus_file(db_url: str) -> None:
    path = CORPUS / "executable" / "BPMN2-AdHocSubProcess.bpmn2"
    if not path.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    result = import_bpmn(path.read_bytes())
    assert any("onEntry-script" in w.message and "is not run" in w.message for w in result.warnings)
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(result.definition)
    iid = engine.start("AdHocSubProcess")
    engine.run_until_idle()
    assert sorted(engine.instance(iid).active_nodes) == ["_2", "_2-3"]  # Hello1 and Hello2 (print-only) passed
    (task,) = engine.tasks(instance_id=iid, status="open")
    engine.complete_task(task["id"], {})  # offered to nobody: the system principal completes it
    engine.run_until_idle()
    assert engine.instance(iid).status == "completed"


def test_the_engine_runs_a_sub_process_without_start_and_end_events(db_url: str) -> None:
    b = ProcessBuilder("implicit")
    b.start().sub_process("sub", lambda s: (s.add(n.UserTask(id="a", assignee="ann")),
                                            s.add(n.UserTask(id="b", assignee="ann")))).end("e")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("implicit")
    assert open_tasks(engine, iid) == ["a", "b"]
    complete(engine, iid, "a")
    complete(engine, iid, "b")
    assert engine.instance(iid).status == "completed"


def test_the_engine_and_the_simulator_start_a_process_without_start_events(db_url: str) -> None:
    b = ProcessBuilder("no_start")
    b.add(n.UserTask(id="a", assignee="ann")).end("e1")
    b.add(n.UserTask(id="b", assignee="ann")).end("e2")
    d = b.build()
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    iid = engine.start("no_start")
    assert open_tasks(engine, iid) == ["a", "b"]
    complete(engine, iid, "a")
    complete(engine, iid, "b")
    assert engine.instance(iid).status == "completed"
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, pools={"ann": {"size": 2}},
                 tasks={"a": {"duration": 600}, "b": {"duration": 900}})
    (row,) = simulate(d, s).cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=15)  # a and b at once; the later ends it


# --- the simulator: the same path with fixed durations ---------------------------------------------------------


@pytest.mark.parametrize(("fields", "minutes", "ran"), [
    ({}, 25 + 30, {"a", "b", "c", "after"}),  # a (10) beside b (20) -> c (5), then after (30)
    ({"sequential": True}, 35 + 30, {"a", "b", "c", "after"}),  # a, then b -> c
    ({"completion_condition": "enough"}, 10 + 30, {"a", "after"}),  # a sets enough: b is cancelled
])
def test_the_simulator_takes_the_same_path_as_the_core(fields: dict[str, Any], minutes: int, ran: set[str]) -> None:
    d = follow_ups(**fields)
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"enough": False},
                 pools={"ann": {"size": 3}, "bob": {"size": 1}},
                 tasks={"a": {"duration": 600, "outputs": {"enough": True}}, "b": {"duration": 1200},
                        "c": {"duration": 300}, "after": {"duration": 1800}})
    results = simulate(d, s)
    (row,) = results.cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=minutes)
    log = results.activity_log(0)
    assert set(log.loc[log["outcome"] == "completed", "activity_id"]) & {"a", "b", "c", "after"} == ran


def test_the_simulation_predicts_the_engine(db_url: str) -> None:
    """The same case in both shells: a (10 min) sets enough and ends the ad-hoc sub-process, cancelling b (20
    min) before c; after takes 30 min. Both run a and after, not b's path, and end 40 minutes in."""
    d = follow_ups(completion_condition="enough")
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"enough": False},
                 pools={"ann": {"size": 3}, "bob": {"size": 1}},
                 tasks={"a": {"duration": 600, "outputs": {"enough": True}}, "b": {"duration": 1200},
                        "c": {"duration": 300}, "after": {"duration": 1800}})
    results = simulate(d, s)
    (row,) = results.cases(0).to_dict("records")
    log = results.activity_log(0)
    sim_done = set(log.loc[log["outcome"] == "completed", "activity_id"]) & {"a", "b", "c", "after"}

    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    iid = engine.start("follow_ups", {"enough": False})
    engine.advance(timedelta(minutes=10))
    complete(engine, iid, "a", enough=True)
    engine.advance(timedelta(minutes=30))
    complete(engine, iid, "after")
    view = engine.instance(iid)
    engine_done = {t["node_id"] for t in engine.tasks(instance_id=iid, status="completed")}
    assert view.status == "completed" and sim_done == engine_done == {"a", "after"}
    assert timedelta(hours=row["cycle_time_h"]) == view.ended_at - view.started_at == timedelta(minutes=40)


def test_a_first_scenario_gives_durations_to_the_inner_tasks_not_to_the_ad_hoc_sub_process() -> None:
    from app.sim_view import starting_scenario

    tasks = starting_scenario(follow_ups())["tasks"]
    assert {"a", "b", "c", "after"} <= set(tasks) and "work" not in tasks


# --- BPMN import and export ------------------------------------------------------------------------------------


def test_bpmn_round_trip_writes_a_standard_ad_hoc_sub_process() -> None:
    d = follow_ups(active_elements="todo", completion_condition="enough", cancel_remaining=False, sequential=True)
    xml = to_bpmn(d)
    assert_schema_valid(xml)
    assert '<bpmn:adHocSubProcess id="work"' in xml and 'ordering="Sequential"' in xml
    assert 'cancelRemainingInstances="false"' in xml and ">enough</bpmn:completionCondition>" in xml
    assert 'activeElements="todo"' in xml  # ours: BPMN has no attribute for it
    back = import_bpmn(xml)
    assert back.definition == d and not [f for f in back.findings if f.category in ("error", "unsupported")]
    assert to_bpmn(back.definition) == xml


def test_a_camunda_8_ad_hoc_sub_process_imports() -> None:
    result = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:adHocSubProcess id="work" cancelRemainingInstances="false">
        <bpmn:extensionElements><zeebe:adHoc activeElementsCollection="=tools"/></bpmn:extensionElements>
        <bpmn:serviceTask id="search"><bpmn:extensionElements><zeebe:taskDefinition type="search"/>
        </bpmn:extensionElements></bpmn:serviceTask>
        <bpmn:userTask id="ask"/>
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">=answered = true</bpmn:completionCondition>
      </bpmn:adHocSubProcess>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
      <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e"/>'''))
    work = result.definition.node("work")
    assert isinstance(work, n.AdHocSubProcess)
    assert (work.active_elements, work.completion_condition, work.cancel_remaining, work.ordering) == (
        "tools", "answered == true", False, "parallel")
    assert [c.id for c in work.nodes] == ["search", "ask"]
    assert not [f for f in result.findings if "zeebe:adHoc" in f.message]  # read, so not listed as left out


def test_lanes_inside_an_ad_hoc_sub_process_become_candidate_groups() -> None:
    from engine.bpmn.lanes import lanes_as_candidate_groups

    b = ProcessBuilder("laned")
    b.start().ad_hoc("work", lambda i: i.add(n.UserTask(id="a", metadata={"lane": "Sales"}))).end("e")
    assert lanes_as_candidate_groups(b.build()).node("a").candidate_groups == ["Sales"]  # type: ignore[attr-defined]


def test_an_unreadable_completion_condition_is_refused_strictly_and_a_sub_process_leniently() -> None:
    xml = doc('''<bpmn:startEvent id="s"/>
      <bpmn:adHocSubProcess id="work"><bpmn:task id="t"/>
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">kcontext.getVariable("x")</bpmn:completionCondition>
      </bpmn:adHocSubProcess>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work"/>''')
    with pytest.raises(DefinitionError, match="completionCondition"):
        import_bpmn(xml)
    lenient = import_bpmn(xml, lenient=True).definition
    assert lenient.node("work").kind == "sub_process"
