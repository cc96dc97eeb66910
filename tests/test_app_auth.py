"""Sign-in through the app (AppTest): the first-run admin, local accounts, wrong passwords, demo mode and its
refusal under the production flag; and the authorization matrix through the pages (a deployer missing, a
task delegated away while open, the clock control reserved to operators). One browser test signs in for real."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import launch_chromium, serve_app
from streamlit.testing.v1 import AppTest

import designs
from app.workspace import Workspace
from engine.errors import AuthorizationError
from engine.runtime import Engine
from engine.security import Principal, UserStore, audit_trail

APP = Path(__file__).resolve().parents[1] / "app"
PASSWORD = "correct horse battery"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("WAOOAW_DB", raising=False)
    monkeypatch.delenv("WAOOAW_PRODUCTION", raising=False)
    monkeypatch.setenv("WAOOAW_WORKER", "external")  # no background thread: the test drives the engine
    return tmp_path / "data"


@pytest.fixture
def production(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Production mode (nothing seeded, no demo personas) with the library deployed by an operator script."""
    monkeypatch.setenv("WAOOAW_MODE", "production")
    data_dir.mkdir(parents=True)
    engine = Engine(db_url(data_dir), principal=Principal.system())
    for name in designs.names():
        engine.deploy(designs.load_design(name))
    return data_dir


def db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'waooaw.db'}"


def run(page: str, state: dict[str, Any] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP / page), default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at.run()


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").input(name)
    at.text_input(key="auth_password").input(password)
    return at.button(key="FormSubmitter:auth_sign_in-Sign in").click().run()


def test_first_run_creates_the_admin_then_everyone_signs_in(production: Path) -> None:
    at = run("pages/3_Tasks.py")
    assert not at.exception and [h.value for h in at.header] == ["Create the first admin"]
    assert not any("Inbox" in s.value for s in at.subheader)  # nothing of the page before sign-in
    at.text_input(key="auth_first_name").input("root")
    at.text_input(key="auth_first_password").input(PASSWORD)
    at.text_input(key="auth_first_again").input(PASSWORD + "!")
    at.button(key="FormSubmitter:auth_first_run-Create admin").click().run()
    assert any("differ" in e.value for e in at.error)
    at.text_input(key="auth_first_again").input(PASSWORD)
    at.button(key="FormSubmitter:auth_first_run-Create admin").click().run()
    assert not at.exception and any("Signed in as **root**" in m.value for m in at.sidebar.markdown)
    assert any(s.value == "Inbox of root" for s in at.subheader)

    fresh = run("pages/3_Tasks.py")  # another visitor: the sign-in form, no second first-run
    assert [h.value for h in fresh.header] == ["Sign in"]
    sign_in(fresh, "root", "wrong password!")
    assert [e.value for e in fresh.error] == ["Wrong user name or password."]
    sign_in(fresh, "nobody", PASSWORD)
    assert [e.value for e in fresh.error] == ["Wrong user name or password."]  # no hint which names exist
    sign_in(fresh, "root", PASSWORD)
    assert not fresh.error and any("Signed in as **root**" in m.value for m in fresh.sidebar.markdown)
    trail = audit_trail(UserStore(db_url(production)).db, action="sign_in")
    assert list(zip(trail["principal"], trail["allowed"], strict=True)) == [
        ("root", False), ("nobody", False), ("root", True)]


def test_a_visitor_without_the_deployer_role_is_refused_by_the_engine(production: Path) -> None:
    store = UserStore(db_url(production))
    admin = store.create_first_admin("root", PASSWORD)
    store.add_user(admin, "olga", PASSWORD, groups=["ops"], roles=["operator"])
    Workspace(production).new_from_template("pr_review", "review")  # a saved design to deploy
    at = run("pages/4_Deployments.py")
    sign_in(at, "olga", PASSWORD)
    at.button(key="deploy_button").click().run()
    assert not at.exception
    assert any("'olga' may not deploy a definition" in e.value and "needs the deployer role" in e.value
               and e.value.startswith("Not permitted") for e in at.error)  # a permission, not a design problem
    assert not at.dataframe or "deploy_problems" not in [d.key for d in at.dataframe]
    assert "review" not in Engine(db_url(production), principal=Principal.system()).definitions()
    # the clock control is the operator's: olga may not move a wall clock anyway, but the buttons are not there
    assert not any(b.key and b.key.startswith("clock_") for b in at.sidebar.button)


