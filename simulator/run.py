"""The entry point: ``simulate(definition, scenario)`` runs the replications and returns Results."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.model.definition import ProcessDefinition
from simulator.kpis import Results
from simulator.parallel import run_replications
from simulator.scenario import Scenario, ScenarioError
from simulator.shell import Compiled

Progress = bool | Callable[[float], None] | None


def load_calendars(data: dict[str, Any]) -> dict[str, Any]:
    """The scenario's calendars through the engine's calendar model (one model for SLAs and people)."""
    if not data:
        return {}
    from engine.calendar import load_calendars as load
    from engine.errors import DefinitionError, Problem

    try:
        return dict(load(data))
    except DefinitionError as exc:
        raise ScenarioError([Problem(f"calendars: {p.where}", p.message, p.line) for p in exc.problems]) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise ScenarioError(Problem("calendars", str(exc))) from None


def compile_scenario(definition: ProcessDefinition, scenario: Scenario,
                     calendars: dict[str, Any] | None = None,
                     called: Mapping[str, ProcessDefinition] | None = None) -> tuple[Compiled, list[str]]:
    """Check the scenario against the design (ScenarioError on errors) and prepare it for runs."""
    warnings = [str(p) for p in scenario.validate_for(definition, called)]
    cals = dict(calendars) if calendars is not None else load_calendars(scenario.calendars)
    compiled = Compiled(definition, scenario, cals, called)
    return compiled, warnings + compiled.warnings


def simulate(definition: ProcessDefinition, scenario: Scenario, *, replications: int | None = None,
             seed: int | None = None, progress: Progress = False,
             calendars: dict[str, Any] | None = None, workers: int | None = None,
             called: Mapping[str, ProcessDefinition] | None = None) -> Results:
    """Run ``replications`` independent replications (default: the scenario's) of ``definition``.

    The same seed gives identical results, whatever ``workers`` is. ``workers``: processes sharing the
    replications, this one included (None: one per core; 1: all in this process). Processes start only
    when the remaining replications would take longer than their start-up (see simulator.parallel).
    ``progress``: True for a bar where someone sees it (a widget in Jupyter, tqdm in a terminal, nothing in
    a log or pipe: ``simulator.progress``), or a callable receiving the fraction done (the app draws its own bar).
    ``called``: the designs its call activities call, by name (the same design set; ``called_designs`` finds
    them): each runs inline as part of the case (``simulator.shell``). A call activity whose design is not
    given is work of its task duration, with a warning in ``Results.warnings``.
    """
    changes: dict[str, Any] = {}
    if replications is not None:
        changes["replications"] = replications
    if seed is not None:
        changes["seed"] = seed
    if changes:
        lines, source = scenario._lines, scenario._source
        scenario = scenario.replace(**changes)
        scenario._lines, scenario._source = lines, source
    compiled, warnings = compile_scenario(definition, scenario, calendars, called)
    n = scenario.replications
    started = time.perf_counter()
    bar: Any = None
    report: Callable[[float], None] | None = None
    if progress is True:
        from simulator.progress import bar as progress_bar

        bar = progress_bar(n * 100, f"simulating {definition.id}", unit="%", unit_scale=0.01,
                           bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} replications [{elapsed}<{remaining}]")
    elif callable(progress):
        report = progress
    done: dict[int, float] = {}  # replication -> fraction done (replications run in any order)

    def tick(replication: int, fraction: float) -> None:
        done[replication] = fraction
        total = sum(done.values())
        if bar is not None:
            bar.update(total * 100 - bar.n)  # redrawn at most every mininterval
        elif report is not None:
            report(total / n)

    runs = run_replications(compiled, n, scenario.seed, workers, tick if bar is not None or report else None)
    if bar is not None:
        bar.update(n * 100 - bar.n)
        bar.close()
    return Results(compiled, runs, warnings, time.perf_counter() - started)


def called_designs(definition: ProcessDefinition, load: Callable[[str], ProcessDefinition | None]
                   ) -> dict[str, ProcessDefinition]:
    """The designs ``definition``'s call activities call, and theirs in turn, by name: ``load(name)`` gives the
    design of that name in the same set, or None when the set has none (that call activity then is work of its
    duration). A design that calls itself is loaded once."""
    found: dict[str, ProcessDefinition] = {}
    missing: set[str] = set()
    todo = [definition]
    while todo:
        for node in todo.pop().all_nodes():
            name = getattr(node, "called_element", None)
            if node.kind != "call_activity" or not name or name in found or name in missing:
                continue
            design = definition if name == definition.id else load(name)
            if design is None:
                missing.add(name)
            else:
                found[name] = design
                todo.append(design)
    return found
