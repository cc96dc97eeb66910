"""The app's store of saved designs (app/workspace.py) and its configuration (app/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import designs
from app.config import ConfigError
from app.config import load as load_config
from app.workspace import Workspace, WorkspaceError
from engine.errors import DefinitionError
from engine.validate import errors_only


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_new_blank_is_a_valid_design_named_by_its_process_id(ws: Workspace) -> None:
    info = ws.new_blank("my_flow")
    definition = ws.load("my_flow")
    assert definition.id == "my_flow" and not errors_only(definition)
    assert info.name == "my_flow" and not info.has_scenario and len(info.content_hash) == 64
    assert [d.name for d in ws.list()] == ["my_flow"]


def test_new_from_template_copies_the_design_and_its_scenario_under_the_new_name(ws: Workspace) -> None:
    info = ws.new_from_template("pr_review", "my_review")
    assert info.has_scenario and info.title == "PR review"
    loaded = ws.load("my_review")
    original = designs.load_design("pr_review")
    assert loaded.id == "my_review" and loaded.nodes == original.nodes and loaded.flows == original.flows
    scenario = ws.scenario_text("my_review")
    assert scenario is not None and "design: my_review" in scenario and "# PR review" in scenario  # comments kept
    with pytest.raises(WorkspaceError, match="no template 'nope'"):
        ws.new_from_template("nope", "x")


def test_save_keeps_yaml_text_as_written_and_rewrites_only_the_id(ws: Workspace) -> None:
    ws.new_blank("flow")
    text = "# my notes\n" + ws.text("flow").replace("id: flow", "id: something_else")
    ws.save("flow", text)
    stored = ws.text("flow")
    assert stored.startswith("# my notes\n") and "id: flow\n" in stored and "something_else" not in stored


def test_save_a_definition_and_the_hash_follows_the_content(ws: Workspace) -> None:
    first = ws.save("ir", designs.load_design("incident_response"))
    assert ws.load("ir").id == "ir"
    again = ws.save("ir", ws.load("ir"))
    assert again.content_hash == first.content_hash  # same content, same hash
    changed = ws.save("ir", ws.load("ir").model_copy(update={"name": "Incidents"}))
    assert changed.content_hash != first.content_hash and changed.title == "Incidents"


def test_a_stale_save_is_refused_and_writes_nothing(ws: Workspace) -> None:
    opened = ws.new_blank("flow")
    someone_else = ws.save("flow", ws.load("flow").model_copy(update={"name": "Theirs"}))
    with pytest.raises(WorkspaceError, match="changed or deleted since you opened it"):
        ws.save("flow", ws.load("flow").model_copy(update={"name": "Mine"}), expected_hash=opened.content_hash)
    assert ws.info("flow").content_hash == someone_else.content_hash
    ws.save("flow", ws.load("flow"), expected_hash=someone_else.content_hash)  # the current hash is fine


def test_a_design_that_does_not_load_is_refused_with_its_line(ws: Workspace) -> None:
    ws.new_blank("flow")
    before = ws.text("flow")
    with pytest.raises(DefinitionError) as caught:
        ws.save("flow", before.replace("kind: end", "kind: ende"))
    assert caught.value.problems[0].line is not None
    assert ws.text("flow") == before
    assert not [p for p in ws.root.iterdir() if p.name.endswith(".tmp")]


def test_save_as_rename_delete(ws: Workspace) -> None:
    ws.new_from_template("incident_response", "ir")
    ws.save_as("ir", "ir_copy")
    assert set(ws.names()) == {"ir", "ir_copy"} and ws.load("ir_copy").id == "ir_copy"
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.save_as("ir", "ir_copy")
    ws.rename("ir_copy", "ir2")
    assert set(ws.names()) == {"ir", "ir2"} and ws.scenario_text("ir2") is not None
    assert ws.load("ir2").id == "ir2"
    with pytest.raises(WorkspaceError, match="already exists"):
        ws.rename("ir2", "ir")
    ws.delete("ir2")
    assert ws.names() == ["ir"] and not ws.scenario_path("ir2").exists()
    with pytest.raises(WorkspaceError, match="no saved design named 'ir2'"):
        ws.load("ir2")
    with pytest.raises(WorkspaceError, match="no saved design"):
        ws.delete("ir2")


@pytest.mark.parametrize("bad", ["", " ", "1abc", "a.b", "../x", "a/b", "x" * 65, "a b", "naïve"])
def test_bad_names_are_refused_before_anything_is_written(ws: Workspace, bad: str) -> None:
    with pytest.raises(WorkspaceError, match="not a usable design name"):
        ws.new_blank(bad)
    assert ws.names() == [] and not list(ws.root.glob("*.yaml"))


def test_scenarios_are_stored_beside_the_design(ws: Workspace) -> None:
    ws.new_blank("flow")
    assert ws.scenario_text("flow") is None
    ws.save_scenario("flow", "design: other\nhorizon: P1D\n")
    assert ws.scenario_text("flow") == "design: flow\nhorizon: P1D\n"
    with pytest.raises(WorkspaceError):
        ws.save_scenario("missing", "horizon: P1D\n")


def test_list_is_most_recent_first(ws: Workspace) -> None:
    import os

    ws.new_blank("a")
    ws.new_blank("b")
    os.utime(ws.path("a"), (2_000_000_000, 2_000_000_000))
    assert [d.name for d in ws.list()] == ["a", "b"]


def test_config_defaults_and_errors(tmp_path: Path) -> None:
    config = load_config({"WAOOAW_DATA_DIR": str(tmp_path)})
    assert config.data_dir == tmp_path and config.db_url == f"sqlite:///{tmp_path / 'waooaw.db'}"
    assert config.demo and config.worker == "embedded"
    pg = load_config({"WAOOAW_DB": "postgresql+psycopg://localhost/x", "WAOOAW_MODE": "production",
                      "HOME": str(tmp_path)})
    assert pg.worker == "external" and not pg.demo
    with pytest.raises(ConfigError, match="WAOOAW_MODE='demoo'"):
        load_config({"WAOOAW_MODE": "demoo"})
    with pytest.raises(ConfigError, match="WAOOAW_WORKER"):
        load_config({"WAOOAW_WORKER": "both"})


def test_the_virtual_clock_is_stored_in_the_database_and_survives_a_restart(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from app.virtual_clock import StoredClock
    from engine.runtime.db import connect

    url = f"sqlite:///{tmp_path / 'clock.db'}"
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    clock = StoredClock(connect(url), flowing=False, start=start)
    assert clock.now() == start
    clock.advance(timedelta(hours=4))
    clock.set(start)  # the past: ignored, never an error
    assert clock.now() == start + timedelta(hours=4)
    assert StoredClock(connect(url), flowing=False).now() == start + timedelta(hours=4)  # a restart
    flowing = StoredClock(connect(f"sqlite:///{tmp_path / 'flow.db'}"), start=start)
    flowing.advance(timedelta(days=7))
    again = StoredClock(connect(f"sqlite:///{tmp_path / 'flow.db'}"))
    assert again.now() >= start + timedelta(days=7)


def test_every_write_needs_the_designer_role_and_reading_needs_none(tmp_path: Path) -> None:
    from engine.errors import AuthorizationError
    from engine.runtime import Engine
    from engine.security import Principal, audit_trail

    Workspace(tmp_path).new_from_template("pr_review", "review")
    db = Engine(f"sqlite:///{tmp_path / 'audit.db'}").db
    viewer = Workspace(tmp_path, Principal("vera", roles={"operator", "deployer"}), db)
    assert not viewer.may_write and viewer.load("review").id == "review" and viewer.names() == ["review"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "designs").glob("*.yaml")}
    writes = {"save": lambda: viewer.save("review", viewer.text("review")),
              "create": lambda: viewer.new_blank("other"),
              "template": lambda: viewer.new_from_template("pr_review", "other"),
              "save as": lambda: viewer.save_as("review", "other"),
              "rename": lambda: viewer.rename("review", "other"),
              "delete": lambda: viewer.delete("review"),
              "scenario": lambda: viewer.save_scenario("review", "design: review\n")}
    for what, call in writes.items():
        with pytest.raises(AuthorizationError, match=r"'vera' may not .*rule 'design.save' needs the designer role"):
            call()
        assert {p.name: p.read_bytes() for p in (tmp_path / "designs").glob("*.yaml")} == before, what
    assert len(audit_trail(db, principal="vera", outcome="refused")) == len(writes)
    designer = Workspace(tmp_path, Principal("dora", roles={"designer"}), db)
    designer.rename("review", "renamed")
    with pytest.raises(WorkspaceError):
        designer.create("renamed", blank_yaml_for("renamed"))  # taken: refused by the workspace, audited as failed
    rows = audit_trail(db, principal="dora").to_dict("records")
    assert [(r["detail"]["op"], r["outcome"]) for r in rows] == [("rename", "succeeded"), ("create", "failed")]
    assert "already exists" in rows[1]["detail"]["error"]


def blank_yaml_for(name: str) -> str:
    from app.workspace import blank_yaml

    return blank_yaml(name)
