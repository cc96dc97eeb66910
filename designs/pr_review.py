"""Seed workflow 1: PR review. WowVision validates, then the PR is deployed or an issue is opened."""

from engine.model import ProcessBuilder, ProcessDefinition

A = "designs.agents:"


def build() -> ProcessDefinition:
    b = ProcessBuilder("pr_review", name="PR review", variables={"pr_number": int, "vision_approved": bool})
    approved = (
        b.start()
        .service("wowvision_validate", name="WowVision validate", agent=A + "wowvision_validate",
                 inputs=["pr_number"], outputs=["vision_approved"], compensation=A + "rollback_validation")
        .exclusive("approved", name="Approved?")
    )
    approved.when("vision_approved").service("deploy", name="Deploy", agent=A + "deploy",
                                             inputs=["pr_number"]).end("deployed")
    approved.otherwise().service("create_issue", name="Create issue", agent=A + "create_issue",
                                 inputs=["pr_number"]).end("issue_created")
    return b.build()
