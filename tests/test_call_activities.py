"""Call activities (issue 16, item 1), everywhere at once: model and builder, validation, the pure core, the engine
(SQLite and PostgreSQL), the simulator, BPMN import and export.

BPMN 2.0 §10.3.4: a call activity runs another process and waits for it; the seed's reusable "human approval with
escalation" is one. The version is chosen by the binding (Camunda's calledElementBinding: latest, deployment,
version), variables go in and come back through mappings, an error end event the child does not catch is thrown
at the call activity (its error boundary events catch it), and cancelling the caller cancels the child."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import ProcessBuilder, ProcessDefinition, for_each
from engine.model.nodes import CallActivity
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.semantics import effects as fx
from engine.semantics import events as ev
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def approval(title: str = "Decide") -> ProcessDefinition:
    """The reusable human approval: a person decides; a rejection is the error REJECTED."""
    b = ProcessBuilder("approval", variables={"amount": "number", "ok": "boolean"})
    gate = b.start().user("decide", title=title, assignee="boss").exclusive("decided")
    gate.when("ok").end("yes")
    b.at("decided").otherwise().fail("REJECTED", id="no")
    return b.build()


def purchase(**call: object) -> ProcessDefinition:
    b = ProcessBuilder("purchase", variables={"total": "number", "approved": "boolean"})
    step = b.start().call("approve", "approval", inputs={"amount": "total * 2"}, outputs={"approved": "ok"}, **call)
    step.on_error("REJECTED", id="rejected").end("refused")
    step.on_timer("P1D", id="late").end("too_late")
    step.end("bought")
    return b.build()


def test_the_model_refuses_a_version_binding_without_its_version() -> None:
    with pytest.raises(ValueError, match="go together"):
        CallActivity(id="c", called_element="x", binding="version")
    b = ProcessBuilder("p", variables={"total": "number"})
    b.start().call("c", "approval", inputs={"amount": "totl"}).end("e")
    with pytest.raises(DefinitionError, match="'totl', not declared"):
        b.build()


def test_the_core_starts_the_child_as_work_and_maps_what_comes_back() -> None:
    h = Harness(purchase()).start(total=5)
    (work,) = h.open_work("approve")
    assert (work.kind, work.handler, work.inputs) == ("call_activity", "approval", {"amount": 10})
    h.done("approve", ok=True, amount=10, other="not mapped")
    assert h.status == "completed" and h.variables == {"total": 5, "approved": True}


def test_the_childs_uncaught_error_is_caught_on_the_call_activity_and_a_timer_cancels_it() -> None:
    h = Harness(purchase()).start(total=5)
    h.fail("approve", "error 'REJECTED' was not caught", "REJECTED", business=True)
    assert h.entered()[-2:] == ["rejected", "refused"]
    h = Harness(purchase()).start(total=5)
    h.advance(timedelta(days=1))
    assert h.of(fx.CancelWork) and h.entered()[-1] == "too_late"


def test_a_multi_instance_call_activity_runs_one_child_per_item() -> None:
    b = ProcessBuilder("many", variables={"amounts": "array", "answers": "array"})
    b.start().call("approve", "approval", inputs={"amount": "amount"}, outputs={"ok": "ok"},
                   multi_instance=for_each("amounts", "amount", into="answers", output="ok")).end("done")
    h = Harness(b.build()).start(amounts=[1, 2])
    for work in h.open_work("approve"):
        h.done_token(work.token_id, ok=work.inputs["amount"] > 1)
    assert h.variables["answers"] == [False, True]


def _engine(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(approval())
    return engine


def _decide(engine: Engine, ok: bool) -> None:
    (task,) = [t for t in engine.tasks() if t["status"] == "open"]
    engine.complete_task(task["id"], {"ok": ok}, actor="boss")
    engine.run_until_idle()


@pytest.mark.parametrize(("ok", "end"), [(True, "bought"), (False, "refused")])
def test_the_engine_runs_the_child_and_hears_how_it_ended(db_url: str, ok: bool, end: str) -> None:
    engine = _engine(db_url)
    engine.deploy(purchase())
    iid = engine.start("purchase", {"total": 5})
    view = engine.instance(iid)
    (child,) = view.children
    assert engine.instance(child).parent == iid and engine.instance(child).variables == {"amount": 10}
    _decide(engine, ok)
    view = engine.instance(iid)
    assert view.status == "completed" and end in set(view.activities["node_id"])
    assert (view.variables.get("approved"), engine.instance(child).status) == (
        (True, "completed") if ok else (None, "failed"))


def test_cancelling_or_interrupting_the_caller_cancels_the_child(db_url: str) -> None:
    engine = _engine(db_url)
    engine.deploy(purchase())
    late = engine.start("purchase", {"total": 5})
    engine.advance(timedelta(days=1))
    assert engine.instance(engine.instance(late).children[0]).status == "cancelled"
    assert engine.instance(late).status == "completed"
    cancelled = engine.start("purchase", {"total": 5})
    engine.cancel(cancelled)
    engine.run_until_idle()
    assert engine.instance(engine.instance(cancelled).children[0]).status == "cancelled"
    assert not [t for t in engine.tasks() if t["status"] == "open"]


def test_the_version_binding_chooses_the_called_version(db_url: str) -> None:
    engine = _engine(db_url)  # approval v1
    engine.deploy(purchase(binding="deployment"))  # deployed while v1 was the newest
    engine.deploy(purchase(binding="version", version=1).model_copy(update={"id": "pinned"}))
    engine.deploy(approval(title="Decide again"))  # approval v2
    engine.deploy(purchase().model_copy(update={"id": "newest"}))
    titles = {}
    for name in ("purchase", "pinned", "newest"):
        iid = engine.start(name, {"total": 1})
        (task,) = engine.tasks(instance_id=engine.instance(iid).children[0])
        titles[name] = task["title"]
    assert titles == {"purchase": "Decide", "pinned": "Decide", "newest": "Decide again"}


def test_a_call_to_a_process_not_deployed_is_an_incident(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(purchase())
    iid = engine.start("purchase", {"total": 5})
    (incident,) = engine.incidents()
    assert incident["instance_id"] == iid and "no deployed definition 'approval'" in incident["error"]


def test_the_simulator_takes_the_call_activity_as_work_of_its_duration() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P2D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"total": 5},
                 tasks={"approve": {"duration": 3600}})
    results = simulate(purchase(), s)  # 'approval' not given: the call activity is work of its duration
    (row,) = results.cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(hours=1)
    assert any("'approve' calls 'approval'" in w for w in results.warnings)


def test_bpmn_round_trip_and_camunda_and_zeebe_call_activities() -> None:
    d = purchase(binding="version", version=2)
    xml = to_bpmn(d)
    assert '<bpmn:callActivity id="approve" name="Approve" calledElement="approval">' in xml
    assert import_bpmn(xml).definition == d
    camunda = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:callActivity id="c" calledElement="approval" camunda:calledElementBinding="deployment">
        <bpmn:extensionElements><camunda:in source="total" target="amount"/>
          <camunda:out variables="all"/></bpmn:extensionElements></bpmn:callActivity>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="c"/><bpmn:sequenceFlow id="f2" sourceRef="c" targetRef="e"/>
    '''))
    node = camunda.definition.node("c")
    assert (node.called_element, node.binding, node.inputs, node.outputs) == (
        "approval", "deployment", {"amount": "total"}, None)
    zeebe = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:callActivity id="c"><bpmn:extensionElements><zeebe:calledElement processId="approval"/>
        <zeebe:ioMapping><zeebe:input source="=total" target="amount"/></zeebe:ioMapping>
      </bpmn:extensionElements></bpmn:callActivity>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="c"/><bpmn:sequenceFlow id="f2" sourceRef="c" targetRef="e"/>
    '''))
    assert (zeebe.definition.node("c").called_element, zeebe.definition.node("c").inputs) == (
        "approval", {"amount": "total"})


def review() -> ProcessDefinition:
    """The called review: it says at once that it is slow (escalation 'LATE', then goes on); a rejection throws
    'GIVE_UP' and goes on to rework (unless its caller interrupts it)."""
    b = ProcessBuilder("review", variables={"ok": "boolean"})
    gate = b.start().escalate("slow", "LATE").user("decide", assignee="boss").exclusive("decided")
    gate.when("ok").end("yes")
    b.at("decided").otherwise().escalate("give_up", "GIVE_UP").user("rework", assignee="boss").end("reworked")
    return b.build()


def order(late: bool = True) -> ProcessDefinition:
    b = ProcessBuilder("order", variables={"ok": "boolean"})
    step = b.start().call("check", "review", outputs={"ok": "ok"})
    step.end("done")
    if late:
        step.on_escalation("LATE", id="on_late", interrupting=False).user("notify", assignee="bob").end("notified")
    step.on_escalation("GIVE_UP", id="on_give_up").end("given_up")
    return b.build()


def test_the_core_throws_a_childs_escalation_at_the_call_activity() -> None:
    h = Harness(order()).start()
    (work,) = h.open_work("check")
    h.send(ev.WorkEscalated(work.token_id, "LATE"))  # non-interrupting: both go on
    assert {w.node_id for w in h.open_work()} == {"check", "notify"} and h.variables["escalation_code"] == "LATE"
    assert not h.of(fx.CancelWork) and not h.of(fx.Escalated)
    h.send(ev.WorkEscalated(work.token_id, "GIVE_UP"))  # interrupting: the call activity (and its child) stop
    assert [c.work_id for c in h.of(fx.CancelWork)] == [work.work_id] and h.entered()[-2:] == ["on_give_up",
                                                                                                  "given_up"]
    h.send(ev.WorkEscalated(work.token_id, "GIVE_UP"))  # stale: the call activity is gone
    assert h.entered().count("given_up") == 1
    h.done("notify")
    assert h.status == "completed" and "done" not in h.entered()
    h = Harness(order(late=False)).start()
    h.send(ev.WorkEscalated(h.open_work("check")[0].token_id, "LATE"))  # nothing catches it: recorded there
    assert [(e.node_id, e.code) for e in h.of(fx.Escalated)] == [("check", "LATE")] and h.open_work("check")


def test_a_childs_escalation_goes_on_out_of_the_sub_process_around_the_call_activity() -> None:
    b = ProcessBuilder("outer")
    sp = b.start().sub_process("wrap", lambda s: s.start("s").call("check", "review").end("e"))
    sp.end("done")
    sp.on_escalation(None, id="any", interrupting=False).end("noted")
    h = Harness(b.build()).start()
    h.send(ev.WorkEscalated(h.open_work("check")[0].token_id, "LATE"))
    assert "any" in h.entered() and h.open_work("check") and not h.of(fx.Escalated)


def _review_engine(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(review())
    engine.deploy(order())
    return engine


def test_the_engine_throws_a_childs_escalation_at_the_call_activity_and_both_go_on(db_url: str) -> None:
    engine = _review_engine(db_url)
    iid = engine.start("order")
    engine.run_until_idle()
    (child,) = engine.instance(iid).children
    assert [t["node_id"] for t in engine.tasks() if t["status"] == "open"] in (["decide", "notify"],
                                                                               ["notify", "decide"])
    assert engine.instance(iid).variables["escalation_code"] == "LATE"
    rows = engine.activities(child)
    assert rows[rows["kind"] == "escalation"][["node_id", "outcome"]].to_dict("records") == [
        {"node_id": "slow", "outcome": "propagated"}]
    (decide,) = engine.tasks(instance_id=child)
    engine.complete_task(decide["id"], {"ok": True}, actor="boss")
    engine.run_until_idle()
    (notify,) = [t for t in engine.tasks() if t["status"] == "open"]
    engine.complete_task(notify["id"], {}, actor="bob")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert (view.status, engine.instance(child).status) == ("completed", "completed")
    assert {"done", "notified"} <= set(view.activities["node_id"])


def test_the_engine_cancels_the_child_when_an_interrupting_boundary_catches_its_escalation(db_url: str) -> None:
    engine = _review_engine(db_url)
    iid = engine.start("order")
    engine.run_until_idle()
    (child,) = engine.instance(iid).children
    (decide,) = engine.tasks(instance_id=child)
    engine.complete_task(decide["id"], {"ok": False}, actor="boss")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert engine.instance(child).status == "cancelled" and "rework" not in [
        t["node_id"] for t in engine.tasks() if t["status"] == "open"]
    assert "given_up" in set(view.activities["node_id"]) and "done" not in set(view.activities["node_id"])
    assert view.variables["escalation_code"] == "GIVE_UP"


def test_the_simulator_finds_the_called_designs_beside_the_design(tmp_path: Path) -> None:
    from simulator.cli import same_set
    from simulator.run import called_designs

    (tmp_path / "approval.yaml").write_text(approval().to_yaml(), encoding="utf-8")
    (tmp_path / "purchase.yaml").write_text(purchase().to_yaml(), encoding="utf-8")
    assert called_designs(purchase(), same_set(tmp_path / "purchase.yaml")) == {"approval": approval()}
    assert called_designs(purchase(), same_set(tmp_path / "elsewhere" / "purchase.yaml")) == {}
