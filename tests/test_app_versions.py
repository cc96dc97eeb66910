"""The Deployments page's versions panel through AppTest: rollout sliders, A/B table, migration dry run and
migration, replay report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.versions_view import parse_mapping
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal
from engine.versions import get_rollout, migrations, rollout_history

APP = Path(__file__).resolve().parents[1] / "app"


def approval(task: str) -> Any:
    b = ProcessBuilder("expense_ui", variables={"amount": int})
    b.start().user(task, task.title(), assignee="lead").end("done")
    return b.build()


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path))
    for name in ("WAOOAW_DB", "WAOOAW_MODE", "WAOOAW_WORKER"):
        monkeypatch.delenv(name, raising=False)
    engine = Engine(f"sqlite:///{tmp_path / 'waooaw.db'}", principal=Principal.system())
    engine.deploy(approval("approve"))
    engine.deploy(approval("review"))
    return engine


def frame_with(at: AppTest, column: str) -> Any:
    """The page's table that has ``column`` (AppTest does not keep a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_parse_mapping_names_the_bad_line() -> None:
    assert parse_mapping("approve = review\n# a comment\n\nx=y") == {"approve": "review", "x": "y"}
    with pytest.raises(ValueError, match="line 2: write 'old_node = new_node'"):
        parse_mapping("a = b\nnonsense")


def test_rollout_migration_and_replay_from_the_page(check: Engine) -> None:
    running = [check.start("expense_ui", {"amount": i}, version=1) for i in range(3)]
    finished = check.start("expense_ui", {"amount": 9}, version=1)
    (task,) = check.tasks(instance_id=finished)
    check.complete_task(task["id"], {}, actor="lead")
    check.run_until_idle()

    at = AppTest.from_file(str(APP / "pages/4_Deployments.py"), default_timeout=60)
    at.session_state["acting_as"] = "engineering-manager"  # a deployer: rollout and migration need the role
    at.run()
    at.selectbox(key="diff_name").set_value("expense_ui").run()
    assert not at.exception and not at.error
    at.slider(key="weight:expense_ui:1").set_value(90)
    at.slider(key="weight:expense_ui:2").set_value(10)
    at.text_input(key="rollout_reason:expense_ui").input("canary")
    next(b for b in at.button if b.label == "Apply rollout").click().run()
    assert not at.exception and not at.error
    policy = get_rollout(check, "expense_ui")
    assert policy is not None and policy.weights == {1: 90.0, 2: 10.0}
    assert rollout_history(check, "expense_ui")["reason"].iloc[-1] == "canary"
    assert any("Rollout of expense_ui set" in s.value for s in at.success)

    at.text_area(key="mig_map:expense_ui").input("approve = review").run()
    plan = frame_with(at, "action")
    assert set(plan["instance_id"]) == set(running) and set(plan["action"]) == {"migrate"}
    at.button(key="mig_go:expense_ui").click().run()
    assert not at.exception and not at.error
    assert {check.instance(i).version for i in running} == {2}
    assert set(migrations(check)["instance_id"]) == set(running)

    at.button(key="rep_go:expense_ui").click().run()
    assert not at.exception
    report = frame_with(at, "diverges_at")
    assert list(report["instance_id"]) == [finished] and list(report["result"]) == ["diverged"]
