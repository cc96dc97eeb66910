"""The Bus page (AppTest): per-topic numbers and the dead letters of the in-process bus."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.bus import connect_bus

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "8_Bus.py"


def test_the_bus_page_shows_topics_and_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAOOAW_BUS", raising=False)
    bus = connect_bus()  # the process's in-process bus: the page sees the same one
    topic = "test.app.bus.orders"
    bus.publish(topic, {"n": 1})
    bus.publish(topic, {"n": 2}, message_id="bad-order")
    for m in bus.receive(topic, "app-test", "c", count=10):
        bus.ack(m) if m.payload["n"] == 1 else bus.park(m, "order 2 has no customer")
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception
    frame = at.dataframe[0].value
    row = frame.set_index("topic").loc[topic]
    assert (row.published, row.acked, row.parked) == (2, 1, 1)
    assert at.selectbox[0].value == topic
    letters = at.dataframe[1].value
    assert list(letters["error"]) == ["order 2 has no customer"]
    at.button[0].click().run()
    assert bus.dead_letters(topic) == [] and not at.exception


def test_a_bad_bus_url_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_BUS", "amqp://nowhere")
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception and "unknown bus URL 'amqp://nowhere'" in at.error[0].value
