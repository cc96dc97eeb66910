"""Our own fourth design: incident response with deadlines. The on-call engineer must acknowledge
within 15 minutes (else the page escalates), gets a reminder every 5 minutes until then, and a
resolution message races a 4-hour timer."""

from engine.model import ProcessBuilder, ProcessDefinition

A = "designs.agents:"


def build() -> ProcessDefinition:
    b = ProcessBuilder("incident_response", name="Incident response",
                       variables={"incident_id": str, "summary": str, "severity": str})
    ack = (b.start().service("triage", name="Triage", agent=A + "triage", inputs=["summary"], outputs=["severity"])
           .user("acknowledge", title="Acknowledge incident", candidate_groups=["on-call"]))
    ack.on_timer("R/PT5M", id="reminder", interrupting=False).send("remind", "incident.reminder",
                                                                   payload=["incident_id"]).end("reminded")
    ack.on_timer("PT15M", id="no_ack").user("escalated_ack", title="Take over incident",
                                            assignee="engineering-manager").to("wait_resolution")
    race = ack.race("wait_resolution", name="Resolved or late?")
    race.branch().receive("resolved", "incident.resolved", correlation_key="incident_id").end("closed")
    race.branch().timer("four_hours", "PT4H", name="4 hours").user(
        "postmortem", title="Incident open 4h: call a review", assignee="cto").end("reviewed")
    return b.build()
