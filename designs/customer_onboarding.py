"""Seed workflow 2: customer onboarding. Capture a lead, wait out the 7-day trial, then convert,
nurture or churn."""

from engine.model import ProcessBuilder, ProcessDefinition

A = "designs.agents:"


def build() -> ProcessDefinition:
    b = ProcessBuilder("customer_onboarding", name="Customer onboarding", variables={
        "email": str, "lead_id": str, "converted": bool, "engagement_score": int})
    outcome = (
        b.start()
        .service("capture_lead", name="Capture lead", agent=A + "capture_lead", inputs=["email"], outputs=["lead_id"])
        .timer("trial", "P7D", name="7-day trial")
        .service("check_conversion", name="Check conversion", agent=A + "check_conversion",
                 inputs=["lead_id"], outputs=["converted", "engagement_score"])
        .exclusive("outcome", name="Outcome?")
    )
    outcome.when("converted").service("activate", name="Activate", agent=A + "notify").end("active")
    outcome.when("engagement_score >= 50").service("nurture", name="Nurture", agent=A + "notify").end("nurtured")
    outcome.otherwise().service("churn", name="Churn", agent=A + "notify").end("churned")
    return b.build()
