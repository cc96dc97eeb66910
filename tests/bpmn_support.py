"""Shared helpers for the BPMN tests: where the shared corpus is, schema checks, sample definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn.schema import schema_errors
from engine.model import ProcessBuilder, ProcessDefinition, complete_with, for_each, repeat, times
from engine.model.nodes import ServiceTask, Task, UserTask

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"
XSD = CORPUS / "xsd"


def require_corpus() -> Path:
    if not (XSD / "BPMN20.xsd").exists():
        pytest.skip(f"BPMN corpus/schema not found at {CORPUS} (clone shared/ next to the repo)")
    return CORPUS


def assert_schema_valid(xml: str) -> None:
    require_corpus()
    errors = schema_errors(xml, XSD)
    assert not errors, "\n".join(errors[:10])


def sample_definitions() -> list[ProcessDefinition]:
    """Definitions that use every node kind and our extra fields (independent of designs/)."""
    b = ProcessBuilder("pr_review", name="PR review & <deploy>", version=3, description="Review, then deploy.",
                       variables={"pr_number": int, "vision_approved": bool, "score": float}, owner="platform")
    gate = b.start(metadata={"lane": "Bots"}).service(
        "validate", agent="agents.review:validate", inputs=["pr_number"], outputs=["vision_approved", "score"],
        retry={"attempts": 5, "backoff": "PT2S"}, timeout="PT5M", compensation="agents.review:undo",
        metadata={"lane": "Bots"}).exclusive("approved?".replace("?", ""), metadata={"lane": "Bots"})
    user = gate.when("vision_approved and score >= 0.7").user(
        "deploy_ok", title="Approve the deploy", assignee="cto", candidate_groups=["leads", "ops"],
        form=[{"name": "ok", "type": "boolean", "required": True},
              {"name": "env", "type": "enum", "choices": ["staging", "prod"], "default": "staging"}],
        sla="PT4H", sla_calendar="office", on_timeout=complete_with(ok=False), metadata={"lane": "People"})
    user.on_timer({"cycle": "R3/PT1H"}, id="remind", interrupting=False).send(
        "nudge", "review.reminder", payload=["pr_number"], correlation_key="pr_number").end("nudged")
    user.on_error("DEPLOY_FAILED", id="deploy_failed").fail("ROLLBACK", id="rolled_back")
    user.on_message("pr.closed", id="closed", correlation_key="pr_number").end("abandoned")
    user.end("deployed", metadata={"lane": "People"})
    race = gate.otherwise().race("wait_or_fix")
    waited = race.branch().timer("a_week", "P7D").script("count_weeks", "weeks = (weeks or 0) + 1")
    waited = waited.throw("week_passed").wait_until("still_open", "weeks >= 1")
    waited.compensate("undo_all").link("to_give_up", "give_up")
    b.link_catch("give_up_in", "give_up").terminate("gave_up")
    race.branch().receive("fixed", "pr.updated", correlation_key="pr_number", outputs=["score"]).to("validate")
    first = b.build(validate=False)

    s = ProcessBuilder("nightly", variables={"day": str})
    begin = s.timer_start("at_nine", {"cycle": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"}).exclusive("begin")
    body = begin.parallel("fan")
    left = body.branch().sub_process(
        "collect", lambda sub: sub.start("c_start").task("c_work", documentation="Collect.").escalate(
            "c_late", "LATE").end("c_end"),
        metadata={"expanded": False})
    left.on_escalation("LATE", id="late", interrupting=False).signal_end("late_signal", "report.late")
    left.on_signal("report.cancel", id="cancelled").escalation_end("cancel_escalation", "CANCELLED")
    right = body.branch().inclusive("pick", default=None)
    one = right.when("day == 'MON'").receive_task("confirm", "report.confirmed").task("weekly",
                                                                                       compensation="undo_weekly")
    s.at("confirm").on_condition("day == 'SAT'", id="weekend", interrupting=False).end("weekend_end")
    two = right.otherwise().task("daily", compensation="undo_daily")
    joined = s.join("pick_join", one, two, kind="inclusive_gateway")
    s.join("fan_join", left, joined).compensate("undo_run").signal("announce", "report.done", payload=["day"]
                                                               ).wait_signal("acked", "report.ack").end("done")
    s.message_start("on_demand", "report.requested").to("begin")
    s.signal_start("on_signal", "report.signal").to("begin")
    s.event_sub_process("on_stop", lambda e: e.conditional_start("stop_now", "day == 'SUN'").end("stopped"))
    s.event_sub_process("on_failure", lambda e: e.error_start("failure", "BROKEN").task("tidy").end("tidied"))
    s.event_sub_process("on_late", lambda e: e.escalation_start("late_run", None, interrupting=False).end("noted"))
    s.event_sub_process("on_tick", lambda e: e.timer_start("tick", "PT30M", interrupting=False).end("ticked"))
    # compensation handler activities (BPMN isForCompensation): a person undoes one, an agent the other
    s.add(UserTask(id="undo_weekly", title="Undo the weekly report", assignee="ops", for_compensation=True))
    s.add(ServiceTask(id="undo_daily", agent="agents.report:retract", for_compensation=True))
    second = s.build(validate=False)

    m = ProcessBuilder("campaign_loops", variables={"channels": "array", "drafts": "array", "reviewers": "integer",
                                                    "ok": "boolean"})
    drafts = m.start().service("draft", agent="agents.content:draft", inputs=["channel"], outputs=["draft"],
                               multi_instance=for_each("channels", "channel", into="drafts", output="draft"))
    reviewed = drafts.user("review", assignee="editor", multi_instance=times(
        "reviewers", sequential=True, until="nrOfCompletedInstances >= 2"))
    reviewed.on_timer("P1D", id="review_late").end("late")
    looped = reviewed.sub_process("publish", lambda sub: sub.start("p_start").task("p_work").end("p_end"),
                                  loop=repeat("not ok", test_before=True, maximum=3))
    def book(t: ProcessBuilder) -> None:  # a transaction: a cancel end undoes the hold, then 'unbooked'
        paid = t.start("b_start").task("b_hold", compensation="undo_hold").exclusive("b_paid")
        paid.when("ok").end("b_end")
        paid.otherwise().cancel("b_cancel")

    def follow_ups(inner: ProcessBuilder) -> None:  # an ad-hoc sub-process: no start, activated by a list of ids
        inner.add(Task(id="tweet"))
        inner.add(ServiceTask(id="mail", agent="agents.content:mail")).task("archive_mail")

    booked = looped.call("approve", "approval", inputs={"amount": "reviewers"}, outputs={"ok": "ok"},
                         binding="version", version=2).transaction("book", book)
    m.at("book").on_cancel("book_cancelled").end("unbooked")
    booked.ad_hoc("follow_up", follow_ups, active_elements="['mail', 'tweet']", completion_condition="ok",
                  cancel_remaining=False, sequential=True).end("published")
    third = m.build(validate=False)
    return [first, second, third]
