"""The M/M/c reference model in Prosimos 2.x (run by bench/simulator_speed.py in Prosimos' own venv).

Prosimos pins pandas < 3, so it lives in its own virtualenv; this script prints one JSON line:
wall time of the simulation call (imports and file writing excluded) and the mean waiting time.
Pitfalls handled (see shared notes): plain <task> only, expon params [mean, min, max] with min 0,
total_cases/starting_at passed to the call, numpy/random seeded by hand, 24/7 as 00:00-23:59:59.999999.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://waooaw/bench">
  <process id="mmc" isExecutable="true">
    <startEvent id="start"/>
    <task id="serve" name="serve"/>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="serve"/>
    <sequenceFlow id="f2" sourceRef="serve" targetRef="end"/>
  </process>
</definitions>
"""


def params(c: int, interarrival: float, service: float) -> dict:
    always = [{"from": "MONDAY", "to": "SUNDAY", "beginTime": "00:00:00", "endTime": "23:59:59.999999"}]

    def expon(mean: float) -> list[dict]:
        return [{"value": mean}, {"value": 0}, {"value": 1e12}]

    return {
        "resource_profiles": [{"id": "clerks", "name": "clerks", "resource_list": [
            {"id": "clerk", "name": "clerk", "cost_per_hour": 1, "amount": c, "calendar": "always",
             "assignedTasks": ["serve"]}]}],
        "arrival_time_distribution": {"distribution_name": "expon", "distribution_params": expon(interarrival)},
        "arrival_time_calendar": always,
        "gateway_branching_probabilities": [],
        "task_resource_distribution": [{"task_id": "serve", "resources": [
            {"resource_id": "clerk", "distribution_name": "expon", "distribution_params": expon(service)}]}],
        "resource_calendars": [{"id": "always", "name": "always", "time_periods": always}],
    }


def main() -> None:
    c, interarrival, service, cases, seed = (int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]),
                                             int(sys.argv[4]), int(sys.argv[5]))
    import numpy as np
    import pandas as pd
    from prosimos.simulation_engine import run_simulation

    with tempfile.TemporaryDirectory() as tmp:
        bpmn, js, log = Path(tmp, "mmc.bpmn"), Path(tmp, "mmc.json"), Path(tmp, "log.csv")
        bpmn.write_text(BPMN)
        js.write_text(json.dumps(params(c, interarrival, service)))
        np.random.seed(seed)
        random.seed(seed)
        started = time.perf_counter()
        run_simulation(str(bpmn), str(js), cases, log_out_path=str(log), starting_at="2026-01-05T00:00:00.000+00:00")
        wall = time.perf_counter() - started
        frame = pd.read_csv(log)
        cols = {c.lower(): c for c in frame.columns}
        enable = pd.to_datetime(frame[cols.get("enable_time", "enable_time")], format="mixed", utc=True)
        start = pd.to_datetime(frame[cols.get("start_time", "start_time")], format="mixed", utc=True)
        wait = (start - enable).dt.total_seconds()
    print(json.dumps({"wall": wall, "cases": cases, "mean_wait": float(wait.mean())}))


if __name__ == "__main__":
    main()
