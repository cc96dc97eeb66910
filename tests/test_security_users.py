"""Accounts (argon2 hashes in the engine's database), the first-run admin, demo personas, and sensitive
variables masked for viewers without the role (never in error messages)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from designs import load_design
from engine.errors import AuthorizationError, EngineError
from engine.model import ProcessBuilder
from engine.model.definition import VariableDecl
from engine.runtime import Engine, VirtualClock
from engine.security import DEMO_PERSONAS, Principal, Role, UserStore, audit_trail, seed_demo_users
from engine.security.sensitive import MASK
from engine.security.tables import UserRow


def test_first_admin_sign_in_and_admin_only_changes(db_url: str) -> None:
    store = UserStore(db_url)
    assert not store.has_admin() and store.users() == []
    with pytest.raises(EngineError, match="at least 10 characters"):
        store.create_first_admin("root", "short")
    admin = store.create_first_admin("root", "a long enough passphrase", display_name="Root")
    assert admin.roles == frozenset(Role) and store.has_admin()
    with pytest.raises(AuthorizationError, match="an admin account exists already"):
        store.create_first_admin("eve", "another long passphrase")
    with store.db.connect() as conn:  # the hash, never the password
        stored = conn.execute(select(UserRow.__table__.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "passphrase" not in stored

    assert store.authenticate("root", "a long enough passphrase") == admin
    assert store.authenticate("root", "wrong passphrase!") is None
    assert store.authenticate("nobody", "a long enough passphrase") is None

    ada = store.add_user(admin, "ada", "ada's passphrase!", groups=["finance"], roles=["operator"])
    assert ada == Principal("ada", frozenset({"finance"}), frozenset({Role.OPERATOR}))
    with pytest.raises(AuthorizationError, match=r"'ada' may not manage users.*needs the admin role"):
        store.add_user(ada, "mallory", "mallory's passphrase", roles=["admin"])
    with pytest.raises(AuthorizationError, match="needs the admin role"):
        store.set_roles(ada, "ada", ["admin"])
    store.set_password(ada, "ada", "ada's new passphrase")  # one's own password: allowed
    assert store.authenticate("ada", "ada's new passphrase") == ada
    store.set_disabled(admin, "ada")
    assert store.authenticate("ada", "ada's new passphrase") is None
    with pytest.raises(EngineError, match="disabled"):
        store.principal("ada")
    with pytest.raises(ValueError, match="unknown role 'root'"):
        store.set_roles(admin, "ada", ["root"])

    trail = audit_trail(store.db)
    signins = trail[trail["action"] == "sign_in"]
    assert list(zip(signins["principal"], signins["allowed"], strict=True)) == [
        ("root", True), ("root", False), ("nobody", False), ("ada", True), ("ada", False)]
    refused = trail[~trail["allowed"] & (trail["action"] == "users.manage")]
    assert list(refused["principal"]) == ["ada", "ada"]


def test_demo_personas_match_the_designs_and_cannot_sign_in_with_a_password(db_url: str) -> None:
    store = UserStore(db_url)
    seeded = seed_demo_users(store)
    assert seed_demo_users(store) == seeded  # idempotent
    assert {u.name for u in seeded} == {p.name for p in DEMO_PERSONAS}
    assert all(u.demo and not u.has_password for u in seeded) and not store.has_admin()
    # everyone the library designs name exists: assignees, escalation targets, a member of each candidate group
    named: set[str] = set()
    groups: set[str] = set()
    for design in ("incident_response", "marketing_campaign"):
        for node in load_design(design).all_nodes():
            named.update(u for u in (getattr(node, "assignee", None),
                                     getattr(getattr(node, "on_timeout", None), "assignee", None)) if u)
            groups.update(getattr(node, "candidate_groups", []) or [])
    assert named <= {u.name for u in seeded}
    assert all(any(g in u.groups for u in seeded) for g in groups)
    for name in named:
        assert store.authenticate(name, "") is None


def test_sensitive_variables_are_masked_for_viewers_without_the_role(db_url: str) -> None:
    b = ProcessBuilder("kyc", variables=[VariableDecl(name="ssn", type="string", sensitive=True),
                                         VariableDecl(name="age", type="integer")])
    b.start().user("review", title="Review", assignee="clerk").end()
    system = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    system.deploy(b.build())
    iid = system.start("kyc", {"ssn": "078-05-1120", "age": 41})
    clerk = system.acting_as(Principal("clerk", roles={"designer"}))
    operator = system.acting_as(Principal("olga", roles={"operator"}))
    seen = clerk.instance(iid)
    assert seen.variables == {"ssn": MASK, "age": 41}
    assert "078-05-1120" not in seen.history.to_string() and MASK in seen.history.to_string()
    assert "078-05-1120" not in seen._repr_html_()
    assert operator.instance(iid).variables["ssn"] == "078-05-1120"
    assert system.instance(iid).variables["ssn"] == "078-05-1120"
    with pytest.raises(EngineError) as refused:  # never in an error message, whoever reads it
        system.start("kyc", {"ssn": 78051120})
    assert "78051120" not in str(refused.value) and MASK in str(refused.value)


def test_an_incident_message_never_shows_a_sensitive_value(db_url: str) -> None:
    from engine.model import from_yaml

    definition = from_yaml("""
id: payroll
variables:
  - {name: salary, type: integer, sensitive: true}
  - {name: exponent, type: integer}
nodes:
  - {id: start, kind: start}
  - {id: check, kind: exclusive_gateway, default: low}
  - {id: done, kind: end}
  - {id: flagged, kind: end}
flows:
  - {id: f0, source: start, target: check}
  - {id: high, source: check, target: flagged, condition: "salary ** exponent > 10"}
  - {id: low, source: check, target: done}
""")
    system = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    system.deploy(definition)
    iid = system.start("payroll", {"salary": 987654, "exponent": 10**6})
    (incident,) = system.instance(iid).incidents
    assert "too many digits" in incident["error"] and "987654" not in incident["error"] and MASK in incident["error"]


def test_an_agent_failure_never_stores_a_sensitive_value(db_url: str) -> None:
    from engine.runtime.tables import IncidentRow, TaskExecutionRow

    def charge(inputs: dict, context: object) -> dict:
        raise ValueError(f"card {inputs['card']} was declined")

    b = ProcessBuilder("charge_flow", variables=[VariableDecl(name="card", type="string", sensitive=True)])
    b.start().service("charge", agent=charge, inputs=["card"], retry={"attempts": 1}).end("done")
    system = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    system.deploy(b.build())
    iid = system.start("charge_flow", {"card": "4111-1111-1111-1111"})
    system.run_until_idle()
    (incident,) = system.instance(iid).incidents
    assert "declined" in incident["error"] and "4111" not in incident["error"]
    with system.reader.connect() as conn:
        stored = [r.error for r in conn.execute(select(TaskExecutionRow.__table__.c.error))]
        traces = [r[0] for r in conn.execute(select(IncidentRow.__table__.c.traceback))]
    assert stored and all("4111" not in (e or "") and MASK in (e or "") for e in stored)
    assert all("4111" not in (t or "") for t in traces)
