"""The message rule as one definition (engine.semantics.messages), used by the engine's correlation and the
simulator (issue 10, kind 5): key matching, one receiver or ambiguous, the buffer with a time-to-live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.model import ProcessBuilder
from engine.semantics import messages
from engine.semantics.messages import MessageBuffer
from simulator import Scenario

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_keys_match_as_stored_json_and_an_unkeyed_message_matches_every_catch() -> None:
    assert messages.key_matches("A-1", "A-1")
    assert not messages.key_matches("1", 1)  # "1" is not 1
    assert not messages.key_matches(1, 1.0)
    assert messages.key_matches(None, "A-1") and messages.key_matches(None, None)
    assert not messages.key_matches("A-1", None)  # a keyed message never reaches a catch without a key


def test_one_match_receives_several_are_ambiguous_unless_all() -> None:
    assert messages.route([]) == ("none", [])
    assert messages.route(["a"]) == ("deliver", ["a"])
    assert messages.route(["a", "b"]) == ("ambiguous", ["a", "b"])
    assert messages.route(["a", "b"], all=True) == ("deliver", ["a", "b"])


def test_narrowing_by_variables_business_key_and_instance() -> None:
    variables = {"order_id": "A-1", "region": "eu"}
    assert messages.filters_match({}, "i1", None, variables)
    assert messages.filters_match({"where": {"order_id": "A-1"}, "business_key": "k"}, "i1", "k", variables)
    assert not messages.filters_match({"where": {"order_id": "B-2"}}, "i1", "k", variables)
    assert not messages.filters_match({"where": {"missing": None}}, "i1", "k", variables)
    assert not messages.filters_match({"instance_id": "i2"}, "i1", "k", variables)


def test_the_buffer_gives_the_oldest_unexpired_match_once_and_lists_every_message() -> None:
    buffer = MessageBuffer(ttl=timedelta(minutes=10))
    buffer.add("paid", "A-1", {"n": 1}, T0)
    buffer.add("paid", "B-2", {"n": 2}, T0 + timedelta(minutes=1))
    buffer.add("paid", None, {"n": 3}, T0 + timedelta(minutes=2))
    later = T0 + timedelta(minutes=5)
    assert buffer.take("paid", "B-2", later, receiver="x") == {"n": 2}  # its key, not the older A-1
    assert buffer.take("paid", "B-2", later) == {"n": 3}  # the unkeyed one matches any key
    assert buffer.take("paid", "B-2", later) is None  # each is delivered once
    assert buffer.take("shipped", None, later) is None
    assert buffer.take("paid", "A-1", T0 + timedelta(minutes=10)) is None  # expired at T0 + 10 min
    assert [buffer.status(m, T0 + timedelta(minutes=11)) for m in buffer.messages] == [
        "expired", "delivered", "delivered"]
    assert buffer.messages[1].receiver == "x"


def test_a_message_the_design_throws_itself_is_not_reported_as_never_arriving() -> None:
    b = ProcessBuilder("relay")
    b.start().send("throw", "baton").receive("catch", "baton").end("done")
    s = Scenario.model_validate({"horizon": 60, "arrivals": {"interval": 10}})
    assert not [p for p in s.check(b.build()) if "baton" in p.message]
    b = ProcessBuilder("waits")
    b.start().receive("catch", "baton").end("done")
    assert [p for p in s.check(b.build()) if "never arrives" in p.message]
