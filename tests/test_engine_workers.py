"""Workers: several on PostgreSQL share the jobs and never run the same one at the same time; a
failing batch does not stop one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import crash_agent  # noqa: F401  (registers crash.side_effect: a deploy checks its agents exist)
import pytest
from engine_support import fresh_postgres

import designs
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.security import Principal

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_workers_never_overlap_on_a_job_and_share_the_work(postgres_url: str, tmp_path: Path) -> None:
    with fresh_postgres(postgres_url) as url:
        engine = Engine(url, principal=Principal.system())
        from sqlalchemy import text

        with engine.db.begin() as conn:
            conn.execute(text("CREATE TABLE crash_effects (key VARCHAR(200) PRIMARY KEY, instance_id VARCHAR(64), "
                              "node_id VARCHAR(20))"))
        b = ProcessBuilder("shared")
        b.start().service("a", agent="crash.side_effect").service("b", agent="crash.side_effect").end()
        engine.deploy(b.build())
        ids = [engine.start("shared") for _ in range(150)]
        log = tmp_path / "calls.log"
        env = {**os.environ, "CRASH_DB": url, "CRASH_LOG": str(log),
               "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
        args = [sys.executable, "-m", "engine.runtime.worker", "--db", url, "--agents", "crash_agent",
                "--poll", "0.01", "--batch", "2", "--max-idle", "2"]
        workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for _ in range(3)]
        outputs = [w.communicate(timeout=180) for w in workers]
        assert all(w.returncode == 0 for w in workers), [o[1].decode()[-2000:] for o in outputs]
        ran = [int(o[0].decode().split("after ")[1].split()[0]) for o in outputs]
        assert all(engine.instance(i).status == "completed" for i in ids)
        calls = log.read_text().splitlines()
        assert len(calls) == len(set(calls)) == 300  # no job ran twice (no crash here, so not even a repeat)
        assert sum(ran) == 300 and sum(1 for n in ran if n > 0) >= 2, ran  # the work was shared
        with engine.db.connect() as conn:
            rows = conn.execute(text("SELECT work_id, instance_id, started_at, ended_at FROM wf_task_executions")).all()
        spans = defaultdict(list)
        for work_id, instance_id, start, end in rows:
            spans[(instance_id, work_id)].append((start, end))
        assert all(len(v) == 1 for v in spans.values())  # each job executed exactly once


def test_a_failing_batch_does_not_stop_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from engine.runtime import worker

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = Engine(url, principal=Principal.system())
    engine.deploy(designs.load_design("pr_review"))
    ids = [engine.start("pr_review", {"pr_number": i}) for i in range(3)]
    original = Engine.run_due_jobs
    calls = {"n": 0}

    def flaky(self: Engine, limit: int = 200) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return original(self, limit)

    monkeypatch.setattr(Engine, "run_due_jobs", flaky)
    ran = worker.run_worker(url, poll=0.01, max_idle=0.2)
    assert ran >= 6 and "job batch failed (1 in a row)" in caplog.text
    assert {engine.instance(i).status for i in ids} == {"completed"}
