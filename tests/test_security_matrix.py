"""The authorization matrix on the engine API: each action x each role, allowed or refused, on SQLite and
PostgreSQL; task actor rules (someone else's task, a group task without the group, a task delegated away,
an escalation moving the right to act); every decision in the audit trail with its principal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.errors import AuthorizationError
from engine.model import FormField, ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.security import Principal, Role, UserStore, audit_trail, seed_demo_users
from engine.versions.rollout import set_rollout

ROLES = {role.value: Principal(f"has-{role.value}", roles={role}) for role in Role}
ROLES["none"] = Principal("has-nothing")


def definition() -> Any:
    b = ProcessBuilder("approval", variables={"amount": int, "approved": bool})
    b.start().user("approve", title="Approve", candidate_groups=["finance"],
                   form=[FormField(name="approved", type="boolean", required=True)]).receive(
        "wait_paid", "paid", correlation_key="amount").end()
    return b.build()


@pytest.fixture
def engine(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(definition())
    return engine


ACTIONS = {  # action -> (the role that allows it, a call doing it)
    "deploy": ("deployer", lambda e, iid: e.deploy(definition().model_copy(update={"name": "Approval v2"}))),
    "start": ("operator", lambda e, iid: e.start("approval", {"amount": 5})),
    "cancel": ("operator", lambda e, iid: e.cancel(iid)),
    "set_variables": ("operator", lambda e, iid: e.set_variables(iid, {"amount": 7})),
    "correlate": ("operator", lambda e, iid: e.correlate("nobody-waits", None)),
    "clock.advance": ("operator", lambda e, iid: e.advance(timedelta(minutes=1))),
    "jobs.release": ("operator", lambda e, iid: e.release_locks()),
    "rollout": ("deployer", lambda e, iid: set_rollout(e, "approval", {1: 1.0})),
}


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_action_is_allowed_exactly_for_its_role(engine: Engine, action: str, role: str) -> None:
    needs, call = ACTIONS[action]
    iid = engine.start("approval", {"amount": 5})
    principal = ROLES[role]
    before = len(audit_trail(engine.db))
    if role == needs:
        try:
            call(engine.acting_as(principal), iid)
        except AuthorizationError:  # pragma: no cover - the assertion below says what went wrong
            pytest.fail(f"{role} was refused {action}")
        except Exception:  # an allowed action may still fail on its input (no instance waits): not a refusal
            pass
    else:
        with pytest.raises(AuthorizationError, match=rf"{principal.user!r} may not .* rule {action!r} needs the "
                                                     rf"{needs} role") as refused:
            call(engine.acting_as(principal), iid)
        assert refused.value.rule == action
    rows = audit_trail(engine.db).iloc[before:]
    assert list(zip(rows["principal"], rows["action"], rows["allowed"], strict=True)) == [
        (principal.user, action, role == needs)]


def test_a_refused_action_writes_nothing_but_its_audit_row(engine: Engine) -> None:
    iid = engine.start("approval", {"amount": 5})
    clerk = engine.acting_as(Principal("clerk", roles={"designer"}))
    counts = engine.instances().shape[0], len(engine.instance(iid).history)
    for call in (lambda: clerk.start("approval", {"amount": 1}), lambda: clerk.cancel(iid),
                 lambda: clerk.set_variables(iid, {"amount": 9})):
        with pytest.raises(AuthorizationError):
            call()
    assert (engine.instances().shape[0], len(engine.instance(iid).history)) == counts
    assert engine.instance(iid).status == "running"
    refusals = audit_trail(engine.db, principal="clerk")
    assert list(refusals["action"]) == ["start", "cancel", "set_variables"] and not refusals["allowed"].any()
    assert "needs the operator role" in refusals["detail"][0]["error"]


def test_an_engine_without_a_principal_is_the_embedded_mode_unless_production_says_no(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Engine(db_url).principal == Principal.system()  # embedded single-user mode: still checked and audited
    monkeypatch.setenv("WAOOAW_PRODUCTION", "1")
    with pytest.raises(AuthorizationError, match=r"principal=Principal.system\(\)"):
        Engine(db_url)
    with pytest.raises(AuthorizationError, match="got str"):
        Engine(db_url, principal="ada")  # type: ignore[arg-type]


def tasks(engine: Engine, iid: str) -> dict[str, Any]:
    (task,) = engine.tasks(instance_id=iid)
    return task


def test_task_actor_rules_for_people(engine: Engine) -> None:
    iid = engine.start("approval", {"amount": 5})
    task = tasks(engine, iid)["id"]
    ada = engine.acting_as(Principal("ada", groups={"finance"}))
    bob = engine.acting_as(Principal("bob", groups={"finance"}))
    mallory = engine.acting_as(Principal("mallory", groups={"sales"}, roles={"admin", "operator"}))
    # a group task without being in the group: refused, whatever the roles
    with pytest.raises(AuthorizationError, match=r"'mallory' may not complete task \d+: it is offered to groups "
                                                 r"finance and 'mallory' is in sales") as refused:
        mallory.complete_task(task, {"approved": True})
    assert refused.value.rule == "task.complete"
    with pytest.raises(AuthorizationError, match="may not claim"):
        mallory.claim(task)
    # a person acts only as themselves
    with pytest.raises(AuthorizationError, match="'mallory' may not act as 'ada'"):
        mallory.complete_task(task, {"approved": True}, actor="ada", groups=["finance"])
    # someone else's task
    ada.claim(task)
    with pytest.raises(AuthorizationError, match=r"'bob' may not complete .* assigned to 'ada'"):
        bob.complete_task(task, {"approved": True})
    with pytest.raises(AuthorizationError, match=r"'bob' may not delegate .* assigned to 'ada'"):
        bob.delegate(task, "bob")
    # delegated away: the right to act moves with it
    ada.delegate(task, "carol")
    with pytest.raises(AuthorizationError, match=r"'ada' may not complete .* assigned to 'carol'"):
        ada.complete_task(task, {"approved": True})
    carol = engine.acting_as(Principal("carol"))  # in no group: the assignment is what counts
    carol.complete_task(task, {"approved": False})
    done = engine.tasks(instance_id=iid, status="completed")[0]
    assert done["completed_by"] == "carol"
    audit = engine.task_audit(task_id=task)
    assert list(zip(audit["action"], audit["actor"], strict=True)) == [
        ("created", None), ("claimed", "ada"), ("delegated", "ada"), ("completed", "carol")]
    decisions = audit_trail(engine.db)
    decisions = decisions[decisions["action"].str.startswith("task.")]
    assert list(zip(decisions["principal"], decisions["action"], decisions["allowed"], strict=True)) == [
        ("mallory", "task.complete", False), ("mallory", "task.claim", False), ("mallory", "task.complete", False),
        ("ada", "task.claim", True), ("bob", "task.complete", False), ("bob", "task.delegate", False),
        ("ada", "task.delegate", True), ("ada", "task.complete", False), ("carol", "task.complete", True)]


def test_an_unclaimed_group_task_is_completed_only_by_a_member(engine: Engine) -> None:
    iid = engine.start("approval", {"amount": 5})
    task = tasks(engine, iid)["id"]
    nogroups = engine.acting_as(Principal("drifter"))
    with pytest.raises(AuthorizationError, match="'drifter' is in no groups"):  # the bug: no groups, no skip
        nogroups.complete_task(task, {"approved": True})
    engine.acting_as(Principal("ada", groups={"finance"})).complete_task(task, {"approved": True})
    assert engine.tasks(instance_id=iid, status="completed")[0]["completed_by"] == "ada"


def test_escalation_moves_the_right_to_act(db_url: str) -> None:
    b = ProcessBuilder("campaign", variables={"approved": bool})
    b.start().user("approval", title="Approve", assignee="marketing-lead", sla_hours=4, on_timeout="escalate:cto",
                   form=[FormField(name="approved", type="boolean", required=True)]).end()
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(b.build())
    store = UserStore(engine.db)
    seed_demo_users(store)
    iid = engine.start("campaign")
    task = tasks(engine, iid)["id"]
    lead, cto = (engine.acting_as(store.principal(n)) for n in ("marketing-lead", "cto"))
    with pytest.raises(AuthorizationError, match="assigned to 'marketing-lead'"):
        cto.complete_task(task, {"approved": True})  # an admin, but not the assignee
    engine.advance(timedelta(hours=5))  # the SLA escalates to the CTO
    with pytest.raises(AuthorizationError, match=r"'marketing-lead' may not complete .* assigned to 'cto'"):
        lead.complete_task(task, {"approved": True})
    cto.complete_task(task, {"approved": True})
    assert engine.instance(iid).status == "completed"


def test_the_system_principal_acts_itself_or_for_a_named_person(engine: Engine) -> None:
    first, second = engine.start("approval", {"amount": 1}), engine.start("approval", {"amount": 2})
    with pytest.raises(AuthorizationError, match="'eve' is in no groups"):  # a named person: their rules apply
        engine.complete_task(tasks(engine, first)["id"], {"approved": True}, actor="eve")
    engine.complete_task(tasks(engine, first)["id"], {"approved": True}, actor="ada", groups=["finance"])
    engine.complete_task(tasks(engine, second)["id"], {"approved": True})  # the system itself: allowed
    done = {t["instance_id"]: t["completed_by"] for t in engine.tasks(status="completed")}
    assert done == {first: "ada", second: "system"}
    rows = audit_trail(engine.db, action="task.complete")
    assert list(zip(rows["principal"], rows["allowed"], strict=True)) == [
        ("system", False), ("system", True), ("system", True)]
    assert rows["detail"][1] == {"as": "ada"}
