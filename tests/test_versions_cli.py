"""``waooaw rollout``, ``waooaw migrate`` (dry run, then --apply) and ``waooaw replay`` against a database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from engine.cli import EXIT_USAGE, app
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal

runner = CliRunner()


def approval(task: str) -> Any:
    b = ProcessBuilder("expense_cli", variables={"amount": int})
    b.start().user(task, task.title(), assignee="lead").end("done")
    return b.build()


def run(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"WAOOAW_DB": f"sqlite:///{db}"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout + result.stderr


def test_rollout_migrate_and_replay_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    engine = Engine(f"sqlite:///{db}", principal=Principal.system())
    engine.deploy(approval("approve"))
    engine.deploy(approval("review"))
    waiting = [engine.start("expense_cli", {"amount": i}, version=1) for i in range(2)]
    done = engine.start("expense_cli", {"amount": 5}, version=1)
    engine.complete_task(engine.tasks(instance_id=done)[0]["id"], {}, actor="lead")
    engine.run_until_idle()

    code, out = run(db, "rollout", "expense_cli")
    assert code == 0 and "no rollout: new instances get the latest version" in out
    code, out = run(db, "rollout", "expense_cli", "1=90", "2=10", "--reason", "canary", "--as", "ada")
    assert code == 0 and "expense_cli: v2 10%, v1 90%" in out and "canary" in out
    code, out = run(db, "rollout", "expense_cli", "-o", "json")
    assert json.loads(out)["weights"] == {"1": 90.0, "2": 10.0}
    code, out = run(db, "rollout", "expense_cli", "1=x")
    assert code == EXIT_USAGE and "'1=x' is not VERSION=WEIGHT" in out

    code, out = run(db, "migrate", "expense_cli", "1", "2")
    assert code == 0 and "0 can migrate, 2 refused" in out and "has no counterpart in v2" in out
    code, out = run(db, "migrate", "expense_cli", "1", "2", "--map", "approve=review", "-o", "json")
    plan = json.loads(out)
    assert plan["dry_run"] and {r["action"] for r in plan["plan"]} == {"migrate"}
    assert {engine.instance(i).version for i in waiting} == {1}  # a dry run writes nothing
    code, out = run(db, "migrate", "expense_cli", "1", "2", "--map", "approve=review", "--apply", "--as", "ops")
    assert code == 0 and "migrated 2, refused 0" in out
    assert {engine.instance(i).version for i in waiting} == {2}

    code, out = run(db, "replay", "expense_cli", "1", "2", "-o", "json")
    report = json.loads(out)
    assert report["summary"] == {"diverged": 1}
    assert report["instances"][0]["instance_id"] == done and report["instances"][0]["diverges_at"] == "approve"
