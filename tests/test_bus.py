"""The MessageBus contract, on the in-process bus and on the real Redis (each test runs on both).

The in-process bus takes an injected clock (its visibility timeout passes without sleeping); Redis measures
idle time on the server, so the Redis runs use a short visibility timeout and wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from bus_support import unique_prefix

from engine.bus import STATS_COLUMNS, BusError, InProcessBus, MessageBus, connect_bus

VISIBILITY = 0.3


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Iterator[MessageBus]:
    if request.param == "memory":
        clock = Clock()
        memory = InProcessBus(visibility_timeout=VISIBILITY, max_failures=3, clock=clock)
        memory.pass_visibility = lambda: setattr(clock, "t", clock.t + VISIBILITY + 0.01)  # type: ignore[attr-defined]
        yield memory
        return
    url = request.getfixturevalue("redis_url")
    redis_bus = connect_bus(f"{url}?prefix={unique_prefix()}", visibility_timeout=VISIBILITY, max_failures=3)
    redis_bus.pass_visibility = lambda: time.sleep(VISIBILITY + 0.05)  # type: ignore[attr-defined]
    try:
        yield redis_bus
    finally:
        redis_bus.delete_all()  # type: ignore[attr-defined]
        redis_bus.close()


def test_a_group_shares_messages_and_every_group_sees_all(bus: MessageBus) -> None:
    ids = [bus.publish("orders", {"n": i}) for i in range(6)]
    a = bus.receive("orders", "billing", "a", count=4)
    b = bus.receive("orders", "billing", "b", count=4)
    assert [m.payload["n"] for m in a + b] == list(range(6))  # one consumer each, in order
    assert [m.id for m in a + b] == ids
    audit = bus.receive("orders", "audit", "x", count=10)  # another group: every message again
    assert len(audit) == 6
    for m in a + b + audit:
        bus.ack(m)
    assert bus.receive("orders", "billing", "a", count=10) == []
    row = bus.stats().set_index("topic").loc["orders"]
    assert (row.published, row.delivered, row.acked, row.pending, row.parked) == (6, 12, 12, 0, 0)


def test_a_message_id_is_published_once(bus: MessageBus) -> None:
    assert bus.publish("events", {"pr": 7}, message_id="gh-7") == "gh-7"
    assert bus.publish("events", {"pr": 7}, message_id="gh-7") is None  # the producer retried
    assert bus.publish_many("events", [{"pr": 8}, {"pr": 7}], ["gh-8", "gh-7"]) == ["gh-8", None]
    got = bus.receive("events", "g", "c", count=10)
    assert [m.id for m in got] == ["gh-7", "gh-8"]
    row = bus.stats().set_index("topic").loc["events"]
    assert (row.published, row.duplicates) == (2, 2)


def test_a_dead_consumers_message_goes_to_another_after_the_visibility_timeout(bus: MessageBus) -> None:
    bus.publish("tasks", {"job": 1}, message_id="job-1")
    taken = bus.receive("tasks", "workers", "doomed", count=1)
    assert [m.id for m in taken] == ["job-1"]
    assert bus.receive("tasks", "workers", "survivor", count=1) == []  # still within its timeout
    bus.pass_visibility()  # type: ignore[attr-defined]
    again = bus.receive("tasks", "workers", "survivor", count=1)
    assert [(m.id, m.deliveries) for m in again] == [("job-1", 2)]
    bus.ack(again[0])
    bus.pass_visibility()  # type: ignore[attr-defined]
    assert bus.receive("tasks", "workers", "survivor", count=1) == []


def test_a_heartbeat_keeps_a_message_with_its_consumer(bus: MessageBus) -> None:
    bus.publish("tasks", {"job": 2})
    (m,) = bus.receive("tasks", "workers", "slow", count=1)
    for _ in range(3):
        if isinstance(bus, InProcessBus):
            bus.clock.t += VISIBILITY * 0.6  # type: ignore[attr-defined]
        else:
            time.sleep(VISIBILITY * 0.6)
        bus.touch(m)
        assert bus.receive("tasks", "workers", "other", count=1) == []


def test_a_poison_message_is_parked_after_n_failures_and_the_rest_flows_on(bus: MessageBus) -> None:
    for i in range(5):
        bus.publish("payments", {"amount": 10 if i != 2 else "ten"}, message_id=f"p{i}")
    handled = []
    for _ in range(20):
        for m in bus.receive("payments", "ledger", "c1", count=10):
            if isinstance(m.payload["amount"], int):
                handled.append(m.id)
                bus.ack(m)
            else:
                bus.fail(m, f"amount must be a number, got {m.payload['amount']!r}")
        if len(handled) == 4 and bus.dead_letters("payments"):
            break
        bus.pass_visibility()  # type: ignore[attr-defined]
    assert handled == ["p0", "p1", "p3", "p4"]
    (dead,) = bus.dead_letters("payments")
    assert dead["id"] == "p2" and dead["failures"] == 3 and dead["payload"] == {"amount": "ten"}
    assert dead["error"] == "amount must be a number, got 'ten'" and dead["group"] == "ledger"
    bus.pass_visibility()  # type: ignore[attr-defined]
    assert bus.receive("payments", "ledger", "c1", count=10) == []  # parked: not looping
    row = bus.stats().set_index("topic").loc["payments"]
    assert (row.acked, row.pending, row.parked) == (4, 0, 1)


def test_a_message_delivered_n_times_without_an_ack_is_parked(bus: MessageBus) -> None:
    """A message that kills its consumer every time (nobody lives to call fail())."""
    bus.publish("crashy", {"x": 1}, message_id="boom")
    bus.publish("crashy", {"x": 2}, message_id="fine")
    for attempt in range(3):
        got = bus.receive("crashy", "g", f"consumer-{attempt}", count=1)
        assert [m.id for m in got] == ["boom"]  # taken, and the consumer dies
        bus.pass_visibility()  # type: ignore[attr-defined]
    got = bus.receive("crashy", "g", "consumer-4", count=1)
    assert [m.id for m in got] == ["fine"]
    (dead,) = bus.dead_letters("crashy")
    assert dead["id"] == "boom" and "3 times without an acknowledgement" in dead["error"]


def test_parked_messages_replay(bus: MessageBus) -> None:
    bus.publish("mail", {"to": "ada"}, message_id="m1")
    (m,) = bus.receive("mail", "g", "c", count=1)
    bus.park(m, "smtp down")
    assert [d["error"] for d in bus.dead_letters("mail")] == ["smtp down"]
    assert bus.replay("mail") == 1
    assert bus.dead_letters("mail") == []
    (again,) = bus.receive("mail", "g", "c", count=1)
    assert (again.id, again.payload) == ("m1", {"to": "ada"})


def test_stats_is_a_frame_with_a_row_per_topic(bus: MessageBus) -> None:
    assert list(bus.stats().columns) == STATS_COLUMNS
    bus.publish("b.topic", {})
    bus.publish("a.topic", {})
    bus.receive("a.topic", "g", "c")
    frame = bus.stats()
    assert list(frame["topic"]) == ["a.topic", "b.topic"]
    assert list(frame["pending"]) == [1, 0] and list(frame["waiting"]) == [0, 1]


def test_bad_input_is_a_clear_error(bus: MessageBus) -> None:
    with pytest.raises(BusError, match="payload must be a dict"):
        bus.publish("t", ["not", "a", "dict"])  # type: ignore[arg-type]
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(BusError, match="cannot be written as JSON: Circular reference"):
        bus.publish("t", loop)
    with pytest.raises(BusError, match="topic name must not be empty"):
        bus.publish("", {})


def test_bus_urls() -> None:
    assert isinstance(connect_bus("memory://"), InProcessBus)
    assert connect_bus("") is connect_bus("memory://")  # the process's shared default
    with pytest.raises(BusError, match="unknown bus URL 'amqp://x'"):
        connect_bus("amqp://x")
    with pytest.raises(BusError, match=r"cannot reach Redis at '127\.0\.0\.1:1'"):
        connect_bus("redis://127.0.0.1:1/0")


def test_trim_drops_only_what_every_group_acknowledged(bus: MessageBus) -> None:
    for i in range(6):
        bus.publish("log", {"i": i})
    fast = bus.receive("log", "fast", "f", count=6)
    bus.ack_many(fast)
    slow = bus.receive("log", "slow", "s", count=3)
    bus.ack_many(slow[:2])  # slow: 2 acknowledged, 1 pending, 3 not yet read
    bus.trim("log")
    rest = [m.payload["i"] for m in bus.receive("log", "slow", "s", count=10)]
    assert rest == [3, 4, 5]  # nothing it had not read is gone
    bus.pass_visibility()  # type: ignore[attr-defined]
    assert [m.payload["i"] for m in bus.receive("log", "slow", "s2", count=10)] == [2, 3, 4, 5]  # nor its pending
    if not isinstance(bus, InProcessBus):
        assert bus.redis.xlen(f"{bus.prefix}:t:log") == 4  # type: ignore[attr-defined]
