"""The Tasks page (live engine, inbox) through AppTest, and its helpers in app/engine_session.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import designs
from app.engine_session import (
    audit_table,
    form_values,
    inbox_table,
    instances_table,
    open_engine,
    parse_variable,
    people,
    start_values,
    task_label,
    token_overlay,
)
from engine.model.definition import VariableDecl
from engine.runtime import Engine
from engine.runtime.ids import short_id
from engine.security import Principal

APP = Path(__file__).resolve().parents[1] / "app"
PAGE = "pages/3_Tasks.py"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    monkeypatch.setenv("WAOOAW_DB", url)
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path / "data"))
    return url


def settled(condition: Any, timeout: float = 30) -> Any:
    """The first truthy ``condition()``: the app's worker thread runs the agents on its own."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the embedded worker did not get there"
        time.sleep(0.02)
    return value


def tasks_page(timeout: float = 30) -> AppTest:
    return AppTest.from_file(str(APP / PAGE), default_timeout=timeout).run()


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The shown table with ``column`` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def start_campaign(at: AppTest, campaign: str = "spring", key: str = "C-1") -> None:
    at.selectbox(key="tasks_design").set_value("marketing_campaign").run()
    at.text_input(key="tasks_var:marketing_campaign:campaign").input(campaign)
    at.text_input(key="tasks_bkey:marketing_campaign").input(key)
    at.button(key="tasks_start_button:marketing_campaign").click().run()


# --- helpers (no Streamlit) ---------------------------------------------------------------------------


def test_people_named_by_the_designs() -> None:
    users, groups = people(designs.load_design(n) for n in designs.names())
    assert {"marketing-lead", "cto", "engineering-manager"} <= set(users)
    assert "on-call" in groups


def test_parse_variable_by_type() -> None:
    assert parse_variable(VariableDecl(name="n", type="integer"), 3.0) == 3
    assert parse_variable(VariableDecl(name="s", type="string"), "  ") is None
    assert parse_variable(VariableDecl(name="o", type="object"), '{"a": 1}') == {"a": 1}
    assert parse_variable(VariableDecl(name="x", type="any"), "plain") == "plain"
    with pytest.raises(ValueError, match="'n' must be a whole number"):
        parse_variable(VariableDecl(name="n", type="integer"), 2.5)
    with pytest.raises(ValueError, match="'o' must be JSON"):
        parse_variable(VariableDecl(name="o", type="object"), "{nope")


def test_start_values_leave_out_empty_fields() -> None:
    definition = designs.load_design("customer_onboarding")
    raw = {"email": "ada@example.com", "lead_id": "", "converted": None, "engagement_score": 7.0}
    # only inputs: lead_id, converted and engagement_score are written by the process's agents
    assert start_values(definition, raw) == {"email": "ada@example.com"}


def test_form_values_drop_empty_and_convert() -> None:
    form = [{"name": "n", "type": "integer"}, {"name": "d", "type": "date"}, {"name": "s", "type": "string"},
            {"name": "b", "type": "boolean", "required": True}]
    assert form_values(form, {"n": 4.0, "d": date(2025, 3, 1), "s": " ", "b": None}) == {"n": 4, "d": "2025-03-01"}
    assert form_values(form, {"b": False}) == {"b": False}


def test_inbox_table_marks_overdue_and_escalated() -> None:
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    base = {"instance_id": "abcdef0123456789", "assignee": None, "candidate_groups": ["on-call"], "escalated": False}
    tasks = [{**base, "id": 1, "title": "Late", "due_at": (now - timedelta(hours=1)).replace(tzinfo=None)},
             {**base, "id": 2, "title": "Fine", "due_at": now + timedelta(hours=1), "escalated": True},
             {**base, "id": 3, "title": "No SLA", "due_at": None}]
    table = inbox_table(tasks, now)
    assert list(table["overdue"]) == [True, False, False]
    assert list(table["escalated"]) == [False, True, False]
    assert table.loc[0, "instance"] == "23456789" and table.loc[0, "offered to"] == "on-call"
    assert task_label(tasks[0], now) == "#1 Late · 23456789 (overdue)"
    assert inbox_table([], now).empty


def test_instances_table_recent_first_and_overlay() -> None:
    assert instances_table(pd.DataFrame()).empty
    frame = pd.DataFrame([
        {"id": "a", "definition_name": "x", "definition_version": 1, "business_key": None, "status": "completed",
         "started_at": datetime(2025, 1, 1), "ended_at": None, "steps": 3},
        {"id": "b", "definition_name": "x", "definition_version": 1, "business_key": "K", "status": "running",
         "started_at": datetime(2025, 1, 2), "ended_at": None, "steps": 1}])
    assert list(instances_table(frame)["id"]) == ["b", "a"]
    assert token_overlay(["b", "a", "b"]) == {"highlight": ["a", "b"], "counts": {"a": 1, "b": 2}}


