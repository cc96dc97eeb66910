"""Multi-instance activities and standard loops (issue 16, item 2), everywhere at once: model and builder,
validation, the pure core, the engine (SQLite and PostgreSQL), the simulator with fixed durations, BPMN.

BPMN 2.0 §10.2.8 and §13.2.7: a multi-instance activity runs once per item of a collection (or cardinality
times), in parallel or one after another; each instance has its own loopCounter and element; the completion
condition, checked whenever an instance completes, cancels the others; a boundary event of the activity
interrupts all its instances. A standard loop repeats while its condition holds (tested before or after each
run), at most loopMaximum times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine import register
from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import MultiInstance, ProcessBuilder, ProcessDefinition, for_each, repeat, times
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.semantics import effects as fx
from engine.semantics import events as ev
from engine.semantics.state import InstanceState, Token, Tokens
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CHANNELS = ["email", "blog", "social"]


def _draft(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"draft": f"{inputs['channel']} #{inputs['loopCounter']}"}


register("test.mi.draft", _draft)


def campaign(sequential: bool = False, until: str | None = None, deadline: bool = False) -> ProcessDefinition:
    """The seed's campaign: create content for every channel in a list, then publish."""
    b = ProcessBuilder("campaign", variables={"channels": "array", "drafts": "array", "published": "boolean"})
    create = b.start().service("create", agent="test.mi.draft", inputs=["channel", "loopCounter"], outputs=["draft"],
                               multi_instance=for_each("channels", "channel", sequential=sequential, into="drafts",
                                                       output="draft", until=until))
    if deadline:
        create.on_timer("PT1H", id="late").end("too_late")
    create.user("publish", assignee="ann").end("done")
    return b.build()


def reviews(sequential: bool = False, until: str | None = None) -> ProcessDefinition:
    b = ProcessBuilder("reviews", variables={"reviewers": "integer", "approvals": "integer"})
    review = b.start().user("review", assignee="team", multi_instance=times("reviewers", sequential=sequential,
                                                                            until=until))
    review.on_timer("P1D", id="timeout").end("timed_out")
    review.on_error("rejected", id="rejected").end("was_rejected")
    review.end("done")
    return b.build()


