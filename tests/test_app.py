"""The Streamlit app: its helpers, each page through AppTest, and one end-to-end run in a real browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_support import APP, launch_chromium, serve_app
from streamlit.testing.v1 import AppTest

import designs
from app.support import check_yaml, exports, kpi_table, overlays, upload_to_yaml
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


def test_designer_draws_the_chosen_design() -> None:
    at = page("pages/1_Designer.py")
    assert not at.exception
    for name in designs.names():
        at.selectbox(key="designer_design").set_value(name).run()
        dot = chart_dot(at)
        assert dot.startswith(f"digraph {name}")
        for node in designs.load_design(name).all_nodes():
            assert node.id in dot, (name, node.id)
        assert at.success and "Valid" in at.success[0].value


def test_designer_highlight_reaches_the_drawing() -> None:
    at = page("pages/1_Designer.py")
    at.selectbox(key="designer_design").set_value("marketing_campaign").run()
    assert "penwidth=4" not in chart_dot(at)
    at.multiselect(key="designer_highlight:designs/marketing_campaign.yaml").set_value(["approval"]).run()
    assert "penwidth=4" in chart_dot(at)


def test_designer_shows_errors_of_a_broken_edit_and_keeps_the_last_drawing() -> None:
    at = page("pages/1_Designer.py")
    at.selectbox(key="designer_design").set_value("pr_review").run()
    at.text_area(key="designer_text:designs/pr_review.yaml").input(BROKEN)
    at.button[0].click().run()  # the form's submit button comes first
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "does not load" in message and "line 3" in message and "did you mean 'start'" in message
    assert chart_dot(at).startswith("digraph pr_review")  # the last version that loaded
    assert not at.get("download_button")  # nothing to download from a design that does not load
    # revert brings the file back
    revert = next(b for b in at.button if b.label.startswith("Revert"))
    revert.click().run()
    assert not at.error and "Valid" in at.success[0].value


def test_designer_reports_validation_problems_in_a_table() -> None:
    at = page("pages/1_Designer.py")
    at.selectbox(key="designer_design").set_value("pr_review").run()
    text = designs.path("pr_review").read_text().replace("condition: vision_approved", "condition: vision_aproved")
    at.text_area(key="designer_text:designs/pr_review.yaml").input(text)
    at.button[0].click().run()
    assert at.error and "error(s)" in at.error[0].value
    problems = at.dataframe[0].value
    assert (problems["severity"] == "error").any() and problems["line"].notna().all()


def test_designer_offers_downloads() -> None:
    at = page("pages/1_Designer.py")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["YAML", "JSON", "BPMN"]


def test_simulator_runs_and_shows_kpis() -> None:
    at = page("pages/2_Simulator.py", timeout=60)
    assert not at.exception
    at.selectbox(key="sim_pick").set_value(("library", "pr_review")).run()
    assert not at.dataframe  # nothing before a run
    at.number_input(key="sim_f0:library:pr_review:reps").set_value(2)
    at.button(key="FormSubmitter:sim_form:library:pr_review:0-Apply the form").click().run()
    at.button(key="sim_run").click().run()
    assert not at.exception
    kpis = next(d.value for d in at.dataframe if "95% CI" in d.value.columns)
    assert {"KPI", "mean", "95% CI"} <= set(kpis.columns)
    assert "cycle_time_mean_h" in set(kpis["KPI"]) and (kpis["replications"] == 2).all()
    overlay = chart_dot(at)
    assert overlay.startswith("digraph pr_review") and 'BGCOLOR="#1c7ed6"' in overlay  # count badges
    assert len(at.get("image")) == 3  # cycle time, queue length, utilisation


# --- end to end in a browser ------------------------------------------------------------------------------


@pytest.fixture
def served_app() -> Iterator[str]:
    """`streamlit run app/Home.py` on a free port; yields its URL once Streamlit says it is listening."""
    with serve_app() as url:
        yield url


def test_designer_in_a_browser(served_app: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("WAOOAW_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    definition = designs.load_design(designs.names()[0])  # the Designer opens on the first design
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page_ = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page_.on("pageerror", lambda exc: errors.append(str(exc)))
            page_.goto(f"{served_app}/Designer")
            chart = page_.locator('[data-testid="stGraphVizChart"] svg')
            expect(chart).to_be_visible(timeout=60_000)
            titles = set(chart.locator("g.node > title").all_text_contents())
            assert {n.id for n in definition.all_nodes()} <= titles
            expect(page_.get_by_text("Valid:")).to_be_visible()
            page_.screenshot(path=shots / "designer.png", full_page=True)

            # a broken edit: the error is shown and the drawing stays
            page_.get_by_label("YAML").fill(BROKEN)
            page_.get_by_role("button", name="Validate and draw").click()
            expect(page_.get_by_text("does not load")).to_be_visible(timeout=30_000)
            expect(chart).to_be_visible()
            page_.screenshot(path=shots / "designer_error.png", full_page=True)
            assert not errors, errors
        finally:
            browser.close()
