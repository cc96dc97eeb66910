"""The docs: generated references are current, the pages README links exist, notebooks are linked with pictures."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_references_are_current() -> None:
    stale = generator().stale()
    assert not stale, f"run `python docs/generate.py`: stale {stale}"


def test_node_reference_covers_every_kind_and_field() -> None:
    from engine.model.nodes import NODE_CLASSES

    text = (ROOT / "docs" / "nodes.md").read_text(encoding="utf-8")
    for kind, cls in NODE_CLASSES.items():
        assert f"### {kind}\n" in text
        for name in cls.model_fields:
            if name != "kind":
                assert f"`{name}`" in text, (kind, name)


def test_a_new_field_makes_the_reference_stale(monkeypatch) -> None:
    gen = generator()
    before = gen.node_reference()
    from engine.model import nodes

    monkeypatch.setattr(nodes.UserTask, "__doc__", "Changed.")
    assert gen.node_reference() != before


def test_cli_reference_lists_every_command_and_exit_code() -> None:
    import typer

    from engine.cli import EXIT_CODES, app

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    command = typer.main.get_command(app)
    for name in command.commands:  # type: ignore[attr-defined]
        assert f"## waooaw {name}\n" in text
    for code, _ in EXIT_CODES:
        assert f"| {code} |" in text


def test_readme_links_docs_and_notebooks_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)", readme)
    assert {"docs/concepts.md", "docs/nodes.md", "docs/cli.md", "docs/configuration.md", "docs/scale.md",
            "docs/comparison.md"} <= set(links)
    for link in links:
        assert (ROOT / link).exists(), link
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in notebooks:
        assert f"notebooks/{name}" in readme
        stem = name.removesuffix(".ipynb")
        assert re.search(rf"!\[[^\]]*\]\(docs/img/{re.escape(stem)}\.(png|svg)\)", readme), stem
    assert not (ROOT / "docs" / "helper-brief.md").exists()
