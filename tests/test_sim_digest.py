"""Same seed, same results, across changes to the simulator's speed: a digest of everything a seeded run records.

The digests in ``tests/fixtures/sim_digests.json`` were computed by this file's ``digests()`` on main before the
simulator's hot path was reworked (issue 19, target 5: commit 49d21c0); a faster core or shell must record the
same work rows, waits, cases, incidents, breaches, queue traces, pool statistics, node counts and messages, in
the same order, bit for bit. A change that is meant to change results (a new rule, a different random stream)
rewrites the file on purpose: ``python tests/test_sim_digest.py --write``, and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import designs  # noqa: E402
from simulator import load_scenario, simulate  # noqa: E402
from simulator.shell import RunData  # noqa: E402
from tests.sim_support import mmc_design, mmc_scenario  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "sim_digests.json"
CASES = [*designs.NAMES, "mmc"]


def run_digest(run: RunData) -> str:
    """sha256 of one replication's records, in order (floats by repr: bit for bit)."""
    parts: list[Any] = [
        run.replication, run.seed, run.end, run.warmup, run.horizon, run.events, run.work_rows, run.wait_rows,
        run.case_rows, run.incidents, run.breaches, sorted(run.queue_traces.items()),
        sorted((name, sorted(stats.items())) for name, stats in run.pools.items()), list(run.entered.items()),
        run.messages]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def simulated(name: str) -> list[RunData]:
    """Two replications of a seed design with its scenario file (its seed), or 2,000 cases of M/M/3. (An
    expression's time limit counts CPU time, so a loaded machine does not turn a condition into an incident.)"""
    if name == "mmc":
        return simulate(mmc_design(), mmc_scenario(3, 0.8, cases=2000, replications=2, seed=5), workers=1).runs
    scenario = load_scenario(designs.scenario_path(name))
    return simulate(designs.load_design(name), scenario, replications=2, workers=1).runs


def digests() -> dict[str, list[str]]:
    return {name: [run_digest(run) for run in simulated(name)] for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_seeded_run_records_what_it_recorded_before(name: str) -> None:
    expected = json.loads(FIXTURE.read_text())[name]
    runs = simulated(name)
    assert [run.events for run in runs] and all(run.work_rows for run in runs)  # the runs did work
    assert [run_digest(run) for run in runs] == expected


def test_the_digest_sees_a_changed_record() -> None:
    run = simulated("mmc")[0]
    before = run_digest(run)
    row = run.work_rows[10]
    run.work_rows[10] = (*row[:7], row[7] + 1e-9, *row[8:])
    assert run_digest(run) != before


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        FIXTURE.write_text(json.dumps(digests(), indent=1) + "\n")
        print(f"wrote {FIXTURE}")
    else:
        print(json.dumps(digests(), indent=1))
