"""Seed workflow 3: marketing campaign. Blog, social and e-mail drafts in parallel, a human approval
with a 4-hour SLA that escalates to the CTO, then a launch that is rolled back if it fails."""

from engine.model import FormField, ProcessBuilder, ProcessDefinition

A = "designs.agents:"


def build() -> ProcessDefinition:
    b = ProcessBuilder("marketing_campaign", name="Marketing campaign",
                       variables={"campaign": str, "approved": bool, "launched": bool})
    fork = b.start().parallel("fork")
    drafts = [fork.branch().service(f"create_{ch}", name=f"Create {ch}", agent=A + "create_content",
                                    inputs=["campaign"], compensation=A + "discard_content")
              for ch in ("blog", "social", "email")]
    decision = (
        b.join("join", *drafts)
        .user("approval", title="Approve campaign", assignee="marketing-lead", sla_hours=4,
              on_timeout="escalate:cto", form=[FormField(name="approved", type="boolean", required=True)])
        .exclusive("approved_gw", name="Approved?")
    )
    launch = decision.when("approved").service("launch", name="Launch", agent=A + "launch_campaign",
                                               outputs=["launched"], compensation=A + "rollback_launch")
    launch.end("launched_end")
    launch.on_error(id="launch_failed").compensate("rollback", name="Roll back").end("rolled_back")
    decision.otherwise().compensate("discard_drafts", name="Discard drafts").end("rejected")
    return b.build()
