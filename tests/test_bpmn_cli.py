"""``waooaw import`` / ``waooaw export`` through Typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import typer
from bpmn_support import sample_definitions
from typer.testing import CliRunner

from engine.bpmn import from_bpmn
from engine.bpmn.cli import register
from engine.model import from_yaml, load, save

BROKEN = Path(__file__).parent / "fixtures" / "bpmn_broken"


def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def test_export_then_import_gives_the_design_back(tmp_path: Path) -> None:
    design = sample_definitions()[0]
    source = save(design, tmp_path / "design.yaml")
    runner = CliRunner()
    out = runner.invoke(app(), ["export", str(source), "-o", str(tmp_path / "out.bpmn")])
    assert out.exit_code == 0, out.output
    assert from_bpmn((tmp_path / "out.bpmn").read_bytes()) == design
    back = runner.invoke(app(), ["import", str(tmp_path / "out.bpmn"), "-o", str(tmp_path / "back.yaml")])
    assert back.exit_code == 0, back.output
    assert "imported" in back.output
    assert load(tmp_path / "back.yaml") == design


def test_import_refuses_unsupported_then_lenient_imports_with_warnings(tmp_path: Path) -> None:
    runner = CliRunner()
    source = str(BROKEN / "signal_and_script.bpmn")
    refused = runner.invoke(app(), ["import", source, "-o", str(tmp_path / "x.yaml")])
    assert refused.exit_code == 1
    assert "scriptTask 'compute' (line 9)" in refused.output and "--lenient" in refused.output
    assert not (tmp_path / "x.yaml").exists()
    lenient = runner.invoke(app(), ["import", source, "-o", str(tmp_path / "x.yaml"), "--lenient"])
    assert lenient.exit_code == 0
    assert "warning: scriptTask 'compute' (line 9)" in lenient.output
    assert load(tmp_path / "x.yaml").node("compute").kind == "task"


def test_broken_file_and_output_to_stdout(tmp_path: Path) -> None:
    runner = CliRunner()
    broken = runner.invoke(app(), ["import", str(BROKEN / "duplicate_ids.bpmn"), "--lenient"])
    assert broken.exit_code == 1 and "duplicate id 'review'" in broken.output
    design = save(sample_definitions()[1], tmp_path / "nightly.json")
    exported = runner.invoke(app(), ["export", str(design)])  # no -o: the XML on stdout, nothing written
    assert exported.exit_code == 0
    assert from_bpmn(exported.stdout.encode()) == sample_definitions()[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.json"]
    (tmp_path / "nightly.bpmn").write_text(exported.stdout, encoding="utf-8")
    imported = runner.invoke(app(), ["import", str(tmp_path / "nightly.bpmn")])
    assert imported.exit_code == 0 and "into stdout" in imported.stderr
    assert from_yaml(imported.stdout) == sample_definitions()[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.bpmn", "nightly.json"]
    by_name = runner.invoke(app(), ["export", "pr_review"])  # a design name, like the other commands
    assert by_name.exit_code == 0 and from_bpmn(by_name.stdout.encode()).id == "pr_review"
    missing = runner.invoke(app(), ["import", str(tmp_path / "nope.bpmn")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
