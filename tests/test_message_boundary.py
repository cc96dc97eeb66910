"""A non-interrupting message boundary event stays armed while its activity runs (issue 16).

BPMN 2.0 §10.5.4 (and Camunda 7/8): a non-interrupting boundary event does not end its activity, so it can be
triggered again; each matching message starts one more token at the boundary, until the activity ends and the
boundary is disarmed with it. The signal boundary event behaves so already (tests/test_signal_events.py); the
message boundary does the same in the core, the engine (SQLite and PostgreSQL) and the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from semantics_harness import Harness
from sim_support import scenario

from engine.errors import EngineError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate
from simulator.scenario import ScenarioError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def order() -> ProcessDefinition:
    """Handle an order; every 'order.note' message for it while the handling runs is logged (non-interrupting),
    an 'order.cancel' message ends the handling (interrupting)."""
    b = ProcessBuilder("order", variables={"order_id": "string", "note": "string"})
    handle = b.start().user("handle", assignee="ann")
    handle.end("done")
    handle.on_message("order.note", id="noted", interrupting=False, correlation_key="order_id") \
        .task("log_note").end("logged")
    handle.on_message("order.cancel", id="cancelled", correlation_key="order_id").end("cancelled_end")
    return b.build()


# --- the core ---------------------------------------------------------------------------------------


def test_the_core_fires_a_non_interrupting_message_boundary_for_every_message() -> None:
    h = Harness(order()).start(order_id="A-1")
    for n in range(1, 4):
        assert h.message("order.note", correlation="A-1", note=f"note {n}")
        assert h.entered().count("log_note") == n and h.variables["note"] == f"note {n}"
        assert h.open_work("handle")  # the activity goes on
        subs = [s for s in h.subscriptions.values() if s.message == "order.note"]
        assert [(s.node_id, s.correlation) for s in subs] == [("noted", "A-1")]  # armed again, same key
    h.done("handle")
    assert h.status == "completed"
    assert not h.message("order.note", correlation="A-1")  # disarmed with the activity


def test_the_interrupting_message_boundary_still_fires_once_and_disarms_the_others() -> None:
    h = Harness(order()).start(order_id="A-1")
    assert h.message("order.note", correlation="A-1")
    assert h.message("order.cancel", correlation="A-1")
    assert h.entered()[-1] == "cancelled_end" and not h.open_work() and h.status == "completed"
    assert not h.subscriptions  # the note boundary went with the activity


def test_the_core_re_arms_a_message_boundary_on_a_receive_task() -> None:
    b = ProcessBuilder("receiver", variables={"n": "integer"})
    wait = b.start().receive_task("wait", "reply")
    wait.end("got_reply")
    wait.on_message("ping", id="pinged", interrupting=False).task("pong").end("ponged")
    h = Harness(b.build()).start()
    assert h.message("ping") and h.message("ping")
    assert h.entered().count("pong") == 2
    assert h.message("reply") and h.status == "completed" and not h.message("ping")


# --- the engine -------------------------------------------------------------------------------------


def test_engine_delivers_every_message_to_a_non_interrupting_boundary(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(order())
    iid = engine.start("order", {"order_id": "A-1"})
    other = engine.start("order", {"order_id": "B-2"})
    for n in range(1, 4):
        assert engine.correlate("order.note", "A-1", {"note": f"note {n}"}) == iid
        engine.run_until_idle()
        view = engine.instance(iid)
        assert view.active_nodes == ["handle"] and view.variables["note"] == f"note {n}"
    logged = [a for a in engine.activities(iid).to_dict("records") if a["node_id"] == "log_note"]
    assert len(logged) == 3
    assert engine.instance(other).variables.get("note") is None  # the key picked one instance each time
    assert engine.correlate("order.cancel", "A-1") == iid
    engine.run_until_idle()
    assert engine.instance(iid).status == "completed"
    with pytest.raises(EngineError):  # nothing waits for a note of A-1 any more
        engine.correlate("order.note", "A-1", {"note": "late"})


def test_engine_delivers_buffered_messages_one_by_one_as_the_boundary_re_arms(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(order())
    for n in range(2):  # sent before the order started: buffered for an hour
        assert engine.correlate("order.note", "C-3", {"note": f"early {n}"}, ttl=timedelta(hours=1)) is None
    iid = engine.start("order", {"order_id": "C-3"})
    engine.run_until_idle()
    logged = [a for a in engine.activities(iid).to_dict("records") if a["node_id"] == "log_note"]
    assert len(logged) == 2 and engine.instance(iid).variables["note"] == "early 1"
    assert set(engine.messages()["status"]) == {"delivered"}
    assert engine.instance(iid).active_nodes == ["handle"]


# --- the simulator ----------------------------------------------------------------------------------


def test_the_simulator_fires_a_non_interrupting_message_boundary_again_as_the_engine_does() -> None:
    """The scenario sends 'order.note' 1,000 s after each wait begins; the handling takes 3,600 s: the boundary
    fires at 1,000, 2,000 and 3,000 s (re-armed each time), and the fourth is not sent to a disarmed boundary."""
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"order_id": "A-1"},
                 pools={"ann": {"size": 1}}, tasks={"handle": {"duration": 3600}},
                 messages={"order.note": {"after": 1000, "payload": {"note": "n"}}})
    result = simulate(order(), s)
    (row,) = result.cases(0).to_dict("records")
    assert row["status"] == "completed" and row["end_node"] == "done"
    log = result.activity_log(0)
    notes = log[log["activity_id"] == "log_note"]
    assert sorted((t - T0).total_seconds() for t in notes["start_timestamp"]) == [1000.0, 2000.0, 3000.0]
    waits = log[log["activity_id"] == "noted"]  # each wait armed when the one before fired
    assert sorted(waits["working_s"]) == [1000.0] * 3


def test_a_scenario_whose_message_comes_at_once_to_a_re_arming_boundary_is_refused() -> None:
    """A message the scenario sends 0 s after each wait begins would fire the re-armed boundary without end at
    one instant: the scenario is refused, naming the message and the boundary."""
    s = scenario(start=T0.isoformat(), horizon="PT1M", replications=1, arrivals={"timestamps": [T0.isoformat()]},
                 variables={"order_id": "A-1"}, pools={"ann": {"size": 1}}, tasks={"handle": {"duration": 60}},
                 messages={"order.note": {"after": 0}})
    with pytest.raises(ScenarioError, match=r"messages\.order\.note\.after: 'order\.note' arrives 0 s .* 'noted'"):
        simulate(order(), s)