def test_demo_mode_is_marked_and_switches_persona(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    at = run("pages/3_Tasks.py")
    assert not at.exception
    assert any("Demo mode" in w.value and "act as any demo person" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="acting_as_pick").value == "marketing-lead"
    at.sidebar.selectbox(key="acting_as_pick").set_value("engineer").run()
    assert any("Signed in as **engineer** (demo persona)" in m.value for m in at.sidebar.markdown)
    # the engineer is a designer only: the clock control is disabled for them
    assert all(b.disabled for b in at.sidebar.button if b.key and b.key.startswith("clock_"))
    assert any("needs the operator role" in c.value for c in at.sidebar.caption)  # and the page says why
    # the address names the persona, so a reload (a new session with the same address) keeps it
    assert at.query_params["as"] == "engineer"
    reloaded = AppTest.from_file(str(APP / "pages/3_Tasks.py"), default_timeout=60)
    reloaded.query_params["as"] = "engineer"
    reloaded.run()
    assert reloaded.sidebar.selectbox(key="acting_as_pick").value == "engineer"


def test_demo_mode_is_refused_under_the_production_flag(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    monkeypatch.setenv("WAOOAW_PRODUCTION", "1")
    at = run("pages/3_Tasks.py")
    assert not at.exception
    assert next(e.value for e in at.error).startswith("Demo mode is refused: WAOOAW_PRODUCTION is set")
    assert not at.subheader and not at.sidebar.selectbox


def test_a_task_delegated_away_while_open_is_refused_on_completion(data_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    at = run("pages/3_Tasks.py")  # opens the runtime: deploys the library, seeds the personas
    check = Engine(db_url(data_dir), principal=Principal.system())
    check.start("incident_response", {"incident_id": "INC-1", "summary": "down"})
    check.run_until_idle()
    at = run("pages/3_Tasks.py", {"acting_as": "on-call"})
    (task,) = [t for t in check.tasks() if t["node_id"] == "acknowledge"]
    assert at.selectbox(key="tasks_task").value == task["id"]
    check.delegate(task["id"], "engineering-manager")  # someone moves it while the on-call has it open
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.exception
    assert check.tasks(instance_id=task["instance_id"])[0]["status"] == "open"
    # the page reads the task again before acting: it says who has it now and offers no Complete
    assert any("delegated" in w.value and "engineering-manager" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == f"tasks_complete_button:{task['id']}"]
    assert audit_trail(check.db, principal="on-call", action="task.complete", outcome="succeeded").empty
    # in a race past that read, the engine's rule decides, with the same page's identity
    oncall = check.acting_as(Principal("on-call", groups={"engineering", "on-call"}, roles={"operator"}))
    with pytest.raises(AuthorizationError, match="assigned to 'engineering-manager'"):
        oncall.complete_task(task["id"], {})
    refused = audit_trail(check.db, principal="on-call", action="task.complete")
    assert list(refused["outcome"]) == ["refused"]
    assert "assigned to 'engineering-manager'" in refused["detail"][0]["error"]


def test_the_designer_is_read_only_without_the_designer_role(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    run("pages/3_Tasks.py")  # the runtime seeds the personas
    Workspace(data_dir).new_from_template("pr_review", "review")
    before = Workspace(data_dir).text("review")
    at = run("pages/1_Designer.py", {"acting_as": "marketing-lead"})  # an operator, not a designer
    assert not at.exception
    (notice,) = [i.value for i in at.info if "Read-only" in i.value]
    assert "needs the designer role (rule `design.save`)" in notice and "**marketing-lead**" in notice
    for key in ("designer_save", "designer_save_as", "designer_rename", "designer_create"):
        assert at.button(key=key).disabled, key
    assert at.session_state["designer"].name == "review"  # the design is shown, read-only
    # the page is not the only gate: the workspace's own check refuses, names the rule and is audited
    viewer = Workspace(data_dir, Principal("marketing-lead", roles={"operator"}), UserStore(db_url(data_dir)).db)
    with pytest.raises(AuthorizationError, match=r"may not save or validate a design .*rule 'design.save' needs the "
                                                 r"designer role"):
        viewer.save("review", viewer.load("review").model_copy(update={"name": "Hijacked"}))
    with pytest.raises(AuthorizationError, match=r"design\.save"):
        viewer.delete("review")
    assert Workspace(data_dir).text("review") == before
    refused = audit_trail(viewer.db, action="design.save", outcome="refused")
    assert list(refused["principal"]) == ["marketing-lead", "marketing-lead"]
    # demo mode offers the persona who may: one click and the page is writable
    at.button(key="auth_switch_role").click().run()
    assert not at.exception and not any("Read-only" in i.value for i in at.info)
    assert at.sidebar.selectbox(key="acting_as_pick").value == "engineer"
    assert not at.button(key="designer_save_as").disabled


def test_a_designer_saves_through_the_rule_and_the_audit_trail(data_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    run("pages/3_Tasks.py")
    at = run("pages/1_Designer.py")  # no persona picked yet: the Designer starts as a designer
    assert not at.exception and not any("Read-only" in i.value for i in at.info)
    assert at.sidebar.selectbox(key="acting_as_pick").value == "engineer"
    at.text_input(key="designer_new_name").input("mine")
    at.button(key="designer_create").click().run()
    assert not at.exception and Workspace(data_dir).exists("mine")
    at.text_input(key="designer_target_name").input("mine_too")
    at.button(key="designer_rename").click().run()
    assert not at.exception and Workspace(data_dir).names() == ["mine_too"]
    rows = audit_trail(UserStore(db_url(data_dir)).db, action="design.save")
    assert [(r["principal"], r["outcome"], r["detail"]["op"]) for r in rows.to_dict("records")] == [
        ("engineer", "succeeded", "create"), ("engineer", "succeeded", "rename")]


def test_a_viewer_signed_in_with_a_local_account_sees_the_designer_read_only(production: Path) -> None:
    store = UserStore(db_url(production))
    admin = store.create_first_admin("root", PASSWORD)
    store.add_user(admin, "olga", PASSWORD, groups=["ops"], roles=["operator"])
    Workspace(production).new_from_template("pr_review", "review")
    at = run("pages/1_Designer.py")
    sign_in(at, "olga", PASSWORD)
    assert not at.exception and any("Read-only" in i.value and "**olga**" in i.value for i in at.info)
    assert at.button(key="designer_save_as").disabled
    assert not [b for b in at.button if b.key == "auth_switch_role"]  # no personas outside demo mode


HOSTILE = """\
id: hostile
name: Hostile power
variables:
  - {name: base, type: integer, required: true}
  - {name: exponent, type: integer, required: true}
nodes:
  - {id: start, kind: start}
  - {id: big, kind: exclusive_gateway, default: small_path}
  - {id: large, kind: end}
  - {id: small, kind: end}
flows:
  - {id: f0, source: start, target: big}
  - {id: large_path, source: big, target: large, condition: "base ** exponent > 10"}
  - {id: small_path, source: big, target: small}
"""


def test_a_hostile_expression_becomes_an_incident_through_the_app(data_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A condition that validates but cannot be computed within the limits (a power of variables with a billion
    digits), deployed and started through the pages, ends as an incident with a readable message on the
    Instance page: no traceback, and the app keeps answering."""
    import time

    from engine.validate import errors_only

    monkeypatch.setenv("WAOOAW_MODE", "demo")
    run("pages/3_Tasks.py")
    Workspace(data_dir).save("hostile", HOSTILE)
    assert not errors_only(Workspace(data_dir).load("hostile"))  # validation passes: it is a runtime matter
    manager = {"acting_as": "engineering-manager"}  # designer, deployer and operator
    at = run("pages/4_Deployments.py", {**manager, "design": "hostile"})
    at.button(key="deploy_button").click().run()
    assert not at.exception and any("Deployed hostile as version 1" in s.value for s in at.success)
    at = run("pages/3_Tasks.py", manager)
    at.selectbox(key="tasks_design").set_value("hostile").run()
    at.number_input(key="tasks_var:hostile:base").set_value(10)
    at.number_input(key="tasks_var:hostile:exponent").set_value(10**9)
    began = time.monotonic()
    at.button(key="tasks_start_button:hostile").click().run()
    assert time.monotonic() - began < 30 and not at.exception  # limited, not a minute of CPU
    check = Engine(db_url(data_dir), principal=Principal.system())
    (iid,) = check.instances(definition="hostile")["id"]
    view = check.instance(iid)
    assert view.status == "running" and view.active_nodes == ["big"]
    (incident,) = view.incidents
    assert "has too many digits (limit max_int_digits" in incident["error"]
    at = run("pages/6_Instance.py", {**manager, "instance_id": iid})
    assert not at.exception
    shown = [m.value for m in at.markdown if "Incident at **Big**" in m.value]  # the node in words
    assert shown and "condition of flow 'large_path' failed" in shown[0] and "max_int_digits" in shown[0]
    page = " ".join(str(e.value) for e in [*at.markdown, *at.error, *at.warning, *at.info] if hasattr(e, "value"))
    assert "Traceback" not in page and "File \"" not in page and str(Path(__file__).parents[1]) not in page
    for frame in (d.value for d in at.dataframe):  # the incidents tab too: the traceback stays in the database
        text = frame.to_string()
        assert "traceback" not in frame.columns and "Traceback" not in text and ".py\"" not in text
    assert any("incident" in frame.columns.tolist() or "error" in frame.columns for frame in (d.value for d in
                                                                                                at.dataframe))
    assert not run("pages/3_Tasks.py", manager).exception  # still answering


# --- in a browser --------------------------------------------------------------------------------------

@pytest.fixture
def served_production(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    with serve_app({"WAOOAW_MODE": "production", "WAOOAW_DATA_DIR": str(data), "WAOOAW_WORKER": "embedded"}) as url:
        yield url, data


def test_sign_in_in_a_browser(served_production: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, data = served_production
    data.mkdir(parents=True, exist_ok=True)
    store = UserStore(db_url(data))
    admin = store.create_first_admin("root", PASSWORD)
    store.add_user(admin, "ada", PASSWORD, groups=["marketing"], roles=["operator"])
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            page.goto(url + "/Tasks")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            expect(page.get_by_text("Inbox of")).to_have_count(0)
            page.get_by_role("textbox", name="User name").fill("ada")
            page.get_by_role("textbox", name="Password").fill("not her password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
            page.screenshot(path=str(tmp_path / "sign-in-refused.png"))
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Inbox of ada")).to_be_visible()
            sidebar = page.locator('[data-testid="stSidebar"]')
            expect(sidebar.get_by_text(re.compile("Signed in as"))).to_be_visible()
            page.screenshot(path=str(tmp_path / "signed-in.png"))
            assert "Traceback" not in page.content() and str(data) not in page.content()
        finally:
            browser.close()


def test_a_demo_deploy_refusal_offers_to_act_as_a_deployer(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default persona (marketing-lead) may not deploy: the refusal names who may and one click on "Act as
    Engineering lead" switches persona (the sidebar follows), after which Deploy works."""
    monkeypatch.setenv("WAOOAW_MODE", "demo")
    Workspace(data_dir).new_from_template("pr_review", "review")
    at = run("pages/4_Deployments.py")
    at.sidebar.selectbox(key="acting_as_pick").set_value("marketing-lead").run()
    at.button(key="deploy_button").click().run()
    assert any(e.value.startswith("Not permitted") for e in at.error)
    offered = {b.key for b in at.button if b.key and b.key.startswith("deploy_as_")}
    assert offered == {"deploy_as_engineering-manager", "deploy_as_cto"}
    at.button(key="deploy_as_engineering-manager").click().run()
    assert at.sidebar.selectbox(key="acting_as_pick").value == "engineering-manager"
    at.button(key="deploy_button").click().run()
    assert not at.exception and not at.error
    assert "review" in Engine(db_url(data_dir), principal=Principal.system()).definitions()