# --- model and validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "said"), [
    ({}, "either a cardinality or a collection"),
    ({"cardinality": "3", "collection": "xs"}, "either a cardinality or a collection"),
    ({"cardinality": "3", "element_variable": "x"}, "takes the items of a collection"),
    ({"collection": "xs", "element_variable": "loopCounter"}, "a name the loop itself defines"),
    ({"collection": "xs", "output_collection": "ys"}, "go together"),
    ({"collection": "xs +"}, "does not parse"),
])
def test_the_model_refuses_a_multi_instance_it_cannot_run(fields: dict[str, Any], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        MultiInstance(**fields)


def test_an_activity_has_one_loop_characteristic_and_a_loop_must_end() -> None:
    with pytest.raises(ValueError, match="not both"):
        ProcessBuilder("x").start().task("t", multi_instance=times(2), loop=repeat(maximum=2))
    with pytest.raises(ValueError, match="never ends"):
        repeat()


def test_validation_knows_the_loop_variables_only_inside_the_loop() -> None:
    b = ProcessBuilder("v", variables={"items": "array"})
    inner = b.start().sub_process("each", lambda s: s.start("s0").exclusive("big").when("item > 3").end("large")
                                  .builder.at("big").otherwise().end("small"),
                                  multi_instance=for_each("items", "item", until="nrOfCompletedInstances > 1"))
    inner.exclusive("after").when("item > 3").end("e1").builder.at("after").otherwise().end("e2")
    with pytest.raises(DefinitionError) as caught:
        b.build()
    (problem,) = caught.value.problems
    assert problem.where == "after__e1" and "'item'" in problem.message  # outside the loop, item is unknown


# --- the core ---------------------------------------------------------------------------------------


def test_parallel_instances_each_see_their_item_and_the_outputs_keep_the_item_order() -> None:
    h = Harness(campaign()).start(channels=CHANNELS)
    works = h.open_work("create")
    assert [(w.inputs["channel"], w.inputs["loopCounter"]) for w in works] == [
        ("email", 0), ("blog", 1), ("social", 2)]
    for work in reversed(works):  # completed in the reverse order: the collection keeps the item order
        h.done_token(work.token_id, draft=f"for {work.inputs['channel']}")
    assert h.variables["drafts"] == ["for email", "for blog", "for social"]
    assert "draft" not in h.variables and "channel" not in h.variables  # the instances' own variables
    assert [w.node_id for w in h.open_work()] == ["publish"]
    assert len(h.of(fx.Left)) == 3


def test_sequential_instances_run_one_after_another() -> None:
    h = Harness(campaign(sequential=True)).start(channels=CHANNELS)
    seen = []
    while h.open_work("create"):
        (work,) = h.open_work("create")
        seen.append(work.inputs["channel"])
        h.done_token(work.token_id, draft=work.inputs["channel"].upper())
    assert seen == CHANNELS and h.variables["drafts"] == ["EMAIL", "BLOG", "SOCIAL"]


def test_an_empty_collection_runs_no_instance_and_collects_an_empty_list() -> None:
    h = Harness(campaign()).start(channels=[])
    assert h.variables["drafts"] == [] and [w.node_id for w in h.open_work()] == ["publish"]


def test_the_counters_as_bpmn_defines_them() -> None:
    h = Harness(reviews()).start(reviewers=3)
    first = h.open_work("review")[0]
    assert (first.inputs["nrOfInstances"], first.inputs["nrOfActiveInstances"],
            first.inputs["nrOfCompletedInstances"]) == (3, 3, 0)


def test_the_completion_condition_cancels_the_instances_still_running() -> None:
    h = Harness(reviews(until="nrOfCompletedInstances >= 2")).start(reviewers=4)
    works = h.open_work("review")
    h.done_token(works[0].token_id)
    assert len(h.open_work("review")) == 3
    effects = h.done_token(works[1].token_id)
    assert {e.token_id for e in effects if isinstance(e, fx.CancelWork)} == {works[2].token_id, works[3].token_id}
    assert h.status == "completed" and h.entered()[-1] == "done"


def test_a_boundary_timer_interrupts_every_instance_once() -> None:
    h = Harness(reviews()).start(reviewers=3)
    assert len(h.open_work("review")) == 3
    assert len(h.of(fx.ScheduleTimer)) == 1  # armed on the activity, not per instance
    h.advance(timedelta(days=1))
    assert not h.open_work() and len(h.of(fx.CancelWork)) == 3
    assert h.status == "completed" and h.entered()[-1] == "timed_out"


def test_an_error_in_one_instance_is_caught_on_the_activity_and_cancels_the_others() -> None:
    h = Harness(reviews()).start(reviewers=3)
    one = h.open_work("review")[1]
    h.work.pop(one.token_id)
    h.send(ev.WorkFailed(one.token_id, "no", "rejected", business=True))
    assert not h.open_work() and h.entered()[-1] == "was_rejected"


def test_a_multi_instance_sub_process_gives_each_instance_its_element() -> None:
    b = ProcessBuilder("each", variables={"orders": "array", "totals": "array"})
    b.start().sub_process(
        "price", lambda s: s.start("s0").script("calc", "total = order['qty'] * order['price']").exclusive("big")
        .when("total > 100").user("approve", assignee="ann").end("approved")
        .builder.at("big").otherwise().end("fine"),
        multi_instance=for_each("orders", "order", into="totals", output="total")).end("done")
    h = Harness(b.build()).start(orders=[{"qty": 1, "price": 5}, {"qty": 30, "price": 5}, {"qty": 2, "price": 1}])
    assert [w.inputs["order"] for w in h.open_work("approve")] == [{"qty": 30, "price": 5}]
    h.done("approve")
    assert h.status == "completed" and h.variables["totals"] == [5, 150, 2] and "total" not in h.variables


class _CountingTokens(Tokens):
    """Tokens that count whole-instance reads (iterating all tokens): a scan."""

    scans = 0

    def values(self) -> Any:
        _CountingTokens.scans += 1
        return super().values()

    def items(self) -> Any:
        _CountingTokens.scans += 1
        return super().items()

    def __iter__(self) -> Any:
        _CountingTokens.scans += 1
        return super().__iter__()


def test_an_inner_end_of_a_multi_instance_sub_process_reads_its_own_scope_not_every_token() -> None:
    """With n sub-process instances, finding whether an instance's scope has tokens left is a lookup in the
    core's index of tokens by scope (``state.Tokens``), not a scan of all the instance's tokens."""
    b = ProcessBuilder("many", variables={"items": "array", "outs": "array"})
    b.start().sub_process("each", lambda s: s.start("s").user("work", assignee="ann").end("e"),
                          multi_instance=for_each("items", "item", into="outs", output="item")).end("done")
    h = Harness(b.build()).start(items=list(range(50)))
    assert h.state is not None
    works = h.open_work("work")
    for i, work in enumerate(works):
        h.state.tokens = _CountingTokens(h.state.tokens)
        _CountingTokens.scans = 0
        effects = h.sem.step(h.state, ev.WorkDone(work.token_id, {}), h.now)
        h.state.touched.clear()
        h.work.pop(work.token_id)
        assert _CountingTokens.scans == 0, f"item {i} scanned every token"
        assert [e.node_id for e in effects if isinstance(e, fx.Left)] == ["each"]  # its instance completed
        for parent in {t.parent for t in h.state.tokens.values()} | {None}:  # the index is the truth
            assert h.state.tokens.in_scope(parent) == [t for t in h.state.tokens.values() if t.parent == parent]
    assert h.state.status == "completed" and h.variables["outs"] == list(range(50))


def test_the_tokens_index_follows_every_change_and_survives_a_copy() -> None:
    import copy
    import pickle

    tokens = Tokens({"t1": Token("t1", "a", ""), "t2": Token("t2", "b", "", parent="t1")})
    tokens["t3"] = Token("t3", "c", "", parent="t1")
    tokens.update({"t4": Token("t4", "d", "", parent="t3")})
    assert [t.id for t in tokens.in_scope("t1")] == ["t2", "t3"] and tokens.any_in_scope("t3")
    del tokens["t2"]
    assert tokens.pop("t4").id == "t4" and tokens.pop("nope", None) is None
    tokens["t3"] = Token("t3", "c2", "", parent=None)  # the same id, another token: moved scopes
    assert [t.id for t in tokens.in_scope(None)] == ["t1", "t3"] and not tokens.any_in_scope("t1")
    for other in (copy.deepcopy(tokens), pickle.loads(pickle.dumps(tokens)), InstanceState(tokens=dict(tokens)).tokens):
        assert isinstance(other, Tokens) and [t.id for t in other.in_scope(None)] == ["t1", "t3"]
    tokens.clear()
    assert not tokens.in_scope(None) and not tokens


def test_a_collection_that_is_not_a_list_is_an_incident_retried_after_a_fix() -> None:
    h = Harness(campaign()).start(channels="email")
    (incident,) = h.incidents
    assert incident.node_id == "create" and "not a list" in incident.error
    h.send(ev.SetVariables({"channels": ["email"]}))
    h.send(ev.RetryIncident(incident.token_id))
    assert [w.inputs["channel"] for w in h.open_work("create")] == ["email"]


@pytest.mark.parametrize(("loop", "runs"), [
    (repeat("loopCounter < 3"), 3),  # do-while: the condition between runs sees the runs done
    (repeat("loopCounter < 3", test_before=True), 3),
    (repeat("False"), 1),  # tested after: at least once
    (repeat("False", test_before=True), 0),
    (repeat("True", maximum=4), 4),
    (repeat(maximum=0), 0),
])
def test_a_standard_loop_repeats_while_its_condition_holds(loop: Any, runs: int) -> None:
    b = ProcessBuilder("loop")
    b.start().user("try", assignee="ann", loop=loop).end("done")
    h = Harness(b.build()).start()
    counters = []
    while h.open_work("try"):
        (work,) = h.open_work("try")
        counters.append(work.inputs["loopCounter"])
        h.done_token(work.token_id)
    assert counters == list(range(runs)) and h.status == "completed"


def test_a_standard_loop_sees_what_its_runs_set() -> None:
    b = ProcessBuilder("retry_until", variables={"ok": "boolean"})
    b.start().user("attempt", assignee="ann", loop=repeat("not ok", maximum=10)).end("done")
    h = Harness(b.build()).start(ok=False)
    h.done("attempt", ok=False)
    h.done("attempt", ok=True)
    assert h.status == "completed" and h.entered().count("attempt") == 1 + 2  # the body, then two runs


# --- the engine (SQLite and PostgreSQL) ------------------------------------------------------------------


def test_the_engine_runs_the_campaign_for_every_channel(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(campaign())
    iid = engine.start("campaign", {"channels": CHANNELS})
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.variables["drafts"] == ["email #0", "blog #1", "social #2"]
    assert view.active_nodes == ["publish"] and "draft" not in view.variables
    rows = view.activities
    created = rows[rows["node_id"] == "create"]
    assert len(created) == 4 and set(created["outcome"]) == {"completed"}  # the body and its three instances


def test_the_engine_interrupts_every_instance_on_a_boundary_timer(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reviews())
    iid = engine.start("reviews", {"reviewers": 3})
    assert len(engine.tasks(instance_id=iid)) == 3
    (one, *_) = engine.tasks(instance_id=iid)
    engine.complete_task(one["id"], {}, actor="team")
    engine.advance(timedelta(days=1))
    view = engine.instance(iid)
    assert view.status == "completed" and not engine.tasks(instance_id=iid)
    assert "timed_out" in set(view.activities["node_id"])


def test_the_engine_runs_sequential_instances_and_a_completion_condition(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reviews(sequential=True, until="nrOfCompletedInstances >= 2"))
    iid = engine.start("reviews", {"reviewers": 5})
    for _ in range(2):
        (task,) = engine.tasks(instance_id=iid)
        engine.complete_task(task["id"], {}, actor="team")
    assert engine.instance(iid).status == "completed"


# --- the simulator ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sequential", "minutes"), [(False, 10), (True, 30)])
def test_the_simulator_runs_instances_in_parallel_or_in_turn(sequential: bool, minutes: int) -> None:
    b = ProcessBuilder("sim", variables={"channels": "array"})
    b.start().service("create", agent="test.mi.draft", multi_instance=for_each("channels", "channel",
                                                                                sequential=sequential)).end("done")
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"channels": CHANNELS},
                 tasks={"create": {"duration": 600}})
    results = simulate(b.build(), s)
    (row,) = results.cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=minutes)
    log = results.activity_log(0)
    assert (log["activity_id"] == "create").sum() == 3


