"""Simulator speed: events/s, the customer-onboarding trial for 10,000 leads over 30 days, and the
M/M/3 queue (rho 0.8, 10,000 cases) in this simulator, in Prosimos 2.x and in hand-written SimPy.

    .venv/bin/python bench/simulator_speed.py [--repeat 3] [--no-prosimos]

Prosimos pins pandas < 3, so it runs in its own virtualenv (default ~/.cache/waooaw/prosimos-venv,
created on first use with pip; or PROSIMOS_PYTHON=/path/to/python) through bench/prosimos_mmc.py,
which times only its simulation call. Each figure is the best of ``--repeat`` runs (as timeit does:
the least disturbed by other processes on the machine); the ratios use the same statistic.
Targets: >= 5x faster than Prosimos, within 2x of hand-written SimPy on the M/M/3 model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.model import ProcessBuilder, ProcessDefinition  # noqa: E402
from simulator import Scenario, load_scenario, simulate  # noqa: E402

C, RHO, SERVICE, CASES, SEED = 3, 0.8, 600.0, 10_000, 1
INTERARRIVAL = SERVICE / (C * RHO)  # 250 s
PROSIMOS_VENV = Path(os.environ.get("PROSIMOS_VENV", Path.home() / ".cache" / "waooaw" / "prosimos-venv"))


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


# --- the M/M/3 model three ways ------------------------------------------------------------------


def mmc_design() -> ProcessDefinition:
    b = ProcessBuilder("mmc")
    b.start().user("serve", title="Serve", assignee="clerk").end("done")
    return b.build()


def mmc_scenario() -> Scenario:
    return Scenario.model_validate({
        "horizon": CASES * INTERARRIVAL * 10, "seed": SEED,
        "arrivals": {"poisson": {"rate": 1 / INTERARRIVAL, "per": "second"}, "limit": CASES},
        "pools": {"clerk": {"size": C}}, "tasks": {"serve": {"duration": {"exponential": SERVICE}}}})


def ours() -> dict[str, float]:
    results = simulate(mmc_design(), mmc_scenario())
    log = results.runs[0].work_rows
    waits = [row[6] - row[5] for row in log]
    return {"mean_wait": sum(waits) / len(waits), "events": results.events}


def hand_written() -> dict[str, float]:
    """The textbook SimPy model: a source process, a process per customer, a Resource."""
    rng = random.Random(SEED)
    env = simpy.Environment()
    clerks = simpy.Resource(env, C)
    waits: list[float] = []

    def customer() -> object:
        arrived = env.now
        with clerks.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.expovariate(1 / SERVICE))

    def source() -> object:
        for _ in range(CASES):
            yield env.timeout(rng.expovariate(1 / INTERARRIVAL))
            env.process(customer())

    env.process(source())
    env.run()
    return {"mean_wait": sum(waits) / len(waits)}


def prosimos_python() -> Path | None:
    explicit = os.environ.get("PROSIMOS_PYTHON")
    if explicit:
        return Path(explicit)
    python = PROSIMOS_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {PROSIMOS_VENV} for Prosimos (it pins pandas < 3) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PROSIMOS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "prosimos>=2,<3"], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"Prosimos unavailable: {exc}", file=sys.stderr)
        return None
    return python


def prosimos(python: Path) -> dict[str, float]:
    out = subprocess.run([str(python), str(ROOT / "bench" / "prosimos_mmc.py"), str(C), str(INTERARRIVAL),
                          str(SERVICE), str(CASES), str(SEED)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the onboarding trial ------------------------------------------------------------------------


def onboarding() -> tuple[ProcessDefinition, Scenario]:
    """The seed design with its scenario file, 10,000 leads arriving over 30 days (+ 8 days to finish)."""
    try:
        from designs import load_design  # type: ignore[attr-defined]

        definition = load_design("customer_onboarding")
        scenario = load_scenario(ROOT / "designs" / "customer_onboarding.scenario.yaml")
    except (ImportError, FileNotFoundError, OSError, Exception) as exc:  # the designs may not be there yet
        print(f"(designs not available: {exc}; using an equivalent built here)", file=sys.stderr)
        definition, scenario = _onboarding_fallback()
    scenario = scenario.replace(  # 10,000 leads spread evenly over 30 days (one every 259.2 s)
        horizon="P30D", drain="P8D", warmup="PT0S", replications=1,
        arrivals={"interval": 30 * 86400 / CASES, "limit": CASES})
    return definition, scenario


def _onboarding_fallback() -> tuple[ProcessDefinition, Scenario]:
    b = ProcessBuilder("customer_onboarding", variables={"lead": str, "converted": bool, "score": int})
    check = (b.start().service("capture", agent="capture", outputs=["lead"]).timer("trial", "P7D")
             .service("check", agent="check", inputs=["lead"], outputs=["converted", "score"]).exclusive("outcome"))
    check.when("converted").service("activate", agent="a").end("active")
    check.when("score >= 50").service("nurture", agent="a").end("nurtured")
    check.otherwise().service("churn", agent="a").end("churned")
    scenario = Scenario.model_validate({
        "horizon": "P30D", "arrivals": {"interval": "PT5M"},
        "tasks": {"capture": {"duration": {"exponential": "PT2M"}},
                  "check": {"duration": "PT1M", "outputs": {"converted": {"bernoulli": 0.25},
                                                            "score": {"uniform": [0, 100]}}},
                  "activate": {"duration": "PT5M"}, "nurture": {"duration": "PT5M"}, "churn": {"duration": "PT1M"}}})
    return b.build(), scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-prosimos", action="store_true")
    args = parser.parse_args()

    definition, scenario = onboarding()
    simulate(definition, scenario.replace(arrivals={"interval": "PT1H", "limit": 50}))  # warm caches/imports
    t_onb, res = best_time(lambda: simulate(definition, scenario), args.repeat)
    events = res.events  # type: ignore[attr-defined]
    cases = len(res.runs[0].case_rows)  # type: ignore[attr-defined]
    print(f"customer onboarding: {cases:,} leads over 30 days (+8 days to finish the 7-day trials): "
          f"{t_onb:.2f} s wall, {events:,} events, {events / t_onb:,.0f} events/s, {cases / t_onb:,.0f} cases/s")

    ours()
    t_ours, r_ours = best_time(ours, args.repeat)
    t_hand, r_hand = best_time(hand_written, args.repeat)
    rows = [("waooaw simulator (core + SimPy shell)", t_ours, r_ours["mean_wait"]),  # type: ignore[index]
            ("hand-written SimPy", t_hand, r_hand["mean_wait"])]  # type: ignore[index]
    python = None if args.no_prosimos else prosimos_python()
    if python is not None:
        pros = [prosimos(python) for _ in range(args.repeat)]
        t_pros = min(p["wall"] for p in pros)
        rows.append(("Prosimos 2.x", t_pros, pros[0]["mean_wait"]))
    print(f"\nM/M/{C} at rho {RHO}, {CASES:,} cases (Erlang C mean wait 647.2 s; one run varies 12-15 %):")
    print(f"{'model':<40} {'wall s':>8} {'cases/s':>10} {'mean wait s':>12} {'vs ours':>8}")
    for name, wall, wait in rows:
        print(f"{name:<40} {wall:>8.3f} {CASES / wall:>10,.0f} {wait:>12.1f} {wall / t_ours:>7.2f}x")
    print(f"\nours: {r_ours['events'] / t_ours:,.0f} core events/s on M/M/{C}")  # type: ignore[index]
    print(f"targets: >= 5x faster than Prosimos: {'met' if python and t_pros / t_ours >= 5 else 'NOT met'}"
          if python else "targets: Prosimos not run")
    print(f"         within 2x of hand-written SimPy: {'met' if t_ours / t_hand <= 2 else 'NOT met'} "
          f"(ours / hand-written = {t_ours / t_hand:.2f})")


if __name__ == "__main__":
    main()
