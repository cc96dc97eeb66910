"""Business time in the live engine: SLAs and timers that count working hours of a shared calendar.

The calendar model is engine.calendar's, the same one the simulator's resource pools use. Other
engines get weekends and DST wrong here, so the edges are the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.calendar import Calendar
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.security import Principal

OFFICE = Calendar(name="office", timezone="Europe/Berlin", working_days=[0, 1, 2, 3, 4],
                  hours=[("09:00", "17:00")])


def approval(calendar: str | None = "office") -> object:
    b = ProcessBuilder("approval")
    (b.start().user("approve", title="Approve", assignee="lead", sla="PT4H", sla_calendar=calendar,
                    on_timeout="escalate:cto").end("done"))
    return b.build()


def engine_at(db_url: str, moment: datetime) -> Engine:
    return Engine(db_url, clock=VirtualClock(moment), calendars={"office": OFFICE}, principal=Principal.system())


def test_four_business_hours_raised_friday_16h_fall_due_monday_noon(db_url: str) -> None:
    friday_16h = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 16:00 in Berlin (CET, UTC+1)
    engine = engine_at(db_url, friday_16h)
    engine.deploy(approval())
    engine.start("approval")
    [task] = engine.tasks()
    monday_noon = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    assert task["due_at"].replace(tzinfo=UTC) == monday_noon
    engine.advance_to(monday_noon - timedelta(minutes=1))  # the weekend passes: no escalation yet
    assert engine.tasks()[0]["assignee"] == "lead" and not engine.tasks()[0]["escalated"]
    engine.advance_to(monday_noon)
    [task] = engine.tasks()
    assert task["assignee"] == "cto" and task["escalated"]


def test_business_hours_across_the_spring_dst_change(db_url: str) -> None:
    """Friday 27 March 2026 16:00 CET + 4 business hours = Monday 30 March 12:00 CEST (10:00Z, not 11:00Z)."""
    engine = engine_at(db_url, datetime(2026, 3, 27, 15, 0, tzinfo=UTC))
    engine.deploy(approval())
    engine.start("approval")
    assert engine.tasks()[0]["due_at"].replace(tzinfo=UTC) == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def test_the_same_sla_in_wall_clock_time_ignores_the_weekend(db_url: str) -> None:
    engine = engine_at(db_url, datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    engine.deploy(approval(calendar=None))
    engine.start("approval")
    assert engine.tasks()[0]["due_at"].replace(tzinfo=UTC) == datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def test_a_business_time_timer_waits_out_the_weekend_and_a_holiday(db_url: str) -> None:
    holiday = Calendar(name="office", timezone="Europe/Berlin", hours=[("09:00", "17:00")],
                       holidays=["2026-12-28"])
    b = ProcessBuilder("follow_up")
    b.start().timer("wait", {"duration": "PT8H", "calendar": "office"}).end("done")
    engine = Engine(db_url, clock=VirtualClock(datetime(2026, 12, 25, 16, 0, tzinfo=UTC)),  # Fri 17:00 Berlin
                    calendars={"office": holiday}, principal=Principal.system())
    engine.deploy(b.build())
    instance_id = engine.start("follow_up")
    engine.advance_to(datetime(2026, 12, 29, 15, 59, tzinfo=UTC))  # Mon 28 is a holiday: Tue 09:00-17:00
    assert engine.instance(instance_id).status == "running"
    engine.advance_to(datetime(2026, 12, 29, 16, 0, tzinfo=UTC))
    assert engine.instance(instance_id).status == "completed"
