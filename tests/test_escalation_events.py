"""Escalation events (issue 16, item 5): throw (intermediate and end) and boundary (interrupting or not), everywhere
at once: model and builder, validation, the core (pure), the engine (SQLite and PostgreSQL), the simulator, BPMN
round trip and the corpus files that use them.

BPMN 2.0 §10.5.6: an escalation goes to the enclosing scopes, innermost first, and is caught by an escalation
boundary event whose code matches (no code: every code); an interrupting one cancels the scope, a
non-interrupting one lets the thrower go on; an escalation nothing catches changes nothing (unlike an error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bpmn_support import CORPUS
from semantics_harness import Harness
from sim_support import scenario

from engine.bpmn import import_bpmn, to_bpmn
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.semantics import effects as fx
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def fulfilment() -> ProcessDefinition:
    """Packing is late: escalate 'LATE' (someone calls the customer, non-interrupting) and go on shipping; a
    damaged parcel ends the sub-process with the escalation 'DAMAGED' (interrupting: the order is refunded)."""
    b = ProcessBuilder("fulfilment", variables={"damaged": "boolean"})

    def body(sub: ProcessBuilder) -> None:
        check = sub.start("s").user("pack", assignee="ann").escalate("late", "LATE").exclusive("ok")
        check.when("damaged").escalation_end("broken", "DAMAGED")
        check.otherwise().user("ship", assignee="ann").end("shipped")

    fulfil = b.start().sub_process("fulfil", body)
    fulfil.end("done")
    fulfil.on_escalation("LATE", id="on_late", interrupting=False).user("call", assignee="bob").end("called")
    fulfil.on_escalation("DAMAGED", id="on_damage").user("refund", assignee="bob").end("refunded")
    return b.build()


def test_a_non_interrupting_escalation_starts_the_boundary_path_and_the_thrower_goes_on() -> None:
    h = Harness(fulfilment()).start(damaged=False)
    h.done("pack")
    assert {w.node_id for w in h.open_work()} == {"ship", "call"}
    assert h.variables["escalation_code"] == "LATE"
    h.done("ship")
    h.done("call")
    assert h.status == "completed" and "done" in h.entered() and "called" in h.entered()


def test_an_interrupting_escalation_end_cancels_the_sub_process() -> None:
    h = Harness(fulfilment()).start(damaged=True)
    h.done("pack")
    assert {w.node_id for w in h.open_work()} == {"call", "refund"}
    assert "done" not in h.entered() and "ship" not in h.entered()
    h.done("refund")
    h.done("call")
    assert h.status == "completed" and "done" not in h.entered()


def test_an_escalation_nothing_catches_changes_nothing() -> None:
    b = ProcessBuilder("loose")
    b.start().escalate("shout", "NOBODY").user("after", assignee="ann").escalation_end("bye", "ALSO_NOBODY")
    h = Harness(b.build()).start()
    assert [e.code for e in h.of(fx.Escalated)] == ["NOBODY"] and h.open_work("after")
    h.done("after")
    assert [e.code for e in h.of(fx.Escalated)] == ["NOBODY", "ALSO_NOBODY"] and h.status == "completed"


def test_the_engine_writes_an_escalation_nothing_caught_to_the_activity_history(db_url: str) -> None:
    b = ProcessBuilder("loose")
    b.start().escalate("shout", "NOBODY").user("after", assignee="ann").escalation_end("bye", "ALSO_NOBODY")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("loose")
    (task,) = engine.inbox("ann")
    engine.clock.advance(timedelta(minutes=5))
    engine.complete_task(task["id"], {}, actor="ann")
    rows = engine.activities(iid)[["node_id", "kind", "outcome", "started_at", "ended_at"]].to_dict("records")
    assert [(r["node_id"], r["kind"], r["outcome"]) for r in rows] == [
        ("start", "start", "completed"), ("shout", "escalation_throw", "completed"),
        ("shout", "escalation", "uncaught"), ("after", "user_task", "completed"),
        ("bye", "escalation_end", "completed"), ("bye", "escalation", "uncaught")]
    assert rows[2]["started_at"] == rows[2]["ended_at"] == T0
    assert rows[5]["started_at"] == T0 + timedelta(minutes=5)
    assert engine.instance(iid).status == "completed"  # not an error
    engine.deploy(fulfilment())  # a caught escalation writes no such row
    ok = engine.start("fulfilment", {"damaged": False})
    (pack,) = [t for t in engine.inbox("ann") if t["instance_id"] == ok]
    engine.complete_task(pack["id"], {}, actor="ann")
    assert "escalation" not in set(engine.activities(ok)["kind"])


def test_a_boundary_without_a_code_catches_every_escalation_and_codes_must_match() -> None:
    b = ProcessBuilder("codes")
    sp = b.start().sub_process("inner", lambda s: s.start("s").escalate("x", "OTHER").end("e"))
    sp.end("done")
    sp.on_escalation("LATE", id="only_late").end("late")
    sp.on_escalation(None, id="any", interrupting=False).end("any_end")
    h = Harness(b.build()).start()
    assert "any" in h.entered() and "only_late" not in h.entered() and h.status == "completed"


def test_validation_warns_of_an_escalation_boundary_on_a_task() -> None:
    b = ProcessBuilder("task_escalation")
    t = b.start().user("work", assignee="ann")
    t.end("done")
    t.on_escalation("LATE", id="never").end("never_end")
    problems = [p for p in validate(b.build()) if p.where == "never"]
    assert problems and "cannot throw an escalation" in problems[0].message


def test_the_engine_runs_both_escalations(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(fulfilment())
    ok, bad = engine.start("fulfilment", {"damaged": False}), engine.start("fulfilment", {"damaged": True})
    for iid in (ok, bad):
        (task,) = [t for t in engine.inbox("ann") if t["instance_id"] == iid]
        engine.complete_task(task["id"], {}, actor="ann")
    assert sorted(engine.instance(ok).active_nodes) == ["call", "fulfil", "ship"]  # the scope token, inside: ship
    assert sorted(engine.instance(bad).active_nodes) == ["call", "refund"]
    assert engine.instance(bad).variables["escalation_code"] == "DAMAGED"


def test_the_simulator_takes_the_same_paths() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"damaged": False},
                 pools={"ann": {"size": 1}, "bob": {"size": 1}},
                 tasks={"pack": {"duration": 600}, "ship": {"duration": 300}, "call": {"duration": 1200},
                        "refund": {"duration": 60}})
    result = simulate(fulfilment(), s)
    (row,) = result.cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=30)  # pack 10 + the call's 20 in parallel
    assert result.runs[0].entered.get("call") == 1 and not result.runs[0].entered.get("refund")


def test_bpmn_round_trip_and_the_corpus_files() -> None:
    d = fulfilment()
    xml = to_bpmn(d)
    assert 'escalationCode="LATE"' in xml and "escalationEventDefinition" in xml
    assert import_bpmn(xml).definition == d
    for name in ("executable/invoicePayment.bpmn", "miwg/A.3.0.bpmn"):
        path = CORPUS / name
        if path.exists():
            imported = import_bpmn(path.read_bytes(), source=name).definition  # strict: no refusal
            assert any(n.kind == "boundary_escalation" for n in imported.all_nodes())