# --- BPMN -----------------------------------------------------------------------------------------------


def test_bpmn_round_trip_writes_standard_loop_characteristics() -> None:
    for d in (campaign(sequential=True, until="nrOfCompletedInstances >= 2"), reviews()):
        xml = to_bpmn(d)
        assert "<bpmn:multiInstanceLoopCharacteristics" in xml
        back = import_bpmn(xml)
        assert back.definition == d and not [f for f in back.findings if f.category in ("error", "unsupported")]
    b = ProcessBuilder("loop", variables={"ok": "boolean"})
    b.start().user("attempt", assignee="ann", loop=repeat("not ok", test_before=True, maximum=3)).end("done")
    xml = to_bpmn(b.build())
    assert '<bpmn:standardLoopCharacteristics testBefore="true" loopMaximum="3">' in xml
    assert import_bpmn(xml).definition == b.build()


def test_multi_instance_from_camunda_and_zeebe_files() -> None:
    camunda = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:userTask id="review">
        <bpmn:multiInstanceLoopCharacteristics camunda:collection="${reviewers}" camunda:elementVariable="reviewer">
          <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">${nrOfCompletedInstances == 2}
          </bpmn:completionCondition>
        </bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
      <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="e"/>'''))
    mi = camunda.definition.node("review").multi_instance
    assert (mi.collection, mi.element_variable, mi.completion_condition) == (
        "reviewers", "reviewer", "${nrOfCompletedInstances == 2}")
    zeebe = import_bpmn(doc('''<bpmn:startEvent id="s"/>
      <bpmn:userTask id="check">
        <bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements>
          <zeebe:loopCharacteristics inputCollection="=documents" inputElement="document"
             outputCollection="results" outputElement="=result"/>
        </bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
      <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="e"/>'''))
    mi = zeebe.definition.node("check").multi_instance
    assert (mi.sequential, mi.collection, mi.element_variable, mi.output_collection, mi.output_element) == (
        True, "documents", "document", "results", "result")


def test_a_multi_instance_that_does_not_say_how_many_is_refused_with_the_reason() -> None:
    xml = doc('''<bpmn:startEvent id="s"/>
      <bpmn:task id="t"><bpmn:multiInstanceLoopCharacteristics isSequential="false"/></bpmn:task>
      <bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
      <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>''')
    with pytest.raises(DefinitionError, match="how many instances to run is not said"):
        import_bpmn(xml)
    lenient = import_bpmn(xml, lenient=True)
    assert lenient.definition.node("t").multi_instance is None


# --- storage: a step writes the tokens it moved, not the other instances ---------------------------------


def test_completing_one_of_many_instances_writes_one_token_row_and_no_token_in_the_state(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime.prepared import Prepared

    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reviews())
    iid = engine.start("reviews", {"reviewers": 200})
    task = engine.tasks(instance_id=iid)[0]
    written: list[tuple[str, int]] = []
    executemany = Prepared.executemany

    def record(self: Prepared, conn: Any, rows: Any) -> None:
        if self.statement.table.name == "wf_tokens":
            written.append((type(self.statement).__name__, len(rows)))
        executemany(self, conn, rows)

    monkeypatch.setattr(Prepared, "executemany", record)
    engine.complete_task(task["id"], {}, actor="team")
    monkeypatch.undo()
    assert sorted(written) == [("Delete", 1), ("Update", 1)]  # the instance's token goes, the body's counters move
    with engine.db.connect() as conn:
        state = conn.exec_driver_sql(f"SELECT state FROM wf_instances WHERE id = '{iid}'").scalar()
    assert '"tokens"' not in state and len(engine.tasks(instance_id=iid)) == 199


def test_a_state_stored_with_its_tokens_inside_still_runs(db_url: str) -> None:
    """States written before tokens had rows of their own keep them in the instance's JSON."""
    from sqlalchemy import text

    from engine.runtime.writes import dumps, load_states

    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reviews())
    iid = engine.start("reviews", {"reviewers": 2})
    with engine.db.begin() as conn:
        row = conn.execute(text("SELECT id, state FROM wf_instances WHERE id = :i"), {"i": iid}).one()
        old = load_states(conn, {iid: row})[iid].to_dict(variables=False)  # as written before token rows
        conn.execute(text("UPDATE wf_instances SET state = :s, rev = rev + 1 WHERE id = :i"),
                     {"s": dumps(old), "i": iid})
        conn.execute(text("UPDATE wf_tokens SET data = NULL WHERE instance_id = :i"), {"i": iid})
    for task in engine.tasks(instance_id=iid):
        engine.complete_task(task["id"], {}, actor="team")
    assert engine.instance(iid).status == "completed"
