"""Small designs and scenarios shared by the simulator tests."""

from __future__ import annotations

import math
from typing import Any

from engine.model import ProcessBuilder, ProcessDefinition
from simulator import Scenario


def mmc_design() -> ProcessDefinition:
    """One user task served by a pool: the M/M/c queue as a process."""
    b = ProcessBuilder("mmc")
    b.start().user("serve", title="Serve", assignee="clerk").end("done")
    return b.build()


def mmc_scenario(c: int, rho: float, service: float = 600.0, cases: int = 4000, replications: int = 10,
                 seed: int = 7) -> Scenario:
    interarrival = service / (c * rho)
    horizon = cases * interarrival
    return Scenario.model_validate({
        "horizon": horizon, "drain": 200 * service, "warmup": 30 * service, "replications": replications,
        "seed": seed, "arrivals": {"poisson": {"rate": 1 / interarrival, "per": "second"}},
        "pools": {"clerk": {"size": c}}, "tasks": {"serve": {"duration": {"exponential": service}}}})


def erlang_c_wait(c: int, rho: float, service: float) -> float:
    """Mean time in queue of M/M/c (Erlang C)."""
    a = c * rho  # offered load in Erlangs
    top = a ** c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)
    return p_wait * service / (c * (1 - rho))


def scenario(**data: Any) -> Scenario:
    return Scenario.model_validate(data)
