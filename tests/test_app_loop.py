"""The app's loop through AppTest: deploy from a saved design, runs, an instance's page (history, incidents,
send message), the clock control, the inbox when someone else acts; and that no failing UI action changes the
database. Plus the logic modules behind those pages (app/operations.py, app/sim_view.py, app/runtime.py)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import designs
from app.config import load as load_config
from app.engine_session import countdown, start_inputs
from app.operations import (
    RunFilter,
    deploy_saved,
    node_diff,
    observed_runs,
    page_of_runs,
    parse_payload,
    versions,
)
from app.runtime import AppRuntime
from app.sim_view import dominant_line, kpi_cards, predicted_vs_observed, starting_scenario, what_if
from app.workspace import Workspace
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal
from simulator import load_scenario, simulate
from simulator.scenario import from_dict as scenario_from_dict

APP = Path(__file__).resolve().parents[1] / "app"


def always_fails(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """An agent that never works (the retry test)."""
    raise RuntimeError("the ticket system is down")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAOOAW_DB", raising=False)
    monkeypatch.delenv("WAOOAW_MODE", raising=False)
    monkeypatch.delenv("WAOOAW_WORKER", raising=False)
    return tmp_path


@pytest.fixture
def db_file(data_dir: Path) -> Path:
    return data_dir / "waooaw.db"


@pytest.fixture
def check(db_file: Path, data_dir: Path) -> Iterator[Engine]:
    """A second engine on the app's database, for setting up and checking (its clock is the wall clock)."""
    yield Engine(f"sqlite:///{db_file}", principal=Principal.system())


def run(page: str, state: dict[str, Any] | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(APP / page), default_timeout=timeout)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at.run()


def snapshot(db_file: Path) -> str:
    """Every row of every table, hashed: two equal snapshots mean nothing was written."""
    conn = sqlite3.connect(db_file)
    try:
        digest = hashlib.sha256()
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
            if table in ("app_virtual_clock", "wf_audit"):  # the audit trail records every attempt, by design
                continue
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                digest.update(repr(row).encode())
        return digest.hexdigest()
    finally:
        conn.close()


