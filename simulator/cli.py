"""``waooaw simulate DESIGN --scenario S.yaml --replications 20``: the KPI table, optionally the event log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from engine.errors import DefinitionError, Problem
from engine.model.definition import ProcessDefinition


def resolve_design(design: str) -> tuple[ProcessDefinition, Path | None]:
    """A design file (.yaml/.json/.bpmn) or the name of a design in ``designs/``."""
    from engine.model import load

    path = Path(design)
    if path.suffix and path.exists():
        return load(path), path
    if path.suffix:
        raise DefinitionError(f"no such design file: {design}")
    import designs

    loader = getattr(designs, "load_design", None)
    if loader is None:
        raise DefinitionError(f"{design!r} is not a file and designs.load_design is not available")
    here = Path(designs.__file__).parent
    name = path.name
    for suffix in (".yaml", ".yml", ".json", ".bpmn"):
        if (here / f"{name}{suffix}").exists():
            return loader(name), here / f"{name}{suffix}"
    try:
        return loader(name), None
    except FileNotFoundError:  # an unknown name is bad input (exit 1), like a design that does not load
        raise DefinitionError(Problem(design, f"neither a file nor a design name (designs: "
                                              f"{', '.join(designs.names())})")) from None


def same_set(path: Path | None) -> Callable[[str], ProcessDefinition | None]:
    """The loader of the designs beside ``path`` (a design file's folder; None: ``designs/``), by name:
    ``<name>.yaml``, ``.yml``, ``.json`` or ``.bpmn``; None when there is none (a call activity's design the
    set does not have). A file there that does not load is an error (DefinitionError), not a silent fallback."""
    from engine.model import load

    if path is None:
        import designs

        folder = Path(designs.__file__).parent
    else:
        folder = path.parent

    def find(name: str) -> ProcessDefinition | None:
        for suffix in (".yaml", ".yml", ".json", ".bpmn"):
            candidate = folder / f"{name}{suffix}"
            if candidate.name == Path(name).name + suffix and candidate.exists():  # a plain name, no path
                return load(candidate)
        return None

    return find


def default_scenario(design: str, path: Path | None) -> Path:
    candidates = []
    if path is not None:
        candidates.append(path.with_name(path.name.split(".")[0] + ".scenario.yaml"))
    import designs

    candidates.append(Path(designs.__file__).parent / f"{Path(design).name.split('.')[0]}.scenario.yaml")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise typer.BadParameter(f"no scenario given and none found at {', '.join(map(str, candidates))}",
                             param_hint="--scenario")


def simulate_command(
    design: Annotated[str, typer.Argument(help="design file (.yaml/.json/.bpmn) or a name in designs/")],
    scenario: Annotated[Path | None, typer.Option("--scenario", "-s", help="scenario YAML/JSON "
                                                   "(default: <design>.scenario.yaml next to it)")] = None,
    replications: Annotated[int | None, typer.Option("--replications", "-r", min=1)] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    log: Annotated[Path | None, typer.Option("--log", help="write the event log: CSV, or XES when the name ends "
                                                           "in .xes (one row per lifecycle transition)")] = None,
    kpis: Annotated[Path | None, typer.Option("--kpis", help="write the KPI summary (CSV)")] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="write PNG figures into this folder")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Simulate a design with a scenario and print KPIs with 95% confidence intervals."""
    from simulator import load_scenario, simulate
    from simulator.run import called_designs

    # A design or scenario that does not load (DefinitionError; ScenarioError is one) is reported by the CLI's
    # top-level handler (engine.cli): one line per problem, exit code 1.
    definition, path = resolve_design(design)
    scenario_path = scenario or default_scenario(design, path)
    sc = load_scenario(scenario_path)
    called = called_designs(definition, same_set(path))  # call activities run the designs beside it
    results = simulate(definition, sc, replications=replications, seed=seed, progress=progress, called=called)
    for warning in results.warnings:
        typer.echo(f"warning: {warning}", err=True)
    n = len(results.runs)
    typer.echo(f"{definition.id}: {n} replication(s), {results.events:,} events in {results.wall_seconds:.2f} s "
               f"({results.events / max(results.wall_seconds, 1e-9):,.0f} events/s); times in hours")
    typer.echo(results.table())
    if log is not None:
        results.to_xes(log) if log.suffix.lower() == ".xes" else results.to_csv(log)
        typer.echo(f"event log: {log}")
    if kpis is not None:
        results.summary().to_csv(kpis, index=False)
        typer.echo(f"KPIs: {kpis}")
    if plots is not None:
        from simulator import plots as figures

        plots.mkdir(parents=True, exist_ok=True)
        for name, fig in (("cycle_time", figures.cycle_time_histogram(results)),
                          ("queue_length", figures.queue_length(results)),
                          ("utilisation", figures.utilisation_bars(results))):
            fig.savefig(plots / f"{name}.png", dpi=110)
        typer.echo(f"plots: {plots}")


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the project's CLI."""
    app.command("simulate")(simulate_command)
