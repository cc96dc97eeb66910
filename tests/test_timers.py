"""Timer specifications: durations, dates, ISO repeating intervals and cron in a time zone (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.errors import TimerSpecError
from engine.model import Timer
from engine.model.timers import format_duration, parse_datetime, parse_duration, zone

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def firings(timer: Timer, now: datetime, limit: int = 50) -> list[datetime]:
    """Every due time of a timer armed at ``now``, as an engine would fire it (at most ``limit``)."""
    out: list[datetime] = []
    due = timer.first_due(now)
    while due is not None and len(out) < limit:
        out.append(due)
        due = timer.next_due(due, fired=len(out))
    return out


# --- durations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "delta"), [
    ("PT30M", timedelta(minutes=30)), ("PT4H", timedelta(hours=4)), ("P7D", timedelta(days=7)),
    ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)), ("PT0.5S", timedelta(milliseconds=500)),
    (" PT1S ", timedelta(seconds=1)), ("P2W", timedelta(weeks=2)),
])
def test_durations_parse_and_format_back(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(("text", "reason"), [
    ("P1Y", "years or months"), ("P1M", "years or months"), ("-PT1H", "negative"), ("", "ISO-8601 text"),
    ("4 hours", "not an ISO-8601 duration"), ("1h", "not an ISO-8601 duration"),
])
def test_bad_durations_are_refused_with_an_example(text: str, reason: str) -> None:
    with pytest.raises(TimerSpecError, match=reason):
        parse_duration(text)


def test_duration_timer_is_due_once_after_its_length() -> None:
    timer = Timer.model_validate("PT4H")
    assert (timer.kind, timer.repetitions) == ("duration", 1)
    assert firings(timer, NOW) == [NOW + timedelta(hours=4)]
    assert timer.first_due(NOW.replace(tzinfo=None)) == NOW + timedelta(hours=4)  # naive "now" is UTC


# --- dates ----------------------------------------------------------------------------------------------


def test_date_timer_fires_at_the_date_or_at_once_when_it_has_passed() -> None:
    timer = Timer.model_validate("2026-12-01T09:00:00+01:00")
    assert timer.kind == "date"
    assert firings(timer, NOW) == [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert timer.first_due(later) == later


def test_date_without_offset_is_read_in_the_timer_zone() -> None:
    timer = Timer(date="2026-07-01T09:00:00", timezone="Europe/Berlin")
    assert timer.first_due(NOW) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST, UTC+2
    assert parse_datetime("2026-07-01T09:00:00") == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


# --- ISO repeating intervals ----------------------------------------------------------------------------


def test_r5_fires_exactly_five_times_an_hour_apart() -> None:
    timer = Timer.model_validate("R5/PT1H")
    assert (timer.kind, timer.repetitions) == ("cycle", 5)
    due = firings(timer, NOW)
    assert due == [NOW + timedelta(hours=h) for h in range(1, 6)]
    assert timer.next_due(due[-1], fired=5) is None


def test_unbounded_cycle_keeps_firing() -> None:
    timer = Timer.model_validate("R/PT10M")
    assert timer.repetitions is None
    due = firings(timer, NOW, limit=200)
    assert len(due) == 200 and due[-1] == NOW + timedelta(minutes=2000)


def test_cycle_with_a_start_is_aligned_to_its_start() -> None:
    timer = Timer.model_validate("R3/2026-01-05T09:00:00+01:00/P1D")
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert firings(timer, datetime(2026, 1, 1, tzinfo=UTC)) == [start + timedelta(days=d) for d in range(3)]
    assert timer.first_due(start + timedelta(hours=5)) == start + timedelta(days=1)  # the next step, not +24h


@pytest.mark.parametrize(("text", "reason"), [
    ("R5", "neither an ISO repeating interval"), ("R5/PT0S", "positive interval"), ("R/P1M", "years or months"),
    ("R2/yesterday/PT1H", "not an ISO-8601 date-time"), ("61 9 * * *", "not a valid cron expression"),
])
def test_bad_cycles_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Timer(cycle=text)


# --- cron in a time zone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "switch"), [
    (datetime(2026, 3, 26, 12, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC)),  # CET -> CEST
    (datetime(2026, 10, 22, 12, tzinfo=UTC), datetime(2026, 10, 25, tzinfo=UTC)),  # CEST -> CET
])
def test_daily_nine_am_in_berlin_stays_nine_am_across_dst(start: datetime, switch: datetime) -> None:
    timer = Timer(cycle="0 9 * * *", timezone="Europe/Berlin")
    due = firings(timer, start, limit=7)
    local = [d.astimezone(BERLIN) for d in due]
    assert [d.strftime("%H:%M") for d in local] == ["09:00"] * 7
    assert [d.date() for d in local] == [start.date() + timedelta(days=i) for i in range(1, 8)]
    offsets = {d.utcoffset() for d in local}
    assert len(offsets) == 2  # the UTC instant moves by an hour at the switch, the wall time does not
    before = [d for d in due if d < switch]
    after = [d for d in due if d >= switch]
    assert before and after and {d.hour for d in before} != {d.hour for d in after}


def test_weekday_cron_skips_the_weekend() -> None:
    timer = Timer(cycle="0 9 * * MON-FRI", timezone="Europe/Berlin")
    days = [d.astimezone(BERLIN).strftime("%a") for d in firings(timer, datetime(2026, 3, 27, 12, tzinfo=UTC), 5)]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_fixed_time_job_fires_once_when_the_clocks_go_back() -> None:
    """02:30 happens twice in Berlin on 25 October 2026; a daily 02:30 job must still run once that day."""
    daily = firings(Timer(cycle="30 2 * * *", timezone="Europe/Berlin"), datetime(2026, 10, 23, 12, tzinfo=UTC), 4)
    assert [d.astimezone(BERLIN).strftime("%d %H:%M") for d in daily] == ["24 02:30", "25 02:30", "26 02:30",
                                                                          "27 02:30"]
    hourly = firings(Timer(cycle="30 * * * *", timezone="Europe/Berlin"), datetime(2026, 10, 24, 23, tzinfo=UTC), 5)
    assert [d - hourly[0] for d in hourly] == [timedelta(hours=h) for h in range(5)]  # hourly keeps real hours


def test_daily_job_in_the_skipped_hour_still_runs_when_the_clocks_go_forward() -> None:
    due = firings(Timer(cycle="30 2 * * *", timezone="Europe/Berlin"), datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    assert [d.astimezone(BERLIN).day for d in due] == [28, 29, 30]  # one run each day, 29 March included
    assert due == sorted(due)


def test_cron_without_zone_is_utc_and_zone_names_are_checked() -> None:
    assert Timer.model_validate("0 9 * * *").first_due(NOW) == NOW + timedelta(days=1)
    assert zone("utc") is UTC and zone(None) is UTC
    with pytest.raises(TimerSpecError, match="unknown time zone 'Mars/Base'"):
        zone("Mars/Base")


# --- the short forms a person writes ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("P7D", Timer(duration="P7D")),
    (timedelta(hours=2), Timer(duration="PT2H")),
    ("R5/PT1H", Timer(cycle="R5/PT1H")),
    ("0 9 * * *", Timer(cycle="0 9 * * *")),
    ("2026-12-01T09:00:00Z", Timer(date="2026-12-01T09:00:00Z")),
    (datetime(2026, 12, 1, 9, tzinfo=UTC), Timer(date="2026-12-01T09:00:00+00:00")),
])
def test_short_forms(value: object, expected: Timer) -> None:
    assert Timer.model_validate(value) == expected


def test_a_timer_needs_exactly_one_spec() -> None:
    with pytest.raises(ValidationError, match="the timer is empty"):
        Timer()
    with pytest.raises(ValidationError, match=r"got \['duration', 'cycle'\]"):
        Timer(duration="PT1H", cycle="R/PT1H")
    assert Timer(duration="PT1H").next_due(NOW, fired=1) is None  # only cycles repeat
