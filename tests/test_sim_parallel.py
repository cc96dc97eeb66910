"""Replications in worker processes give exactly what a sequential run gives with the same seed."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from sim_support import mmc_design, mmc_scenario

import simulator.parallel as parallel
from designs import load_design
from simulator import load_scenario, simulate

ROOT = Path(__file__).resolve().parents[1]


def _frames(results) -> list[pd.DataFrame]:  # type: ignore[no-untyped-def]
    return [results.event_log(), results.cases(), results.summary()]


@pytest.fixture
def always_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start processes even for short runs (the default waits for a second of remaining work)."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_SECONDS", 0.0)


def test_parallel_equals_sequential_onboarding(always_parallel: None) -> None:
    definition = load_design("customer_onboarding")
    scenario = load_scenario(ROOT / "designs" / "customer_onboarding.scenario.yaml")
    sequential = simulate(definition, scenario, replications=4, seed=11, workers=1)
    ticks: list[float] = []
    spread = simulate(definition, scenario, replications=4, seed=11, workers=3, progress=ticks.append)
    for a, b in zip(_frames(sequential), _frames(spread), strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert ticks and ticks == sorted(ticks) and ticks[-1] == pytest.approx(1.0)
    different = simulate(definition, scenario, replications=4, seed=12, workers=3)
    assert not different.cases().equals(spread.cases())  # the comparison can fail


def test_short_runs_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start while replication 0 runs (their start-up overlaps it); when it shows the rest is short,
    they are closed without a replication and the caller runs them all."""
    made: list[_InProcessWorker] = []

    class Idle(_InProcessWorker):
        def __init__(self, blob: bytes) -> None:
            super().__init__(blob)
            self.ran: list[int] = []
            self.closed = False
            made.append(self)

        def run(self, replication: int) -> parallel.RunData:
            self.ran.append(replication)
            return super().run(replication)

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(parallel, "_Worker", Idle)
    results = simulate(mmc_design(), mmc_scenario(2, 0.5, cases=50, replications=3), workers=4)
    assert len(results.runs) == 3
    deadline = time.monotonic() + 10
    while not all(w.closed for w in made) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made and all(w.closed and not w.ran for w in made)  # started early, closed unused


def test_a_dead_worker_leaves_its_replications_to_the_caller(always_parallel: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import simulator.shell as shell

    died = threading.Event()

    class Dying(parallel._Worker):
        def run(self, replication: int) -> parallel.RunData:
            self.proc.kill()  # the worker dies (killed, out of memory) with a replication in hand
            self.proc.wait()
            try:
                return super().run(replication)
            finally:
                died.set()

    original = shell.Run.run

    def after_a_death(self: shell.Run) -> shell.RunData:  # the caller leaves work for the workers until one died
        if self.replication > 0:
            died.wait(120)
        return original(self)

    monkeypatch.setattr(parallel, "_Worker", Dying)
    monkeypatch.setattr(shell.Run, "run", after_a_death)
    scenario = mmc_scenario(2, 0.5, cases=200, replications=4)
    with pytest.warns(RuntimeWarning, match="worker process failed"):
        results = simulate(mmc_design(), scenario, workers=3)
    monkeypatch.setattr(shell.Run, "run", original)
    pd.testing.assert_frame_equal(results.cases(), simulate(mmc_design(), scenario, workers=1).cases())


def test_a_model_error_in_a_worker_is_raised_in_the_caller(always_parallel: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.shell as shell

    original = shell.Run.run

    def fail_after_first(self: shell.Run) -> shell.RunData:  # the caller runs replication 0 first
        if self.replication > 0:
            raise ValueError(f"replication {self.replication} failed")
        return original(self)

    monkeypatch.setattr(shell.Run, "run", fail_after_first)
    monkeypatch.setattr(parallel, "_Worker", _InProcessWorker)
    with pytest.raises(ValueError, match=r"replication \d failed"):
        simulate(mmc_design(), mmc_scenario(2, 0.5, cases=200, replications=3), workers=2)


class _InProcessWorker:
    """A worker's protocol without a process (monkeypatched model code does not reach a real one)."""

    def __init__(self, blob: bytes) -> None:
        import pickle

        definition, scenario, calendars, self.seed, called = pickle.loads(blob)  # as simulator.worker reads it
        self.compiled = parallel.Compiled(definition, scenario, calendars, called)

    def run(self, replication: int) -> parallel.RunData:
        return parallel.Run(self.compiled, replication, self.seed).run()

    def close(self) -> None:
        pass
