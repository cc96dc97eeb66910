"""Crash recovery: real worker processes killed with SIGKILL at random moments, over many rounds.

Asserts the README's guarantee: every instance completes, no token is lost or duplicated, state
transitions happen once (one history row per variable), and side effects keyed by the idempotency
key happen exactly once although agent calls may repeat.

The work is sized to the rounds: before each round, instances are added until at least ``MIN_JOBS`` jobs wait,
so every kill lands on a worker with work in hand (an idle kill proves nothing). The output reports how many
kills landed during work (the worker had made agent calls in that round and jobs were still waiting).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import crash_agent  # noqa: F401  (registers crash.side_effect: a deploy checks its agents exist)
import pytest
from sqlalchemy import text

from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal

ROUNDS = int(os.environ.get("WAOOAW_CRASH_ROUNDS", "50"))
INSTANCES = 120  # at the start; more are added as rounds use the work up
MIN_JOBS = 20  # jobs waiting when a round starts (a batch is 5: several batches of work per round)
TOP_UP = 30  # instances added when fewer wait
NODES = ("a", "b", "c", "d")
TESTS = Path(__file__).resolve().parent


def definition():  # a service task, a parallel fork of two, a join, a last task
    b = ProcessBuilder("crashy")
    fork = b.start().service("a", agent="crash.side_effect").parallel("fork")
    left = fork.branch().service("b", agent="crash.side_effect")
    right = fork.branch().service("c", agent="crash.side_effect")
    b.join("join", left, right).service("d", agent="crash.side_effect").end()
    return b.build()


def worker(db_url: str, env: dict[str, str], max_idle: float | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "engine.runtime.worker", "--db", db_url, "--agents", "crash_agent",
            "--poll", "0.01", "--lease", "1", "--batch", "5"]
    if max_idle is not None:
        args += ["--max-idle", str(max_idle)]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_repeats_nothing(db_url: str, tmp_path: Path) -> None:
    engine = Engine(db_url, principal=Principal.system())
    with engine.db.begin() as conn:
        conn.execute(text("CREATE TABLE crash_effects (key VARCHAR(200) PRIMARY KEY, instance_id VARCHAR(64), "
                          "node_id VARCHAR(20))"))
    engine.deploy(definition())
    ids = [engine.start("crashy") for _ in range(INSTANCES)]
    log = tmp_path / "calls.log"
    env = {**os.environ, "CRASH_DB": db_url, "CRASH_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    rng = random.Random(7)
    kills = during_work = 0
    for _ in range(ROUNDS):
        while _waiting_jobs(engine) < MIN_JOBS:  # size the work to the rounds: every kill lands during work
            ids += [engine.start("crashy") for _ in range(TOP_UP)]
        before = lines(log)
        proc = worker(db_url, env)
        deadline = time.monotonic() + 20
        while lines(log) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # wait until it works
        time.sleep(rng.uniform(0, 0.06))
        if proc.poll() is None:
            working = lines(log) > before and _waiting_jobs(engine) > 0
            proc.send_signal(signal.SIGKILL)
            kills += 1
            during_work += working
        proc.wait()
        assert proc.returncode in (-signal.SIGKILL, 0), proc.stderr.read().decode() if proc.stderr else ""
    final = worker(db_url, env, max_idle=2.5)
    _, err = final.communicate(timeout=240)
    assert final.returncode == 0, err.decode()

    assert during_work >= ROUNDS * 0.9, f"only {during_work} of {ROUNDS} rounds killed a working worker"
    statuses = Counter(engine.instance(i).status for i in ids)
    assert statuses == {"completed": len(ids)}
    with engine.db.connect() as conn:
        effects = conn.execute(text("SELECT instance_id, node_id, count(*) FROM crash_effects "
                                    "GROUP BY instance_id, node_id")).all()
        tokens = conn.execute(text("SELECT count(*) FROM wf_tokens")).scalar()
        jobs = conn.execute(text("SELECT count(*) FROM wf_jobs")).scalar()
        history = conn.execute(text("SELECT instance_id, name, count(*) FROM wf_variable_history "
                                    "GROUP BY instance_id, name")).all()
    assert len(effects) == len(ids) * len(NODES) and all(n == 1 for *_, n in effects)  # once per activation
    assert tokens == 0 and jobs == 0  # no token or job left behind
    assert len(history) == len(ids) * len(NODES) and all(n == 1 for *_, n in history)  # transitions once
    calls = Counter(log.read_text().splitlines())
    assert set(calls) == {f"{i}:{w}" for i in ids for w in _work_ids(engine, i)}
    repeated = sum(n - 1 for n in calls.values())
    print(f"\n{kills} SIGKILLs, {during_work} of them during work, {len(ids)} instances; "
          f"{sum(calls.values())} agent calls for {len(calls)} activations "
          f"({repeated} repeated after a crash, each with the same idempotency key)")


def _waiting_jobs(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM wf_jobs")).scalar()


def _work_ids(engine: Engine, instance_id: str) -> set[str]:
    with engine.db.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT DISTINCT work_id FROM wf_task_executions "
                                                "WHERE instance_id = :i"), {"i": instance_id})}
