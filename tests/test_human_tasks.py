"""The human-task API: inboxes, claim / unclaim / delegate, completion rules, the audit trail, SLA statistics.

Every test runs on SQLite and PostgreSQL with a virtual clock: time moves only through ``advance``.
"""

from __future__ import annotations

import math
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.model import FormField, ProcessBuilder, UserTask
from engine.model.nodes import complete_with
from engine.runtime import Engine, EngineError, FormError, VirtualClock
from engine.security import Principal

README = Path(__file__).resolve().parents[1] / "README.md"


def deploy_desk(engine: Engine) -> None:
    """One instance opens five tasks at once: two for people, three offered to groups."""
    b = ProcessBuilder("desk")
    fork = b.start().parallel("fork")
    branches = [
        fork.branch().user("mine", title="Mine", assignee="ada", sla="PT8H"),
        fork.branch().user("ops_open", title="Ops, no SLA", candidate_groups=["ops"]),
        fork.branch().user("finance", title="Finance", candidate_groups=["finance"]),
        fork.branch().user("bobs", title="Bob's", assignee="bob"),
        fork.branch().user("ops_urgent", title="Ops, urgent", candidate_groups=["ops", "sre"], sla="PT1H"),
    ]
    b.join("join", *branches).end()
    engine.deploy(b.build())


def deploy_approval(engine: Engine, name: str = "approval", **fields: Any) -> None:
    b = ProcessBuilder(name, variables={"approved": bool, "note": str, "amount": int})
    options: dict[str, Any] = {"assignee": "lead", "sla": "PT4H", "on_timeout": "escalate:cto",
                               "form": [FormField(name="approved", type="boolean", required=True),
                                        FormField(name="amount", type="integer")]}
    options.update(fields)
    b.start().user("approve", title="Approve", **options).end()
    engine.deploy(b.build())


def by_node(engine: Engine, instance_id: str) -> dict[str, dict[str, Any]]:
    return {t["node_id"]: t for t in engine.tasks(instance_id=instance_id)}


