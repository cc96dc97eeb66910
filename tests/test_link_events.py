"""Link events and the none intermediate throw event (issue 16, item 7), everywhere at once: model and
builder, validation, the pure core, the engine (SQLite and PostgreSQL), the simulator, BPMN round trip.

BPMN 2.0 §10.5.6: a link throw and the link catch of the same name in one process level act as one
sequence flow; §10.5.4: a none intermediate throw event marks a state reached and passes the token on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"


def linked() -> ProcessDefinition:
    """start -> review (user) -> milestone (none throw) -> approved? -> link 'archive' ... or back to review
    through the link 'again'; the catch 'archive' leads to archive (user) -> end."""
    b = ProcessBuilder("linked", variables={"approved": "boolean"})
    gate = b.start().user("review", assignee="ann").throw("reviewed").exclusive("ok")
    gate.when("approved").link("to_archive", "archive")
    gate.otherwise().link("to_again", "again")
    b.link_catch("again_in", "again").to("review")
    b.link_catch("archive_in", "archive").user("archive", assignee="bob").end("done")
    return b.build()


def test_the_core_jumps_from_a_link_throw_to_its_catch() -> None:
    h = Harness(linked()).start()
    h.done("review", approved=False)
    h.done("review", approved=True)
    assert [n for n in h.entered() if n != "ok"] == [
        "start", "review", "reviewed", "to_again", "again_in", "review", "reviewed", "to_archive", "archive_in",
        "archive"]
    h.done("archive")
    assert h.status == "completed"


@pytest.mark.parametrize(("change", "said"), [
    (lambda b: b.link_catch("other_in", "archive"), "link catch names must be unique"),
    (lambda b: b.start("s2").link("lost", "nowhere"), "has no link catch event of that name"),
])
def test_validation_names_broken_links(change, said) -> None:  # type: ignore[no-untyped-def]
    b = ProcessBuilder("broken")
    b.start().link("go", "archive")
    b.link_catch("archive_in", "archive").end("e")
    change(b)
    problems = [p for p in validate(b.build(validate=False)) if p.severity == "error"]
    assert any(said in p.message for p in problems), problems


def test_a_link_catch_with_an_incoming_flow_is_refused() -> None:
    b = ProcessBuilder("wrong")
    b.start().link("go", "x")
    b.start("s2").task("t").to("x_in")
    b.link_catch("x_in", "x").end("e")
    with pytest.raises(DefinitionError, match="a link catch event is entered only from link throw events"):
        b.build()


def test_links_do_not_cross_a_sub_process_boundary() -> None:
    b = ProcessBuilder("scoped")
    b.start().sub_process("sub", lambda s: s.start("s1").link("go", "out").end("e1")).end("e")
    b.link_catch("out_in", "out").end("e2")
    with pytest.raises(DefinitionError, match="sub-process 'sub' has no link catch event"):
        b.build()


def test_the_engine_follows_links(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(linked())
    iid = engine.start("linked")

    def complete(node: str, **values: object) -> None:
        (task,) = [t for t in engine.tasks(instance_id=iid, status="open") if t["node_id"] == node]
        engine.complete_task(task["id"], values, actor="ann" if node == "review" else "bob")

    complete("review", approved=False)
    assert engine.instance(iid).active_nodes == ["review"]
    complete("review", approved=True)
    assert engine.instance(iid).active_nodes == ["archive"]
    complete("archive")
    assert engine.instance(iid).status == "completed"


def test_the_simulator_takes_the_same_path_with_fixed_durations() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]},
                 pools={"ann": {"size": 1}, "bob": {"size": 1}},
                 tasks={"review": {"duration": 600, "outputs": {"approved": True}}, "archive": {"duration": 300}})
    results = simulate(linked(), s)
    (row,) = results.cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=15)
    log = results.activity_log(0)
    assert {"review", "archive"} <= set(log.loc[log["outcome"] == "completed", "activity_id"])


def test_bpmn_round_trip_writes_link_event_definitions() -> None:
    d = linked()
    xml = to_bpmn(d)
    assert xml.count("<bpmn:linkEventDefinition") == 4 and 'name="archive"' in xml
    assert "<bpmn:intermediateThrowEvent id=\"reviewed\"" in xml
    back = import_bpmn(xml)
    assert back.definition == d and not [f for f in back.findings if f.category in ("error", "unsupported")]


def test_an_unnamed_link_definition_pairs_by_the_event_name() -> None:
    result = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:intermediateThrowEvent id="t" name="next"><bpmn:linkEventDefinition/></bpmn:intermediateThrowEvent>
      <bpmn:intermediateCatchEvent id="c" name="next"><bpmn:linkEventDefinition/></bpmn:intermediateCatchEvent>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="c" targetRef="e"/>
    '''))
    assert result.definition.link_targets() == {"t": "c"}
    assert any("paired by the event's name 'next'" in f.message for f in result.findings)


def test_the_corpus_link_event_file_imports_and_runs() -> None:
    path = CORPUS / "executable" / "LinkEventTest.testValidEventLink.bpmn20.xml"
    if not path.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    d = import_bpmn(path.read_bytes()).definition
    assert set(d.link_targets().values()) - {None}
    h = Harness(d).start()
    for receive in ("waitAfterLink1", "waitAfterLink2"):  # receive tasks: each waits for its message
        assert h.entered()[-1] == receive
        assert h.message(d.node(receive).message)  # type: ignore[attr-defined]
    assert h.entered() == ["StartEvent_1", "IntermediateThrowEvent_1", "IntermediateCatchEvent_1", "waitAfterLink1",
                           "IntermediateThrowEvent_2", "IntermediateCatchEvent_2", "waitAfterLink2", "EndEvent_1"]
    assert h.status == "completed"


# --- send tasks (BPMN 2.0 §10.3.3): a send task with a message and no code is a message throw -----------


def send_task_process(extra: str = "") -> str:
    return doc(f'''<bpmn:startEvent id="s"/>
      <bpmn:sendTask id="notify" name="Notify customer" messageRef="m" {extra}/>
      <bpmn:receiveTask id="answer" messageRef="a"/>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="notify"/>
      <bpmn:sequenceFlow id="f2" sourceRef="notify" targetRef="answer"/>
      <bpmn:sequenceFlow id="f3" sourceRef="answer" targetRef="e"/>''',
               root='<bpmn:message id="m" name="customer.notified"/><bpmn:message id="a" name="customer.answered"/>')


def test_a_send_task_sends_its_message_in_the_core_and_round_trips() -> None:
    d = import_bpmn(send_task_process()).definition
    notify = d.node("notify")
    assert (notify.kind, notify.message, notify.metadata["bpmn"]) == ("message_throw", "customer.notified", "sendTask")
    h = Harness(d).start()
    assert [m.message for m in h.sent] == ["customer.notified"] and h.entered()[-1] == "answer"
    assert h.message("customer.answered") and h.status == "completed"
    xml = to_bpmn(d)
    assert '<bpmn:sendTask id="notify" name="Notify customer" messageRef=' in xml
    assert import_bpmn(xml).definition == d


def test_a_send_task_with_code_stays_a_service_task() -> None:
    d = import_bpmn(send_task_process('camunda:type="external" camunda:topic="mail"')).definition
    assert d.node("notify").kind == "service_task"


def test_the_engine_sends_the_send_tasks_message(db_url: str) -> None:
    d = import_bpmn(send_task_process()).definition
    listener = ProcessBuilder("listener")
    listener.message_start("on_notice", "customer.notified").end("heard")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    engine.deploy(listener.build())
    iid = engine.start("p")
    engine.run_until_idle()
    assert engine.instance(iid).active_nodes == ["answer"]
    runs = engine.instances()
    assert list(runs.loc[runs["definition_name"] == "listener", "status"]) == ["completed"]
