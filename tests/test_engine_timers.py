"""Timers in the engine, on SQLite and PostgreSQL, on a virtual clock (no test sleeps).

Timer start events (cron in a time zone across DST, ISO cycles, dates, redeploys, the catch-up
policy), intermediate and boundary timers and the event-based gateway as database rows (jobs,
subscriptions, human tasks), the onboarding seed design at volume, and -- PostgreSQL only -- timers
that outlive the worker that armed them. The token rules themselves are tested in test_semantics.py,
the due-time arithmetic in test_timers.py.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from engine_support import fresh_postgres
from sqlalchemy import select

import designs
from engine import register
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import AgentContext, Engine, EngineError, VirtualClock
from engine.runtime.tables import JobRow, SubscriptionRow
from engine.security import Principal

J, S = JobRow.__table__, SubscriptionRow.__table__
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
CALLS: dict[str, int] = {}


def counted(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    CALLS[context.idempotency_key] = CALLS.get(context.idempotency_key, 0) + 1
    return {}


register("test.timers.counted", counted)


# --- helpers -----------------------------------------------------------------------------------------


def utc(value: Any) -> datetime:
    value = pd.Timestamp(value).to_pydatetime()
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def started(engine: Engine, name: str | None = None) -> list[datetime]:
    """Start times (UTC) of the instances, oldest first."""
    frame = engine.instances()
    if frame.empty:
        return []
    if name is not None:
        frame = frame[frame["definition_name"] == name]
    return sorted(utc(v) for v in frame["started_at"])


def jobs(engine: Engine, kind: str | None = None, instance_id: str | None = None) -> list[Any]:
    query = select(J).order_by(J.c.due_at)
    if kind is not None:
        query = query.where(J.c.kind == kind)
    if instance_id is not None:
        query = query.where(J.c.instance_id == instance_id)
    with engine.reader.connect() as conn:
        return list(conn.execute(query))


def subscriptions(engine: Engine) -> list[Any]:
    with engine.reader.connect() as conn:
        return list(conn.execute(select(S)))


def timer_start(name: str, timer: Any) -> ProcessDefinition:
    b = ProcessBuilder(name)
    b.timer_start("tick", timer).task("report").end("done")
    return b.build()


# --- timer start events --------------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "expected_utc_hours"), [
    ((datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 4, 1, 12, tzinfo=UTC)), [8, 7, 7, 7, 7]),  # CEST 29 Mar
    ((datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 28, 12, tzinfo=UTC)), [7, 8, 8, 8, 8]),  # CET 25 Oct
], ids=["spring", "autumn"])
def test_cron_timer_start_runs_daily_at_nine_berlin_time_across_dst(
        db_url: str, window: tuple[datetime, datetime], expected_utc_hours: list[int]) -> None:
    begin, end = window
    engine = Engine(db_url, clock=VirtualClock(begin), principal=Principal.system())
    engine.deploy(timer_start("daily_report", {"cycle": "0 9 * * *", "timezone": "Europe/Berlin"}))
    engine.advance_to(end)
    starts = started(engine)
    days = [begin.date() + timedelta(days=i) for i in range(1, 6)]
    assert starts == [datetime(d.year, d.month, d.day, h, tzinfo=UTC) for d, h in zip(days, expected_utc_hours,
                                                                                       strict=True)]
    assert all(s.astimezone(BERLIN).hour == 9 for s in starts)
    assert (engine.instances()["status"] == "completed").all()
    (pending,) = jobs(engine, "start")  # exactly one occurrence scheduled: tomorrow, 9:00 in Berlin
    assert pending.instance_id is None
    assert utc(pending.due_at).astimezone(BERLIN) == datetime(2026, end.month, end.day + 1, 9, tzinfo=BERLIN)
    assert json.loads(pending.payload) == {"definition": "daily_report", "version": 1, "node_id": "tick", "fired": 5}


def test_iso_cycle_starts_exactly_its_repetitions_and_a_date_starts_once(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(timer_start("hourly", "R3/PT1H"))
    engine.deploy(timer_start("once", "2026-01-06T10:00:00+01:00"))
    engine.advance(timedelta(days=3))
    assert started(engine, "hourly") == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert started(engine, "once") == [datetime(2026, 1, 6, 9, tzinfo=UTC)]
    assert jobs(engine) == [] and engine.next_due() is None


def test_a_new_version_replaces_the_pending_start_jobs(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(timer_start("report", {"cycle": "0 9 * * *", "timezone": "Europe/Berlin"}))
    engine.deploy(timer_start("report", {"cycle": "0 9 * * *", "timezone": "Europe/Berlin"}))  # same: no-op
    assert len(jobs(engine, "start")) == 1
    engine.advance(timedelta(days=1))
    v2 = engine.deploy(timer_start("report", {"cycle": "0 10 * * *", "timezone": "Europe/Berlin"}))
    (pending,) = jobs(engine, "start")
    assert (v2.version, json.loads(pending.payload)["version"]) == (2, 2)
    engine.advance(timedelta(days=1))
    frame = engine.instances().sort_values("started_at")
    assert frame["definition_version"].tolist() == [1, 2]
    assert [utc(v).astimezone(BERLIN).hour for v in frame["started_at"]] == [9, 10]
    plain = ProcessBuilder("report")  # a version without timer starts: nothing starts by itself any more
    plain.start().task("report").end("done")
    engine.deploy(plain.build())
    assert jobs(engine, "start") == []


def test_catch_up_fires_once_then_resumes_the_schedule(db_url: str) -> None:
    """The worker was down through three 9am ticks: one instance when it comes back, then 9am again."""
    clock = VirtualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    engine = Engine(db_url, clock=clock, principal=Principal.system())
    engine.deploy(timer_start("daily", {"cycle": "0 9 * * *", "timezone": "Europe/Berlin"}))
    engine.deploy(timer_start("hourly", "R/PT1H"))  # first due 13:00, its grid stays on the hour
    engine.deploy(timer_start("three", "R3/PT1H"))
    clock.set(datetime(2026, 3, 5, 15, 30, tzinfo=UTC))  # down since deploy: no advance(), a plain late run
    engine.run_until_idle()
    back = clock.now()
    assert started(engine, "daily") == [back] and started(engine, "hourly") == [back]
    assert started(engine, "three") == [back]
    due = {json.loads(j.payload)["definition"]: (utc(j.due_at), json.loads(j.payload)["fired"])
           for j in jobs(engine, "start")}
    assert due == {"daily": (datetime(2026, 3, 6, 8, tzinfo=UTC), 1),
                   "hourly": (datetime(2026, 3, 5, 16, tzinfo=UTC), 1),
                   "three": (datetime(2026, 3, 5, 16, tzinfo=UTC), 1)}
    engine.advance(timedelta(days=1))  # back on schedule; R3 counts instances, so it starts two more
    assert started(engine, "daily") == [back, datetime(2026, 3, 6, 8, tzinfo=UTC)]
    assert started(engine, "three") == [back, back + timedelta(minutes=30), back + timedelta(minutes=90)]
    assert len(started(engine, "hourly")) == 1 + 24


def test_a_start_job_whose_lease_ran_out_starts_one_instance(db_url: str) -> None:
    clock = VirtualClock(T0)
    first = Engine(db_url, clock=clock, worker_id="w1", lease=timedelta(seconds=10), principal=Principal.system())
    second = Engine(db_url, clock=clock, worker_id="w2", lease=timedelta(seconds=10), principal=Principal.system())
    first.deploy(timer_start("hourly", "R/PT1H"))
    clock.set(T0 + HOUR)
    (job,) = first._claim(10)  # w1 claims the 10:00 occurrence, then stalls
    clock.advance(timedelta(seconds=11))
    assert second.run_due_jobs() == 1  # the lease ran out: w2 starts it and schedules 11:00
    first._run_job(job)  # w1 wakes up: no longer its job, nothing happens
    assert started(first) == [T0 + HOUR + timedelta(seconds=11)]
    (pending,) = jobs(first, "start")
    assert (utc(pending.due_at), json.loads(pending.payload)["fired"]) == (T0 + 2 * HOUR, 1)


# --- intermediate and boundary timers, the event-based gateway ---------------------------------------------


def test_timer_catch_events_duration_date_and_cron_cycle(db_url: str) -> None:
    b = ProcessBuilder("waits")
    (b.start().timer("two_hours", "PT2H").timer("on_date", "2026-01-06T10:00:00+01:00")
     .timer("half_past_nine", {"cycle": "30 9 * * *", "timezone": "Europe/Berlin"}).end("done"))
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("waits")
    steps = [(T0 + 2 * HOUR, "on_date"),  # 11:00Z
             (datetime(2026, 1, 6, 9, tzinfo=UTC), "half_past_nine"),  # 10:00 in Berlin
             (datetime(2026, 1, 7, 8, 30, tzinfo=UTC), None)]  # next 09:30 in Berlin after 10:00 on the 6th
    for due, next_node in steps:
        engine.advance_to(due - timedelta(seconds=1))
        assert engine.instance(iid).status == "running" and len(jobs(engine, "timer", iid)) == 1
        engine.advance_to(due)
        view = engine.instance(iid)
        assert view.active_nodes == ([next_node] if next_node else [])
    assert view.status == "completed" and utc(view.ended_at) == datetime(2026, 1, 7, 8, 30, tzinfo=UTC)
    assert jobs(engine) == []


def test_a_date_in_the_past_fires_at_once(db_url: str) -> None:
    b = ProcessBuilder("late")
    b.start().timer("deadline", "2025-12-24T18:00:00+01:00").end("done")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("late")
    engine.run_until_idle()
    assert engine.instance(iid).status == "completed"


def test_interrupting_boundary_timer_cancels_the_task_and_takes_the_timer_path(db_url: str) -> None:
    b = ProcessBuilder("approval")
    task = b.start().user("approve", assignee="lead")
    task.end("approved")
    task.on_timer("PT4H", id="late").user("handle_late", assignee="manager").end("handled")
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(b.build())
    iid = engine.start("approval")
    (approve,) = engine.tasks(instance_id=iid)
    engine.advance(4 * HOUR - timedelta(seconds=1))
    assert engine.instance(iid).active_nodes == ["approve"]
    engine.advance(timedelta(seconds=1))
    assert engine.instance(iid).active_nodes == ["handle_late"]
    (cancelled,) = engine.tasks(instance_id=iid, status="cancelled")
    assert cancelled["id"] == approve["id"] and utc(cancelled["completed_at"]) == T0 + 4 * HOUR
    assert [t["node_id"] for t in engine.tasks(instance_id=iid)] == ["handle_late"]
    assert jobs(engine) == []
    with pytest.raises(EngineError):
        engine.complete_task(approve["id"], {})


def reminders_until_fixed() -> ProcessDefinition:
    """A task with a non-interrupting hourly reminder (a boundary timer cycle)."""
    b = ProcessBuilder("fix_it")
    task = b.start().user("fix", assignee="dev")
    task.end("fixed")
    task.on_timer("R/PT1H", id="reminder", interrupting=False).user("read_reminder", assignee="dev").end("read")
    return b.build()


def test_non_interrupting_cycle_reminds_every_hour_until_the_task_is_done(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reminders_until_fixed())
    iid = engine.start("fix_it")
    engine.advance(timedelta(hours=3, minutes=30))

    def reminders() -> list[dict[str, Any]]:
        return [t for t in engine.tasks(instance_id=iid, status=None) if t["node_id"] == "read_reminder"]

    assert [utc(t["created_at"]) for t in reminders()] == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    (fix,) = [t for t in engine.tasks(instance_id=iid) if t["node_id"] == "fix"]
    (pending,) = jobs(engine, "timer", iid)
    assert utc(pending.due_at) == T0 + 4 * HOUR  # one armed reminder, never more
    engine.complete_task(fix["id"], {}, actor="dev")
    assert jobs(engine, "timer", iid) == []
    engine.advance(timedelta(hours=5))
    assert len(reminders()) == 3
    for reminder in reminders():
        engine.complete_task(reminder["id"], {})
    assert engine.instance(iid).status == "completed" and jobs(engine) == []


def test_a_late_worker_catches_up_each_missed_reminder_and_the_cycle_does_not_drift(db_url: str) -> None:
    """The worker was down from 00:30 to 02:45: the 01:00 and 02:00 reminders fire on its return, the
    next stays at 03:00 (re-armed from the schedule, not from the worker's lateness)."""
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reminders_until_fixed())
    iid = engine.start("fix_it")
    engine.advance(timedelta(minutes=30))
    engine.clock.set(T0 + timedelta(hours=2, minutes=45))  # no advance(): jobs were not run meanwhile
    engine.run_until_idle()
    created = sorted(utc(t["created_at"]) for t in engine.tasks(instance_id=iid) if t["node_id"] == "read_reminder")
    assert created == [T0 + timedelta(hours=2, minutes=45)] * 2
    (pending,) = jobs(engine, "timer", iid)
    assert utc(pending.due_at) == T0 + 3 * HOUR


