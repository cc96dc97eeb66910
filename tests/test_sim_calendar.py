"""People work only in their calendar's working periods; SLAs can count business time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import pytest
from sim_support import scenario

from engine.model import ProcessBuilder
from simulator import ScenarioError, simulate

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


class OfficeHours:
    """Mon-Fri 09:00-17:00 UTC, written out by hand so the shell's calendar use is tested on its own."""

    def is_working(self, dt: datetime) -> bool:
        return dt.weekday() < 5 and time(9) <= dt.time() < time(17)

    def next_working(self, dt: datetime) -> datetime:
        if self.is_working(dt):
            return dt
        day = dt.replace(hour=9, minute=0, second=0, microsecond=0)
        if dt.weekday() < 5 and dt.time() < time(9):
            return day
        day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day

    def add(self, start: datetime, delta: timedelta) -> datetime:
        at, left = self.next_working(start), delta
        while True:
            close = at.replace(hour=17, minute=0, second=0, microsecond=0)
            if at + left <= close:
                return at + left
            left -= close - at
            at = self.next_working(close)

    def working_time(self, a: datetime, b: datetime) -> timedelta:
        total, at = timedelta(0), a
        while at < b:
            at = self.next_working(at)
            if at >= b:
                break
            close = min(at.replace(hour=17, minute=0, second=0, microsecond=0), b)
            total += close - at
            at = close
        return total


@pytest.fixture(params=["hand-written", "engine"])
def office(request):
    """The same office hours from the test's own class and from engine.calendar (one model for both shells)."""
    if request.param == "hand-written":
        return {"office": OfficeHours()}
    from engine.calendar import load_calendars

    return load_calendars({"office": {"timezone": "UTC", "working_days": "Mon-Fri", "hours": "09:00-17:00"}})


def one_task() -> object:
    b = ProcessBuilder("cal")
    b.start().user("review", title="Review", assignee="staff").end("done")
    return b.build()


def office_scenario(times: list[str], **extra: object):
    data = {"start": MONDAY.isoformat(), "horizon": "P14D", "arrivals": {"timestamps": times},
            "calendars": {"office": {"timezone": "UTC", "working_days": ["mon", "tue", "wed", "thu", "fri"],
                                     "hours": ["09:00-17:00"]}},
            "pools": {"staff": {"size": 1, "calendar": "office"}}, "tasks": {"review": {"duration": "PT1H"}}}
    data.update(extra)
    return scenario(**data)


def review_rows(results) -> pd.DataFrame:
    log = results.activity_log(0)
    return log[log["activity_id"] == "review"].sort_values("enabled_timestamp").reset_index(drop=True)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_work_outside_hours_waits_and_work_at_closing_pauses_overnight(office) -> None:
    s = office_scenario(["2026-01-09T16:30:00+00:00",   # Friday 16:30: 30 min today, 30 min on Monday
                         "2026-01-10T10:00:00+00:00",   # Saturday: waits for Monday (after the first)
                         "2026-01-06T07:00:00+00:00"])  # Tuesday 07:00: starts at 09:00
    rows = review_rows(simulate(one_task(), s, calendars=office))
    assert list(rows["start_timestamp"]) == [ts("2026-01-06 09:00"), ts("2026-01-09 16:30"), ts("2026-01-12 09:30")]
    assert list(rows["time:timestamp"]) == [ts("2026-01-06 10:00"), ts("2026-01-12 09:30"), ts("2026-01-12 10:30")]


def test_utilisation_counts_working_time_only(office) -> None:
    # one hour of work on each weekday morning over one week: 5 h of 40 working hours
    times = [f"2026-01-{d:02d}T10:00:00+00:00" for d in range(5, 10)]
    s = office_scenario(times, horizon="P7D")
    r = simulate(one_task(), s, calendars=office)
    util = r.summary().set_index(["kpi", "subject"]).loc[("utilisation", "staff"), "mean"]
    assert util == pytest.approx(5 / 40)


def test_sla_in_business_time_uses_the_calendar(office) -> None:
    b = ProcessBuilder("bsla")
    b.start().user("review", title="Review", assignee="staff", sla="PT4H", sla_calendar="office").end("done")
    s = office_scenario(["2026-01-09T15:00:00+00:00"], tasks={"review": {"duration": "PT3H"}})
    r = simulate(b.build(), s, calendars=office)
    rows = review_rows(r)
    # 3 working hours from Friday 15:00 ends Monday 10:00; the SLA (4 business hours) is due Monday 11:00
    assert rows.loc[0, "time:timestamp"] == ts("2026-01-12 10:00") and not rows.loc[0, "sla_breached"]
    assert r.runs[0].breaches == []


def test_scenario_calendars_load_through_the_engine_model_with_time_zones() -> None:
    # Berlin office hours: a Saturday arrival starts Monday 09:00 Berlin = 08:00 UTC (winter)
    s = office_scenario(["2026-01-10T10:00:00+00:00"], calendars={
        "office": {"timezone": "Europe/Berlin", "working_days": "Mon-Fri", "hours": "09:00-17:00"}})
    rows = review_rows(simulate(one_task(), s))
    assert rows.loc[0, "start_timestamp"] == ts("2026-01-12 08:00")
    assert rows.loc[0, "time:timestamp"] == ts("2026-01-12 09:00")


def test_bad_calendar_is_a_scenario_error() -> None:
    s = office_scenario(["2026-01-10T10:00:00+00:00"], calendars={"office": {"hours": "17:00-09:00"}})
    with pytest.raises(ScenarioError, match=r"calendar 'office'.*end before they start"):
        simulate(one_task(), s)
