"""The Streamlit app: its helpers and pages through AppTest (the Designer: tests/test_app_designer*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import APP
from streamlit.testing.v1 import AppTest

import designs
from app.support import Checked, check_yaml, exports, kpi_table, overlays, upload_to_yaml
from engine.errors import DefinitionError
from engine.model import save
from simulator import load_scenario, simulate

BROKEN = "id: broken\nnodes:\n  - {id: s, kind: strat}\n  - {id: e, kind: end}\nflows: []\n"


@pytest.fixture(autouse=True)
def app_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every page opens the app's runtime: give it a fresh data directory and database."""
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("WAOOAW_DB", raising=False)
    return tmp_path / "data"


def page(name: str, timeout: float = 30) -> AppTest:
    return AppTest.from_file(str(APP / name), default_timeout=timeout).run()


def chart_dot(at: AppTest, index: int = 0) -> str:
    return at.get("graphviz_chart")[index].proto.spec


# --- helpers (no Streamlit) ---------------------------------------------------------------------------


def test_check_yaml_places_validation_problems_on_lines() -> None:
    text = designs.path("pr_review").read_text().replace("condition: vision_approved", "condition: vision_aproved")
    checked = check_yaml(text)
    assert checked.definition is not None and checked.errors
    assert all(p.line for p in checked.errors)
    table = checked.table()
    assert list(table.columns) == ["severity", "where", "line", "message"] and len(table) == len(checked.problems)


def test_check_yaml_load_error() -> None:
    checked = check_yaml(BROKEN)
    assert checked.definition is None
    assert checked.errors[0].line == 3 and "did you mean 'start'" in checked.errors[0].message


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".bpmn"])
def test_uploads_become_yaml(tmp_path: Path, suffix: str) -> None:
    definition = designs.load_design("incident_response")
    file = save(definition, tmp_path / f"ir{suffix}")
    text = upload_to_yaml(file.name, file.read_bytes())
    loaded = check_yaml(text).definition
    assert loaded is not None
    assert {n.id for n in loaded.all_nodes()} == {n.id for n in definition.all_nodes()}


def test_upload_of_unknown_type_or_bad_bytes() -> None:
    with pytest.raises(DefinitionError, match="unknown file type"):
        upload_to_yaml("x.txt", b"id: x")
    with pytest.raises(DefinitionError, match="UTF-8"):
        upload_to_yaml("x.yaml", b"\xff\xfe")


def test_exports_json_and_bpmn() -> None:
    files = exports(designs.load_design("marketing_campaign"))
    assert files["JSON"][0] == "marketing_campaign.json" and files["JSON"][1].lstrip().startswith("{")
    assert files["BPMN"][0] == "marketing_campaign.bpmn" and "<bpmn:definitions" in files["BPMN"][1].replace(
        "bpmn2:", "bpmn:")


def test_overlays_and_kpi_table_from_a_simulation() -> None:
    definition = designs.load_design("pr_review")
    results = simulate(definition, load_scenario(designs.scenario_path("pr_review")), replications=2)
    found = overlays(results)
    activities = {n.id for n in definition.all_nodes() if n.is_activity}
    assert set(found["counts"]) <= {n.id for n in definition.all_nodes()}
    assert set(found["counts"]) & activities
    first = next(n.id for n in definition.all_nodes() if n.kind == "service_task")
    arrived = len(results.cases()) / len(results.runs)  # all cases, warm-up included
    assert abs(found["counts"][first] - arrived) <= 1  # every case passes the first task once
    assert found["heat"] and max(found["heat"].values()) == pytest.approx(1.0)
    assert all(0.0 <= v <= 1.0 for v in found["heat"].values())
    table = kpi_table(results)
    assert list(table.columns) == ["KPI", "subject", "mean", "95% CI", "replications"]
    assert table["95% CI"].str.startswith("[").any()


# --- pages through AppTest ------------------------------------------------------------------------------


def test_home_lists_every_design() -> None:
    at = page("Home.py")
    assert not at.exception
    listed = at.dataframe[0].value
    assert sorted(listed["design"]) == designs.names()
    assert set(listed["status"]) == {"valid"}


def test_simulator_runs_and_shows_kpis() -> None:
    at = page("pages/2_Simulator.py", timeout=60)
    assert not at.exception
    at.selectbox(key="sim_pick").set_value(("library", "pr_review")).run()
    assert not at.dataframe  # nothing before a run
    at.number_input(key="sim_f0:library:pr_review:reps").set_value(2)
    at.run()
    at.button(key="sim_run").click().run()
    assert not at.exception
    kpis = next(d.value for d in at.dataframe if "95% CI" in d.value.columns)
    assert {"KPI", "mean", "95% CI"} <= set(kpis.columns)
    assert "cycle_time_mean_h" in set(kpis["KPI"]) and (kpis["replications"] == 2).all()
    overlay = chart_dot(at)
    assert overlay.startswith("digraph pr_review") and 'BGCOLOR="#1c7ed6"' in overlay  # count badges
    assert len(at.get("image")) == 3  # cycle time, queue length, utilisation


def test_a_problem_table_without_lines_has_no_line_column_and_labels_keep_acronyms() -> None:
    from app.properties import label_of
    from engine.errors import Problem

    table = Checked(None, [Problem("task 'a'", "agent 'x' is not registered")]).table()
    assert list(table.columns) == ["severity", "where", "message"]  # no column of "None" (a saved design)
    assert label_of("sla_calendar") == "SLA calendar" and label_of("candidate_groups") == "Candidate groups"
