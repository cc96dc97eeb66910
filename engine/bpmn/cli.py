"""``waooaw import FILE.bpmn [-o design.yaml] [--lenient]`` and ``waooaw export DESIGN [-o FILE.bpmn]``
(without ``-o`` both write to stdout).

The functions do the work and return an exit code, so the designer and tests can call them directly;
:func:`register` adds them to the project's Typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError
from engine.model import save


def import_command(file: Path, output: Path | None = None, lenient: bool = False,
                   process_id: str | None = None) -> int:
    """Read a BPMN file into a design (YAML or JSON by the output's extension; YAML on stdout without one)."""
    target = output
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
    summary = f"imported {len(result.definition.all_nodes())} nodes into {target or 'stdout'}"
    if result.warnings:
        summary += f" ({len(result.warnings)} warnings)"
    if target is None:  # the design on stdout, the summary on stderr: `waooaw import x.bpmn > design.yaml`
        typer.echo(result.definition.to_yaml(), nl=False)
        typer.echo(summary, err=True)
        return 0
    save(result.definition, target)
    typer.echo(summary)
    return 0


def export_command(file: Path | str, output: Path | None = None) -> int:
    """Write a design (a YAML, JSON or BPMN file, or a design name) as BPMN 2.0 XML with a diagram;
    to stdout without ``output``."""
    from engine.cli import resolve

    try:
        definition, _ = resolve(str(file))
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        return 1
    if output is None:
        typer.echo(to_bpmn(definition), nl=False)
        return 0
    output.write_text(to_bpmn(definition), encoding="utf-8")
    typer.echo(f"exported {definition.id!r} to {output}")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to a Typer app."""

    @app.command("import")
    def _import(
        file: Annotated[Path, typer.Argument(help="A BPMN 2.0 file (.bpmn, .bpmn2, .xml).")],
        output: Annotated[Path | None, typer.Option("-o", "--output", help="Design to write (.yaml/.json); "
                                                                            "YAML on stdout without it.")] = None,
        lenient: Annotated[bool, typer.Option("--lenient", help="Import what is supported; list the rest.")] = False,
        process: Annotated[str | None, typer.Option("--process", help="Process id, for files with several.")] = None,
    ) -> None:
        """Import BPMN 2.0 XML (bpmn.io, Camunda, Signavio, jBPM, ...) as a design."""
        raise typer.Exit(import_command(file, output, lenient, process))

    @app.command("export")
    def _export(
        file: Annotated[str, typer.Argument(metavar="FILE_OR_DESIGN",
                                            help="A design (.yaml, .json or .bpmn) or a name in designs/.")],
        output: Annotated[Path | None, typer.Option("-o", "--output",
                                                    help="BPMN file to write; stdout without it.")] = None,
    ) -> None:
        """Export a design as BPMN 2.0 XML with a diagram (opens in bpmn.io and Camunda Modeler)."""
        raise typer.Exit(export_command(file, output))
