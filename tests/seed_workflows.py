"""The design review's three seed workflows, built as a person would write them (shared by several tests)."""

from __future__ import annotations

from engine.model import ProcessBuilder


def pr_review() -> ProcessBuilder:
    """The design review's PR review: validate, then deploy or open an issue."""
    b = ProcessBuilder("pr_review", variables={"pr_number": int, "vision_approved": bool})
    gate = b.start().service("wowvision_validate", agent="agents:WowVisionPrime", inputs=["pr_number"],
                             outputs=["vision_approved"], compensation="agents:rollback").exclusive("approved")
    gate.when("vision_approved").service("deploy", agent="agents:deploy", inputs=["pr_number"]).end("deployed")
    gate.otherwise().service("create_issue", agent="agents:issue", inputs=["pr_number"]).end("rejected")
    return b


def onboarding() -> ProcessBuilder:
    """Customer onboarding: capture, wait a week, then one of three outcomes."""
    b = ProcessBuilder("onboarding", variables={"lead": str, "converted": bool, "score": int})
    check = (b.start().service("capture", agent="a", outputs=["lead"]).timer("trial", "P7D")
             .service("check", agent="a", inputs=["lead"], outputs=["converted", "score"]).exclusive("outcome"))
    check.when("converted").service("activate", agent="a").end("active")
    check.when("score >= 50").service("nurture", agent="a").end("nurtured")
    check.otherwise().service("churn", agent="a").end("churned")
    return b


def campaign() -> ProcessBuilder:
    """Marketing campaign: three parallel drafts, a human approval with an SLA, launch or roll back."""
    b = ProcessBuilder("campaign", variables={"approved": bool})
    fork = b.start().parallel("fork")
    parts = [fork.branch().service(x, agent="writer", compensation="writer:undo") for x in ("blog", "social", "email")]
    review = b.join("ready", *parts).user("approval", title="Review", assignee="lead", sla_hours=4,
                                          on_timeout="escalate:cto", form=[{"name": "approved", "type": "boolean"}])
    review.on_timer("PT8H", id="too_late").compensate("undo_all").end("abandoned")
    decide = review.exclusive("go")
    decide.when("approved").service("launch", agent="a").end("launched")
    decide.otherwise().compensate("roll_back_blog", activity="blog").end("rolled_back")
    return b