def race() -> ProcessDefinition:
    b = ProcessBuilder("order", variables={"order": str, "amount": int})
    gate = b.start().race("wait_payment")
    gate.branch().receive("paid", "payment", correlation_key="order").user("ship", assignee="warehouse").end("ok")
    gate.branch().timer("too_late", "PT1H").user("cancel_order", assignee="sales").end("expired")
    return b.build()


def test_event_gateway_timer_wins_and_the_subscription_row_goes(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(race())
    iid = engine.start("order", {"order": "A1"})
    assert len(subscriptions(engine)) == 1 and len(jobs(engine, "timer", iid)) == 1
    engine.advance(HOUR)
    assert engine.instance(iid).active_nodes == ["cancel_order"]
    assert subscriptions(engine) == [] and jobs(engine) == []
    with pytest.raises(EngineError, match="no instance waits"):
        engine.correlate("payment", "A1", {"amount": 10})


def test_event_gateway_message_wins_and_the_timer_job_goes(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(race())
    iid = engine.start("order", {"order": "A1"})
    engine.advance(timedelta(minutes=30))
    assert engine.correlate("payment", "A1", {"amount": 10}) == iid
    view = engine.instance(iid)
    assert view.active_nodes == ["ship"] and view.variables["amount"] == 10
    assert subscriptions(engine) == [] and jobs(engine) == []
    engine.advance(timedelta(hours=2))
    assert engine.instance(iid).active_nodes == ["ship"]


# --- the onboarding seed design at volume ------------------------------------------------------------------


def test_one_hundred_onboardings_through_the_seven_day_trial(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(designs.build_design("customer_onboarding"))
    emails = [f"lead{i:03d}@example.com" for i in range(100)]
    begin = time.perf_counter()
    ids = [engine.start("customer_onboarding", {"email": email}) for email in emails]
    engine.run_until_idle()
    assert len(jobs(engine, "timer")) == 100
    engine.advance(timedelta(days=7))
    elapsed = time.perf_counter() - begin
    print(f"\n100 onboardings through the 7-day trial on {db_url.split(':')[0]}: {elapsed * 1000:.0f} ms")
    for iid, email in zip(ids, emails, strict=True):
        view = engine.instance(iid)
        score = sum(map(ord, email.split("@")[0])) % 100
        assert view.status == "completed" and utc(view.ended_at) == T0 + timedelta(days=7)
        assert (view.variables["engagement_score"], view.variables["converted"]) == (score, score >= 80)
    assert jobs(engine) == []


# --- PostgreSQL: timers outlive their worker ------------------------------------------------------------


def waits_an_hour() -> ProcessDefinition:
    b = ProcessBuilder("wait_then_call")
    b.start().timer("hour", "PT1H").service("call", agent="test.timers.counted").end("done")
    return b.build()


def test_a_timer_survives_a_worker_restart(postgres_url: str) -> None:
    with fresh_postgres(postgres_url) as url:
        first = Engine(url, clock=VirtualClock(T0), worker_id="w1", principal=Principal.system())
        first.deploy(waits_an_hour())
        iid = first.start("wait_then_call")
        first.run_until_idle()
        first.clock.set(T0 + HOUR)  # type: ignore[attr-defined]
        (claimed,) = first._claim(10)  # the worker takes the due timer and dies before it fires
        first.db.dispose()
        second = Engine(url, clock=VirtualClock(T0 + HOUR + timedelta(minutes=5)), worker_id="w2",
                        principal=Principal.system())
        assert second.instance(iid).active_nodes == ["hour"]
        second.run_until_idle()
        first._run_job(claimed)  # the old worker's late attempt changes nothing
        assert second.run_until_idle() == 0
        view = second.instance(iid)
        assert view.status == "completed" and utc(view.ended_at) == T0 + HOUR + timedelta(minutes=5)
        assert sum(n for key, n in CALLS.items() if key.startswith(iid)) == 1
        assert jobs(second) == []
        first.db.dispose()
        second.db.dispose()


def test_a_worker_down_through_two_cycle_ticks_catches_up_once(postgres_url: str) -> None:
    with fresh_postgres(postgres_url) as url:
        first = Engine(url, clock=VirtualClock(T0), worker_id="w1", principal=Principal.system())
        first.deploy(timer_start("hourly", "R/PT1H"))
        first.advance(HOUR)
        assert started(first) == [T0 + HOUR]
        first.db.dispose()  # down through 11:00 and 12:00
        back = T0 + timedelta(hours=3, minutes=30)
        second = Engine(url, clock=VirtualClock(back), worker_id="w2", principal=Principal.system())
        third = Engine(url, clock=VirtualClock(back), worker_id="w3",
                       principal=Principal.system())  # a second worker, started together
        second.deploy(timer_start("hourly", "R/PT1H"))  # unchanged: keeps the stored schedule
        assert len(third._claim(10)) + len(second._claim(10)) == 1  # the first claim holds the lease
        second.release_locks()  # (as if w3 died: its lease would run out)
        assert second.run_until_idle() == 1
        assert started(second) == [T0 + HOUR, back]
        (pending,) = jobs(second, "start")
        assert utc(pending.due_at) == T0 + 4 * HOUR
        second.advance_to(T0 + 4 * HOUR)
        assert started(second) == [T0 + HOUR, back, T0 + 4 * HOUR]
        for engine in (first, second, third):
            engine.db.dispose()
