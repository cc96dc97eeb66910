"""The engine end to end, on SQLite and on PostgreSQL (the PostgreSQL half skips without a server)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import designs
from engine import register
from engine.errors import DefinitionError
from engine.model import ProcessBuilder
from engine.runtime import AgentContext, BpmnError, Engine, EngineError, FormError, VirtualClock
from engine.runtime.agents import call_agent
from engine.security import Principal

README = Path(__file__).resolve().parents[1] / "README.md"
CALLS: dict[str, int] = {}


def flaky(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    """Fails the first ``inputs['fail']`` calls of each activation, then succeeds."""
    CALLS[context.idempotency_key] = CALLS.get(context.idempotency_key, 0) + 1
    if CALLS[context.idempotency_key] <= int(inputs.get("fail") or 0):
        raise ConnectionError("service unavailable")
    return {"done": True}


def declines(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    raise BpmnError("card_declined", "the card was declined")


def slow(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    import time

    time.sleep(0.5)
    return {}


register("test.flaky", flaky)
register("test.declines", declines)
register("test.slow", slow)


def make(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    for name in designs.NAMES:
        engine.deploy(designs.load_design(name))
    return engine


def test_pr_review_end_to_end_both_ways(db_url: str) -> None:
    engine = make(db_url)
    approved = engine.start("pr_review", {"pr_number": 2}, business_key="PR-2")
    rejected = engine.start("pr_review", {"pr_number": 3})
    engine.run_until_idle()
    a, r = engine.instance(approved), engine.instance(rejected)
    assert (a.status, a.variables["deployed_pr"], a.business_key) == ("completed", 2, "PR-2")
    assert r.status == "completed" and r.variables["issue_title"].startswith("PR 3")
    assert a.active_nodes == [] and a.tokens.empty


def test_onboarding_waits_seven_days_on_the_virtual_clock(db_url: str) -> None:
    engine = make(db_url)
    iid = engine.start("customer_onboarding", {"email": "ada@example.com"})
    engine.run_until_idle()
    assert engine.instance(iid).active_nodes == ["trial"]
    engine.advance(timedelta(days=6, hours=23))
    assert engine.instance(iid).status == "running"
    engine.advance(timedelta(hours=1))
    view = engine.instance(iid)
    assert view.status == "completed" and "engagement_score" in view.variables


def test_campaign_approval_escalates_after_four_hours_then_launches(db_url: str) -> None:
    engine = make(db_url)
    iid = engine.start("marketing_campaign", {"campaign": "winter"})
    engine.run_until_idle()
    (task,) = engine.tasks(instance_id=iid)
    assert (task["assignee"], task["escalated"]) == ("marketing-lead", False)
    engine.advance(timedelta(hours=4))
    (task,) = engine.tasks(instance_id=iid)
    assert (task["assignee"], task["escalated"]) == ("cto", True)
    with pytest.raises(FormError, match="'approved' must be boolean"):
        engine.complete_task(task["id"], {"approved": "yes"})
    assert engine.tasks(instance_id=iid)  # still open
    engine.complete_task(task["id"], {"approved": True}, actor="cto")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "completed" and view.variables["launched"] is True
    (done,) = engine.tasks(instance_id=iid, status="completed")
    assert done["completed_by"] == "cto" and done["within_sla"] is False


def test_incident_response_race_and_message_correlation(db_url: str) -> None:
    engine = make(db_url)
    iid = engine.start("incident_response", {"incident_id": "INC-7", "summary": "db down"})
    engine.run_until_idle()
    (ack,) = engine.tasks(instance_id=iid)
    engine.advance(timedelta(minutes=6))  # one reminder message was sent and dropped (nobody listens)
    engine.complete_task(ack["id"], {}, actor="oncall", groups=["on-call"])
    engine.run_until_idle()
    with pytest.raises(EngineError, match="no instance waits"):
        engine.correlate("incident.resolved", "INC-8")
    assert engine.correlate("incident.resolved", "INC-7", {"fix": "restart"}) == iid
    view = engine.instance(iid)
    assert view.status == "completed" and view.variables["fix"] == "restart"


def test_every_variable_change_has_a_versioned_history(db_url: str) -> None:
    engine = make(db_url)
    iid = engine.start("pr_review", {"pr_number": 2})
    engine.run_until_idle()
    engine_view = engine.instance(iid)
    engine.set_variables(iid, {"pr_number": 4}, actor="ops") if engine_view.status == "running" else None
    b = ProcessBuilder("counter", variables={"n": int})
    b.start().user("edit", assignee="x").end()
    engine.deploy(b.build())
    cid = engine.start("counter", {"n": 1})
    engine.set_variables(cid, {"n": 2}, actor="ops")
    engine.set_variables(cid, {"n": 3}, actor="ops")
    history = engine.instance(cid).history
    rows = history[history["name"] == "n"][["version", "old_value", "new_value", "actor"]].values.tolist()
    assert rows == [[1, None, 1, None], [2, 1, 2, "ops"], [3, 2, 3, "ops"]]


def test_retries_then_incident_then_retry_through_the_api(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("flaky", variables={"fail": int, "done": bool})
    b.start().service("call", agent="test.flaky", inputs=["fail"], outputs=["done"],
                      retry={"attempts": 2, "backoff": "PT30S"}).end()
    engine.deploy(b.build())
    iid = engine.start("flaky", {"fail": 3})
    engine.run_until_idle()
    assert engine.instance(iid).status == "running" and not engine.incidents()
    engine.advance(timedelta(seconds=30))
    (incident,) = engine.incidents()
    assert "ConnectionError" in incident["error"] and "service unavailable" in (incident["traceback"] or "")
    engine.retry(incident)  # the retry policy starts afresh: call 3 fails, call 4 (30 s later) succeeds
    engine.run_until_idle()
    assert engine.incidents() == [] and engine.instance(iid).active_nodes == ["call"]
    engine.advance(timedelta(seconds=30))
    assert engine.instance(iid).status == "completed" and engine.incidents() == []
    assert engine.instance(iid).variables["done"] is True


def test_cancelling_an_instance_resolves_its_incidents_and_retry_refuses_after(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("flaky_cancel", variables={"fail": int, "done": bool})
    b.start().service("call", agent="test.flaky", inputs=["fail"], outputs=["done"], retry={"attempts": 1}).end()
    engine.deploy(b.build())
    iid = engine.start("flaky_cancel", {"fail": 3})
    engine.run_until_idle()
    (incident,) = engine.incidents()
    engine.cancel(iid, "given up")
    assert engine.instance(iid).status == "cancelled" and engine.incidents() == []
    with pytest.raises(EngineError, match="no open incident"):
        engine.retry(incident)
    # an incident left open on an ended instance (a database written before cancel resolved them): refused too
    from engine.runtime.tables import IncidentRow
    with engine.db.begin() as conn:
        conn.execute(update(IncidentRow.__table__).where(IncidentRow.__table__.c.id == incident["id"])
                     .values(resolved_at=None))
    with pytest.raises(EngineError, match=f"instance {iid} is cancelled, so there is nothing to retry"):
        engine.retry(incident)
    assert engine.instance(iid).status == "cancelled"


def test_business_error_goes_to_the_error_boundary(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("pay")
    pay = b.start().service("charge", agent="test.declines")
    pay.end("paid")
    pay.on_error("card_declined", id="declined").end("not_paid")
    engine.deploy(b.build())
    iid = engine.start("pay")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "completed" and view.variables["error_code"] == "card_declined"


def test_handler_timeout_fails_the_task(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("slow")
    b.start().service("wait", agent="test.slow", timeout="PT0.1S", retry={"attempts": 1}).end()
    engine.deploy(b.build())
    engine.start("slow")
    engine.run_until_idle()
    (incident,) = engine.incidents()
    assert "timed out" in incident["error"]


def test_bad_input_is_a_clear_error_and_writes_nothing(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(designs.load_design("pr_review"))
    with pytest.raises(EngineError, match="no deployed definition 'nope'"):
        engine.start("nope")
    with pytest.raises(EngineError, match="'pr_number' must be integer"):
        engine.start("pr_review", {"pr_number": "seven"})
    with pytest.raises(EngineError, match="'colour' is not a declared variable"):
        engine.start("pr_review", {"colour": "red"})
    broken = ProcessBuilder("broken")
    broken.start().service("a", agent="x").end()
    broken.flow("a", "ghost")
    with pytest.raises(DefinitionError):
        engine.deploy(broken.build(validate=False))
    assert engine.instances().empty and engine.definitions() == ["pr_review"]


def test_deploy_versions_by_content(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    first = engine.deploy(designs.load_design("pr_review"))
    again = engine.deploy(designs.load_design("pr_review"))
    changed = engine.deploy(designs.load_design("pr_review").model_copy(update={"name": "PR review v2"}))
    assert (first.version, again.version, changed.version) == (1, 1, 2)
    old = engine.start("pr_review", {"pr_number": 2}, version=1)
    assert engine.instance(old).version == 1 and engine.instance(engine.start("pr_review")).version == 2


def test_cancel_stops_everything(db_url: str) -> None:
    engine = make(db_url)
    iid = engine.start("marketing_campaign", {"campaign": "x"})
    engine.run_until_idle()
    engine.cancel(iid)
    assert engine.instance(iid).status == "cancelled" and engine.next_due() is None


def test_a_result_after_the_lease_expired_is_dropped(db_url: str) -> None:
    clock = VirtualClock()
    first = Engine(db_url, clock=clock, worker_id="w1", lease=timedelta(seconds=10), principal=Principal.system())
    second = Engine(db_url, clock=clock, worker_id="w2", lease=timedelta(seconds=10), principal=Principal.system())
    first.deploy(designs.load_design("pr_review"))
    iid = first.start("pr_review", {"pr_number": 2})
    (job,) = first._claim(10)  # w1 claims, then stalls
    clock.advance(timedelta(seconds=11))
    second.run_until_idle()  # the lease expired: w2 runs it and the rest of the instance
    first._run_job(job)  # w1 finally reports: dropped
    view = first.instance(iid)
    assert view.status == "completed" and view.history["name"].tolist().count("vision_approved") == 1


def test_the_same_agent_runs_standalone() -> None:
    out = call_agent("designs.agents:wowvision_validate", {"pr_number": 4}, AgentContext(work_id="manual"))
    assert out == {"vision_approved": True}
    assert AgentContext(instance_id="i", work_id="w3").idempotency_key == "i:w3"


def test_a_thrown_message_starts_an_instance_once_and_only_for_the_worker_that_holds_it(db_url: str) -> None:
    shop = ProcessBuilder("shop", variables={"order": str})
    shop.start().send("placed", "order.placed", payload=["order"]).end("sent")
    packing = ProcessBuilder("packing", variables={"order": str})
    packing.message_start("on_order", "order.placed").user("pack", assignee="warehouse").end("packed")
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(shop.build())
    engine.deploy(packing.build())
    engine.start("shop", {"order": "A-1"})
    stale = Engine(db_url, clock=engine.clock, lease=timedelta(seconds=1), worker_id="stale",
                   principal=Principal.system())
    claimed = stale._claim(10)  # a worker claims the message job, then stalls past its lease
    assert [j.kind for j in claimed] == ["message"]
    engine.advance(timedelta(seconds=2))  # the lease ran out: this worker delivers it
    stale._run_job(claimed[0])  # the stalled worker wakes up: its delivery must change nothing
    packing_runs = engine.instances()
    packing_runs = packing_runs[packing_runs["definition_name"] == "packing"]
    assert len(packing_runs) == 1
    [task] = engine.tasks(assignee="warehouse")
    assert engine.instance(task["instance_id"]).variables == {"order": "A-1"}


def test_readme_engine_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    section = README.read_text().split("\n## Engine\n", 1)[1].split("\n## ", 1)[0]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet, "README's Engine section has a python example"
    monkeypatch.chdir(tmp_path)  # it writes waooaw.db in the working directory
    exec(compile(snippet.group(1), "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("completed [] {") and printed[-1] == "completed"


def test_an_instance_renders_in_a_notebook_with_its_tokens_on_the_diagram(tmp_path: Path) -> None:
    engine = make(f"sqlite:///{tmp_path / 'nb.db'}")
    iid = engine.start("marketing_campaign", {"campaign": "spring <launch>"})
    engine.run_until_idle()
    html = engine.instance(iid)._repr_html_()
    assert "marketing_campaign</b> v1 · running" in html
    assert "&lt;launch&gt;" in html and "<launch>" not in html  # values are escaped
    assert "<svg" in html and "<?xml" not in html and 'id="approval"' in html
