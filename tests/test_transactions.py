"""Transaction sub-processes and cancel events (issue 16), everywhere at once: model and builder, validation, the
pure core, the engine (SQLite and PostgreSQL), the simulator, BPMN round trip and the corpus file that uses them.

BPMN 2.0 §10.3.5 (Transaction), §10.4.3 (Cancel end and intermediate events): a cancel end event cancels its
transaction; the other tokens inside are cancelled, what completed inside is compensated (newest first), and the
transaction is left through its cancel boundary event. An error inside a transaction is not compensated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bpmn_support import assert_schema_valid
from pydantic import ValidationError
from semantics_harness import Harness
from sim_support import scenario

import engine as wf
from engine.bpmn import from_bpmn, import_bpmn, to_bpmn
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.nodes import CancelBoundaryEvent, SubProcess
from engine.runtime import Engine, VirtualClock
from engine.runtime.agents import BpmnError
from engine.security import Principal
from engine.semantics import effects as fx
from engine.semantics import events as ev
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"


def booking() -> ProcessDefinition:
    """trip (a transaction): hotel, then beside each other flight (-> paid? ok: end, else cancel) and a person's
    note; a cancelled trip goes on at 'cancelled' -> apologise; a trip without a seat ('no_seat') at 'no_seat'."""
    def trip(t: ProcessBuilder) -> None:
        fork = t.start("t_start").service("hotel", agent="tx.hotel", compensation="tx.undo_hotel").parallel("fork")
        paid = fork.branch().service("flight", agent="tx.flight", compensation="tx.undo_flight").exclusive("paid")
        paid.when("ok").end("t_end")
        paid.otherwise().cancel("t_cancel")
        fork.branch().user("note", assignee="ann").end("t_noted")

    b = ProcessBuilder("booking", variables={"ok": "boolean"})
    b.start().service("charge", agent="tx.charge", compensation="tx.refund").transaction("trip", trip).user(
        "confirm", assignee="ann").end("done")
    b.at("trip").on_cancel("cancelled").user("apologise", assignee="ann").end("sorry")
    b.at("trip").on_error("no_seat", id="no_seat").end("failed_booking")
    return b.build()


def _handlers(h: Harness) -> list[str]:
    return [w.handler for w in h.of(fx.StartWork) if w.kind == "compensation"]  # type: ignore[misc]


def _finish_compensations(h: Harness) -> None:
    while (open_ := [w for w in h.work.values() if w.kind == "compensation"]):
        (work,) = open_  # one at a time
        h.done_token(work.token_id)


# --- the core ----------------------------------------------------------------------------------------------------


def test_a_cancel_end_cancels_the_transaction_compensates_newest_first_and_leaves_by_the_cancel_boundary() -> None:
    h = Harness(booking()).start()
    h.done("charge")
    h.done("hotel")
    h.done("flight", ok=False)
    assert [e.node_id for e in h.of(fx.CancelWork)] == ["note"]  # the token beside it is cancelled
    assert _handlers(h) == ["tx.undo_flight"]  # one at a time, newest first; the charge is outside the transaction
    assert h.open_work("apologise") == []  # the cancel boundary waits for the compensation
    _finish_compensations(h)
    assert _handlers(h) == ["tx.undo_flight", "tx.undo_hotel"]
    assert h.entered()[-3:] == ["t_cancel", "cancelled", "apologise"]
    h.done("apologise")
    assert h.status == "completed"
    assert [e.activity_id for e in h.of(fx.Compensation) if e.outcome == "completed"] == ["flight", "hotel"]


def test_a_transaction_that_completes_leaves_by_its_flow_without_compensation() -> None:
    h = Harness(booking()).start()
    h.done("charge")
    h.done("hotel")
    h.done("note")
    h.done("flight", ok=True)
    assert _handlers(h) == [] and "cancelled" not in h.entered()
    h.done("confirm")
    assert h.status == "completed"


def test_an_error_inside_a_transaction_is_caught_without_compensation() -> None:
    h = Harness(booking()).start()
    h.done("charge")
    h.done("hotel")
    h.fail("flight", code="no_seat", business=True)  # the hazard: the error boundary, nothing undone
    assert _handlers(h) == [] and "note" in [e.node_id for e in h.of(fx.CancelWork)]
    assert h.entered()[-2:] == ["no_seat", "failed_booking"] and h.status == "completed"


def test_what_completed_inside_a_still_running_inner_sub_process_is_not_compensated() -> None:
    def trip(t: ProcessBuilder) -> None:
        fork = t.start("t_start").parallel("fork")
        fork.branch().sub_process("inner", lambda s: s.start("i_start").task("a", compensation="tx.undo_a").user(
            "wait", assignee="ann").end("i_end")).end("t_end")
        fork.branch().task("b", compensation="tx.undo_b").cancel("t_cancel")

    b = ProcessBuilder("nested")
    b.start().transaction("trip", trip).end("done")
    b.at("trip").on_cancel("cancelled").end("undone")
    h = Harness(b.build()).start()  # plain tasks complete at once: a, then b and the cancel
    assert _handlers(h) == ["tx.undo_b"]
    _finish_compensations(h)
    assert h.status == "completed" and h.entered()[-2:] == ["cancelled", "undone"]


def test_a_failing_compensation_is_an_incident_at_the_cancel_boundary_and_a_retry_goes_on() -> None:
    h = Harness(booking()).start()
    h.done("charge")
    h.done("hotel")
    h.done("flight", ok=False)
    (work,) = [w for w in h.work.values() if w.kind == "compensation"]
    h.fail("flight", error="the airline is down")
    (incident,) = h.incidents
    assert incident.node_id == "cancelled" and "compensation of 'flight' failed" in incident.error
    h.send(ev.RetryIncident(work.token_id))
    assert _handlers(h) == ["tx.undo_flight", "tx.undo_flight"]
    _finish_compensations(h)
    assert _handlers(h)[-1] == "tx.undo_hotel" and h.open_work("apologise")


def test_a_looped_transaction_is_left_as_a_whole_and_only_the_cancelled_run_is_compensated() -> None:
    def trip(t: ProcessBuilder) -> None:
        paid = t.start("t_start").task("hold", compensation="tx.release").user("pay", assignee="ann").exclusive("ok")
        paid.when("ok").end("t_end")
        paid.otherwise().cancel("t_cancel")

    b = ProcessBuilder("rooms", variables={"ok": "boolean"})
    b.start().transaction("trip", trip, multi_instance={"cardinality": "2"}).end("done")
    b.at("trip").on_cancel("cancelled").end("undone")
    h = Harness(b.build()).start()
    first, second = h.open_work("pay")
    h.done_token(first.token_id, ok=False)
    assert [e.node_id for e in h.of(fx.CancelWork)] == ["pay"]  # the other run
    assert _handlers(h) == ["tx.release"]  # the cancelled run's hold only
    _finish_compensations(h)
    assert h.status == "completed" and h.entered()[-2:] == ["cancelled", "undone"]
    assert second.token_id not in h.state.tokens  # type: ignore[union-attr]


# --- model and validation ----------------------------------------------------------------------------------------


def _errors(definition: ProcessDefinition) -> list[str]:
    return [f"{p.where}: {p.message}" for p in validate(definition) if p.severity == "error"]


def test_a_cancel_end_outside_a_transaction_is_refused_naming_it() -> None:
    b = ProcessBuilder("plain")
    b.start().sub_process("sub", lambda s: s.start("s").cancel("oops")).end("e")
    assert any(e.startswith("oops: cancel end event 'oops' is in sub-process 'sub', which is not a transaction")
               and e.endswith("move it directly inside a transaction (or make its sub-process one), or use an end "
                              "or error end event") for e in _errors(b.build(validate=False)))
    top = ProcessBuilder("top")
    top.start().cancel("at_top")
    assert any(e.startswith("at_top: cancel end event 'at_top' is in the process") for e in
               _errors(top.build(validate=False)))


def test_a_cancel_boundary_goes_only_on_a_transaction() -> None:
    b = ProcessBuilder("wrong")
    b.start().sub_process("sub", lambda s: s.start("s").end("se")).end("e")
    b.at("sub").on_cancel("c").end("ce")
    assert any("c: cancel boundary event 'c' is attached to sub-process 'sub', which is not a transaction" in e
               and e.endswith("move it onto a transaction, make this sub-process one, or use another boundary event")
               for e in _errors(b.build(validate=False)))


def test_a_transaction_with_a_cancel_end_needs_exactly_one_cancel_boundary() -> None:
    def body(t: ProcessBuilder) -> None:
        t.start("s").cancel("c")

    none = ProcessBuilder("none")
    none.start().transaction("trip", body).end("e")
    assert any("trip: transaction 'trip' has cancel end event(s) 'c' but no cancel boundary event" in e
               and e.endswith("add a cancel boundary event to it") for e in _errors(none.build(validate=False)))
    two = ProcessBuilder("two")
    two.start().transaction("trip", body).end("e")
    two.at("trip").on_cancel("c1").end("e1")
    two.at("trip").on_cancel("c2").end("e2")
    assert any("has 2 cancel boundary events ('c1', 'c2')" in e for e in _errors(two.build(validate=False)))
    assert _errors(booking()) == []


def test_a_cancel_boundary_always_interrupts_and_a_transaction_is_no_event_sub_process() -> None:
    with pytest.raises(ValidationError, match="always interrupts its transaction"):
        CancelBoundaryEvent(id="c", attached_to="trip", interrupting=False)
    with pytest.raises(ValidationError, match="an event sub-process or a transaction, not both"):
        SubProcess(id="x", transaction=True, triggered_by_event=True)


# --- BPMN --------------------------------------------------------------------------------------------------------


def test_bpmn_round_trip_writes_a_transaction_and_cancel_event_definitions() -> None:
    d = booking()
    xml = to_bpmn(d)
    assert_schema_valid(xml)
    assert '<bpmn:transaction id="trip"' in xml and xml.count("<bpmn:cancelEventDefinition") == 2
    back = import_bpmn(xml)
    assert back.definition == d and not [f for f in back.findings if f.category in ("error", "unsupported")]
    assert to_bpmn(back.definition) == xml


def test_the_corpus_transaction_imports_strictly_and_runs(db_url: str) -> None:
    source = CORPUS / "executable" / "transaction.bpmn"
    if not source.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    d = from_bpmn(source.read_bytes())
    assert d.node("Subprocess").transaction  # type: ignore[attr-defined]
    assert (d.node("Cancel_Event").kind, d.node("Catch_Cancel_Event").kind) == ("cancel_end", "boundary_cancel")  # type: ignore[attr-defined]
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    iid = engine.start("Main_Process")
    (task,) = engine.tasks(instance_id=iid, status="open")
    engine.complete_task(task["id"], {"value": ""})  # empty data: the transaction is cancelled
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "completed" and view.variables["reason"] == "Cancel"
    rows = engine.activities(iid)
    outcome = dict(zip(rows["node_id"], rows["outcome"], strict=False))
    assert outcome["Subprocess"] == "cancelled" and outcome["Catch_Cancel_Event"] == "completed"


# --- the engine --------------------------------------------------------------------------------------------------


def _register(calls: list[str]) -> None:
    def agent(name: str, outputs: dict[str, Any] | None = None) -> Any:
        def run(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
            calls.append(name)
            if name == "flight" and inputs.get("seat") is False:
                raise BpmnError("no_seat")
            return dict(outputs or {})
        return run

    for name in ("charge", "refund", "hotel", "undo_hotel", "undo_flight"):
        wf.register(f"tx.{name}", agent(name))
    wf.register("tx.flight", agent("flight", {"ok": False}))


def test_the_engine_cancels_compensates_and_leaves_by_the_cancel_boundary(db_url: str) -> None:
    calls: list[str] = []
    _register(calls)
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(booking())
    iid = engine.start("booking")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "running" and view.active_nodes == ["apologise"]
    assert calls == ["charge", "hotel", "flight", "undo_flight", "undo_hotel"]
    assert [t["node_id"] for t in engine.tasks(instance_id=iid, status="open")] == ["apologise"]  # 'note' closed
    rows = engine.activities(iid)
    outcome = {(n, k): o for n, k, o in zip(rows["node_id"], rows["kind"], rows["outcome"], strict=False)}
    assert outcome[("trip", "sub_process")] == "cancelled" and outcome[("note", "user_task")] == "cancelled"
    assert outcome[("hotel", "compensation")] == "completed" and outcome[("hotel", "service_task")] == "compensated"
    (task,) = engine.tasks(instance_id=iid, status="open")
    engine.complete_task(task["id"], {}, actor="ann")
    assert engine.instance(iid).status == "completed"


# --- the simulator -----------------------------------------------------------------------------------------------


def test_the_simulator_takes_the_same_path_with_fixed_durations() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, pools={"ann": {"size": 1}},
                 tasks={"charge": {"duration": 60}, "hotel": {"duration": 120, "compensation": 300},
                        "flight": {"duration": 180, "outputs": {"ok": False}, "compensation": 600},
                        "note": {"duration": 3600}, "apologise": {"duration": 900}})
    results = simulate(booking(), s)
    (row,) = results.cases(0).to_dict("records")
    # charge, hotel, flight (the note is cancelled), undo the flight, then the hotel, apologise
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(seconds=60 + 120 + 180 + 600 + 300 + 900)
    log = results.activity_log(0)
    undone = log[log["kind"] == "compensation"].sort_values("time:timestamp")
    assert list(undone["activity_id"]) == ["flight", "hotel"]
    done = set(log.loc[log["outcome"] == "completed", "activity_id"])
    assert "apologise" in done and "confirm" not in done


# --- reading what happened --------------------------------------------------------------------------------------


def test_the_path_lists_the_cancel_boundary_after_the_compensation_it_waited_for(db_url: str) -> None:
    from app.operations import path_taken

    _register([])
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    definition = booking()
    engine.deploy(definition)
    iid = engine.start("booking")
    engine.run_until_idle()
    path = path_taken(engine, iid, definition)
    steps = list(zip(path["node"], path["kind"], strict=True))
    # the same clock time throughout: the order is what happened, the boundary is left once both are undone
    assert steps[-4:] == [("flight", "compensation"), ("hotel", "compensation"), ("cancelled", "boundary_cancel"),
                          ("apologise", "user_task")]
    assert ("trip", "transaction") in steps
    assert list(path.loc[path["kind"] == "compensation", "step"]) == ["Undo: Flight", "Undo: Hotel"]


def test_the_diagram_draws_a_transaction_with_a_double_border() -> None:
    from engine.render import to_dot

    dot = to_dot(booking())
    assert "subgraph cluster_trip {" in dot and "subgraph cluster_trip__transaction {" in dot
    plain = ProcessBuilder("plain")
    plain.start().sub_process("inner", lambda t: t.start("s2").end("e2")).end("e")
    assert "__transaction" not in to_dot(plain.build())


def test_the_hints_speak_of_elements_not_builder_calls() -> None:
    """A hint is read on the canvas as well as in code: it names elements (a cancel boundary event, a transaction, a
    start event), never a builder call or field assignment such as on_cancel(), kind 'boundary_cancel' or
    transaction=True."""
    import re

    def body(t: ProcessBuilder) -> None:
        t.start("s").cancel("c")

    cases = ProcessBuilder("cases")
    cases.start().transaction("trip", body).sub_process("sub", lambda s: s.start("s2").cancel("oops")) \
        .ad_hoc("adhoc", lambda a: a.start("a_start").task("a1")).end("e")
    cases.at("sub").on_cancel("bc").end("be")
    empty = ProcessBuilder("empty").build(validate=False)
    messages = _errors(cases.build(validate=False)) + _errors(empty)
    assert len([m for m in messages if "cancel" in m or "start event" in m]) >= 5, messages
    for message in messages:
        assert not re.search(r"\w\(\)|=True|kind '|ProcessBuilder", message), message


# --- the builder's default ids inside a sub-process ---------------------------------------------------------------


def test_a_start_and_end_inside_a_transaction_take_scoped_default_ids_only_when_the_plain_one_is_taken() -> None:
    def trip(t: ProcessBuilder) -> None:
        paid = t.start().service("hotel", agent="tx.hotel", compensation="tx.undo_hotel").exclusive("paid")
        paid.when("ok").end()
        paid.otherwise().cancel()

    b = ProcessBuilder("scoped", variables={"ok": "boolean"})
    b.start().transaction("trip", trip).end()  # the outer end() comes after the inner one took 'end'
    b.at("trip").on_cancel("cancelled").end("sorry")
    definition = b.build()
    (inner,) = [x for x in definition.nodes if isinstance(x, SubProcess)]
    assert {x.id for x in inner.nodes} >= {"trip_start", "end", "cancel"}  # 'end' was free when the body ran
    assert {x.id for x in definition.nodes} >= {"start", "end_2"}
    alone = ProcessBuilder("alone")  # nothing clashes: plain ids as before
    alone.start("go").sub_process("s", lambda t: t.start().end()).end("e")
    assert {x.id for x in alone._nodes["s"].nodes} == {"start", "end"}  # type: ignore[attr-defined]
    twice = ProcessBuilder("twice")  # the same scope's repeats stay numbered
    twice.start("go").sub_process("s", lambda t: (g := t.start().parallel("p"), g.branch().end(), g.branch().end())
                                  ).end("done")
    assert {x.id for x in twice._nodes["s"].nodes} == {"start", "p", "end", "end_2"}  # type: ignore[attr-defined]


def test_the_readme_transaction_and_ad_hoc_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Ten lines of Python\n", 1)[1].split("\n## ", 1)[0]
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", section, re.S) if ".transaction(" in c]
    exec(compile(code, "README.md (transaction example)", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.splitlines() == ["['call', 'refund']", "completed"]
