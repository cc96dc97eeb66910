"""The demo agents with a fixed latency, as if each called a remote service (``--agent-ms`` of
``bench/engine_throughput.py``). Importing this module re-registers every ``designs.agents:<fn>`` name
with a wrapper that sleeps ``WAOOAW_BENCH_AGENT_MS`` milliseconds first; the engine resolves
registered names before importing, so definitions stay unchanged."""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from typing import Any

import designs.agents as demo
from engine import register

LATENCY = float(os.environ.get("WAOOAW_BENCH_AGENT_MS", "0")) / 1000


def _slowed(agent: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(agent)
    def call(inputs: dict[str, Any], context: Any = None) -> Any:
        time.sleep(LATENCY)
        return agent(inputs, context)

    return call


for _name, _agent in inspect.getmembers(demo, inspect.isfunction):
    if _agent.__module__ == demo.__name__:
        register(f"designs.agents:{_name}", _slowed(_agent))
