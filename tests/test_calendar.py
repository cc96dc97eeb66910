"""Business calendars: weekends, holidays, breaks and DST edges that other engines get wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import ALWAYS, Calendar, load_calendars
from engine.errors import DefinitionError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = Calendar(name="office", timezone="Europe/Berlin", working_days="Mon-Fri", hours="09:00-17:00")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(("start", "hours", "due"), [
    (berlin(2026, 11, 27, 16), 4, berlin(2026, 11, 30, 12)),  # the example: Friday 16:00 -> Monday 12:00
    (berlin(2026, 11, 27, 13), 4, berlin(2026, 11, 27, 17)),  # lands exactly on closing: stays Friday 17:00
    (berlin(2026, 11, 27, 17), 1, berlin(2026, 11, 30, 10)),  # raised at closing: counts from Monday 09:00
    (berlin(2026, 11, 28, 11), 2, berlin(2026, 11, 30, 11)),  # raised on Saturday
    (berlin(2026, 11, 30, 7), 1, berlin(2026, 11, 30, 10)),  # before opening
    (berlin(2026, 11, 30, 10), 0, berlin(2026, 11, 30, 10)),  # zero
    (berlin(2026, 11, 30, 9), 8 * 15, berlin(2026, 12, 18, 17)),  # three weeks
    (berlin(2026, 3, 27, 16), 9, berlin(2026, 3, 30, 17)),  # across spring-forward weekend
    (berlin(2026, 10, 23, 16), 9, berlin(2026, 10, 26, 17)),  # across fall-back weekend
])
def test_business_hours_arithmetic(start: datetime, hours: int, due: datetime) -> None:
    assert OFFICE.add(start, timedelta(hours=hours)) == due


def test_a_dst_change_day_still_has_eight_working_hours() -> None:
    ny = Calendar(timezone="America/New_York", working_days=range(7), hours="09:00-17:00")
    for day in (datetime(2026, 3, 8, tzinfo=NEW_YORK), datetime(2026, 11, 1, tzinfo=NEW_YORK)):
        assert ny.working_time(day, day + timedelta(days=1)) == timedelta(hours=8)


def test_round_the_clock_hours_across_the_gap_and_the_repeat() -> None:
    cal = Calendar(timezone="Europe/Berlin", working_days=range(7), hours="00:00-24:00", holidays=[date(2026, 1, 1)])
    assert not cal.always  # a holiday: no fast path
    assert cal.working_time(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(hours=23)  # the short day
    assert cal.working_time(berlin(2026, 10, 25), berlin(2026, 10, 26)) == timedelta(hours=25)  # the long day
    assert cal.add(berlin(2026, 3, 29, 1), timedelta(hours=1)) == berlin(2026, 3, 29, 3)  # 02:00 does not exist


def test_holidays_and_lunch_breaks() -> None:
    cal = Calendar(timezone="Europe/Berlin", hours=["09:00-12:00", "13:00-17:00"], holidays=[date(2026, 12, 25)])
    assert cal.add(berlin(2026, 12, 24, 11), timedelta(hours=3)) == berlin(2026, 12, 24, 15)
    assert cal.add(berlin(2026, 12, 24, 16), timedelta(hours=2)) == berlin(2026, 12, 28, 10)
    assert not cal.is_working(berlin(2026, 12, 24, 12, 30))
    assert cal.next_working(berlin(2026, 12, 24, 12, 30)) == berlin(2026, 12, 24, 13)
    assert not cal.is_working(berlin(2026, 12, 25, 10))


def test_always_is_plain_arithmetic() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert ALWAYS.always and ALWAYS.add(t, timedelta(days=7)) == t + timedelta(days=7)
    assert ALWAYS.is_working(t) and ALWAYS.working_time(t, t + timedelta(hours=5)) == timedelta(hours=5)


def test_periods_agree_with_is_working() -> None:
    start = berlin(2026, 3, 26)
    periods = list(OFFICE.periods(start, start + timedelta(days=7)))
    assert len(periods) == 5  # Thu, Fri, Mon, Tue, Wed
    probe = start
    while probe < start + timedelta(days=7):
        inside = any(a <= probe < b for a, b in periods)
        assert inside == OFFICE.is_working(probe)
        probe += timedelta(minutes=37)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=60 * 24 * 40))
def test_working_time_inverts_add(start: datetime, minutes: int) -> None:
    delta = timedelta(minutes=minutes)
    due = OFFICE.add(start, delta)
    assert OFFICE.working_time(start, due) == delta
    assert due >= start


def test_bad_calendars_name_the_field() -> None:
    with pytest.raises(DefinitionError, match=r"calendar 'ops'.*end before"):
        load_calendars({"ops": {"hours": "17:00-09:00"}})
    with pytest.raises(DefinitionError, match="working_days"):
        load_calendars([{"name": "x", "working_days": "Mon-Funday"}])
    with pytest.raises(DefinitionError, match="timezone"):
        load_calendars({"x": {"timezone": "Mars/Olympus"}})
    loaded = load_calendars({"office": {"timezone": "Europe/Berlin", "working_days": "Mon-Fri"}})
    assert loaded["office"].working_days == [0, 1, 2, 3, 4]
