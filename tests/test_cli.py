"""The ``waooaw`` command: exit codes, the ``file: node-id: message`` format, never a traceback on bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import graphviz
import pytest
import typer
import yaml
from typer.testing import CliRunner

import designs
from engine.cli import app, id_lines
from engine.model import from_yaml, save

runner = CliRunner()

INVALID = """\
id: bad
nodes:
  - {id: s, kind: start}
  - {id: g, kind: exclusive_gateway}
  - {id: a, kind: task}
  - {id: b, kind: task}
  - {id: e, kind: end}
flows:
  - {id: f0, source: s, target: g}
  - {id: f1, source: g, target: a, condition: "y > 1"}
  - {id: f2, source: g, target: b, condition: "not z"}
  - {id: f3, source: a, target: e}
  - {id: f4, source: b, target: e}
variables: [{name: x}]
"""

KIND_TYPO = """\
id: typo
nodes:
  - id: s
    kind: start
  - id: work
    kind: servce_task
    agent: a
  - id: e
    kind: end
flows:
  - {id: f1, source: s, target: work}
  - {id: f2, source: work, target: e}
"""

# no variables declared: a condition over an undeclared name is only a warning then
WARNING_ONLY = """\
id: loose
nodes:
  - {id: s, kind: start}
  - {id: g, kind: exclusive_gateway, default: f2}
  - {id: e1, kind: end}
  - {id: e2, kind: end}
flows:
  - {id: f0, source: s, target: g}
  - {id: f1, source: g, target: e1, condition: "amount > 10"}
  - {id: f2, source: g, target: e2}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_every_design_validates_by_name() -> None:
    code, out = invoke("validate", *designs.names())
    assert code == 0, out
    for name in designs.names():
        assert re.search(rf"^\S*{name}\.yaml: ok \(\d+ nodes", out, re.M), out


def test_design_files_in_every_format_validate(tmp_path: Path) -> None:
    definition = designs.load_design("marketing_campaign")
    files = [save(definition, tmp_path / f"mc{suffix}") for suffix in (".yaml", ".json", ".bpmn")]
    code, out = invoke("validate", *files)
    assert code == 0, out
    assert out.count(": ok (") == 3


