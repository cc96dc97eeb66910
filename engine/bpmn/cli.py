"""``waooaw import FILE.bpmn -o design.yaml [--lenient]`` and ``waooaw export design.yaml -o FILE.bpmn``.

The functions do the work and return an exit code, so the designer and tests can call them directly;
:func:`register` adds them to the project's Typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import load, save


def import_command(file: Path, output: Path | None = None, lenient: bool = False,
                   process_id: str | None = None) -> int:
    """Read a BPMN file into a design (YAML or JSON by the output's extension)."""
    target = output or file.with_suffix(".yaml")
    try:
        result = import_bpmn(file.read_bytes(), source=str(file), lenient=lenient, process_id=process_id)
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        return 2
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        return 1
    for problem in result.warnings:
        typer.echo(f"warning: {problem}", err=True)
    save(result.definition, target)
    summary = f"imported {len(result.definition.all_nodes())} nodes into {target}"
    if result.warnings:
        summary += f" ({len(result.warnings)} warnings)"
    typer.echo(summary)
    return 0


def export_command(file: Path, output: Path | None = None) -> int:
    """Write a design (YAML, JSON or BPMN) as BPMN 2.0 XML with a diagram."""
    target = output or file.with_suffix(".bpmn")
    try:
        definition = load(file)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        return 1
    target.write_text(to_bpmn(definition), encoding="utf-8")
    typer.echo(f"exported {definition.id!r} to {target}")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to a Typer app."""

    @app.command("import")
    def _import(
        file: Annotated[Path, typer.Argument(help="A BPMN 2.0 file (.bpmn, .bpmn2, .xml).")],
        output: Annotated[Path | None, typer.Option("-o", "--output", help="Design to write (.yaml/.json).")] = None,
        lenient: Annotated[bool, typer.Option("--lenient", help="Import what is supported; list the rest.")] = False,
        process: Annotated[str | None, typer.Option("--process", help="Process id, for files with several.")] = None,
    ) -> None:
        """Import BPMN 2.0 XML (bpmn.io, Camunda, Signavio, jBPM, ...) as a design."""
        raise typer.Exit(import_command(file, output, lenient, process))

    @app.command("export")
    def _export(
        file: Annotated[Path, typer.Argument(help="A design (.yaml, .json or .bpmn).")],
        output: Annotated[Path | None, typer.Option("-o", "--output", help="BPMN file to write.")] = None,
    ) -> None:
        """Export a design as BPMN 2.0 XML with a diagram (opens in bpmn.io and Camunda Modeler)."""
        raise typer.Exit(export_command(file, output))
