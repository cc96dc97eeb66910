"""Demo agents for the seed designs: small, deterministic, side-effect free.

Definitions name them as ``designs.agents:<function>``, so the engine finds them by import after a
restart. Each takes ``(inputs, context)`` and returns the outputs it declares. Replace them with
real agents (WowVision, a deployer, an e-mail sender) by registering other callables under the same
names with ``engine.register``.
"""

from __future__ import annotations

from typing import Any


def wowvision_validate(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Approve even PR numbers (a stand-in for WowVision's review)."""
    return {"vision_approved": int(inputs.get("pr_number") or 0) % 2 == 0}


def deploy(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"deployed_pr": inputs.get("pr_number")}


def create_issue(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"issue_title": f"PR {inputs.get('pr_number')} rejected by WowVision"}


def rollback_validation(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {}


def capture_lead(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    email = str(inputs.get("email") or "lead@example.com")
    return {"lead_id": email.split("@")[0]}


def check_conversion(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Score a lead: a stand-in for the CRM lookup after the trial week."""
    lead = str(inputs.get("lead_id") or "")
    score = sum(map(ord, lead)) % 100
    return {"converted": score >= 80, "engagement_score": score}


def notify(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {}


def create_content(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    node = getattr(context, "node_id", "content")
    return {f"{node}_draft": f"draft for {inputs.get('campaign')}"}


def discard_content(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {}


def launch_campaign(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"launched": True}


def rollback_launch(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"launched": False}


def triage(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return {"severity": "high" if "down" in str(inputs.get("summary", "")).lower() else "low"}