def test_open_engine_deploys_the_library_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine, problems = open_engine(url)
    assert not problems and engine.definitions() == designs.names()
    again, _ = open_engine(url)  # same content: same versions
    assert {n: again.definition(n).version for n in designs.names()} == dict.fromkeys(designs.names(), 1)
    instance = engine.start("marketing_campaign", {"campaign": "x"})
    engine.run_until_idle()
    engine.complete_task(engine.inbox("marketing-lead")[0]["id"], {"approved": True}, actor="marketing-lead")
    audit = audit_table(engine.task_audit(), last=1)
    assert list(audit["action"]) == ["completed"] and audit.loc[0, "instance_id"] == short_id(instance)
    assert '"approved": true' in audit.loc[0, "detail"]


# --- the page through AppTest ---------------------------------------------------------------------------


def test_page_starts_an_instance_and_completes_its_task(db: str) -> None:
    at = tasks_page()
    assert not at.exception
    assert at.sidebar.selectbox(key="acting_as_pick").value == "marketing-lead"
    assert "Engineering lead (engineering-manager)" in at.sidebar.selectbox(key="acting_as_pick").options

    start_campaign(at)
    assert not at.exception and not at.error
    assert any("Started marketing_campaign" in s.value for s in at.success)
    check = Engine(db, principal=Principal.system())
    (row,) = check.instances().to_dict("records")
    assert row["business_key"] == "C-1" and row["status"] == "running"
    assert check.instance(row["id"]).active_nodes == ["approval"]  # the agents ran: the drafts are done
    at.run()
    (task,) = check.inbox("marketing-lead")
    inbox = frame(at, "overdue")
    assert list(inbox["title"]) == ["Approve campaign"] and not inbox.loc[0, "overdue"]

    # the required field left empty: an error, the task stays open
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.exception
    assert any("'approved' is required" in e.value for e in at.error)
    assert [t["id"] for t in check.inbox("marketing-lead")] == [task["id"]]
    assert check.instance(row["id"]).status == "running"

    # filled in: the task closes and the instance runs to its end (launch is an agent)
    at.radio(key=f"tasks_field:{task['id']}:approved").set_value(True)
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.exception and not at.error
    assert not check.inbox("marketing-lead")
    view = check.instance(row["id"])
    assert view.status == "completed" and view.variables["approved"] is True and view.variables["launched"] is True
    assert any("Nothing to do" in i.value for i in at.info)
    sla = frame(at, "within_sla_pct")
    assert sla.loc[0, "completed"] == 1 and sla.loc[0, "within_sla"] == 1


def test_page_other_users_and_groups_claim_and_delegate(db: str) -> None:
    at = tasks_page()
    start_campaign(at)
    at.sidebar.selectbox(key="acting_as_pick").set_value("cto").run()  # not the assignee: nothing in the inbox
    assert any("Nothing to do" in i.value for i in at.info)

    # incident_response offers its first task to the on-call group
    at.selectbox(key="tasks_design").set_value("incident_response").run()
    at.text_input(key="tasks_var:incident_response:summary").input("site down")
    at.button(key="tasks_start_button:incident_response").click().run()
    assert not at.exception and not at.error
    check = Engine(db, principal=Principal.system())
    settled(lambda: check.inbox("on-call", ["on-call"]))
    at.sidebar.selectbox(key="acting_as_pick").set_value("on-call").run()
    inbox = frame(at, "overdue")
    assert list(inbox["title"]) == ["Acknowledge incident"] and inbox.loc[0, "offered to"] == "on-call"
    at.button(key="tasks_claim").click().run()
    assert not at.error and frame(at, "overdue").loc[0, "assignee"] == "on-call"
    at.text_input(key="tasks_delegate_to").input("engineer").run()
    at.button(key="tasks_delegate").click().run()
    assert not at.error
    assert any("Nothing to do" in i.value for i in at.info)  # now the engineer's
    (task,) = check.inbox("engineer")
    assert task["node_id"] == "acknowledge"


# --- what the approver sees, the form's labels, a task that left, keys with {n} ---------------------------


def test_business_keys_replace_n() -> None:
    from app.widgets import business_keys

    assert business_keys("EXP-{n}", 3) == ["EXP-1", "EXP-2", "EXP-3"]
    assert business_keys("EXP-{n}", 1) == ["EXP-1"]
    assert business_keys("EXP", 2) == ["EXP-1", "EXP-2"] and business_keys("EXP", 1) == ["EXP"]
    assert business_keys(None, 2) == [None, None]


def test_a_short_clock_move_reads_in_minutes() -> None:
    from app.runtime import ClockMove as Moved

    t = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert Moved(t, t + timedelta(minutes=3), 1).message().startswith("Clock moved 3 min to ")
    assert Moved(t, t + timedelta(hours=4), 1).message().startswith("Clock moved 4.0 h to ")
    assert Moved(t, t + timedelta(seconds=20), 0).message().startswith("Clock moved 20 s to ")


