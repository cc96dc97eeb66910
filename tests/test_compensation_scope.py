"""Only completed scopes are compensated (BPMN 2.0 §10.7.1; Camunda 7 and 8; camunda/camunda#15068):
handlers of activities inside a sub-process that was interrupted do not run (issue 10, kind 7b)."""

from __future__ import annotations

from typing import Any

from semantics_harness import Harness

import engine as wf
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.agents import BpmnError
from engine.semantics import effects as fx


def _trip(fail_inside: bool) -> Any:
    def trip(s: ProcessBuilder) -> None:
        (s.start("t_start").service("hotel", agent="cs.hotel", compensation="cs.undo_hotel")
         .service("flight", agent="cs.flight", compensation="cs.undo_flight").end("t_end"))

    b = ProcessBuilder("travel")
    after = (b.start().service("top", agent="cs.top", compensation="cs.undo_top").sub_process("trip", trip)
             .service("pay", agent="cs.pay"))
    after.end("booked")
    b.at("trip").on_error("no_seat", id="no_seat").compensate("undo_after_trip_failed").end("cancelled")
    b.at("pay").on_error("declined", id="declined").compensate("undo_after_pay_failed").end("refunded")
    return b.build()


def _handlers(h: Harness) -> list[str]:
    return [w.handler for w in h.of(fx.StartWork) if w.kind == "compensation"]


def test_an_interrupted_sub_process_is_not_compensated_inside() -> None:
    h = Harness(_trip(True)).start()
    h.done("top")
    h.done("hotel")
    h.fail("flight", code="no_seat", business=True)  # the error leaves 'trip' through its boundary
    assert _handlers(h) == ["cs.undo_top"]


def test_a_completed_sub_process_is_compensated_inside_newest_first() -> None:
    h = Harness(_trip(False)).start()
    h.done("top")
    h.done("hotel")
    h.done("flight")
    h.fail("pay", code="declined", business=True)
    first = _handlers(h)
    assert first == ["cs.undo_flight"]  # one at a time
    for _ in range(3):
        h.done_token(next(w.token_id for w in h.of(fx.StartWork) if w.kind == "compensation"))
    assert _handlers(h) == ["cs.undo_flight", "cs.undo_hotel", "cs.undo_top"]


def test_the_engine_follows_the_same_rule(db_url: str) -> None:
    calls: list[str] = []

    def agent(name: str, code: str | None = None) -> Any:
        def run(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
            calls.append(name)
            if code:
                raise BpmnError(code)
            return {}
        return run

    for name in ("top", "hotel", "pay", "undo_top", "undo_hotel", "undo_flight"):
        wf.register(f"cs.{name}", agent(name))
    wf.register("cs.flight", agent("flight", "no_seat"))
    e = Engine(db_url, clock=VirtualClock())
    e.deploy(_trip(True))
    i = e.start("travel")
    e.run_until_idle()
    assert e.instance(i).status == "completed" and e.instance(i).active_nodes == []
    assert [c for c in calls if c.startswith("undo")] == ["undo_top"]
