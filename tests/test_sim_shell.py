"""The SimPy shell: a hand-computed run, determinism, branches, failures, SLAs, messages, timers."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest
from sim_support import mmc_design, mmc_scenario, scenario

from engine.eventlog import EVENT_COLUMNS
from engine.model import ProcessBuilder, complete_with
from simulator import simulate
from simulator.kpis import LOG_COLUMNS


def two_step():
    """serve (a clerk, 15 min) then notify (an agent, 1 min)."""
    b = ProcessBuilder("hand")
    b.start().user("serve", title="Serve", assignee="clerk").service("notify", agent="mailer").end("done")
    return b.build()


def hand_scenario(**extra):
    data = {"horizon": "PT30M", "drain": "PT1H", "arrivals": {"interval": "PT10M", "limit": 3},
            "pools": {"clerk": {"size": 1}},
            "tasks": {"serve": {"duration": "PT15M"}, "notify": {"duration": "PT1M"}}}
    data.update(extra)
    return scenario(**data)


def kpi(results, name, subject=""):
    return results.summary().set_index(["kpi", "subject"]).loc[(name, subject), "mean"]


def test_hand_computed_kpis() -> None:
    # arrivals 0, 600, 1200 s; one clerk, 900 s each: starts 0, 900, 1800; waits 0, 300, 600 s;
    # then 60 s of agent work: cycle times 960, 1260, 1560 s. The run lasts 30 min + 1 h = 5400 s.
    r = simulate(two_step(), hand_scenario())
    assert kpi(r, "cases_completed") == 3 and kpi(r, "wip_at_end") == 0
    assert kpi(r, "cycle_time_mean_h") == pytest.approx(1260 / 3600)
    assert kpi(r, "cycle_time_p50_h") == pytest.approx(1260 / 3600)
    assert kpi(r, "cycle_time_p90_h") == pytest.approx((1260 + 0.8 * 300) / 3600)
    assert kpi(r, "waiting_time_mean_h", "serve") == pytest.approx(300 / 3600)
    assert kpi(r, "working_time_mean_h", "serve") == pytest.approx(900 / 3600)
    assert kpi(r, "waiting_time_mean_h", "notify") == 0
    # Rates are measured in the arrival window [0, 1800 s] (the hour of drain only lets the cases finish):
    # the clerk is busy all of it; the queue is 1 during [600, 900) and [1200, 1800): 900 s of 1800;
    # the 3 cases that arrived in it completed; the mailer works 900-960 s in it (1800-1860, 2700-2760 after).
    assert kpi(r, "utilisation", "clerk") == pytest.approx(1800 / 1800)
    assert kpi(r, "queue_length_mean", "clerk") == pytest.approx(900 / 1800)
    assert kpi(r, "throughput_per_day") == pytest.approx(3 / (1800 / 86400))
    assert kpi(r, "busy_mean", "mailer") == pytest.approx(60 / 1800)


def test_hand_computed_event_log() -> None:
    r = simulate(two_step(), hand_scenario())
    log = r.activity_log(0)
    assert list(log.columns) == LOG_COLUMNS
    serve = log[log["activity_id"] == "serve"].sort_values("case:concept:name")
    t0 = pd.Timestamp(r.scenario.start)
    sec = pd.to_timedelta
    assert list(serve["case:concept:name"]) == ["1", "2", "3"]
    assert list(serve["enabled_timestamp"]) == [t0 + sec(s, unit="s") for s in (0, 600, 1200)]
    assert list(serve["start_timestamp"]) == [t0 + sec(s, unit="s") for s in (0, 900, 1800)]
    assert list(serve["time:timestamp"]) == [t0 + sec(s, unit="s") for s in (900, 1800, 2700)]
    assert set(serve["org:resource"]) == {"clerk#1"} and set(serve["outcome"]) == {"completed"}
    assert list(serve["concept:name"]) == ["serve"] * 3  # the BPMN name (none: the id), not the inbox title
    notify = log[log["activity_id"] == "notify"]
    assert set(notify["org:resource"]) == {"agent:mailer"} and list(notify["working_s"]) == [60.0] * 3
    assert log["time:timestamp"].is_monotonic_increasing


def test_event_log_csv_round_trip(tmp_path) -> None:
    r = simulate(two_step(), hand_scenario())
    path = r.to_csv(tmp_path / "log.csv")
    back = pd.read_csv(path)
    log = r.event_log()  # per transition: 3 cases x (serve: schedule, start, complete; notify: start, complete)
    assert list(back.columns) == ["replication", *EVENT_COLUMNS] and len(back) == len(log) == 15
    stamps = pd.to_datetime(back["time:timestamp"], format="ISO8601")
    assert stamps.dt.tz is not None
    assert (stamps.reset_index(drop=True) == log["time:timestamp"]).all()


def test_same_seed_same_results_other_seed_differs() -> None:
    s = mmc_scenario(2, 0.7, cases=800, replications=3)
    a, b = simulate(mmc_design(), s), simulate(mmc_design(), s)
    pd.testing.assert_frame_equal(a.kpis, b.kpis)
    pd.testing.assert_frame_equal(a.activity_log(), b.activity_log())
    c = simulate(mmc_design(), s, seed=s.seed + 1)
    assert not a.kpis["value"].equals(c.kpis["value"])
    # replications differ from each other
    waits = a.kpi("waiting_time_mean_h", "serve")
    assert waits.nunique() == 3


def branchy():
    b = ProcessBuilder("br", variables={"ok": bool, "score": int})
    gate = b.start().service("check", agent="a", outputs=["ok"]).exclusive("gw")
    gate.when("ok").task("yes").end("e1")
    gate.when("score > 50").task("maybe").end("e2")
    gate.otherwise().task("no").end("e3")
    return b.build()


def test_branch_probabilities_choose_flows_by_target() -> None:
    d = branchy()
    s = scenario(horizon="P1D", arrivals={"interval": "PT1M"},
                 branches={"gw": {"yes": 0.5, "maybe": 0.3, "no": 0.2}})
    r = simulate(d, s)
    counts = r.runs[0].entered
    total = counts["gw"]
    assert total == 1440  # one a minute in [0, 24 h)
    for node, p in (("yes", 0.5), ("maybe", 0.3), ("no", 0.2)):
        assert abs(counts[node] / total - p) < 4 * math.sqrt(p * (1 - p) / total)
    shares = {end: kpi(r, "end_share", end) for end in ("e1", "e2", "e3")}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["e1"] == pytest.approx(counts["e1"] / total)


def test_sampled_outputs_and_variables_drive_conditions() -> None:
    d = branchy()
    s = scenario(horizon="P1D", arrivals={"interval": "PT1M"},
                 variables={"score": {"uniform": [0, 100]}},
                 tasks={"check": {"outputs": {"ok": {"bernoulli": 0.25}}}})
    counts = simulate(d, s).runs[0].entered
    n = counts["gw"]
    # yes: 0.25; maybe: 0.75 * 0.5; no: 0.75 * 0.5
    for node, p in (("yes", 0.25), ("maybe", 0.375), ("no", 0.375)):
        assert abs(counts[node] / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_failures_are_retried_by_the_core_and_exhausted_ones_compensate() -> None:
    b = ProcessBuilder("f")
    work = b.start().service("pay", agent="bank", compensation="refund").service(
        "ship", agent="post", retry={"attempts": 2, "backoff": "PT1M"})
    work.end("done")
    b.at("ship").on_error(id="caught").compensate("undo").end("undone")
    s = scenario(horizon="P1D", arrivals={"interval": "PT10M"},
                 tasks={"pay": {"duration": "PT1M", "compensation": "PT5M"},
                        "ship": {"duration": "PT2M", "failure": 0.5}})
    r = simulate(b.build(), s)
    log = r.activity_log(0)
    ship = log[log["activity_id"] == "ship"]
    # every case tries ship once; half fail and try again after the backoff; a quarter fail twice
    first = ship[ship["attempt"] == 1]
    second = ship[ship["attempt"] == 2]
    assert abs(len(second) / len(first) - 0.5) < 0.1
    failed_twice = (second["outcome"] == "failed").sum()
    comp = log[(log["kind"] == "compensation")]
    assert len(comp) == failed_twice and set(comp["activity_id"]) == {"pay"}
    assert set(comp["working_s"]) == {300.0}
    # the backoff: attempt 2 is enabled 60 s after attempt 1 ended
    merged = first.merge(second, on="case:concept:name", suffixes=("_1", "_2"))
    gap = (merged["enabled_timestamp_2"] - merged["time:timestamp_1"]).dt.total_seconds()
    assert set(gap) == {60.0}


def test_an_activitys_kpis_count_only_its_own_runs_not_its_compensation() -> None:
    """A compensation run carries the activity's id in the log; its 0 s must not halve the activity's working time."""
    def trip(t: ProcessBuilder) -> None:
        paid = t.start("t_start").service("book_hotel", agent="hotel", compensation="unbook").exclusive("paid")
        paid.when("ok").end("t_end")
        paid.otherwise().cancel("t_cancel")

    b = ProcessBuilder("trip", variables={"ok": "boolean"})
    b.start().transaction("tx", trip).end("booked")
    b.at("tx").on_cancel("cancelled").end("sorry")
    s = scenario(horizon="PT10H", arrivals={"interval": "PT1H"},
                 tasks={"book_hotel": {"duration": "PT10M", "outputs": {"ok": False}}})
    r = simulate(b.build(), s)
    log = r.activity_log(0)
    assert (log["kind"] == "compensation").sum() > 0  # every case was cancelled and undid the booking
    assert kpi(r, "working_time_mean_h", "book_hotel") == pytest.approx(10 / 60)
    assert kpi(r, "working_time_mean_h", "undo:book_hotel") == pytest.approx(0.0)


def test_business_error_without_boundary_fails_the_case() -> None:
    b = ProcessBuilder("be")
    b.start().service("risky", agent="x").end()
    s = scenario(horizon="PT10H", arrivals={"interval": "PT1M"},
                 tasks={"risky": {"duration": "PT1M", "error": {"code": "nope", "probability": 0.3}}})
    r = simulate(b.build(), s)
    failed, done = kpi(r, "cases_failed"), kpi(r, "cases_completed")
    assert failed + done == kpi(r, "cases_arrived") - kpi(r, "wip_at_end")
    assert abs(failed / (failed + done) - 0.3) < 0.06


def approval(on_timeout=None):
    b = ProcessBuilder("appr", variables={"approved": bool})
    fields = {"sla": "PT4H", "on_timeout": on_timeout} if on_timeout is not None else {"sla": "PT4H"}
    b.start().user("approve", title="Approve", assignee="lead", **fields).end("done")
    return b.build()


def test_sla_breach_rate_and_complete_on_timeout_frees_the_person() -> None:
    # one lead, 3 h per approval, a case every 2 h: the queue grows; breaches once waiting > 1 h
    s = scenario(horizon="P2D", arrivals={"interval": "PT2H"}, pools={"lead": {"size": 1}},
                 tasks={"approve": {"duration": "PT3H"}})
    plain = simulate(approval(), s)
    rate = kpi(plain, "sla_breach_rate", "approve")
    assert 0.5 < rate < 1.0
    auto = simulate(approval(complete_with(approved=False)), s)
    log = auto.activity_log(0)
    outcomes = log[log["activity_id"] == "approve"]["outcome"]
    assert (outcomes == "sla_completed").sum() > 0
    # completing at the SLA keeps every case within 4 h
    assert kpi(auto, "cycle_time_p95_h") <= 4.0 + 1e-9
    assert kpi(auto, "wip_at_end") < kpi(plain, "wip_at_end")


def test_escalation_moves_queued_work_to_the_escalation_pool() -> None:
    s = scenario(horizon="P1D", arrivals={"interval": "PT1H"}, pools={"lead": {"size": 1}, "cto": {"size": 1}},
                 tasks={"approve": {"duration": "PT2H"}})
    r = simulate(approval("escalate:cto"), s)
    log = r.activity_log(0)
    by = log[log["activity_id"] == "approve"].groupby("org:group").size()
    assert by.get("cto", 0) > 0 and by.get("lead", 0) > 0
    escalated = log[(log["org:group"] == "cto")]
    assert escalated["sla_breached"].all()
    # work in progress at the breach stays with the lead and still completes (the lead is not stuck)
    lead = log[log["org:group"] == "lead"]
    assert (lead["sla_breached"] & (lead["outcome"] == "completed")).any()
    assert r.runs[0].pools["lead"]["served"] == (lead["outcome"] == "completed").sum()
    assert r.runs[0].pools["lead"]["served"] > 1


def test_timer_boundary_interrupts_queued_work() -> None:
    b = ProcessBuilder("tb")
    b.start().user("wait_for_it", title="Slow", assignee="p").end("ok")
    b.at("wait_for_it").on_timer("PT30M", id="late").end("too_late")
    s = scenario(horizon="PT10H", arrivals={"interval": "PT10M"}, pools={"p": {"size": 1}},
                 tasks={"wait_for_it": {"duration": "PT20M"}})
    r = simulate(b.build(), s)
    log = r.activity_log(0)
    rows = log[log["activity_id"] == "wait_for_it"]
    assert (rows["outcome"] == "cancelled").sum() > 0
    assert r.runs[0].entered.get("too_late", 0) == (rows["outcome"] == "cancelled").sum()
    # the person is never double-booked: starts and ends of completed work do not overlap
    done = rows[rows["outcome"].isin(["completed", "cancelled"])].dropna(subset=["start_timestamp"])
    done = done.sort_values("start_timestamp")
    assert (done["start_timestamp"].iloc[1:].to_numpy() >= done["time:timestamp"].iloc[:-1].to_numpy()).all()


def test_seven_day_timer_and_messages_race() -> None:
    b = ProcessBuilder("trial", variables={"paid": bool})
    race = b.start().task("capture").race("race")
    race.receive("payment", "payment").task("activate").end("active")
    race.timer("expired", "P7D").task("churn").end("churned")
    s = scenario(horizon="P30D", drain="P8D", arrivals={"interval": "PT6H"},
                 messages={"payment": {"after": {"uniform": ["P1D", "P6D"]}, "probability": 0.4}})
    r = simulate(b.build(), s)
    entered = r.runs[0].entered
    n = entered["race"]
    assert entered["active"] + entered["churned"] == n
    assert abs(entered["active"] / n - 0.4) < 0.15
    log = r.activity_log(0)
    waits = log[log["kind"] == "timer"]
    assert len(waits) == entered["churned"] and set(waits["working_s"]) == {7 * 86400.0}
    cases = r.cases(0)
    churned = cases[cases["cycle_time_h"] >= 7 * 24]
    assert len(churned) == entered["churned"]


def test_warmup_excludes_early_cases() -> None:
    s = hand_scenario(warmup="PT5M")
    r = simulate(two_step(), s)
    assert kpi(r, "cases_arrived") == 2  # the case at 0 s is before the warm-up
    assert kpi(r, "cycle_time_mean_h") == pytest.approx((1260 + 1560) / 2 / 3600)


def test_horizon_cuts_open_work_and_counts_wip() -> None:
    s = hand_scenario(drain="PT0S")  # the run ends at 30 min: case 1 is done, 2 is being served, 3 waits
    r = simulate(two_step(), s)
    assert kpi(r, "wip_at_end") == 3 - kpi(r, "cases_completed")
    log = r.activity_log(0)
    open_rows = log[log["outcome"].isin(["open", "queued"])]
    assert len(open_rows) >= 1 and open_rows["time:timestamp"].isna().all()


def test_progress_callback_reaches_one() -> None:
    seen: list[float] = []
    simulate(mmc_design(), mmc_scenario(1, 0.5, cases=100, replications=2), progress=seen.append)
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_profile_arrivals_follow_weekdays_and_hours() -> None:
    d = mmc_design()
    s = scenario(horizon="P14D", arrivals={"profile": {"weekdays": {"mon": 40, "tue": 40, "wed": 40, "thu": 40,
                                                                    "fri": 40}, "hours": {"09:00-17:00": 1}}},
                 pools={"clerk": {"size": 50}}, tasks={"serve": {"duration": "PT1M"}})
    cases = simulate(d, s).cases(0)
    arrived = pd.Timestamp(s.start) + pd.to_timedelta(cases["arrived_s"], unit="s")
    assert abs(len(cases) - 400) < 4 * math.sqrt(400)
    assert (arrived.dt.day_of_week < 5).all()
    assert arrived.dt.hour.between(9, 16).all()


def test_replayed_timestamps() -> None:
    start = "2026-01-05T00:00:00+00:00"
    times = [start, "2026-01-05T01:00:00+00:00", "2026-01-05T01:30:00+00:00"]
    s = scenario(start=start, horizon="PT3H", arrivals={"timestamps": times}, pools={"clerk": {"size": 1}},
                 tasks={"serve": {"duration": "PT10M"}})
    cases = simulate(mmc_design(), s).cases(0)
    assert list(cases["arrived_s"]) == [0.0, 3600.0, 5400.0]


def test_unlimited_agents_and_capacity() -> None:
    b = ProcessBuilder("ag")
    b.start().service("call", agent="llm").end()
    base = {"horizon": "PT1H", "arrivals": {"interval": "PT1M"}, "tasks": {"call": {"duration": "PT5M"}}}
    free = simulate(b.build(), scenario(**base))
    capped = simulate(b.build(), scenario(**base, agents={"llm": {"capacity": 2}}))
    assert kpi(free, "waiting_time_mean_h", "call") == 0
    assert kpi(capped, "waiting_time_mean_h", "call") > 0
    assert kpi(capped, "utilisation", "agent:llm") == pytest.approx(1.0, abs=0.02)
    assert timedelta(hours=kpi(free, "cycle_time_mean_h")) == timedelta(minutes=5)


def test_a_finished_case_is_freed_at_once_not_by_the_garbage_collector() -> None:
    """A case's objects hold no reference cycle once it ended (its work and that work's completion event held
    each other, keeping every case's state alive until a collection: the collector's work grew with the run)."""
    import gc

    from engine.semantics import InstanceState
    from simulator.resources import Work

    gc.collect()
    gc.disable()
    try:  # states other tests left alive, or an app's embedded worker still makes, are not this run's: those
        # alive before it are left out, and the M/M/c design's cases have no variables
        before = {id(o) for o in gc.get_objects() if isinstance(o, InstanceState | Work)}
        results = simulate(mmc_design(), mmc_scenario(3, 0.8, cases=300, replications=1, seed=2), workers=1)
        alive = [o for o in gc.get_objects() if id(o) not in before and (
            isinstance(o, Work) or (isinstance(o, InstanceState) and not o.variables))]
    finally:
        gc.enable()
    rows = results.runs[0].case_rows
    assert len(rows) > 200 and all(row[3] == "completed" for row in rows)  # every case ended
    assert alive == []
