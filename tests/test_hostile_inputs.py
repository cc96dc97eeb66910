"""Hostile and malformed inputs (issue 14): each refused with the project's own one-line error, within bounds,
and, for the engine, with nothing written (row counts before and after).

The loader and expression probes (tests/hostile_probes.py) run in a child process with an address-space limit
(``RLIMIT_AS``), so a regression ends as a failed test, not a machine out of memory. Stated bounds: the child
stays under ``MEMORY_MB`` of address space, and each probe takes under ``SECONDS`` (generous: the machine is
shared; before the fix the billion-laughs file took 25-70 s and 2.6 GB, the CPU bomb 35-90 s).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from engine.errors import DatabaseUnavailable, EngineError, FormError, WaooawError
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from hostile_probes import PROBES  # noqa: E402

MEMORY_MB = 1500
SECONDS = 20.0
TABLES = ("wf_definitions", "wf_instances", "wf_tokens", "wf_variables", "wf_variable_history", "wf_jobs",
          "wf_human_tasks", "wf_subscriptions", "wf_incidents", "wf_task_audit")


def _limit_memory() -> None:
    limit = MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.fixture(scope="module")
def probe_results() -> dict[str, dict[str, Any]]:
    """Every probe, run once in one child process under the address-space limit."""
    proc = subprocess.run([sys.executable, str(TESTS / "hostile_probes.py"), *PROBES], capture_output=True,
                          text=True, preexec_fn=_limit_memory, timeout=SECONDS * len(PROBES), cwd=TESTS.parent)
    results = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        results[record["name"]] = record
    missing = [name for name in PROBES if name not in results]
    assert not missing, (f"the probe process died at {missing[0]!r} (exit {proc.returncode}; "
                         f"address space {MEMORY_MB} MiB): {proc.stderr[-2000:]}")
    return results


@pytest.mark.parametrize("name", list(PROBES))
def test_hostile_input_is_refused_with_one_line_within_bounds(name: str, probe_results: dict[str, Any]) -> None:
    record = probe_results[name]
    expected = PROBES[name][1]
    assert record["raised"] is not None, f"{name}: accepted"
    assert record["project"], f"{name}: {record['raised']} (not the project's own error): {record['message']}"
    message = record["message"]
    assert expected.lower() in message.lower(), message
    assert "Traceback" not in message and all(len(line) < 600 for line in message.splitlines()), message
    assert len(message.splitlines()) <= 2, message  # one problem a line; at most a second finding
    assert record["seconds"] < SECONDS, f"{name} took {record['seconds']} s"


# --- the engine: refused, nothing written -----------------------------------------------------------------


def _rows(engine: Engine) -> dict[str, int]:
    with engine.db.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() for table in TABLES}


def _flow() -> Any:
    b = ProcessBuilder("hostile", variables={"n": int})
    b.start().user("review", title="Review").end()
    return b.build()


class _Odd:
    def __str__(self) -> str:
        return "odd"


def _start(**kwargs: Any) -> Any:
    return lambda engine: engine.start("hostile", **kwargs)


ENGINE_CASES: dict[str, tuple[Any, type[WaooawError], str]] = {
    "business-key-nul": (_start(business_key="a\x00b"), EngineError, "control character"),
    "business-key-too-long": (_start(business_key="k" * 10_000), WaooawError, "max_key_length"),
    "business-key-empty": (_start(business_key="  "), EngineError, "empty"),
    "variable-set": (_start(variables={"n": 1, "extra": {1, 2}}), EngineError, "set"),
    "variable-bytes": (lambda e: e.start("free", {"blob": b"\x00\xff"}), EngineError, "bytes"),
    "variable-object": (lambda e: e.start("free", {"thing": _Odd()}), EngineError, "not JSON-representable"),
    "variable-nan": (lambda e: e.start("free", {"x": float("nan")}), EngineError, "nan"),
    "variable-non-text-key": (lambda e: e.start("free", {"d": {1: "a"}}), EngineError, "not text"),
    "variable-too-large": (lambda e: e.start("free", {"big": "x" * 2_000_000}), EngineError, "max_variable_bytes"),
    "variable-too-deep": (lambda e: e.start("free", {"deep": _deep(200)}), EngineError, "max_nesting_depth"),
    "variable-name-nul": (lambda e: e.start("free", {"a\x00b": 1}), EngineError, "control character"),
    "variable-name-empty": (lambda e: e.start("free", {"": 1}), EngineError, "empty"),
    "message-name-nul": (lambda e: e.correlate("m\x00", "k"), EngineError, "control character"),
    "correlation-key-too-long": (lambda e: e.correlate("m", "k" * 1_000), WaooawError, "max_key_length"),
    "deploy-cpu-bomb": (lambda e: e.deploy(_bomb()), WaooawError, "max_int_digits"),
}


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _bomb() -> Any:
    from hostile_probes import design

    from engine.model.serialize import from_yaml

    return from_yaml(design(condition="3999999**3999999 > 0"), "bomb.yaml")


@pytest.fixture
def hostile_engine(db_url: str) -> Engine:
    engine = Engine(db_url, principal=Principal.system())
    engine.deploy(_flow())
    free = ProcessBuilder("free")  # declares no variables: any storable value goes
    free.start().user("look", title="Look").end()
    engine.deploy(free.build())
    engine.start("hostile", {"n": 1}, business_key="ok-key")
    return engine


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_hostile_engine_input_is_refused_and_writes_nothing(case: str, hostile_engine: Engine) -> None:
    action, error, expected = ENGINE_CASES[case]
    before = _rows(hostile_engine)
    with pytest.raises(error) as caught:
        action(hostile_engine)
    message = str(caught.value)
    assert expected.lower() in message.lower() and len(message.splitlines()) == 1, message
    assert _rows(hostile_engine) == before


def test_task_actions_with_bad_names_or_values_write_nothing(hostile_engine: Engine) -> None:
    task = hostile_engine.tasks()[0]["id"]
    before = _rows(hostile_engine)
    for action, expected in [
        (lambda: hostile_engine.delegate(task, "", actor=None), "empty"),
        (lambda: hostile_engine.delegate(task, "bob\x00", actor=None), "control character"),
        (lambda: hostile_engine.claim(task, "u" * 1_000), "max_key_length"),
        (lambda: hostile_engine.complete_task(task, {"undeclared": 1}), "not a declared variable"),
        (lambda: hostile_engine.complete_task(task, {"n": "three"}), "must be integer"),
        (lambda: hostile_engine.complete_task(task, {"n": {1, 2}}), "not JSON-representable"),
    ]:
        with pytest.raises(WaooawError, match=expected):
            action()
        assert _rows(hostile_engine) == before
    hostile_engine.complete_task(task, {"n": 3})  # the well-formed completion still works
    assert hostile_engine.tasks() == []


def test_form_errors_are_form_errors(hostile_engine: Engine) -> None:
    task = hostile_engine.tasks()[0]["id"]
    with pytest.raises(FormError):
        hostile_engine.complete_task(task, {"undeclared": 1})


# --- start-up: every problem is DatabaseUnavailable, one line, naming the problem --------------------------


def _not_a_database(tmp: Path) -> str:
    path = tmp / "notes.db"
    path.write_text("these are notes, not a database\n")
    return f"sqlite:///{path}"


@pytest.mark.parametrize(("url", "expected"), [
    (lambda tmp: f"sqlite:///{tmp}/no/such/folder/x.db", "does not exist"),
    (lambda tmp: f"sqlite:///{tmp}", "is a folder"),
    (_not_a_database, "not a SQLite database"),
    (lambda tmp: "not a url", "malformed database URL"),
    (lambda tmp: "nosuchdb://x/y", "unknown kind of database"),
    (lambda tmp: "mysql://user@localhost/x", "driver"),
    (lambda tmp: "postgresql://user:secret@127.0.0.1:1/x", "refused"),
    (lambda tmp: "postgresql://user@no-such-host.invalid/x", "no-such-host.invalid"),
])
def test_start_up_problems_are_one_line_project_errors(url: Any, expected: str, tmp_path: Path) -> None:
    target = url(tmp_path)
    with pytest.raises(DatabaseUnavailable) as caught:
        Engine(target, principal=Principal.system())
    message = str(caught.value)
    assert expected in message and len(message.splitlines()) == 1, message
    assert "secret" not in message  # the password is never shown


def test_missing_postgres_database_is_named(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/waooaw_no_such_database"
    with pytest.raises(DatabaseUnavailable, match=r"waooaw_no_such_database.*does not exist"):
        Engine(url, principal=Principal.system())


def test_worker_start_up_problem_is_one_line_and_exit_1(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "engine.runtime.worker", "--db", f"sqlite:///{tmp_path}/no/x.db",
                           "--max-idle", "1"], capture_output=True, text=True, timeout=120, cwd=TESTS.parent,
                          preexec_fn=_limit_memory)
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], lines


def test_readme_states_every_limit_as_the_code_does() -> None:
    from engine.limits import table

    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    assert table() in readme  # README's table is the one engine/limits.py makes: they cannot drift apart


def test_a_limit_set_in_the_environment_is_used_and_a_bad_one_is_named() -> None:
    from engine.errors import ConfigError
    from engine.limits import Limits

    assert Limits.from_env({"WAOOAW_MAX_YAML_NODES": "1_000"}).max_yaml_nodes == 1000
    with pytest.raises(ConfigError, match="WAOOAW_MAX_FILE_BYTES"):
        Limits.from_env({"WAOOAW_MAX_FILE_BYTES": "lots"})


def _named(definition_id: str, message: str = "ping") -> Any:
    b = ProcessBuilder(definition_id)
    b.start().receive("wait", message=message).end("done")
    return b.build()


def test_ids_and_names_at_the_limit_work_on_both_databases_and_beyond_it_are_refused(db_url: str) -> None:
    """One rule on SQLite and PostgreSQL: an id of max_id_length characters and a message name of max_key_length
    deploy, start, wait and correlate; one more is refused before anything is written (even when the model's
    checks are bypassed: deploy re-checks that what it stores loads back)."""
    from engine import limits

    engine = Engine(db_url, principal=Principal.system())
    longest, name = "d" * limits.current().max_id_length, "m" * limits.current().max_key_length
    engine.deploy(_named(longest, name))
    instance_id = engine.start(longest, business_key="k" * limits.current().max_key_length)
    assert engine.correlate(name) == instance_id and engine.instance(instance_id).status == "completed"
    assert engine.definitions() == [longest]
    before = _rows(engine)
    with pytest.raises(WaooawError, match="max_id_length"):
        _named(longest + "d")
    bypassed = _named("short").model_copy(update={"id": longest + "d"})  # no validation on model_copy
    with pytest.raises(WaooawError, match="max_id_length"):
        engine.deploy(bypassed)
    assert _rows(engine) == before
    with limits.override(max_id_length=300):  # the limit is configurable, the same for every path
        engine.deploy(_named("e" * 300))
        assert "e" * 300 in engine.definitions()


@pytest.mark.parametrize("limit", [10, 40, 100_000])
def test_the_size_limit_holds_for_scalars_checked_without_serialising_them(limit: int) -> None:
    """Short scalars skip the JSON size check (engine.runtime.plain._surely_small); at every limit the verdict is
    the one the JSON text gives: escaped and non-BMP text, long integers, floats."""
    from engine import limits
    from engine.runtime.plain import value_problem

    values: list[Any] = ["", "x", "x" * 8, "é" * 3, '"\\' * 9, "x" * (limit - 2), "x" * (limit - 1),
                         "\U0001F600" * 3, "\U0001F600" * 6, "\U0001F600" * 10_000,  # 12 bytes each as JSON
                         7, -(10**30), -(2**1024), 2**1025, 1.5e300, True, None]
    with limits.override(max_variable_bytes=limit):
        for value in values:
            too_big = len(json.dumps(value)) > limit
            assert (value_problem(value) is not None) == too_big, (limit, str(value)[:20])
