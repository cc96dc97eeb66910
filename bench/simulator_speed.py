"""Simulator speed: events/s, the customer-onboarding trial for 10,000 leads over 30 days, the M/M/3
queue (rho 0.8, 10,000 cases) in this simulator, in Prosimos 2.x and in hand-written SimPy, and 20
replications of the onboarding scenario in one process and on every core.

    .venv/bin/python bench/simulator_speed.py [--repeat 5] [--no-prosimos] [--only mmc,parallel,onboarding]

Prosimos pins pandas < 3, so it runs in its own virtualenv (default ~/.cache/waooaw/prosimos-venv,
created on first use with pip; or PROSIMOS_PYTHON=/path/to/python) through bench/prosimos_mmc.py,
which times only its simulation call. The machine may be shared: ratios are measured side by side,
interleaved (ours, hand-written, ours, hand-written, ...; sequential, parallel, ...), ``--repeat``
rounds, and each figure is the median; the load average is printed with them.
Targets: >= 5x faster than Prosimos; >= 0.8x the speed of hand-written SimPy on the M/M/3 model;
20 replications >= 1.7x faster on 2 cores than in one process, with identical results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
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


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def interleaved(fns: list[Callable[[], object]], repeat: int) -> list[tuple[float, object]]:
    """Each function ``repeat`` times, in turn; the median wall time of each and its last result."""
    times: list[list[float]] = [[] for _ in fns]
    results: list[object] = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t, results[i] = timed(fn)
            times[i].append(t)
    return [(statistics.median(ts), r) for ts, r in zip(times, results, strict=True)]


def load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


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


def onboarding_replications(repeat: int) -> None:
    """20 replications of designs/customer_onboarding.scenario.yaml: one process vs every core."""
    from designs import load_design
    from simulator.parallel import available_cores

    definition = load_design("customer_onboarding")
    scenario = load_scenario(ROOT / "designs" / "customer_onboarding.scenario.yaml")
    before = load()
    (t_seq, seq), (t_par, par) = interleaved([
        lambda: simulate(definition, scenario, replications=20, workers=1),
        lambda: simulate(definition, scenario, replications=20)], repeat)
    same = all(a.equals(b) for a, b in zip((seq.cases(), seq.event_log(), seq.summary()),  # type: ignore[attr-defined]
                                            (par.cases(), par.event_log(), par.summary()), strict=True))  # type: ignore[attr-defined]
    print(f"\n20 replications of the customer-onboarding scenario ({seq.events:,} events), "  # type: ignore[attr-defined]
          f"{available_cores()} cores, median of {repeat} interleaved rounds ({before} -> {load()}):")
    print(f"  one process {t_seq:.2f} s; every core {t_par:.2f} s: {t_seq / t_par:.2f}x "
          f"(target >= 1.7x on 2 cores: {'met' if t_seq / t_par >= 1.7 else 'NOT met'}); "
          f"results identical: {same}")


def mmc(repeat: int, no_prosimos: bool) -> None:
    ours()
    hand_written()
    before = load()
    (t_ours, r_ours), (t_hand, r_hand) = interleaved([ours, hand_written], repeat)
    rows = [("waooaw simulator (core + SimPy shell)", t_ours, r_ours["mean_wait"]),  # type: ignore[index]
            ("hand-written SimPy", t_hand, r_hand["mean_wait"])]  # type: ignore[index]
    python = None if no_prosimos else prosimos_python()
    t_pros = math.nan
    if python is not None:
        pros = [prosimos(python) for _ in range(repeat)]
        t_pros = statistics.median(p["wall"] for p in pros)
        rows.append(("Prosimos 2.x", t_pros, pros[0]["mean_wait"]))
    print(f"\nM/M/{C} at rho {RHO}, {CASES:,} cases (Erlang C mean wait 647.2 s; one run varies 12-15 %); "
          f"median of {repeat} interleaved rounds ({before} -> {load()}):")
    print(f"{'model':<40} {'wall s':>8} {'cases/s':>10} {'mean wait s':>12} {'vs ours':>8}")
    for name, wall, wait in rows:
        print(f"{name:<40} {wall:>8.3f} {CASES / wall:>10,.0f} {wait:>12.1f} {wall / t_ours:>7.2f}x")
    print(f"\nours: {r_ours['events'] / t_ours:,.0f} core events/s on M/M/{C}")  # type: ignore[index]
    print(f"targets: >= 5x faster than Prosimos: {'met' if python and t_pros / t_ours >= 5 else 'NOT met'}"
          if python else "targets: Prosimos not run")
    print(f"         >= 0.8x the speed of hand-written SimPy: {'met' if t_hand / t_ours >= 0.8 else 'NOT met'} "
          f"(hand-written / ours = {t_hand / t_ours:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-prosimos", action="store_true")
    parser.add_argument("--only", default="onboarding,mmc,parallel", help="which parts (comma-separated)")
    args = parser.parse_args()
    parts = {p.strip() for p in args.only.split(",")}

    if "onboarding" in parts:
        definition, scenario = onboarding()
        simulate(definition, scenario.replace(arrivals={"interval": "PT1H", "limit": 50}))  # warm caches/imports
        times = [timed(lambda: simulate(definition, scenario)) for _ in range(args.repeat)]
        t_onb, res = statistics.median(t for t, _ in times), times[-1][1]
        events = res.events  # type: ignore[attr-defined]
        cases = len(res.runs[0].case_rows)  # type: ignore[attr-defined]
        print(f"customer onboarding: {cases:,} leads over 30 days (+8 days to finish the 7-day trials): "
              f"{t_onb:.2f} s wall (median of {args.repeat}), {events:,} events, {events / t_onb:,.0f} events/s, "
              f"{cases / t_onb:,.0f} cases/s")
    if "mmc" in parts:
        mmc(args.repeat, args.no_prosimos)
    if "parallel" in parts:
        onboarding_replications(args.repeat)


if __name__ == "__main__":
    main()