def expense_engine(db: str) -> tuple[Engine, Any]:
    from engine.model import FormField, ProcessBuilder

    b = ProcessBuilder("expense_approval", name="Expense approval", variables={"amount": float, "approved": bool})
    gateway = (b.start().user("approve", title="Approve expense", assignee="marketing-lead",
                              form=[FormField(name="approved", type="boolean", required=True,
                                              label="Approve this expense?")])
               .exclusive("approved_gw"))
    gateway.when("approved").end("paid")
    gateway.otherwise().end("rejected")
    b2 = ProcessBuilder("acknowledge", variables={"amount": float, "approved": bool})
    b2.start().user("look", title="Look at it", assignee="marketing-lead").end()
    engine = Engine(db, principal=Principal.system())
    engine.deploy(b.build())
    engine.deploy(b2.build())
    return engine, b2


def test_the_approver_sees_the_instance_and_errors_name_the_label(db: str) -> None:
    from app.engine_session import start_inputs

    check, _ = expense_engine(db)
    assert [d.name for d in start_inputs(check.definition("expense_approval"))] == ["amount"]  # a form sets approved
    instance = check.start("expense_approval", {"amount": 120.5}, business_key="EXP-1")
    at = tasks_page()
    (task,) = [t for t in check.inbox("marketing-lead") if t["instance_id"] == instance]
    at.selectbox(key="tasks_task").set_value(task["id"]).run()
    assert any("key **EXP-1**" in m.value and "expense_approval v1" in m.value for m in at.markdown)
    shown = frame(at, "variable")
    assert dict(zip(shown["variable"], shown["value"], strict=True)) == {"amount": "120.5"}
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert any("'Approve this expense?' (approved) is required" in e.value for e in at.error)
    at.radio(key=f"tasks_field:{task['id']}:approved").set_value(True)
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.error and check.instance(instance).status == "completed"
    assert any(f"Open instance {short_id(instance)}" in c.value for c in at.caption)  # a link in the app (browser test)


def test_a_task_without_a_form_says_what_completing_means(db: str) -> None:
    check, _ = expense_engine(db)
    instance = check.start("acknowledge", {"amount": 3.0})
    at = tasks_page()
    (task,) = [t for t in check.inbox("marketing-lead") if t["instance_id"] == instance]
    at.selectbox(key="tasks_task").set_value(task["id"]).run()
    note = next(i.value for i in at.info if "no form" in i.value)
    assert "Not set yet: `approved`" in note


def test_a_task_that_left_the_inbox_shows_no_complete_form(db: str) -> None:
    check, _ = expense_engine(db)
    instance = check.start("expense_approval", {"amount": 9.0}, business_key="EXP-2")
    at = tasks_page()
    (task,) = [t for t in check.inbox("marketing-lead") if t["instance_id"] == instance]
    at.selectbox(key="tasks_task").set_value(task["id"]).run()
    assert at.button(key=f"tasks_complete_button:{task['id']}")
    check.cancel(instance)  # someone cancels the instance while the approver looks at its task
    at.run()
    assert any("It left your inbox" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == f"tasks_complete_button:{task['id']}"]  # nothing to complete
    assert not [b for b in at.button if b.key in ("tasks_claim", "tasks_delegate")]
    at.button(key="tasks_dismiss").click().run()
    assert not any("It left your inbox" in w.value for w in at.warning)


def test_a_task_that_requires_a_claim_says_claim_first_until_claimed(db: str) -> None:
    from engine.model import FormField, ProcessBuilder

    tasks_page()  # the app's runtime opens the database and seeds the personas
    b = ProcessBuilder("triage", variables={"ok": bool})
    b.start().user("triage", title="Triage the alert", candidate_groups=["on-call"], requires_claim=True,
                   form=[FormField(name="ok", type="boolean")]).end()
    system = Engine(db, principal=Principal.system())
    system.deploy(b.build())
    iid = system.start("triage")
    (task,) = system.tasks(instance_id=iid)
    at = AppTest.from_file(str(APP / PAGE), default_timeout=30)
    at.session_state["acting_as"] = "on-call"
    at.run()
    assert not at.exception and at.selectbox(key="tasks_task").value == task["id"]
    complete = f"tasks_complete_button:{task['id']}"
    assert any("claim first" in m.value for m in at.markdown)
    assert at.button(key=complete).disabled
    at.button(key="tasks_claim").click().run()
    assert not at.exception and not any("claim first" in m.value for m in at.markdown)
    assert not at.button(key=complete).disabled
    at.button(key=complete).click().run()
    assert not at.exception
    assert system.tasks(instance_id=iid, status=None)[0]["completed_by"] == "on-call"


def test_the_design_to_start_is_kept_when_the_page_is_left_and_visited_again(db: str) -> None:
    at = tasks_page()
    at.selectbox(key="tasks_design").set_value("pr_review").run()
    kept = at.session_state["tasks_design:kept"]
    assert kept == "pr_review"
    # Streamlit drops a widget's value when its page is left; the session keeps the rest
    back = AppTest.from_file(str(APP / PAGE), default_timeout=30)
    back.session_state["tasks_design:kept"] = kept
    back.run()
    assert back.selectbox(key="tasks_design").value == "pr_review"