def test_inbox_has_own_tasks_and_the_groups_unclaimed_ones_soonest_due_first(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    deploy_desk(engine)
    iid = engine.start("desk")
    tasks = by_node(engine, iid)
    assert [t["node_id"] for t in engine.inbox("ada", groups=["ops"])] == ["ops_urgent", "mine", "ops_open"]
    assert [t["node_id"] for t in engine.inbox("carl", groups=["sre"])] == ["ops_urgent"]
    assert [t["node_id"] for t in engine.inbox("bob")] == ["bobs"]
    assert engine.inbox("nobody", groups=["marketing"]) == []
    frame = engine.inbox_frame("ada", groups=["ops"])
    assert list(frame["node_id"]) == ["ops_urgent", "mine", "ops_open"] and "candidate_groups" in frame.columns
    # a claimed group task leaves the other members' inboxes and is in the claimant's
    engine.claim(tasks["ops_open"]["id"], "carl", groups=["ops"])
    assert "ops_open" not in [t["node_id"] for t in engine.inbox("ada", groups=["ops"])]
    assert [t["node_id"] for t in engine.inbox("carl", groups=["sre"])] == ["ops_urgent", "ops_open"]


def test_claim_unclaim_delegate_and_their_refusals(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    deploy_desk(engine)
    iid = engine.start("desk")
    t = {k: v["id"] for k, v in by_node(engine, iid).items()}

    engine.claim(t["ops_open"], "ada", groups=["ops"])
    engine.claim(t["ops_open"], "ada", groups=["ops"])  # already hers: nothing happens
    with pytest.raises(EngineError, match="assigned to 'ada'"):
        engine.claim(t["ops_open"], "carl", groups=["ops"])  # someone else's
    with pytest.raises(EngineError, match=r"'ada' may not claim task \d+: it is offered to groups finance and "
                                          r"'ada' is in ops"):
        engine.claim(t["finance"], "ada", groups=["ops"])
    with pytest.raises(EngineError, match="'ada' is in no groups"):  # no groups given: none assumed
        engine.claim(t["finance"], "ada")
    with pytest.raises(EngineError, match="no such human task"):
        engine.claim(99999, "ada")
    with pytest.raises(EngineError, match=r"'carl' may not unclaim .* it is assigned to 'ada'"):
        engine.unclaim(t["ops_open"], "carl")
    with pytest.raises(EngineError, match="no candidate groups"):
        engine.unclaim(t["mine"], "ada")
    engine.unclaim(t["ops_open"], "ada")
    with pytest.raises(EngineError, match="nobody holds it"):
        engine.unclaim(t["ops_open"], "ada")
    assert by_node(engine, iid)["ops_open"]["assignee"] is None

    with pytest.raises(EngineError, match=r"'carl' may not delegate .* assigned to 'ada'"):
        engine.delegate(t["mine"], "bob", actor="carl")
    with pytest.raises(EngineError, match="already assigned to 'ada'"):
        engine.delegate(t["mine"], "ada", actor="ada")
    engine.delegate(t["mine"], "bob", actor="ada")
    engine.delegate(t["bobs"], "ada", actor=None)  # the system may reassign anything
    tasks = by_node(engine, iid)
    assert (tasks["mine"]["assignee"], tasks["bobs"]["assignee"]) == ("bob", "ada")

    with pytest.raises(EngineError, match=r"'ada' may not complete .* assigned to 'bob'"):
        engine.complete_task(t["mine"], {}, actor="ada")
    assert by_node(engine, iid)["mine"]["status"] == "open"
    engine.complete_task(t["mine"], {}, actor="bob")
    for action in (lambda: engine.claim(t["mine"], "bob"), lambda: engine.unclaim(t["mine"], "bob"),
                   lambda: engine.delegate(t["mine"], "ada", actor="bob")):
        with pytest.raises(EngineError, match="it is completed"):
            action()

    audit = engine.task_audit(task_id=t["ops_open"])
    assert list(zip(audit["action"], audit["actor"], strict=True)) == [
        ("created", None), ("claimed", "ada"), ("unclaimed", "ada")]
    audit = engine.task_audit(task_id=t["mine"])
    assert list(zip(audit["action"], audit["actor"], strict=True)) == [
        ("created", None), ("delegated", "ada"), ("completed", "bob")]
    assert audit["detail"][1] == {"from": "ada", "to": "bob"}
    assert len(engine.task_audit(instance_id=iid)) == 5 + 2 + 2 + 1  # created x5, claim/unclaim, delegate x2, done


def test_two_engines_claiming_the_same_task_exactly_one_wins(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    second = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    b = ProcessBuilder("queue")
    b.start().user("pick", candidate_groups=["ops"]).end()
    first.deploy(b.build())
    ids = [first.tasks(instance_id=first.start("queue"))[0]["id"] for _ in range(5)]
    for task_id in ids:
        # Both have read the task as unclaimed before either writes: the database must decide.
        barrier = threading.Barrier(2, timeout=30)
        for engine in (first, second):
            original = type(engine)._change

            def synced(*args: Any, _engine: Engine = engine, _original: Any = original,
                       _barrier: threading.Barrier = barrier, **kwargs: Any) -> None:
                _barrier.wait()
                _original(_engine, *args, **kwargs)

            monkeypatch.setattr(engine, "_change", synced)
        outcomes: dict[str, str] = {}

        def claim(engine: Engine, user: str, task_id: int = task_id, out: dict[str, str] = outcomes) -> None:
            try:
                engine.claim(task_id, user, groups=["ops"])
                out[user] = "won"
            except EngineError as exc:
                out[user] = str(exc)

        threads = [threading.Thread(target=claim, args=(e, u)) for e, u in ((first, "ada"), (second, "carl"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        winners = [u for u, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        (loser,) = set(outcomes) - set(winners)
        assert re.search(f"cannot claim task {task_id}: it was assigned to '{winners[0]}' meanwhile", outcomes[loser])
        assert first.tasks(status=None)[ids.index(task_id)]["assignee"] == winners[0]
        audit = second.task_audit(task_id=task_id)
        assert list(audit["action"]) == ["created", "claimed"] and list(audit["actor"])[1] == winners[0]


def test_form_errors_keep_the_task_open_and_write_no_audit(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    deploy_approval(engine)
    iid = engine.start("approval")
    (task,) = engine.tasks(instance_id=iid)
    with pytest.raises(FormError, match="'approved' is required"):
        engine.complete_task(task["id"], {"amount": 3}, actor="lead")
    with pytest.raises(FormError, match=r"'approved' must be boolean.*'amount' must be integer"):
        engine.complete_task(task["id"], {"approved": "yes", "amount": "3"}, actor="lead")
    with pytest.raises(FormError, match=r"'colour' is not a declared variable.*the form has"):
        engine.complete_task(task["id"], {"approved": True, "colour": "red"}, actor="lead")
    assert engine.tasks(instance_id=iid)[0]["status"] == "open"
    assert list(engine.task_audit(task_id=task["id"])["action"]) == ["created"]
    engine.complete_task(task["id"], {"approved": True, "amount": 3}, actor="lead")
    assert engine.instance(iid).status == "completed"
    audit = engine.task_audit(instance_id=iid)
    assert list(audit["action"]) == ["created", "completed"]
    assert audit["actor"][1] == "lead" and audit["detail"][1] == {"values": {"approved": True, "amount": 3},
                                                                   "within_sla": True}
    with pytest.raises(EngineError, match=f"no open human task {task['id']}"):
        engine.complete_task(task["id"], {"approved": False}, actor="lead")


def test_sla_stats_on_a_scripted_day_and_the_escalation_audit(db_url: str) -> None:
    """Four tasks with a 4-hour SLA: done after 1 h and 3 h, one escalated at 4 h and done by the CTO
    at 5 h, one still open. Completion times 1, 3, 5 h: p50 = 3 h, p90 = 3 + 0.8 * (5 - 3) = 4.6 h."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    deploy_approval(engine)
    iids = [engine.start("approval") for _ in range(4)]
    task = [engine.tasks(instance_id=i)[0]["id"] for i in iids]
    engine.advance(timedelta(hours=1))
    engine.complete_task(task[0], {"approved": True}, actor="lead")
    engine.advance(timedelta(hours=2))
    engine.complete_task(task[1], {"approved": False}, actor="lead")
    engine.advance(timedelta(hours=2))  # 5 h: the SLA passed at 4 h for the other two
    assert [t["node_id"] for t in engine.inbox("cto")] == ["approve", "approve"]
    assert engine.inbox("lead") == []
    with pytest.raises(EngineError, match=r"'lead' may not complete .* assigned to 'cto'"):
        engine.complete_task(task[2], {"approved": True}, actor="lead")
    engine.complete_task(task[2], {"approved": True}, actor="cto")

    audit = engine.task_audit(task_id=task[2])
    assert list(audit["action"]) == ["created", "escalated", "completed"]
    assert list(audit["actor"]) == [None, "sla", "cto"]
    assert audit["detail"][1] == {"action": "escalate", "from": "lead", "to": "cto"}
    assert audit["at"][1] - audit["at"][0] == timedelta(hours=4)
    assert audit["detail"][2]["within_sla"] is False

    stats = engine.sla_stats()
    assert len(stats) == 1
    row = stats.iloc[0].to_dict()
    assert {k: row[k] for k in ("definition", "node_id", "count", "open", "completed", "cancelled", "within_sla",
                                "escalated")} == {"definition": "approval", "node_id": "approve", "count": 4,
                                                  "open": 1, "completed": 3, "cancelled": 0, "within_sla": 2,
                                                  "escalated": 2}
    assert row["within_sla_pct"] == pytest.approx(200 / 3)
    assert (row["p50_hours"], row["p90_hours"]) == (pytest.approx(3.0), pytest.approx(4.6))
    assert engine.sla_stats(definition="other").empty


def test_sla_completion_and_cancellation_are_audited(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    deploy_approval(engine, "auto", on_timeout=complete_with(approved=False))
    deploy_approval(engine, "quiet", on_timeout=None, candidate_groups=["ops"], assignee=None)
    auto, quiet, cancelled = engine.start("auto"), engine.start("quiet"), engine.start("quiet")
    engine.cancel(cancelled)
    engine.advance(timedelta(hours=4))
    assert engine.instance(auto).status == "completed"
    assert list(engine.task_audit(instance_id=auto)["action"]) == ["created", "sla_completed"]
    assert engine.task_audit(instance_id=auto)["detail"][1] == {"action": "complete", "values": {"approved": False}}
    quiet_audit = engine.task_audit(instance_id=quiet)
    assert list(zip(quiet_audit["action"], quiet_audit["actor"], strict=True)) == [
        ("created", None), ("sla_breached", "sla")]
    assert list(engine.task_audit(instance_id=cancelled)["action"]) == ["created", "cancelled"]
    stats = engine.sla_stats().set_index("definition")
    assert (stats.loc["auto", "completed"], stats.loc["auto", "within_sla"]) == (1, 0)
    assert (stats.loc["quiet", "open"], stats.loc["quiet", "cancelled"]) == (1, 1)
    assert math.isnan(stats.loc["quiet", "p50_hours"])


def readme_snippet() -> str:
    text = README.read_text()
    section = text.split("## Long-running workflows and human tasks", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's human-task section has a python example"
    return match.group(1)


def test_readme_human_task_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_snippet(), "README.md", "exec"), {"__name__": "readme"})


HANDLED: list[dict[str, Any]] = []


def escalate_to_cto(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The design review's ``on_timeout=escalate_to_cto`` as a handler: here it only records the call."""
    HANDLED.append(inputs)
    return {}


def pr_review_with_approval(on_timeout: Any) -> Any:
    """The seed's PR review with the design review's approval step (its constructor shape, verbatim)."""
    b = ProcessBuilder("pr_review_approval", variables={"pr_number": int, "vision_approved": bool})
    gate = (b.start().service("wowvision_validate", agent="designs.agents:wowvision_validate",
                              inputs=["pr_number"], outputs=["vision_approved"]).exclusive("approved"))
    approval = UserTask(id="approval", title="Review Major Change", assignee="engineering-lead", sla_hours=4,
                        on_timeout=on_timeout)
    gate.when("vision_approved").then(approval).service("deploy", agent="designs.agents:deploy",
                                                        inputs=["pr_number"]).end("deployed")
    gate.otherwise().service("create_issue", agent="designs.agents:create_issue", inputs=["pr_number"]).end("issue")
    return b.build()


def test_seed_pr_review_approval_escalates_to_the_cto_after_four_hours(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(pr_review_with_approval("escalate:cto"))
    iid = engine.start("pr_review_approval", {"pr_number": 42})
    engine.run_until_idle()
    engine.advance(timedelta(hours=3, minutes=59))
    [task] = engine.inbox("engineering-lead")
    assert task["title"] == "Review Major Change" and not task["escalated"]
    engine.advance(timedelta(minutes=1))
    assert engine.inbox("engineering-lead") == []
    [task] = engine.inbox("cto")
    assert task["escalated"]
    audit = engine.task_audit(task_id=task["id"])
    assert list(audit["action"]) == ["created", "escalated"]
    assert audit.iloc[-1]["detail"] == {"action": "escalate", "from": "engineering-lead", "to": "cto"}
    engine.complete_task(task["id"], {}, actor="cto")
    engine.run_until_idle()
    view = engine.instance(iid)
    assert view.status == "completed" and view.variables["deployed_pr"] == 42


def test_seed_on_timeout_callable_runs_once_as_a_handler(db_url: str) -> None:
    HANDLED.clear()
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(pr_review_with_approval(escalate_to_cto))
    iid = engine.start("pr_review_approval", {"pr_number": 8})
    engine.advance(timedelta(hours=5))
    assert [{"instance_id": iid, "node_id": "approval"}] == HANDLED
    [task] = engine.inbox("engineering-lead")  # a handler decides; the task itself stays where it was
    assert engine.task_audit(task_id=task["id"])["action"].tolist() == ["created", "sla_breached"]


def test_completing_an_unclaimed_group_task_checks_the_persons_groups(db_url: str) -> None:
    b = ProcessBuilder("offered")
    b.start().user("review", title="Review", candidate_groups=["finance"]).end()
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(b.build())
    engine.start("offered")
    [task] = engine.tasks()
    with pytest.raises(EngineError, match="offered to groups"):
        engine.complete_task(task["id"], {}, actor="mallory", groups=["sales"])
    assert engine.tasks()[0]["status"] == "open"
    engine.complete_task(task["id"], {}, actor="ada", groups=["finance"])
    assert engine.tasks() == []


# --- a task that requires a claim (UserTask.requires_claim) ----------------------------------------------------


def claim_desk(name: str = "claim_desk", requires_claim: bool = True) -> Any:
    b = ProcessBuilder(name, variables={"ok": bool})
    b.start().user("review", title="Review", candidate_groups=["desk"], requires_claim=requires_claim,
                   form=[FormField(name="ok", type="boolean", required=True)]).end()
    return b.build()


def test_a_task_that_requires_a_claim_is_refused_to_a_candidate_until_claimed(db_url: str) -> None:
    from sqlalchemy import func, select

    from engine.errors import AuthorizationError
    from engine.runtime.tables import HumanTaskRow, TaskAuditRow
    from engine.security import audit_trail

    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(claim_desk())
    iid = engine.start("claim_desk")
    (task,) = engine.tasks(instance_id=iid)
    assert task["requires_claim"] is True
    dana = engine.acting_as(Principal("dana", groups={"desk"}))

    def rows() -> tuple[int, int]:
        with engine.db.connect() as conn:
            return (conn.execute(select(func.count()).select_from(TaskAuditRow.__table__)).scalar_one(),
                    conn.execute(select(func.count()).select_from(HumanTaskRow.__table__)
                                 .where(HumanTaskRow.__table__.c.status == "open")).scalar_one())

    before = rows()
    with pytest.raises(AuthorizationError, match=r"'dana' may not complete task \d+ before claiming it: it requires "
                                                 r"a claim \(claim first\) \(task.complete: ") as refused:
        dana.complete_task(task["id"], {"ok": True})
    assert refused.value.rule == "task.complete" and rows() == before
    with pytest.raises(AuthorizationError, match="claim first"):  # the embedded caller naming the person: same rule
        engine.complete_task(task["id"], {"ok": True}, actor="dana", groups=["desk"])
    assert list(audit_trail(engine.db, action="task.complete")["outcome"]) == ["refused", "refused"]
    dana.claim(task["id"])
    dana.unclaim(task["id"])  # back with the group: a claim is needed again
    with pytest.raises(AuthorizationError, match="claim first"):
        dana.complete_task(task["id"], {"ok": True})
    dana.claim(task["id"])
    dana.complete_task(task["id"], {"ok": True})
    assert engine.instance(iid).status == "completed"
    assert engine.tasks(instance_id=iid, status=None)[0]["completed_by"] == "dana"


def test_without_requires_claim_completing_claims_it_and_the_system_may_always_complete(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(claim_desk("plain_desk", requires_claim=False))
    engine.deploy(claim_desk())
    plain, strict = engine.start("plain_desk"), engine.start("claim_desk")
    dana = engine.acting_as(Principal("dana", groups={"desk"}))
    dana.complete_task(engine.tasks(instance_id=plain)[0]["id"], {"ok": True})  # completing claims it
    engine.complete_task(engine.tasks(instance_id=strict)[0]["id"], {"ok": False})  # the system itself: no person
    assert engine.instance(plain).status == engine.instance(strict).status == "completed"


def test_requires_claim_travels_through_yaml_bpmn_and_validation() -> None:
    from engine.bpmn import from_bpmn, to_bpmn
    from engine.model import from_yaml, to_yaml
    from engine.validate import validate

    definition = claim_desk()
    assert "requires_claim: true" in to_yaml(definition)
    assert from_yaml(to_yaml(definition)) == definition
    xml = to_bpmn(definition)
    assert 'requiresClaim="true"' in xml  # our typed extension fields (waooaw:properties) on the user task
    assert from_bpmn(xml).node("review").requires_claim is True  # type: ignore[attr-defined]
    assert not [p for p in validate(definition) if "requires_claim" in p.message]
    lonely = ProcessBuilder("lonely")
    lonely.start().user("review", title="Review", assignee="ann", requires_claim=True).end()
    (warning,) = [p for p in validate(lonely.build()) if "requires_claim" in p.message]
    assert warning.severity == "warning" and warning.where == "review" and "no candidate groups" in warning.message
