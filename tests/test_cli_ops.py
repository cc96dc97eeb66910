"""``waooaw`` as an operator uses it: --version, -h, completion, clean errors with exit codes, and the
engine commands against a database URL (--db / WAOOAW_DB) with table and JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine
from engine.cli import EXIT_DATABASE, EXIT_INPUT, EXIT_REFUSED, EXIT_USAGE, app
from engine.model import ProcessBuilder, save

runner = CliRunner()
CALLS: list[int] = []


def flaky(inputs, context):
    """Fails until told otherwise (the test flips it), to make an incident and retry it."""
    CALLS.append(context.attempt)
    if len(CALLS) <= 1:
        raise RuntimeError("upstream is down")
    return {}


def run(*args: str, db: Path | None = None) -> tuple[int, str, str]:
    env = {"WAOOAW_DB": f"sqlite:///{db}"} if db is not None else {}
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_version_help_and_completion() -> None:
    from importlib.metadata import version

    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"waooaw {version('waooaw')}"
    code, out, _ = run("-h")
    assert code == 0 and "--install-completion" in out and "Exit codes" in out
    for command in ("deploy", "start", "instances", "instance", "tasks", "complete", "correlate", "incidents",
                    "retry", "cancel"):
        assert command in out
    code, out, _ = run("start", "-h")
    assert code == 0 and "WAOOAW_DB" in out and "--output" in out


def test_deploy_start_complete_inspect(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    code, out, err = run("deploy", "marketing_campaign", "pr_review", "-o", "json", db=db)
    assert code == 0, err
    assert [(d["name"], d["version"]) for d in json.loads(out)] == [("marketing_campaign", 1), ("pr_review", 1)]
    code, out, _ = run("start", "marketing_campaign", "--var", "campaign=spring", "--key", "C-1", "--run",
                       "-o", "json", db=db)
    started = json.loads(out)
    assert code == 0 and started["status"] == "running" and started["active_nodes"] == ["approval"]
    code, out, _ = run("tasks", "-o", "json", db=db)
    (task,) = json.loads(out)
    assert task["node_id"] == "approval" and task["instance_id"] == started["id"]
    code, out, _ = run("tasks", db=db)  # the table: a header and one row
    assert out.splitlines()[0].split()[:3] == ["id", "instance_id", "node_id"] and len(out.splitlines()) == 2
    code, out, err = run("complete", str(task["id"]), "--var", "approved=true", "--as", "marketing-lead", "--run",
                         db=db)
    assert code == 0 and f"completed task {task['id']}" in out, err
    code, out, _ = run("instance", started["id"], "-o", "json", db=db)
    view = json.loads(out)
    assert view["status"] == "completed" and view["variables"]["approved"] is True
    assert {"approved", "campaign", "launched"} <= {h["name"] for h in view["history"]}
    code, out, _ = run("instance", started["id"], db=db)
    assert code == 0 and "completed" in out.splitlines()[0] and "history:" in out
    code, out, _ = run("instances", "--status", "completed", "-o", "json", db=db)
    assert [i["id"] for i in json.loads(out)] == [started["id"]]


def test_correlate_and_cancel(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    run("deploy", "incident_response", db=db)
    code, out, _ = run("start", "incident_response", "--vars", '{"incident_id": "INC-7", "summary": "db down"}',
                       "--run", db=db)
    first = out.split()[0]
    code, out, _ = run("tasks", "--instance", first, "-o", "json", db=db)
    (ack,) = json.loads(out)
    code, _, err = run("complete", str(ack["id"]), "--as", "oncall", db=db)  # not in on-call: refused
    assert code != 0 and "task.complete" in err and "'oncall' is in no groups" in err
    assert run("complete", str(ack["id"]), "--as", "oncall", "--group", "on-call", "--run", db=db)[0] == 0
    code, out, err = run("correlate", "incident.resolved", "--key", "INC-7", "--var", "fix=restart", "--run", db=db)
    assert code == 0 and first in out, err
    assert json.loads(run("instance", first, "-o", "json", db=db)[1])["status"] == "completed"
    second = run("start", "incident_response", "--vars", '{"incident_id": "INC-8", "summary": "disk"}', db=db)[1]
    code, out, _ = run("cancel", second.strip(), db=db)
    assert code == 0 and json.loads(run("instance", second.strip(), "-o", "json", db=db)[1])["status"] == "cancelled"
    code, _, err = run("cancel", second.strip(), db=db)  # not running any more: refused, nothing written
    assert code == EXIT_REFUSED and err.strip().endswith("only a running instance can be cancelled")


def test_incident_and_retry(tmp_path: Path) -> None:
    CALLS.clear()
    engine.register("tests.flaky", flaky)
    b = ProcessBuilder("fragile")
    b.start().service("call", agent="tests.flaky", retry={"attempts": 1}).end("done")
    design = save(b.build(), tmp_path / "fragile.yaml")
    db = tmp_path / "ops.db"
    run("deploy", design, db=db)
    instance_id = run("start", "fragile", "--run", db=db)[1].split()[0]
    code, out, _ = run("incidents", "-o", "json", db=db)
    (incident,) = json.loads(out)
    assert incident["instance_id"] == instance_id and "upstream is down" in incident["error"]
    assert "upstream is down" in run("incidents", db=db)[1]
    code, out, _ = run("retry", str(incident["id"]), "--run", db=db)
    assert code == 0
    assert json.loads(run("instance", instance_id, "-o", "json", db=db)[1])["status"] == "completed"
    assert run("incidents", "-o", "json", db=db)[1].strip() == "[]"
    code, _, err = run("retry", str(incident["id"]), db=db)
    assert code == EXIT_REFUSED and err.startswith("error: no open incident")


@pytest.mark.parametrize(("args", "code", "says"), [
    (("complete", "99"), EXIT_REFUSED, "error: no open human task 99"),
    (("start", "nope"), EXIT_REFUSED, "error: no deployed definition 'nope'"),
    (("instance", "nope"), EXIT_REFUSED, "error: no instance 'nope'"),
    (("correlate", "nobody.listens"), EXIT_REFUSED, "error: no instance waits for message 'nobody.listens'"),
    (("simulate", "nope"), EXIT_INPUT, "error: nope: neither a file nor a design name"),
    (("deploy", "nope.yaml"), EXIT_INPUT, "cannot read nope.yaml"),
    (("start", "x", "--var", "novalue"), EXIT_USAGE, "'novalue' is not NAME=VALUE"),
    (("start", "x", "--vars", "[1]"), EXIT_USAGE, "must be a JSON object"),
    (("instances", "--db", "nosuch://x"), EXIT_DATABASE, "error: unknown kind of database in nosuch://x"),
    (("instances", "--db", "sqlite:////no/such/dir/x.db"), EXIT_DATABASE, "the folder /no/such/dir does not exist"),
    (("import", "missing.bpmn"), EXIT_USAGE, "cannot read missing.bpmn"),
    (("frobnicate",), EXIT_USAGE, "No such command"),
])
def test_user_mistakes_are_one_line_and_a_code(tmp_path: Path, args: tuple[str, ...], code: int, says: str) -> None:
    got, out, err = run(*args, db=tmp_path / "ops.db")
    assert got == code, (out, err)
    assert says in err and "Traceback" not in out + err


def test_a_start_with_wrong_types_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    run("deploy", "pr_review", db=db)
    code, _, err = run("start", "pr_review", "--var", "pr_number=forty-two", db=db)
    assert code == EXIT_REFUSED and "'pr_number' must be integer" in err
    assert run("instances", "-o", "json", db=db)[1].strip() == "[]"


def test_installed_command_has_no_traceback_for_a_user_mistake(tmp_path: Path) -> None:
    """The real entry point (not the test runner): exit code and stderr as a shell sees them."""
    script = Path(sys.executable).with_name("waooaw")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]
    done = subprocess.run([*command, "simulate", "no_such_design"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == EXIT_INPUT and done.stdout == ""
    assert done.stderr.startswith("error: no_such_design: neither a file nor a design name (designs: ")
    assert "Traceback" not in done.stderr