def test_invalid_definition_exits_1_with_file_node_message(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", INVALID)
    code, out = invoke("validate", "--quiet", path)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines and all(line.startswith(f"{path}:") for line in lines)
    # one line per problem: both conditions read undeclared names; each line names the flow and its line
    f1 = [line for line in lines if re.match(rf"{re.escape(str(path))}:10: f1: .*condition", line)]
    f2 = [line for line in lines if re.match(rf"{re.escape(str(path))}:11: f2: .*condition", line)]
    assert f1 and f2, out


def test_one_bad_file_fails_the_run_but_all_are_reported(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", INVALID)
    code, out = invoke("validate", bad, "pr_review")
    assert code == 1
    assert "pr_review.yaml: ok" in out and f"{bad}: 2 error(s)" in out


def test_kind_typo_gives_line_and_hint_not_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.yaml", KIND_TYPO)
    code, out = invoke("validate", path)
    assert code == 1
    assert "Traceback" not in out
    line = out.strip().splitlines()[0]
    number = int(re.match(rf"{re.escape(str(path))}:(\d+): ", line).group(1))
    assert 5 <= number <= 6  # the node (line 5) or its kind (line 6)
    assert "work" in line and "did you mean 'service_task'" in line


def test_yaml_syntax_error_is_placed(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "id: x\nnodes:\n  - {id: s, kind: start\n")
    code, out = invoke("validate", path)
    assert code == 1 and "Traceback" not in out
    assert re.match(rf"{re.escape(str(path))}:\d+: yaml: ", out)


def test_warnings_are_printed_but_do_not_fail(tmp_path: Path) -> None:
    path = write(tmp_path, "loose.yaml", WARNING_ONLY)
    code, out = invoke("validate", path)
    assert code == 0, out
    assert re.search(rf"^{re.escape(str(path))}:\d+: f1: warning: .*amount", out, re.M), out
    assert "ok (4 nodes, 1 warning(s))" in out


@pytest.mark.parametrize("arg", ["no_such_design", "missing.yaml"])
def test_unknown_design_or_missing_file(arg: str) -> None:
    code, out = invoke("validate", arg)
    assert code == 1 and "Traceback" not in out
    assert out.startswith(f"{arg}: definition: ")
    if arg == "no_such_design":
        assert "pr_review" in out  # lists what exists


def test_id_lines_cover_sub_processes() -> None:
    lines = id_lines("id: p\nnodes:\n  - id: sp\n    kind: sub_process\n    nodes:\n      - id: inner\n")
    assert lines == {"p": 1, "sp": 3, "inner": 6}
    assert id_lines("a: [") == {}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_render_svg_with_highlight(tmp_path: Path) -> None:
    out = tmp_path / "mc.svg"
    code, text = invoke("render", "marketing_campaign", "-o", out, "--highlight", "approval", "-H", "launch")
    assert code == 0, text
    svg = out.read_text()
    assert svg.count('stroke-width="4"') >= 2  # both highlighted nodes have the thick border
    assert all(f'id="{n.id}"' in svg for n in designs.load_design("marketing_campaign").all_nodes())


def test_render_dot_from_a_file(tmp_path: Path) -> None:
    out = tmp_path / "pr.dot"
    code, text = invoke("render", designs.path("pr_review"), "-o", out)
    assert code == 0, text
    assert out.read_text().startswith("digraph pr_review")


def test_render_unknown_highlight_suggests(tmp_path: Path) -> None:
    code, out = invoke("render", "marketing_campaign", "-o", tmp_path / "x.dot", "-H", "aproval")
    assert code == 2
    assert "did you mean 'approval'" in out
    assert not (tmp_path / "x.dot").exists()


def test_render_without_dot_binary_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    code, out = invoke("render", "pr_review", "-o", tmp_path / "x.svg")
    assert code == 1
    assert "apt-get install graphviz" in out and "Traceback" not in out


def test_render_invalid_file_reports_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.yaml", KIND_TYPO)
    code, out = invoke("render", path, "-o", tmp_path / "x.svg")
    assert code == 1 and "did you mean 'service_task'" in out


def test_designs_lists_every_name_with_its_title() -> None:
    code, out = invoke("designs")
    assert code == 0
    for name in designs.names():
        assert re.search(rf"^{name}\s+{re.escape(designs.load_design(name).label)}$", out, re.M)


def test_show_prints_the_design_yaml(tmp_path: Path) -> None:
    code, out = invoke("show", "customer_onboarding")
    assert code == 0
    assert out == designs.path("customer_onboarding").read_text()
    json_file = save(designs.load_design("pr_review"), tmp_path / "pr.json")
    code, out = invoke("show", json_file)
    assert code == 0
    assert from_yaml(out) == designs.load_design("pr_review")
    assert yaml.safe_load(out)["id"] == "pr_review"


def test_app_runs_streamlit_on_home(monkeypatch) -> None:
    seen: list[list[str]] = []

    def fake_call(command: list[str]) -> int:
        seen.append(command)
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    code, _ = invoke("app", "--port", "8765", "--server.headless", "true")
    assert code == 0
    (command,) = seen
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]).name == "Home.py" and Path(command[4]).parent.name == "app"
    assert command[5:] == ["--server.address", "127.0.0.1", "--client.showErrorDetails", "none",  # localhost only
                           "--server.maxUploadSize", "10",  # max_file_bytes in MiB (issue 14)
                           "--server.port", "8765", "--server.headless", "true"]


def test_other_parts_register_their_commands() -> None:
    names = set(typer.main.get_command(app).commands)
    assert {"validate", "render", "designs", "show", "app", "import", "export", "simulate"} <= names
