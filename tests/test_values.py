"""Typed variables (engine.model.values): every declared type round-trips through the database, agents,
forms, the history, the simulator and files, on SQLite and PostgreSQL (issue 10, kind 8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import engine as wf
from engine.errors import EngineError
from engine.model import ProcessBuilder, from_yaml
from engine.model.values import coerce, dumps, format_duration, loads, matches, parse_duration
from engine.runtime import Engine, VirtualClock
from engine.security import Principal

CET = timezone(timedelta(hours=1))
SAMPLES: dict[str, Any] = {
    "due": datetime(2026, 2, 1, 17, 0, tzinfo=CET),
    "day": date(2026, 2, 1),
    "opens": time(9, 30),
    "grace": timedelta(days=2, hours=3, seconds=1.5),
    "amount": Decimal("1234.50"),
    "slots": [datetime(2026, 2, 2, 8, tzinfo=UTC), date(2026, 2, 3), {"late": timedelta(minutes=5)}],
    "terms": {"net": timedelta(days=30), "fee": Decimal("0.10"), "when": [time(12)]},
}
TYPES = {"due": "datetime", "day": "date", "opens": "time", "grace": "duration", "amount": "decimal",
         "slots": "array", "terms": "object"}


def test_the_codec_round_trips_every_type_at_any_depth() -> None:
    text = dumps(SAMPLES)
    assert '{"$type": "datetime", "value": "2026-02-01T17:00:00+01:00"}' in text
    back = loads(text)
    assert back == SAMPLES
    assert back["due"].utcoffset() == timedelta(hours=1)  # the offset given is kept, not only the instant
    assert type(back["amount"]) is Decimal and str(back["amount"]) == "1234.50"
    assert loads(dumps({"$type": "note", "value": 1})) == {"$type": "note", "value": 1}  # unknown tags stay maps


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(days=1), timedelta(hours=26, minutes=1),
                                   timedelta(seconds=0.25), -timedelta(hours=1), timedelta(weeks=3)])
def test_durations_are_iso_8601_both_ways(delta: timedelta) -> None:
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(("kind", "text", "value"), [
    ("datetime", "2026-02-01T17:00:00Z", datetime(2026, 2, 1, 17, tzinfo=UTC)),
    ("date", "2026-02-01", date(2026, 2, 1)),
    ("time", "09:30", time(9, 30)),
    ("duration", "P1DT2H", timedelta(days=1, hours=2)),
    ("decimal", "12.50", Decimal("12.50")),
    ("decimal", 0.1, Decimal("0.1")),
])
def test_text_is_coerced_to_the_declared_type(kind: str, text: Any, value: Any) -> None:
    assert coerce(kind, text) == value and matches(kind, coerce(kind, text))


def test_a_value_that_does_not_fit_names_the_expected_form() -> None:
    with pytest.raises(ValueError, match="ISO 8601 duration such as 'P1DT2H'"):
        coerce("duration", "two days")
    with pytest.raises(ValueError, match="must be integer, got str 'x'"):
        coerce("integer", "x")


def _invoice() -> Any:
    b = ProcessBuilder("typed", variables=TYPES | {"later": "datetime", "first_slot": "any"})
    (b.start().service("plan", agent="values_test.plan", inputs=list(TYPES), outputs=["later", "first_slot"])
     .user("review", assignee="ada", form=[{"name": "day", "type": "date"}, {"name": "amount", "type": "decimal"}])
     .end("done"))
    return b.build()


def test_typed_variables_round_trip_through_the_engine(db_url: str) -> None:
    seen: dict[str, Any] = {}

    def plan(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
        seen.update(inputs)
        return {"later": inputs["due"] + inputs["grace"], "first_slot": inputs["slots"][0]}

    wf.register("values_test.plan", plan)
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    e.deploy(_invoice())
    started = dict(SAMPLES, due="2026-02-01T17:00:00+01:00", amount="1234.50")  # text is converted on the way in
    i = e.start("typed", started)
    e.run_until_idle()
    assert seen == SAMPLES  # the agent gets Python values, not strings
    (task,) = e.tasks(instance_id=i)
    e.complete_task(task["id"], {"day": "2026-03-01", "amount": Decimal("99.99")}, actor="ada")
    view = e.instance(i)
    assert view.status == "completed"
    assert view.variables["due"] == SAMPLES["due"] and isinstance(view.variables["due"], datetime)
    assert view.variables["later"] == SAMPLES["due"] + SAMPLES["grace"]
    assert view.variables["first_slot"] == SAMPLES["slots"][0]
    assert view.variables["grace"] == SAMPLES["grace"] and view.variables["terms"] == SAMPLES["terms"]
    assert view.variables["day"] == date(2026, 3, 1) and view.variables["amount"] == Decimal("99.99")
    history = view.history.set_index(["name", "version"])
    assert history.loc[("day", 2), "old_value"] == SAMPLES["day"]
    assert history.loc[("day", 2), "new_value"] == date(2026, 3, 1)
    with pytest.raises(EngineError, match=r"set variables of instance .*'grace' must be an ISO 8601 duration"):
        e.set_variables(i, {"grace": "soon"})


def test_a_bad_typed_start_value_is_refused_and_nothing_is_written(tmp_path: Any) -> None:
    wf.register("values_test.plan", lambda inputs, ctx: {})
    e = Engine(f"sqlite:///{tmp_path / 'e.db'}", clock=VirtualClock(), principal=Principal.system())
    e.deploy(_invoice())
    with pytest.raises(EngineError, match="cannot start 'typed': 'due' must be an ISO 8601 date-time"):
        e.start("typed", {"due": "tomorrow"})
    assert e.instances().empty


def test_typed_defaults_survive_yaml_json_and_bpmn() -> None:
    from engine.bpmn import from_bpmn, to_bpmn

    d = from_yaml("""\
id: typed_defaults
variables:
  - {name: due, type: datetime, default: "2026-02-01T17:00:00+00:00"}
  - {name: grace, type: duration, default: P2D}
  - {name: fee, type: decimal, default: "0.10"}
  - {name: day, type: date, default: 2026-02-01}
nodes:
  - {id: s, kind: start}
  - {id: e, kind: end}
flows:
  - {id: f, source: s, target: e}
""")
    defaults = {v.name: v.default for v in d.variables}
    assert defaults == {"due": datetime(2026, 2, 1, 17, tzinfo=UTC), "grace": timedelta(days=2),
                        "fee": Decimal("0.10"), "day": date(2026, 2, 1)}
    for again in (from_yaml(d.to_yaml()), type(d).model_validate_json(d.to_json()), from_bpmn(to_bpmn(d))):
        assert {v.name: v.default for v in again.variables} == defaults


def test_the_simulator_hands_typed_values_to_the_same_core() -> None:
    from engine.semantics import Semantics

    d = _invoice()
    state, _ = Semantics(d).start({"due": SAMPLES["due"], "grace": SAMPLES["grace"]}, datetime(2026, 1, 1, tzinfo=UTC))
    assert state.variables["due"] == SAMPLES["due"] and state.variables["grace"] == SAMPLES["grace"]
