"""The simulator: SimPy runs of a design over the engine's own token rules (engine.semantics).

    from simulator import load_scenario, simulate
    results = simulate(definition, load_scenario("designs/pr_review.scenario.yaml"))
    results.summary()         # KPI mean and 95% CI across replications
    results.event_log()       # pm4py column names

The names below are imported on first use (PEP 562): a replication worker process
(``simulator.worker``) loads the SimPy shell without pandas and SciPy, which only results need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.compare import compare
    from simulator.kpis import Results
    from simulator.run import simulate
    from simulator.scenario import Scenario, ScenarioError
    from simulator.scenario import load as load_scenario

_WHERE = {"Results": ("simulator.kpis", "Results"), "compare": ("simulator.compare", "compare"),
          "simulate": ("simulator.run", "simulate"), "Scenario": ("simulator.scenario", "Scenario"),
          "ScenarioError": ("simulator.scenario", "ScenarioError"), "load_scenario": ("simulator.scenario", "load")}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    module, attribute = _WHERE[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = ["Results", "Scenario", "ScenarioError", "compare", "load_scenario", "simulate"]