def until(condition: Any, timeout: float = 30) -> Any:
    """The first truthy value of ``condition()``: the app's worker thread runs jobs on its own."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the embedded worker did not get there"
        time.sleep(0.02)
    return value


def messages(at: AppTest) -> str:
    return "\n".join([e.value for e in at.error] + [w.value for w in at.warning] + [s.value for s in at.success])


# --- the logic modules ------------------------------------------------------------------------------------


def test_start_form_asks_only_for_inputs() -> None:
    marketing = designs.load_design("marketing_campaign")
    assert [d.name for d in start_inputs(marketing)] == ["campaign"]  # not the form's "approved"
    incident = designs.load_design("incident_response")
    assert [d.name for d in start_inputs(incident)] == ["incident_id", "summary"]  # severity: triage's output
    forced = incident.model_copy(update={"variables": [v.model_copy(update={"input": v.name == "severity"})
                                                       for v in incident.variables]})
    assert [d.name for d in start_inputs(forced)] == ["severity"]


def test_numbered_values_for_many_instances() -> None:
    from app.widgets import numbered

    assert numbered({"email": "lead{n}@x", "n": 3}, 7) == {"email": "lead7@x", "n": 3}


def test_countdown_reads_like_a_person() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert countdown(now + timedelta(hours=3, minutes=12), now) == "due in 3 h 12 min"
    assert countdown(now - timedelta(minutes=25), now) == "overdue by 25 min"
    assert countdown(now + timedelta(days=2, hours=1), now) == "due in 2 d 1 h"
    assert countdown(None, now) == ""


def test_deploy_saved_refuses_an_invalid_design_and_versions_follow_content(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}", principal=Principal.system())
    ws.new_from_template("pr_review", "review")
    broken = ws.text("review").replace("target: create_issue\n", "target: nowhere\n")
    ws.save("review", broken)
    refused = deploy_saved(engine, ws, "review")
    assert refused.refused and any(p.where == "approved__create_issue" and p.line for p in refused.problems)
    assert engine.definitions() == []
    ws.new_from_template("pr_review", "review2")
    first = deploy_saved(engine, ws, "review2")
    again = deploy_saved(engine, ws, "review2")
    assert first.new and not again.new and again.definition is not None and again.definition.version == 1
    ws.save("review2", ws.load("review2").model_copy(update={"name": "Reviewed"}))
    changed = ws.text("review2").replace("name: WowVision validate", "name: Vision check")
    ws.save("review2", changed)
    second = deploy_saved(engine, ws, "review2")
    assert second.new and second.definition is not None and second.definition.version == 2
    table = versions(engine, "review2")
    assert list(table["version"]) == [2, 1] and list(table["new instances"]) == [1.0, 0.0]
    from engine.versions import set_rollout

    set_rollout(engine, "review2", {1: 90, 2: 10}, actor="engineering-manager", reason="canary")
    assert list(versions(engine, "review2")["new instances"]) == [0.1, 0.9]
    diff = node_diff(engine.definition("review2", 1), engine.definition("review2", 2))
    assert list(diff["element"]) == ["wowvision_validate"] and diff.loc[0, "change"] == "changed"
    assert diff.loc[0, "fields"] == "name"


def test_runs_are_paged_and_counted_in_the_database(tmp_path: Path) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}", principal=Principal.system())
    engine.deploy(designs.load_design("customer_onboarding"))
    engine.start_many("customer_onboarding", [{"email": f"{i}@x"} for i in range(120)],
                      [f"LEAD-{i:03d}" for i in range(120)])
    frame, total = page_of_runs(engine, RunFilter(definition="customer_onboarding"), page=2, size=50)
    assert total == "120" and len(frame) == 20 and list(frame.columns)[:3] == ["id", "definition", "version"]
    frame, total = page_of_runs(engine, RunFilter(business_key="LEAD-011"), size=50)
    assert total == "1" and list(frame["business key"]) == ["LEAD-011"]
    assert page_of_runs(engine, RunFilter(status="completed"))[1] == "0"
    assert page_of_runs(engine, RunFilter(started_from=date(2000, 1, 1), started_to=date(2000, 1, 2)))[1] == "0"
    today = frame.loc[0, "started"].date()
    assert page_of_runs(engine, RunFilter(started_from=today, started_to=today))[1] == "120"
    assert page_of_runs(engine, RunFilter(version=7))[1] == "120"  # a version alone is ignored, not an error


def test_parse_payload_says_what_is_wrong() -> None:
    assert parse_payload("") == {} and parse_payload('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="not JSON"):
        parse_payload("{a: 1")
    with pytest.raises(ValueError, match="JSON object"):
        parse_payload("[1]")


@pytest.mark.parametrize("name", designs.names())
def test_a_starting_scenario_is_generated_for_every_design_and_runs(name: str) -> None:
    definition = designs.load_design(name)
    scenario = scenario_from_dict(starting_scenario(definition))
    assert not [p for p in scenario.check(definition) if p.severity == "error"]
    results = simulate(definition, scenario, replications=2)
    assert len(results.cases()) > 0


def test_results_speak_a_managers_language() -> None:
    definition = designs.load_design("customer_onboarding")
    results = simulate(definition, load_scenario(designs.scenario_path("customer_onboarding")), replications=3)
    line = dominant_line(results, definition)
    cards = {c.label: c for c in kpi_cards(results, definition)}
    assert cards["Cycle time (mean)"].value == "7.0 days"
    assert line.startswith("Mean cycle time 7.0 days") and "the 7-day trial timer" in line
    for card in cards.values():  # no negative lower bound
        assert "– -" not in card.interval and not card.interval.startswith("95% interval -")
    b = simulate(definition, load_scenario(designs.scenario_path("customer_onboarding")).replace(
        tasks={}), replications=3)
    table = what_if(results, b)
    assert {"A", "B", "difference", "significant"} <= set(table.columns)


def test_predicted_vs_observed_says_whether_each_value_is_inside() -> None:
    import pandas as pd

    definition = designs.load_design("customer_onboarding")
    results = simulate(definition, load_scenario(designs.scenario_path("customer_onboarding")), replications=2)
    observed = pd.DataFrame({"cycle_time_h": [168.05] * 20, "end_node": ["active"] * 5 + ["churned"] * 15})
    table = predicted_vs_observed(results, observed).set_index("measure")
    assert table.loc["cycle time, median (h)", "inside"]
    assert not table.loc["share ending at nurtured", "inside"]  # none nurtured: far outside
    assert table.loc["share ending at nurtured", "off by"] < 0 and table.loc["cycle time, median (h)", "off by"] == 0
    far = predicted_vs_observed(results, observed.assign(cycle_time_h=24.0)).set_index("measure")
    assert not far.loc["cycle time, median (h)", "inside"]


def test_one_worker_per_sqlite_database(data_dir: Path) -> None:
    config = load_config()
    first = AppRuntime(config, start_worker=False)
    second = AppRuntime(config, start_worker=False)
    try:
        assert first.runs_jobs and not second.runs_jobs
        assert "runs the worker" in second.worker_note and f"pid {__import__('os').getpid()}" in second.worker_note
        assert second.drive() == 0
    finally:
        first.stop()
        second.stop()
    third = AppRuntime(config, start_worker=False)  # the lock is free again
    assert third.runs_jobs
    third.stop()


def test_the_embedded_worker_runs_without_a_page_load(data_dir: Path, check: Engine) -> None:
    import time

    runtime = AppRuntime(load_config(), poll=0.05)
    try:
        instance = check.start("marketing_campaign", {"campaign": "x"})
        deadline = time.monotonic() + 20
        while check.instance(instance).active_nodes != ["approval"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check.instance(instance).active_nodes == ["approval"]  # the content agents ran in the thread
    finally:
        runtime.stop()


def test_observed_runs_of_finished_instances(data_dir: Path) -> None:
    runtime = AppRuntime(load_config(), start_worker=False)
    try:
        engine = runtime.engine
        engine.start_many("customer_onboarding", [{"email": f"{i}@x"} for i in range(5)])
        runtime.drive()
        runtime.move_clock(timedelta(days=8))
        finished, tasks = observed_runs(engine, "customer_onboarding")
        assert len(finished) == 5 and finished["cycle_time_h"].between(167.9, 168.2).all()
        assert set(finished["end_node"]) <= {"active", "nurtured", "churned"} and finished["end_node"].notna().all()
        assert tasks.empty
    finally:
        runtime.stop()


# --- the pages through AppTest ----------------------------------------------------------------------------


def test_every_page_opens_on_a_fresh_data_dir(data_dir: Path) -> None:
    for page in ["Home.py", "pages/2_Simulator.py", "pages/3_Tasks.py", "pages/4_Deployments.py",
                 "pages/5_Runs.py", "pages/6_Instance.py"]:
        at = run(page)
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert any("Engine time" in m.value for m in at.sidebar.markdown), page


def test_deploy_page_refuses_an_invalid_design_and_writes_nothing(data_dir: Path, db_file: Path) -> None:
    ws = Workspace(data_dir)
    ws.new_from_template("pr_review", "review")
    ws.save("review", ws.text("review").replace("target: create_issue\n", "target: nowhere\n"))
    at = run("pages/4_Deployments.py", {"acting_as": "engineering-manager"})  # a deployer
    before = snapshot(db_file)
    at.button(key="deploy_button").click().run()
    assert not at.exception
    assert any("review was not deployed" in e.value for e in at.error)
    problems = at.dataframe[0].value
    assert "approved__create_issue" in set(problems["where"])
    assert snapshot(db_file) == before

    ws.save("review", designs.path("pr_review").read_text())
    at.button(key="deploy_button").click().run()
    assert not at.exception and any("Deployed review as version 1" in s.value for s in at.success)
    assert Engine(f"sqlite:///{db_file}", principal=Principal.system()).definition("review").version == 1


def test_clock_control_fires_a_due_timer(data_dir: Path, check: Engine) -> None:
    at = run("pages/3_Tasks.py")
    at.selectbox(key="tasks_design").set_value("marketing_campaign").run()
    at.text_input(key="tasks_var:marketing_campaign:campaign").input("spring")
    at.button(key="tasks_start_button:marketing_campaign").click().run()
    assert not at.exception and not at.error
    (task,) = check.inbox("marketing-lead")
    assert not task["escalated"]
    assert any("due in 3 h 59 min" in m.value or "due in 4 h" in m.value for m in at.markdown)  # a badge

    at.sidebar.button(key="clock_+4 h").click().run()
    assert not at.exception
    assert any("Clock moved 4.0 h" in s.value for s in at.success)
    (task,) = check.inbox("cto")  # the 4-hour SLA fired: escalated to the CTO
    assert task["escalated"] and not check.inbox("marketing-lead")

    at.sidebar.selectbox(key="acting_as_pick").set_value("cto").run()
    assert any("Escalated]" in m.value and "red-badge" in m.value for m in at.markdown)
    at.radio(key=f"tasks_field:{task['id']}:approved").set_value(True)
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.error
    assert check.instance(task["instance_id"]).status == "completed"


def test_to_the_next_due_timer(data_dir: Path, check: Engine) -> None:
    at = run("pages/3_Tasks.py")
    at.sidebar.button(key="clock_next").click().run()
    assert any("no timer is waiting" in i.value for i in at.info)
    check.deploy(designs.load_design("customer_onboarding"))
    instance = check.start("customer_onboarding", {"email": "a@b"})
    at.run()
    at.sidebar.button(key="clock_next").click().run()
    assert not at.exception
    assert check.instance(instance).status == "completed"  # the 7-day trial timer fired, then the rest ran


def test_instance_page_lists_the_path_and_variable_history(data_dir: Path, check: Engine) -> None:
    runtime_page = run("pages/3_Tasks.py")  # opens the runtime (deploys the library)
    assert not runtime_page.exception
    instance = check.start("marketing_campaign", {"campaign": "spring"}, business_key="C-9")
    at = run("pages/6_Instance.py", {"instance_id": instance})
    assert not at.exception and not at.error
    at.sidebar.button(key="clock_+1 h").click().run()  # runs the agents too
    path = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    assert list(path["node"][:2]) == ["start", "fork"] or path.loc[0, "node"] == "start"
    assert {"create_blog", "create_social", "approval"} <= set(path["node"])  # gateways and events too
    still = path[path["node"] == "approval"]
    assert (still["outcome"] == "").all() and (still["ended"] == "—").all()  # the token is still there
    assert "Approve campaign" in set(path["step"])  # names next to ids
    history = next(d.value for d in at.dataframe if "new_value" in d.value.columns)
    assert "campaign" in set(history["name"])
    assert "penwidth=4" in at.get("graphviz_chart")[0].proto.spec  # the token on the approval


def test_instance_page_path_shows_an_escalation_nothing_caught(data_dir: Path, check: Engine) -> None:
    run("pages/3_Tasks.py")
    b = ProcessBuilder("loose")
    b.start().escalate("shout", "NOBODY").user("after", assignee="ann").end("done")
    check.deploy(b.build())
    instance = check.start("loose")
    at = run("pages/6_Instance.py", {"instance_id": instance})
    assert not at.exception and not at.error
    path = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    rows = list(zip(path["node"], path["kind"], path["outcome"], strict=True))
    assert rows[1:3] == [("shout", "escalation_throw", "completed"), ("shout", "escalation", "uncaught")]


def test_send_message_completes_an_incident_response_instance(data_dir: Path, check: Engine) -> None:
    run("pages/3_Tasks.py")
    instance = check.start("incident_response", {"incident_id": "INC-7", "summary": "site down"})
    task = until(lambda: check.inbox("on-call", ["on-call"]))[0]
    at = run("pages/3_Tasks.py", {"acting_as": "on-call"})
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.error
    at = run("pages/6_Instance.py", {"instance_id": instance})
    assert any("incident.resolved" in m.value for m in at.markdown)
    assert at.text_input(key="msg_name").value == "incident.resolved" and at.text_input(key="msg_key").value == "INC-7"
    at.text_input(key="msg_key").input("INC-8")  # the wrong key: refused, nothing written
    before = snapshot(data_dir / "waooaw.db")
    at.button(key="FormSubmitter:send_message-Send").click().run()
    assert any("no instance waits for message 'incident.resolved'" in e.value for e in at.error)
    assert snapshot(data_dir / "waooaw.db") == before
    at.text_input(key="msg_key").input("INC-7")
    at.button(key="FormSubmitter:send_message-Send").click().run()
    assert not at.exception and not at.error
    assert check.instance(instance).status == "completed"


def test_retrying_an_incident_whose_agent_still_fails_changes_nothing(data_dir: Path, check: Engine) -> None:
    run("pages/3_Tasks.py")
    b = ProcessBuilder("fragile")
    b.start().service("call", agent=always_fails, retry={"attempts": 1}).end()  # a callable: registered
    check.deploy(b.build())
    instance = check.start("fragile")
    at = run("pages/6_Instance.py", {"instance_id": instance})
    at.sidebar.button(key="clock_+1 h").click().run()
    (incident,) = check.incidents()
    assert "ticket system is down" in incident["error"]
    at.run()
    at.button(key=f"retry_{incident['id']}").click().run()  # runs again and fails again
    assert not at.exception
    assert any("failed again (RuntimeError: the ticket system is down" in e.value for e in at.error)
    view = check.instance(instance)
    assert view.status == "running" and view.active_nodes == ["call"]  # where it was, waiting as before
    (again,) = check.incidents()
    assert again["node_id"] == "call" and "ticket system is down" in again["error"]
    at.button(key=f"cancel_{again['id']}").click().run()
    assert check.instance(instance).status == "cancelled"


def test_completing_a_task_someone_else_just_completed(data_dir: Path, db_file: Path, check: Engine) -> None:
    run("pages/3_Tasks.py")
    check.start("incident_response", {"incident_id": "INC-1", "summary": "slow"})
    (task,) = until(lambda: check.inbox("on-call", ["on-call"]))
    at = run("pages/3_Tasks.py", {"acting_as": "on-call"})
    assert at.selectbox(key="tasks_task").value == task["id"]
    check.complete_task(task["id"], {}, actor="engineering-manager", groups=["on-call"])  # someone else, first
    before = snapshot(db_file)
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert not at.exception
    text = messages(at)  # the page sees the task gone before the click reaches the engine: it says who took it
    assert f"Task {task['id']} was completed by engineering-manager" in text and "It left your inbox" in text
    assert not [b for b in at.button if b.key == f"tasks_complete_button:{task['id']}"]  # no second click
    assert at.selectbox(key="tasks_task").value == task["id"]  # still the form you were reading
    assert snapshot(db_file) == before


def test_a_missing_required_field_writes_nothing(data_dir: Path, db_file: Path, check: Engine) -> None:
    run("pages/3_Tasks.py")
    check.start("marketing_campaign", {"campaign": "x"})
    (task,) = until(lambda: check.inbox("marketing-lead"))
    at = run("pages/3_Tasks.py", {"acting_as": "marketing-lead"})
    before = snapshot(db_file)
    at.button(key=f"tasks_complete_button:{task['id']}").click().run()
    assert any("'approved' is required" in e.value for e in at.error)
    assert snapshot(db_file) == before


def test_simulator_page_generates_a_scenario_for_a_saved_design_and_compares(data_dir: Path) -> None:
    ws = Workspace(data_dir)
    ws.new_blank("intake")
    ws.save("intake", designs.path("marketing_campaign").read_text())  # a saved design without a scenario
    at = run("pages/2_Simulator.py", {"design": "intake", "acting_as": "engineer"}, timeout=120)  # a designer:
    # the scenario is saved with the design (rule design.save)
    assert not at.exception
    assert at.selectbox(key="sim_pick").value == ("saved", "intake")
    assert any("no scenario yet" in i.value for i in at.info)
    assert "design: intake" in at.text_area(key="sim_yaml:saved:intake").value
    at.number_input(key="sim_f0:saved:intake:reps").set_value(2).run()
    assert "replications: 2" in at.text_area(key="sim_yaml:saved:intake").value  # no "apply" step
    assert any("Unsaved changes" in c.value for c in at.caption)
    at.button(key="sim_save").click().run()
    assert "replications: 2" in (ws.scenario_text("intake") or "")
    at.button(key="sim_run").click().run()
    assert not at.exception and not at.error
    assert any("cycle time" in m.value for m in at.markdown)
    assert {m.label for m in at.metric} >= {"Cycle time (mean)", "Cases completed"}
    at.button(key="FormSubmitter:sim_whatif_form:saved:intake-Compare A and B").click().run()
    assert not at.exception
    assert any("KPIs differ significantly" in m.value for m in at.markdown)


@pytest.mark.postgres
def test_on_postgresql_the_app_leaves_jobs_to_external_workers(tmp_path: Path, postgres_url: str) -> None:
    from app.config import load as load_config
    from engine.runtime.db import scratch_database

    with scratch_database(postgres_url) as url:
        config = load_config({"WAOOAW_DATA_DIR": str(tmp_path), "WAOOAW_DB": url})
        assert config.worker == "external"
        runtime = AppRuntime(config)
        try:
            assert runtime.thread is None and not runtime.runs_jobs and runtime.drive() == 0
            assert "waooaw worker" in runtime.worker_note
            instance = runtime.engine.start("marketing_campaign", {"campaign": "x"})
            moved = runtime.move_clock(timedelta(hours=1))  # the demo clock still moves, through advance_to
            assert moved.after - moved.before >= timedelta(hours=1)
            assert runtime.engine.instance(instance).active_nodes == ["approval"]
        finally:
            runtime.stop()
            runtime.engine.db.dispose()
            runtime.engine.reader.dispose()


# --- the Simulator page: the form is the run, drafts survive, one cycle time, overload said plainly --------


def expense(group: str = "engineering") -> Any:
    """An expense approval: one person-task (a group of 2 in the starting scenario), a gateway, a payment."""
    from engine.model import FormField

    b = ProcessBuilder("expense_approval", name="Expense approval",
                       variables={"amount": float, "approved": bool})
    gateway = (b.start().user("approve", title="Approve expense", candidate_groups=[group],
                              form=[FormField(name="approved", type="boolean", required=True,
                                              label="Approve this expense?")])
               .exclusive("approved_gw", name="Approved?"))
    gateway.when("approved").service("pay", name="Pay expense", agent="designs.agents:notify").end("paid", name="Paid")
    gateway.otherwise().end("rejected", name="Rejected")
    return b.build()


def test_durations_in_plain_words() -> None:
    from app.sim_view import duration_seconds, duration_words, iso_duration

    assert duration_seconds("30 min") == 1800 and duration_seconds("1 h 30 min") == 5400
    assert duration_seconds("PT2H") == 7200 and duration_seconds("1.5 days") == 129600 and duration_seconds("90") == 90
    assert iso_duration("30 min") == "PT30M" and iso_duration("2 hours") == "PT2H"
    assert [duration_words(v) for v in ("PT30M", "PT2H", "P1DT12H", 45, "P7D")] == [
        "30 min", "2 h", "1.5 days", "45 s", "7 days"]
    with pytest.raises(ValueError, match="plain words"):
        duration_seconds("3 parsecs")


def test_the_form_shows_names_and_reads_back_unchanged() -> None:
    from app.sim_view import compose, duration_words, flow_label, node_label, spec_to_form

    definition = expense()
    data = starting_scenario(definition)
    assert node_label(definition, "approve") == "Approve expense"
    assert {flow_label(definition, f) for f in data["branches"]["approved_gw"]} == {
        "to Pay expense (if approved)", "to Rejected"}
    shown = {t: (spec_to_form(s["duration"])[0], [duration_words(v) for v in spec_to_form(s["duration"])[1]],
                 s.get("pool")) for t, s in data["tasks"].items()}
    form = {"horizon": duration_words(data["horizon"]), "warmup": duration_words(data["warmup"]),
            "drain": duration_words(data["drain"]), "replications": data["replications"], "seed": data["seed"],
            "rate": 2.0, "tasks": shown, "pools": {p: (v["size"], "always") for p, v in data["pools"].items()},
            "branches": data["branches"], "labels": {"approve": node_label(definition, "approve")}}
    assert compose(data, form) == (data, [])  # shown and read back: nothing changes
    form["tasks"]["approve"] = ("fixed", ["2 h"], "engineering")
    changed, problems = compose(data, {**form, "rate": 3.0})
    assert not problems and changed["tasks"]["approve"]["duration"] == "PT2H"
    assert changed["arrivals"]["poisson"]["rate"] == 3.0
    form["tasks"]["approve"] = ("lognormal", ["3 parsecs", "1 h"], "engineering")
    kept, problems = compose(data, form)
    assert kept["tasks"]["approve"] == data["tasks"]["approve"]
    assert problems and problems[0].startswith("Approve expense, mean:")


def test_an_overloaded_run_says_so_with_the_numbers() -> None:
    from app.sim_view import load_report, mean_cycle_time
    from simulator.display import hours_text

    definition = expense()
    data = starting_scenario(definition)
    data["tasks"]["approve"]["duration"] = "PT2H"  # 3 an hour × 2 h for 2 people: ρ = 3
    data["arrivals"]["poisson"]["rate"] = 3
    data["replications"] = 2
    results = simulate(definition, scenario_from_dict(data))
    load = load_report(results)
    assert load.overloaded and load.offered["engineering"] > 2.5
    assert load.open_at_end > 0.3 * load.arrived
    text = load.message()
    assert "Overloaded" in text and f"{load.arrived:,.0f} cases" in text
    assert f"{load.open_at_end:,.0f} were still open" in text
    # one cycle-time figure: the headline, the card and the histogram say the same
    line, card = dominant_line(results, definition), kpi_cards(results, definition)[0]
    assert card.label == "Cycle time (mean)" and card.value == hours_text(mean_cycle_time(results))
    assert line.startswith(f"Mean cycle time {card.value} ")
    from simulator import plots

    legend = [t.get_text() for t in plots.cycle_time_histogram(results).axes[0].get_legend().get_texts()]
    assert legend[0] == f"mean {card.value}"
    light = simulate(definition, scenario_from_dict({**starting_scenario(definition), "replications": 2}))
    assert not load_report(light).overloaded and load_report(light).message() == ""


def test_simulator_runs_what_the_form_shows_and_keeps_the_draft_across_pages(data_dir: Path) -> None:
    ws = Workspace(data_dir)
    ws.new_blank("expense_approval")
    ws.save("expense_approval", expense().to_yaml())
    at = run("pages/2_Simulator.py", {"design": "expense_approval", "acting_as": "engineer"}, timeout=120)
    assert not at.exception
    k = "sim_f0:saved:expense_approval"
    labels = {n.label for n in at.number_input}
    assert {"to Pay expense (if approved)", "to Rejected"} <= labels  # flows by what they lead to, not ids
    assert at.text_input(key=f"{k}:p0:lognormal:approve").value == "30 min"
    at.number_input(key=f"{k}:rate").set_value(3.0).run()
    at.selectbox(key=f"{k}:dist:approve").set_value("fixed").run()
    at.text_input(key=f"{k}:p0:fixed:approve").set_value("2 h").run()
    at.number_input(key=f"{k}:reps").set_value(2).run()
    yaml_text = at.text_area(key="sim_yaml:saved:expense_approval").value
    assert "rate: 3.0" in yaml_text and "duration: PT2H" in yaml_text
    at.switch_page("3_Tasks.py").run()  # leave the page …
    at.switch_page("2_Simulator.py").run()  # … and come back: the draft is still there
    assert not at.exception
    assert at.text_input(key=f"{k}:p0:fixed:approve").value == "2 h"
    assert any("Unsaved changes" in c.value for c in at.caption)
    at.button(key="sim_run").click().run()  # no "apply" step: the run is the form
    assert not at.exception
    assert any("Overloaded" in e.value for e in at.error)
    headline = next(m.value for m in at.markdown if "Mean cycle time" in m.value)
    card = next(m for m in at.metric if m.label == "Cycle time (mean)")
    assert f"Mean cycle time {card.value} " in headline
    at.text_input(key=f"{k}:p0:fixed:approve").set_value("soon").run()
    assert any("Approve expense, value:" in e.value for e in at.error)
    at.button(key="sim_run").click().run()
    assert any("fix the form first" in e.value for e in at.error)


def test_instance_page_links_a_caller_and_the_process_it_called(data_dir: Path, check: Engine) -> None:
    from test_call_activities import approval, purchase

    run("pages/3_Tasks.py")
    check.deploy(approval())
    check.deploy(purchase())
    parent = check.start("purchase", {"total": 5})
    (child,) = check.instance(parent).children
    at = run("pages/6_Instance.py", {"instance_id": parent})
    assert not at.exception and not at.error
    at.button(key=f"open_child_{child}").click().run()
    assert at.text_input(key="instance_pick").value == child
    assert any("approval" in m.value for m in at.markdown)
    at.button(key="open_parent").click().run()
    assert at.text_input(key="instance_pick").value == parent and not at.exception


def test_the_busiest_card_compares_pools_with_pools_and_names_the_task() -> None:
    from sim_support import scenario as make_scenario

    from app.sim_view import kpi_cards
    from engine.model import ProcessBuilder
    from simulator import simulate

    b = ProcessBuilder("busy")
    b.start().user("approve", title="Approve", assignee="clerk").service("send", agent="mailer").end("done")
    definition = b.build()
    results = simulate(definition, make_scenario(
        horizon="PT10H", arrivals={"interval": "PT10M"}, pools={"clerk": {"size": 1}},
        tasks={"approve": {"duration": "PT5M"}, "send": {"duration": "PT2H"}}, replications=2))
    s = results.summary().set_index(["kpi", "subject"])
    assert s.loc[("busy_mean", "mailer"), "mean"] > 1 > s.loc[("utilisation", "clerk"), "mean"]  # 12 at once
    busiest = next(c for c in kpi_cards(results, definition) if c.label.startswith("Busiest"))
    assert busiest.label == "Busiest: clerk" and busiest.value.endswith("%")
