"""The pure token-flow core, driven by a tiny in-memory shell on a virtual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from semantics_harness import T0, Harness

from engine.model import ProcessBuilder, complete_with
from engine.semantics import InstanceState, Semantics, SemanticsError
from engine.semantics import effects as fx
from engine.semantics import events as ev


def pr_review() -> ProcessBuilder:
    b = ProcessBuilder("pr", variables={"pr_number": int, "approved": bool})
    gate = b.start().service("validate", agent="v", inputs=["pr_number"], outputs=["approved"]).exclusive("gw")
    gate.when("approved").service("deploy", agent="d").end("deployed")
    gate.otherwise().service("issue", agent="i").end("rejected")
    return b


def test_linear_run_passes_inputs_and_writes_only_declared_outputs() -> None:
    h = Harness(pr_review().build()).start(pr_number=7)
    (work,) = h.open_work()
    assert (work.node_id, work.kind, work.handler, work.inputs) == ("validate", "service_task", "v", {"pr_number": 7})
    h.done("validate", approved=True, junk=1)
    assert "junk" not in h.variables and h.variables["approved"] is True
    h.done("deploy")
    assert h.status == "completed"
    assert h.entered() == ["start", "validate", "gw", "deploy", "deployed"]
    assert h.of(fx.InstanceEnded) == [fx.InstanceEnded("completed")]


def test_exclusive_gateway_takes_default_when_no_condition_holds() -> None:
    h = Harness(pr_review().build()).start(pr_number=1)
    h.done("validate", approved=False)
    assert [w.node_id for w in h.open_work()] == ["issue"]


def test_gateway_without_match_is_an_incident_fixed_by_variables_and_retry() -> None:
    b = ProcessBuilder("x", variables={"n": int})
    gate = b.start().exclusive("gw")
    gate.when("n > 5").end("big")
    gate.when("n <= 5").end("small")
    h = Harness(b.build()).start()  # n is None: both conditions fail to evaluate
    assert h.status == "running" and len(h.incidents) == 1 and h.incidents[0].node_id == "gw"
    token = h.incidents[0].token_id
    h.send(ev.SetVariables({"n": 9}, actor="ops"))
    h.send(ev.RetryIncident(token))
    assert h.status == "completed" and h.entered()[-1] == "big"


def test_parallel_fork_and_join_wait_for_every_branch() -> None:
    b = ProcessBuilder("p")
    fork = b.start().parallel("fork")
    a, c = fork.branch().service("a", agent="x"), fork.branch().service("c", agent="x")
    b.join("join", a, c).service("after", agent="x").end()
    h = Harness(b.build()).start()
    assert sorted(w.node_id for w in h.open_work()) == ["a", "c"]
    h.done("a")
    assert h.open_work("after") == []
    h.done("c")
    assert [w.node_id for w in h.open_work()] == ["after"]
    h.done("after")
    assert h.status == "completed" and not h.state.tokens


def test_inclusive_split_and_join_wait_only_for_taken_paths() -> None:
    b = ProcessBuilder("inc", variables={"x": int})
    split = b.start().inclusive("split")
    p1 = split.when("x > 0").service("p1", agent="a")
    p2 = split.when("x > 10").service("p2", agent="a")
    p3 = split.when("x > 100").service("p3", agent="a")
    b.join("join", p1, p2, p3, kind="inclusive_gateway").service("after", agent="a").end()
    h = Harness(b.build()).start(x=50)
    assert sorted(w.node_id for w in h.open_work()) == ["p1", "p2"]
    h.done("p2")
    assert h.open_work("after") == []
    h.done("p1")
    assert [w.node_id for w in h.open_work()] == ["after"]


def test_timer_catch_waits_seven_days_on_the_virtual_clock() -> None:
    b = ProcessBuilder("trial")
    b.start().timer("wait", "P7D").service("check", agent="c").end()
    h = Harness(b.build()).start()
    (timer,) = h.of(fx.ScheduleTimer)
    assert timer.due == T0 + timedelta(days=7) and timer.purpose == "catch"
    h.advance(timedelta(days=6, hours=23))
    assert h.open_work() == []
    h.advance(timedelta(hours=1))
    assert [w.node_id for w in h.open_work()] == ["check"]


def race() -> ProcessBuilder:
    b = ProcessBuilder("race", variables={"order": str})
    gate = b.start().race("gw")
    gate.branch().receive("paid", "payment", correlation_key="order").end("ok")
    gate.branch().timer("too_late", "PT1H").end("expired")
    return b


def test_event_gateway_message_wins_and_timer_is_cancelled() -> None:
    h = Harness(race().build()).start(order="A1")
    (sub,) = h.subscriptions.values()
    assert sub.correlation == "A1"
    assert not h.message("payment", correlation="B2")
    assert h.message("payment", correlation="A1", amount=10)
    assert h.status == "completed" and h.entered()[-1] == "ok" and h.variables["amount"] == 10
    assert len(h.of(fx.CancelTimer)) == 1


def test_event_gateway_timer_wins_and_subscription_is_dropped() -> None:
    h = Harness(race().build()).start(order="A1")
    h.advance(timedelta(hours=1))
    assert h.entered()[-1] == "expired" and h.subscriptions == {}


def test_interrupting_boundary_timer_cancels_the_task() -> None:
    b = ProcessBuilder("sla")
    task = b.start().user("approve", assignee="lead")
    task.end("approved")
    task.on_timer("PT4H", id="late").service("escalate", agent="e").end("escalated")
    h = Harness(b.build()).start()
    h.advance(timedelta(hours=4))
    assert [c.node_id for c in h.of(fx.CancelWork)] == ["approve"]
    assert [w.node_id for w in h.open_work()] == ["escalate"]


def test_non_interrupting_cycle_reminds_until_the_task_is_done() -> None:
    b = ProcessBuilder("remind")
    task = b.start().user("approve", assignee="lead")
    task.end("approved")
    task.on_timer("R/PT1H", id="reminder", interrupting=False).send("nudge", "reminder").end("reminded")
    h = Harness(b.build()).start()
    h.advance(timedelta(hours=3, minutes=30))
    assert len(h.sent) == 3 and h.open_work("approve")
    h.done("approve")
    h.advance(timedelta(hours=5))
    assert len(h.sent) == 3 and h.status == "completed"


def test_retries_with_backoff_then_error_boundary() -> None:
    b = ProcessBuilder("retry")
    task = b.start().service("call", agent="a", retry={"attempts": 3, "backoff": "PT10S", "multiplier": 2})
    task.end("ok")
    task.on_error(id="caught").end("failed")
    h = Harness(b.build()).start()
    h.fail("call")
    retry = [t for t in h.of(fx.ScheduleTimer) if t.purpose == "retry"]
    assert retry[-1].due == T0 + timedelta(seconds=10)
    h.advance(timedelta(seconds=10))
    assert h.open_work("call")[0].attempt == 2
    h.fail("call")
    assert [t for t in h.of(fx.ScheduleTimer) if t.purpose == "retry"][-1].due == h.now + timedelta(seconds=20)
    h.advance(timedelta(seconds=20))
    h.fail("call", error="still down")
    assert h.entered()[-2:] == ["caught", "failed"] and h.status == "completed"
    assert h.variables["error_message"] == "still down"


def test_technical_failure_without_boundary_is_an_incident_and_retryable() -> None:
    b = ProcessBuilder("inc")
    b.start().service("call", agent="a", retry={"attempts": 1}).end()
    h = Harness(b.build()).start()
    work_id = h.open_work("call")[0].work_id
    h.fail("call", error="Timeout")
    assert h.incidents[0].error == "Timeout" and h.status == "running"
    h.send(ev.RetryIncident(h.incidents[0].token_id))
    again = h.open_work("call")[0]
    assert again.work_id == work_id  # same activation: same idempotency key
    h.done("call")
    assert h.status == "completed"


def test_business_error_skips_retries_and_matches_the_code() -> None:
    b = ProcessBuilder("biz")
    task = b.start().service("pay", agent="a")
    task.end("ok")
    task.on_error("card_declined", id="declined").end("declined_end")
    task.on_error("fraud", id="fraud").end("fraud_end")
    h = Harness(b.build()).start()
    h.fail("pay", code="fraud", business=True)
    assert h.entered()[-1] == "fraud_end"


def test_uncaught_error_end_fails_the_instance() -> None:
    b = ProcessBuilder("e")
    b.start().fail("bad_input")
    h = Harness(b.build()).start()
    assert h.status == "failed" and "bad_input" in (h.of(fx.InstanceEnded)[0].error or "")


def test_error_end_in_sub_process_is_caught_by_its_boundary() -> None:
    b = ProcessBuilder("sub")
    sub = b.start().sub_process("inner", lambda s: s.start("s0").service("work", agent="w").fail("oops", id="err"))
    sub.end("normal")
    sub.on_error("oops", id="caught").end("handled")
    h = Harness(b.build()).start()
    h.done("work")
    assert h.status == "completed" and h.entered()[-2:] == ["caught", "handled"]


def test_sub_process_completes_when_its_tokens_end() -> None:
    b = ProcessBuilder("sub")
    b.start().sub_process("inner", lambda s: s.start("s0").service("work", agent="w").end("e0")).end("done")
    h = Harness(b.build()).start()
    h.done("work")
    assert h.status == "completed" and h.entered() == ["start", "inner", "s0", "work", "e0", "done"]


def test_interrupting_boundary_on_sub_process_cancels_inner_work() -> None:
    b = ProcessBuilder("sub")
    sub = b.start().sub_process("inner", lambda s: s.start("s0").service("work", agent="w").end("e0"))
    sub.end("done")
    sub.on_timer("PT1H", id="timeout").end("timed_out")
    h = Harness(b.build()).start()
    h.advance(timedelta(hours=1))
    assert [c.node_id for c in h.of(fx.CancelWork)] == ["work"]
    assert h.status == "completed" and h.entered()[-1] == "timed_out"
    assert h.send(ev.WorkDone(h.open_work("work")[0].token_id if h.open_work("work") else "t9")) == []


def test_terminate_end_cancels_parallel_work() -> None:
    b = ProcessBuilder("term")
    fork = b.start().parallel("fork")
    fork.branch().service("slow", agent="s").end()
    fork.branch().terminate("stop")
    h = Harness(b.build()).start()
    assert h.status == "completed" and [c.node_id for c in h.of(fx.CancelWork)] == ["slow"]


def test_compensation_runs_newest_first_and_only_for_completed_work() -> None:
    b = ProcessBuilder("campaign")
    launch = (b.start().service("blog", agent="w", compensation="undo_blog")
              .service("email", agent="w", compensation="undo_email")
              .service("launch", agent="w", compensation="undo_launch"))
    launch.end("live")
    launch.on_error(id="launch_failed").compensate("rollback").end("rolled_back")
    h = Harness(b.build()).start()
    h.done("blog")
    h.done("email")
    h.fail("launch", code="down", business=True)
    comp = [w for w in h.of(fx.StartWork) if w.kind == "compensation"]
    assert [(w.node_id, w.handler) for w in comp] == [("email", "undo_email")]
    h.done_token(comp[0].token_id)
    comp = [w for w in h.of(fx.StartWork) if w.kind == "compensation"]
    assert [w.handler for w in comp] == ["undo_email", "undo_blog"]
    h.done_token(comp[1].token_id)
    assert h.status == "completed" and h.entered()[-1] == "rolled_back"
    assert all(e.done for e in h.state.compensable)


def test_sla_breach_completes_with_default_outcome() -> None:
    b = ProcessBuilder("sla", variables={"approved": bool})
    gate = b.start().user("approve", sla_hours=4, on_timeout=complete_with(approved=False)).exclusive("gw")
    gate.when("approved").end("yes")
    gate.otherwise().end("no")
    h = Harness(b.build()).start()
    assert h.open_work("approve")[0].due == T0 + timedelta(hours=4)
    h.advance(timedelta(hours=4))
    (breach,) = h.of(fx.SlaBreached)
    assert breach.action.action == "complete"
    assert h.status == "completed" and h.entered()[-1] == "no"


def test_sla_escalation_keeps_the_task_open() -> None:
    b = ProcessBuilder("sla")
    b.start().user("approve", assignee="lead", sla_hours=4, on_timeout="escalate:cto").end()
    h = Harness(b.build()).start()
    h.advance(timedelta(hours=5))
    (breach,) = h.of(fx.SlaBreached)
    assert breach.action.assignee == "cto" and h.open_work("approve") and h.status == "running"


def test_stale_results_are_ignored() -> None:
    h = Harness(pr_review().build()).start(pr_number=1)
    token = h.open_work("validate")[0].token_id
    h.done("validate", approved=True)
    before = h.state.to_dict()
    assert h.send(ev.WorkDone(token, {"approved": False})) == [] or h.state.to_dict() != before
    assert h.send(ev.TimerFired("t99.nothing.1")) == []


def test_every_variable_change_is_reported_with_old_and_new() -> None:
    h = Harness(pr_review().build()).start(pr_number=3)
    h.done("validate", approved=True)
    changes = [(c.node_id, ch) for c in h.of(fx.VariablesChanged) for ch in c.changes]
    assert changes == [("start", ("pr_number", None, 3)), ("validate", ("approved", None, True))]


def test_cancel_ends_everything() -> None:
    h = Harness(pr_review().build()).start(pr_number=3)
    h.send(ev.Cancel("user asked"))
    assert h.status == "cancelled" and h.of(fx.CancelWork)


def test_state_round_trips_through_plain_data_and_runs_on() -> None:
    d = pr_review().build()
    h = Harness(d).start(pr_number=3)
    data = h.state.to_dict()
    copy = InstanceState.from_dict(data)
    assert copy == h.state
    sem = Semantics(d)
    token = h.open_work("validate")[0].token_id
    effects = sem.step(copy, ev.WorkDone(token, {"approved": True}), T0)
    assert any(isinstance(e, fx.StartWork) and e.node_id == "deploy" for e in effects)


def test_runs_are_deterministic() -> None:
    def run() -> list[fx.Effect]:
        h = Harness(race().build()).start(order="A")
        h.advance(timedelta(hours=2))
        return h.effects

    assert run() == run()


def test_start_needs_a_start_event() -> None:
    with pytest.raises(SemanticsError, match="not a start event"):
        Semantics(pr_review().build()).start({}, T0, start_node="validate")


def test_choose_hook_picks_gateway_flows_and_none_falls_back_to_conditions() -> None:
    d = pr_review().build()
    gw_flows = [f.id for f in d.outgoing("gw")]
    picked_issue = [f for f in d.outgoing("gw") if f.target == "issue"]
    calls: list[str] = []

    def choose(node, flows, state):  # type: ignore[no-untyped-def]
        calls.append(node.id)
        assert [f.id for f in flows] == gw_flows
        return picked_issue if state.variables.get("pr_number") == 1 else None

    h = Harness(d, choose=choose).start(pr_number=1)
    h.done("validate", approved=True)  # the condition says deploy; the hook says issue
    assert [w.node_id for w in h.open_work()] == ["issue"] and calls == ["gw"]
    h2 = Harness(d, choose=choose).start(pr_number=2)
    h2.done("validate", approved=True)  # None: the conditions decide
    assert [w.node_id for w in h2.open_work()] == ["deploy"]


def test_choose_hook_returning_no_flow_is_an_incident() -> None:
    h = Harness(pr_review().build(), choose=lambda node, flows, state: []).start(pr_number=1)
    h.done("validate", approved=True)
    assert h.status == "running" and [i.node_id for i in h.incidents] == ["gw"]


def test_semantics_is_reusable_across_instances_after_caching() -> None:
    sem = Semantics(pr_review().build())
    for approved, last in ((True, "deployed"), (False, "rejected")):
        state, effects = sem.start({"pr_number": 3}, T0)
        (work,) = [e for e in effects if isinstance(e, fx.StartWork)]
        sem.step(state, ev.WorkDone(work.token_id, {"approved": approved}), T0)
        (nxt,) = [t for t in state.tokens.values()]
        effects = sem.step(state, ev.WorkDone(nxt.id, {}), T0)
        assert state.status == "completed" and [e.node_id for e in effects if isinstance(e, fx.Entered)][-1] == last


def test_the_time_of_a_step_may_be_a_function_read_only_when_a_rule_needs_it() -> None:
    """``now`` may be a function (the simulator's clock): called at most once per step, and only by a rule that
    reads the time (a timer armed, an SLA); the effects are those of the same step given the datetime."""
    b = ProcessBuilder("clock")
    b.start().service("work", agent="a").timer("wait", "PT1H").end("done")
    sem = Semantics(b.build())
    calls: list[int] = []

    def clock() -> object:
        calls.append(1)
        return T0

    state, effects = sem.start(None, clock)
    assert calls == [] and [e.node_id for e in effects if isinstance(e, fx.Entered)] == ["start", "work"]
    (work,) = [e for e in effects if isinstance(e, fx.StartWork)]
    same, expected = sem.start(None, T0)
    assert effects == expected and state == same
    timed = sem.step(state, ev.WorkDone(work.token_id, {}), clock)
    assert calls == [1]  # the timer read the time once
    assert timed == sem.step(same, ev.WorkDone(work.token_id, {}), T0)
    (timer,) = [e for e in timed if isinstance(e, fx.ScheduleTimer)]
    assert timer.due == T0 + timedelta(hours=1)
