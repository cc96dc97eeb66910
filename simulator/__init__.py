"""The simulator: SimPy runs of a design over the engine's own token rules (engine.semantics).

    from simulator import load_scenario, simulate
    results = simulate(definition, load_scenario("designs/pr_review.scenario.yaml"))
    results.summary()         # KPI mean and 95% CI across replications
    results.event_log()       # pm4py column names
"""

from simulator.compare import compare
from simulator.kpis import Results
from simulator.run import simulate
from simulator.scenario import Scenario, ScenarioError
from simulator.scenario import load as load_scenario

__all__ = ["Results", "Scenario", "ScenarioError", "compare", "load_scenario", "simulate"]
