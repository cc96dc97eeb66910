"""Messages (engine.runtime.correlation): correlation by key, process data, business key and instance id;
ambiguity refused with the candidates; correlate-to-all; the buffer with time-to-live and de-duplication;
one rule for the API and throw events. SQLite and PostgreSQL (issue 10, kinds 4 and 5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import EngineError
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.correlation import AmbiguousCorrelation
from engine.security import Principal


def _waiter(key: bool = False) -> ProcessBuilder:
    b = ProcessBuilder("waiter", variables={"order_id": str, "region": str, "paid_at": str})
    (b.start().receive("wait_paid", "order.paid", correlation_key="order_id" if key else None,
                       outputs=["paid_at"]).end("done"))
    return b


@pytest.fixture
def engine(db_url: str) -> Engine:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_waiter().build())
    return e


def test_several_waiting_and_no_key_is_refused_naming_every_candidate(engine: Engine) -> None:
    a = engine.start("waiter", {"order_id": "A-1", "region": "eu"}, business_key="order-A")
    b = engine.start("waiter", {"order_id": "B-2", "region": "eu"}, business_key="order-B")
    with pytest.raises(AmbiguousCorrelation) as refused:
        engine.correlate("order.paid", payload={"paid_at": "noon"})
    assert {c["instance_id"] for c in refused.value.candidates} == {a, b}
    assert "order-A" in str(refused.value) and "wait_paid" in str(refused.value) and "all=True" in str(refused.value)
    assert engine.instance(a).status == engine.instance(b).status == "running"  # nothing delivered


def test_correlation_by_process_data_business_key_and_instance_id(engine: Engine) -> None:
    a = engine.start("waiter", {"order_id": "A-1", "region": "eu"}, business_key="order-A")
    b = engine.start("waiter", {"order_id": "B-2", "region": "eu"}, business_key="order-B")
    c = engine.start("waiter", {"order_id": "C-3", "region": "us"}, business_key="order-C")
    assert engine.correlate("order.paid", where={"order_id": "B-2"}, payload={"paid_at": "1"}) == b
    assert engine.instance(b).variables["paid_at"] == "1" and engine.instance(b).status == "completed"
    assert engine.correlate("order.paid", business_key="order-C") == c
    assert engine.correlate("order.paid", instance_id=a) == a
    assert {engine.instance(i).status for i in (a, b, c)} == {"completed"}
    with pytest.raises(EngineError, match=r"no instance waits for message 'order\.paid'.*where="):
        engine.correlate("order.paid", where={"order_id": "Z-9"})


def test_correlate_to_all_delivers_to_every_match(engine: Engine) -> None:
    eu = [engine.start("waiter", {"order_id": f"E-{n}", "region": "eu"}) for n in range(3)]
    us = engine.start("waiter", {"order_id": "U-1", "region": "us"})
    got = engine.correlate("order.paid", where={"region": "eu"}, all=True, payload={"paid_at": "x"})
    assert sorted(got) == sorted(eu)
    assert engine.instance(us).status == "running"
    assert engine.correlate("order.paid", where={"region": "eu"}, all=True) == []


def test_a_message_before_its_catch_is_buffered_and_delivered_when_the_catch_opens(db_url: str) -> None:
    """camunda/camunda#3041: the payer throws while the shipper still packs; the shipper gets it later."""
    e = Engine(db_url, clock=VirtualClock(), message_ttl=timedelta(hours=2), principal=Principal.system())
    b = ProcessBuilder("payer", variables={"order_id": str})
    b.start().send("notify", "order.paid", payload=["order_id"], correlation_key="order_id").end("sent")
    e.deploy(b.build())
    b = ProcessBuilder("shipper", variables={"order_id": str})
    (b.start().user("pack", assignee="w").receive("wait_paid", "order.paid", correlation_key="order_id")
     .end("shipped"))
    e.deploy(b.build())
    early = e.start("shipper", {"order_id": "A-1"})
    late = e.start("shipper", {"order_id": "A-2"})
    e.start("payer", {"order_id": "A-1"})
    e.start("payer", {"order_id": "A-2"})
    e.run_until_idle()
    buffered = e.messages(status="buffered")
    assert len(buffered) == 2 and set(buffered["correlation"]) == {"A-1", "A-2"}
    assert all(s.startswith("throw:") for s in buffered["source"])
    (task,) = e.tasks(instance_id=early)
    e.complete_task(task["id"], actor="w")
    assert e.instance(early).status == "completed"  # the buffered A-1 message, in the completing step
    delivered = e.messages(status="delivered")
    assert list(delivered["instance_id"]) == [early]
    e.advance(timedelta(hours=3))  # A-2 expires before its catch opens
    assert list(e.messages(status="expired")["correlation"]) == ["A-2"]
    (task,) = e.tasks(instance_id=late)
    e.complete_task(task["id"], actor="w")
    assert e.instance(late).status == "running" and e.instance(late).active_nodes == ["wait_paid"]


def test_the_api_buffers_only_when_asked_and_de_duplicates_by_message_id(db_url: str) -> None:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_waiter(key=True).build())
    with pytest.raises(EngineError, match="pass ttl= to buffer it"):
        e.correlate("order.paid", "A-1")
    assert e.correlate("order.paid", "A-1", {"paid_at": "9"}, ttl=timedelta(minutes=5), message_id="m1") is None
    assert e.correlate("order.paid", "A-1", {"paid_at": "10"}, ttl=timedelta(minutes=5), message_id="m1") is None
    assert len(e.messages(status="buffered")) == 1  # the second one with the same id was not buffered
    i = e.start("waiter", {"order_id": "A-1"})
    e.run_until_idle()
    assert e.instance(i).status == "completed" and e.instance(i).variables["paid_at"] == "9"


def test_an_ambiguous_thrown_message_is_recorded_not_given_to_one_by_chance(db_url: str) -> None:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_waiter().build())
    b = ProcessBuilder("payer")
    b.start().send("notify", "order.paid").end("sent")
    e.deploy(b.build())
    waiting = [e.start("waiter", {"order_id": f"A-{n}"}) for n in range(2)]
    e.start("payer")
    e.run_until_idle()
    (row,) = e.messages(status="ambiguous").to_dict("records")
    assert all(w in row["error"] for w in waiting)
    assert all(e.instance(w).status == "running" for w in waiting)


def test_a_catch_that_opens_while_a_message_is_being_buffered_gets_it(engine: Engine) -> None:
    """The race of a delivery that finds no catch and a catch that opens before the message is buffered:
    the buffering transaction looks again (under a per-message lock on PostgreSQL) and delivers instead of
    stranding the message beside a waiting catch."""
    original = engine._deliver
    opened: list[str] = []

    def deliver_then_a_catch_opens(*args, **kwargs):  # type: ignore[no-untyped-def]
        got = original(*args, **kwargs)
        if not got and not opened:  # between the look and the buffering, an instance starts and waits
            opened.append(engine.start("waiter", {"order_id": "R-1", "region": "eu"}))
        return got

    engine._deliver = deliver_then_a_catch_opens  # type: ignore[method-assign]
    got = engine.correlate("order.paid", payload={"paid_at": "noon"}, ttl=timedelta(hours=1))
    assert opened and got == opened[0]
    assert engine.instance(opened[0]).status == "completed"
    assert engine.instance(opened[0]).variables["paid_at"] == "noon"
    assert "buffered" not in set(engine.messages()["status"])
