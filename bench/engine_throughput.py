"""Engine throughput: instances/s and diagram steps/s for the PR-review and marketing-campaign designs.

    .venv/bin/python bench/engine_throughput.py [--n 1000] [--quick] [--workers 1,2,4] [--repeat 1]
                                                [--markdown] [--pg URL | --no-pg]

What it measures, and why: the cost of durability. Every step of the embedded engine is a database
transaction (lock the instance row, apply the core's rules, write state, jobs, variables, history), so
it is slower than an engine that keeps everything in memory. The reference is SpiffWorkflow 3.x running
the same two models in memory, in the same run: the ratio says what persistence and the job queue cost.

- Agents are the designs' own demo agents (``designs.agents``): deterministic and side-effect free, so
  the figures are the engine's overhead, not the agents'. PR numbers are 0..n-1 (WowVision approves
  the even ones); the driver approves the even-numbered campaigns through ``tasks()``/``complete_task``.
- SQLite: one process starts n instances, then ``run_until_idle()`` (and completes the approvals).
- PostgreSQL (a throwaway database per run): n instances are started, then 1, 2, 4 worker
  processes (``python -m engine.runtime.worker``) run them while the driver completes the approvals.
  "run s" starts when every worker is up and blocked in its first claim (see ``run_postgres``: the
  start-up time, seconds for 4 interpreters on 2 cores, is printed below the table) and ends when the
  last instance completes. ``--starts``: ``serial`` (the driver's one process starts all n, one after
  the other) and/or ``clients`` (as many client processes as workers, each starting its share of the n
  at the same time, as the app, API callers and start triggers do in production; "start s" runs from
  the moment all of them are connected and ready until the last start committed). Below the table:
  the CPU seconds each phase took in the client or worker processes, in the PostgreSQL backends serving
  the run's database, and in the rest of the machine (PostgreSQL's WAL writer, the driver, and anything
  else running on the machine), and the load averages at the beginning and end.
- SpiffWorkflow: hand-written equivalent BPMN (script tasks that call the same agent functions in
  place of service tasks; the approval a user task completed in code; the same gateway conditions;
  the 4-hour SLA a non-interrupting timer boundary event; the launch error boundary event). Spiff has
  no compensation events, so "discard drafts" is one script task calling the discard agent three times.
- "seconds" = start + run; inst/s and steps/s are over it; with ``--repeat R`` the runtimes run in turn,
  R rounds (SpiffWorkflow, SQLite NORMAL, SQLite FULL, raw commits, ...), and each row is the median run:
  the machine is shared, so ratios come from runs side by side.
- SQLite durability: NORMAL (the default: WAL, a commit survives a process crash; a power loss may lose
  the last commits) and FULL (``?synchronous=full``: an fsync per commit, power-loss safe). The raw WAL
  commit rate of sqlite3 alone at each level, measured in the same run, is the physical limit.
- The independent anchor (shared/anchors/spiff_throughput.py, ``--anchor``) runs in the same session: its
  models assign values in script tasks; this bench's Spiff models call the same demo agents as the
  engine, complete the approval and arm the same boundaries, so they do the engine's work.
- Steps are each runtime's own count: the engine's ``steps`` column (nodes passed; a parallel join
  counts each arriving token), Spiff's completed tasks that are diagram elements. "vs Spiff" compares
  inst/s (the same work per instance).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from provenance import package_version, revision  # noqa: E402
from sqlalchemy import text  # noqa: E402

import designs  # noqa: E402
import designs.agents as demo_agents  # noqa: E402
from engine.runtime import Engine  # noqa: E402
from engine.runtime.db import scratch_database  # noqa: E402

PG_BASE = os.environ.get("WAOOAW_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
INPUTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "pr_review": lambda i: {"pr_number": i},
    "marketing_campaign": lambda i: {"campaign": f"campaign-{i}"},
}


def approve(i: int) -> bool:
    """The driver's decision for campaign i (the same in every runtime)."""
    return i % 2 == 0


@dataclass
class Result:
    design: str
    runtime: str
    workers: str
    instances: int
    start_s: float
    run_s: float
    steps: int
    starts: str = ""  # PostgreSQL: serial or clients
    cpu: dict[str, float] | None = None  # PostgreSQL: CPU seconds per phase and kind of process

    @property
    def seconds(self) -> float:
        return self.start_s + self.run_s


# --- the engine on SQLite, in process --------------------------------------------------------------


def complete_open_tasks(engine: Engine, index: dict[str, int]) -> int:
    """Complete every open approval as its assignee: approved when the instance's number is even."""
    done = 0
    for task in engine.tasks():
        engine.complete_task(task["id"], {"approved": approve(index[task["instance_id"]])},
                             actor=task["assignee"] or "bench")
        done += 1
    return done


def check_finished(engine: Engine, n: int, where: str) -> int:
    """All n instances completed (else a clear error); returns the total steps."""
    df = engine.instances()
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    if counts.get("completed", 0) != n:
        raise RuntimeError(f"{where}: expected {n} completed instances, got {counts}; "
                           f"open incidents: {engine.incidents()[:3]}")
    return int(df["steps"].sum())


def run_sqlite(design: str, n: int, workdir: Path, synchronous: str = "normal") -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    engine = Engine(f"sqlite:///{workdir / f'{design}.db'}?synchronous={synchronous}")
    engine.deploy(designs.build_design(design))
    started = time.perf_counter()
    index = {engine.start(design, INPUTS[design](i)): i for i in range(n)}
    started_all = time.perf_counter()
    engine.run_until_idle()
    while complete_open_tasks(engine, index):
        engine.run_until_idle()
    ended = time.perf_counter()
    steps = check_finished(engine, n, f"SQLite {design}")
    engine.db.dispose()
    engine.reader.dispose()
    return Result(design, f"engine SQLite {synchronous.upper()}", "in-process", n, started_all - started,
                  ended - started_all, steps)


def raw_wal_commits(workdir: Path, synchronous: str, n: int = 2000) -> float:
    """The physical limit: commits/s of one small transaction (BEGIN IMMEDIATE, one INSERT, COMMIT) through
    sqlite3 alone, WAL mode, at the given synchronous level, on this machine."""
    import sqlite3

    workdir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(workdir / f"raw-{synchronous}-{uuid.uuid4().hex[:6]}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"value {i}",))
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def run_anchor(path: Path, n: int) -> dict[str, float]:
    """The independent SpiffWorkflow script (shared/anchors/spiff_throughput.py) in a subprocess: inst/s by
    process (its models are lighter: script tasks that assign values, no agent calls, no human task)."""
    import json

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, str(path), "--n", str(n), "--json-out", out.name], check=True,
                       capture_output=True, text=True)
        rows = [json.loads(line) for line in Path(out.name).read_text().splitlines() if line.strip()]
    return {r["process"]: r["inst_per_s"] for r in rows if r["mode"] == "mem"}


# --- the engine on PostgreSQL, worker processes -----------------------------------------------------


def pg_reachable(base_url: str) -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        with psycopg.connect(base_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:  # any failure to connect means "absent"
        return " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
    return None


def spawn_workers(url: str, count: int, batch: int | None, poll: float) -> list[subprocess.Popen[bytes]]:
    paths = [str(ROOT), str(ROOT / "bench"), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    agents = "slow_agents" if float(os.environ.get("WAOOAW_BENCH_AGENT_MS", "0")) else "designs.agents"
    command = [sys.executable, "-m", "engine.runtime.worker", "--db", url, "--agents", agents,
               "--poll", str(poll)] + (["--batch", str(batch)] if batch else [])
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


class CpuMeter:
    """CPU seconds of one phase: the given client/worker processes, the PostgreSQL backends of the run's
    database (found through pg_stat_activity when the phase starts and ends), and the whole machine."""

    def __init__(self, engine: Engine, processes: list[int]) -> None:
        self.engine, self.processes = engine, processes
        self.backends = {pid: process_cpu([pid]) for pid in self._backends()}
        self.own = process_cpu(processes)
        self.machine = machine_busy()[0]

    def _backends(self) -> list[int]:
        with self.engine.db.connect() as conn:
            return [int(pid) for pid in conn.execute(text(
                "select pid from pg_stat_activity where datname = current_database()")).scalars()]

    def stop(self, wall: float, prefix: str) -> dict[str, float]:
        backends = sum(max(0.0, process_cpu([pid]) - self.backends.get(pid, 0.0))
                       for pid in set(self.backends) | set(self._backends()))
        own = process_cpu(self.processes) - self.own
        machine = machine_busy()[0] - self.machine
        return {f"{prefix} wall": wall, f"{prefix} clients/workers": own, f"{prefix} PG backends": backends,
                f"{prefix} rest of the machine": machine - own - backends}


def start_clients(url: str, design: str, n: int, clients: int) -> list[subprocess.Popen[str]]:
    """``clients`` processes, each connected (a definition read, so its pooled connection is open) and
    waiting for a line on stdin before starting its share of instances 0..n-1."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    shares = [range(k, n, clients) for k in range(clients)]
    return [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--start-client", url, design,
                              ",".join(map(str, (share.start, share.stop, share.step)))],
                             cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for share in shares]


def start_client(url: str, design: str, share: str) -> None:
    """One start client (``--start-client``): connect, say ready, wait for "go", start the share, print the
    ids (a JSON object id -> instance number), wait for stdin to close (so its backend stays for the CPU
    reading)."""
    import json

    first, stop, step = (int(v) for v in share.split(","))
    engine = Engine(url)
    engine.semantics(design, engine.definition(design).version)  # parsed and compiled before the clock runs
    print("ready", flush=True)
    sys.stdin.readline()
    index = {engine.start(design, INPUTS[design](i)): i for i in range(first, stop, step)}
    print(json.dumps(index), flush=True)
    sys.stdin.read()
    engine.db.dispose()


def parallel_starts(engine: Engine, url: str, design: str, n: int, clients: int
                    ) -> tuple[dict[str, int], float, dict[str, float]]:
    """Starts n instances from ``clients`` processes at once: (instance id -> number, seconds, CPU)."""
    import json

    procs = start_clients(url, design, n, clients)
    index: dict[str, int] = {}
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a start client of {design} failed to get ready")
        meter = CpuMeter(engine, [p.pid for p in procs])
        began = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.strip():
                raise RuntimeError(f"a start client of {design} exited with code {proc.wait()}")
            index.update(json.loads(line))
        seconds = time.perf_counter() - began
        cpu = meter.stop(seconds, "start")
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=60)
    return index, seconds, cpu


def run_postgres(design: str, n: int, workers: int, base_url: str, batch: int | None, poll: float,
                 timeout: float, starts: str = "serial") -> tuple[Result, float]:
    """Returns the result and the seconds from spawning the workers until all wait at the gate.

    The gate: the driver holds ``LOCK TABLE wf_jobs IN EXCLUSIVE MODE`` while the workers start, so each
    blocks in its first claim (``FOR UPDATE SKIP LOCKED`` skips locked rows, not a locked table). When all
    of them wait there the clock starts and the lock is released: interpreter start-up and imports
    (seconds for 4 processes on 2 cores) are not counted as throughput."""
    with scratch_database(base_url, prefix=os.environ.get("WAOOAW_BENCH_DB_PREFIX", "waooaw_bench_")) as url:
        engine = Engine(url)
        engine.deploy(designs.build_design(design))
        if starts == "clients":
            index, start_s, cpu = parallel_starts(engine, url, design, n, workers)
        else:
            meter = CpuMeter(engine, [os.getpid()])
            started = time.perf_counter()
            index = {engine.start(design, INPUTS[design](i)): i for i in range(n)}
            start_s = time.perf_counter() - started
            cpu = meter.stop(start_s, "start")
        waiting = text("select count(*) from pg_locks where not granted and relation = 'wf_jobs'::regclass")
        probe_done = text("select status, count(*) from wf_instances group by status")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with engine.db.connect() as gate:
                hold = gate.begin()
                gate.execute(text("LOCK TABLE wf_jobs IN EXCLUSIVE MODE"))
                procs = spawn_workers(url, workers, batch, poll)
                spawned = time.perf_counter()
                while True:
                    with engine.db.connect() as conn:
                        if conn.execute(waiting).scalar() == workers:
                            break
                    if any(p.poll() is not None for p in procs) or time.perf_counter() - spawned > 300:
                        raise RuntimeError(f"PostgreSQL {design}: the workers did not reach the gate")
                    time.sleep(0.01)
                run_meter = CpuMeter(engine, [p.pid for p in procs])
                ready = time.perf_counter()
                hold.commit()
            while True:
                with engine.db.connect() as conn:
                    counts = dict(conn.execute(probe_done).all())  # type: ignore[arg-type]
                if counts.get("completed", 0) == n:
                    break
                if set(counts) - {"running", "completed"} or engine.incidents():
                    raise RuntimeError(f"PostgreSQL {design}: {counts}; incidents {engine.incidents()[:3]}")
                if time.perf_counter() - ready > timeout:
                    raise RuntimeError(f"PostgreSQL {design} x{workers}: not done after {timeout} s: {counts}")
                dead = [p.returncode for p in procs if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"a worker exited early with code {dead[0]}")
                if not complete_open_tasks(engine, index):
                    time.sleep(0.01)
            ended = time.perf_counter()
            cpu.update(run_meter.stop(ended - ready, "run"))
        finally:
            stop_workers(procs)
        steps = check_finished(engine, n, f"PostgreSQL {design}")
        engine.db.dispose()
    return (Result(design, f"engine PostgreSQL, {starts} starts", str(workers), n, start_s, ended - ready, steps,
                   starts, cpu), ready - spawned)


# --- SpiffWorkflow in memory -----------------------------------------------------------------------

NS = 'xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    cond = f'<conditionExpression xsi:type="tFormalExpression">{condition}</conditionExpression>' if condition else ""
    return f'<sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{cond}</sequenceFlow>'


def _script(task_id: str, script: str) -> str:
    return f'<scriptTask id="{task_id}"><script>{script}</script></scriptTask>'


# No XML declaration (pitfall 1); conditions and durations are Python expressions (pitfall 3).
PR_REVIEW_BPMN = f"""<definitions {NS} id="pr_review_defs" targetNamespace="waooaw-bench">
<process id="pr_review" isExecutable="true">
<startEvent id="start"/>
{_script("wowvision_validate",
         'vision_approved = agents.wowvision_validate({"pr_number": pr_number})["vision_approved"]')}
<exclusiveGateway id="approved" default="approved__create_issue"/>
{_script("deploy", 'deployed_pr = agents.deploy({"pr_number": pr_number})["deployed_pr"]')}
<endEvent id="deployed"/>
{_script("create_issue", 'issue_title = agents.create_issue({"pr_number": pr_number})["issue_title"]')}
<endEvent id="issue_created"/>
{_flow("start__wowvision_validate", "start", "wowvision_validate")}
{_flow("wowvision_validate__approved", "wowvision_validate", "approved")}
{_flow("approved__deploy", "approved", "deploy", "vision_approved")}
{_flow("deploy__deployed", "deploy", "deployed")}
{_flow("approved__create_issue", "approved", "create_issue")}
{_flow("create_issue__issue_created", "create_issue", "issue_created")}
</process>
</definitions>"""

_DRAFTS = "\n".join(
    _script(f"create_{ch}", f'create_{ch}_draft = agents.create_content({{"campaign": campaign}})["content_draft"]')
    + _flow(f"fork__create_{ch}", "fork", f"create_{ch}") + _flow(f"create_{ch}__join", f"create_{ch}", "join")
    for ch in ("blog", "social", "email"))

CAMPAIGN_BPMN = f"""<definitions {NS} id="marketing_campaign_defs" targetNamespace="waooaw-bench">
<error id="launch_error" name="launch_error" errorCode="launch_failed"/>
<process id="marketing_campaign" isExecutable="true">
<startEvent id="start"/>
<parallelGateway id="fork"/>
{_DRAFTS}
<parallelGateway id="join"/>
<userTask id="approval" name="Approve campaign"/>
<boundaryEvent id="approval_sla" attachedToRef="approval" cancelActivity="false">
  <timerEventDefinition><timeDuration>"PT4H"</timeDuration></timerEventDefinition></boundaryEvent>
{_script("escalate", 'assignee = "cto"')}
<endEvent id="escalated"/>
<exclusiveGateway id="approved_gw" default="approved_gw__discard_drafts"/>
{_script("launch", 'launched = agents.launch_campaign({})["launched"]')}
<endEvent id="launched_end"/>
<boundaryEvent id="launch_failed" attachedToRef="launch"><errorEventDefinition errorRef="launch_error"/></boundaryEvent>
{_script("rollback", 'launched = agents.rollback_launch({})["launched"]')}
<endEvent id="rolled_back"/>
{_script("discard_drafts", "agents.discard_content({}); agents.discard_content({}); agents.discard_content({})")}
<endEvent id="rejected"/>
{_flow("start__fork", "start", "fork")}
{_flow("join__approval", "join", "approval")}
{_flow("approval__approved_gw", "approval", "approved_gw")}
{_flow("approval_sla__escalate", "approval_sla", "escalate")}
{_flow("escalate__escalated", "escalate", "escalated")}
{_flow("approved_gw__launch", "approved_gw", "launch", "approved")}
{_flow("launch__launched_end", "launch", "launched_end")}
{_flow("launch_failed__rollback", "launch_failed", "rollback")}
{_flow("rollback__rolled_back", "rollback", "rolled_back")}
{_flow("approved_gw__discard_drafts", "approved_gw", "discard_drafts")}
{_flow("discard_drafts__rejected", "discard_drafts", "rejected")}
</process>
</definitions>"""

SPIFF_BPMN = {"pr_review": PR_REVIEW_BPMN, "marketing_campaign": CAMPAIGN_BPMN}


def run_spiff(design: str, n: int) -> Result:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_str(SPIFF_BPMN[design].encode())
    spec = parser.get_spec(design)
    script_engine = PythonScriptEngine(environment=TaskDataEnvironment({"agents": demo_agents}))
    started = time.perf_counter()
    workflows = []
    for i in range(n):
        workflow = BpmnWorkflow(spec, script_engine=script_engine)
        workflow.task_tree.data.update(INPUTS[design](i))  # set_data() is not visible to scripts (pitfall 2)
        workflows.append(workflow)
    started_all = time.perf_counter()
    for i, workflow in enumerate(workflows):
        workflow.do_engine_steps()
        while ready := workflow.get_tasks(state=TaskState.READY, manual=True):
            for task in ready:
                task.data["approved"] = approve(i)
                task.run()
            workflow.do_engine_steps()
    ended = time.perf_counter()
    steps = 0
    for i, workflow in enumerate(workflows):
        if not workflow.is_completed():
            raise RuntimeError(f"SpiffWorkflow {design} #{i} did not complete")
        steps += sum(1 for t in workflow.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id is not None)
    return Result(design, "SpiffWorkflow (memory)", "in-process", n, started_all - started, ended - started_all,
                  steps)


# --- the table -------------------------------------------------------------------------------------


def table(results: list[Result]) -> pd.DataFrame:
    spiff = {r.design: r.instances / r.seconds for r in results if r.runtime.startswith("SpiffWorkflow")}
    rows = []
    for r in results:
        rate = r.instances / r.seconds
        rows.append({"design": r.design, "runtime": r.runtime, "workers": r.workers, "instances": r.instances,
                     "start s": round(r.start_s, 2), "run s": round(r.run_s, 2), "seconds": round(r.seconds, 2),
                     "inst/s": round(rate, 1), "steps/inst": round(r.steps / r.instances, 1),
                     "steps/s": round(r.steps / r.seconds), "vs Spiff": (f"{rate / spiff[r.design]:.3f}x"
                                                                          if r.design in spiff else "-")})
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub table without the tabulate dependency: numbers right-aligned."""
    def cell(v: Any) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(df.columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="instances per design and runtime (default 1000)")
    parser.add_argument("--quick", action="store_true", help="100 instances (a smoke run)")
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts (default 1,2,4)")
    parser.add_argument("--designs", default="pr_review,marketing_campaign")
    parser.add_argument("--pg", default=PG_BASE, help="PostgreSQL URL of a database to CREATE/DROP others from")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--batch", type=int, default=None, help="worker --batch (default: the worker's own)")
    parser.add_argument("--poll", type=float, default=0.05, help="worker --poll seconds when idle")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on one PostgreSQL run after this")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds; SpiffWorkflow and SQLite runs are interleaved, each row the median (default 3)")
    parser.add_argument("--synchronous", default="normal,full",
                        help="SQLite synchronous levels to measure (default normal,full)")
    parser.add_argument("--anchor", default=str(ROOT.parent / "shared" / "anchors" / "spiff_throughput.py"),
                        help="the independent SpiffWorkflow script, run in the same session when it exists")
    parser.add_argument("--starts", default="serial",
                        help="PostgreSQL: serial (the driver starts all) and/or clients (one start process per "
                             "worker, at once), comma-separated; with both, the runs are interleaved")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SpiffWorkflow and SQLite (PostgreSQL only)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    parser.add_argument("--agent-ms", type=float, default=0.0,
                        help="every agent call takes this long (a remote call): PostgreSQL workers only, to show "
                             "how throughput grows with workers when agents, not the engine, are the bottleneck")
    if argv is None and sys.argv[1:2] == ["--start-client"]:
        start_client(*sys.argv[2:5])
        return
    args = parser.parse_args(argv)
    loads = [os.getloadavg()]
    if args.agent_ms:
        os.environ["WAOOAW_BENCH_AGENT_MS"] = str(args.agent_ms)
    n = 100 if args.quick else args.n
    chosen = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = set(chosen) - set(INPUTS)
    if unknown:
        parser.error(f"unknown designs {sorted(unknown)}; known: {', '.join(INPUTS)}")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    pg_problem = "skipped (--no-pg)" if args.no_pg else pg_reachable(args.pg)
    notes: list[str] = []
    if pg_problem:
        notes.append(f"PostgreSQL not measured: {pg_problem}")

    def median(runs: list[Result]) -> Result:
        return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]

    levels = [x.strip().lower() for x in args.synchronous.split(",") if x.strip()]
    results: list[Result] = []
    raw: dict[str, list[float]] = {level: [] for level in levels}
    with tempfile.TemporaryDirectory(prefix="waooaw-bench-") as tmp:
        for design in chosen:
            if args.agent_ms:
                notes.append(f"every agent call sleeps {args.agent_ms:g} ms; SpiffWorkflow and SQLite not run")
            elif not args.no_sqlite:
                rounds: dict[str, list[Result]] = {}
                for r in range(args.repeat):  # interleaved: Spiff, SQLite NORMAL, SQLite FULL, raw commits, ...
                    print(f"{design}: round {r + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
                    rounds.setdefault("spiff", []).append(run_spiff(design, n))
                    for level in levels:
                        rounds.setdefault(level, []).append(run_sqlite(design, n, Path(tmp) / uuid.uuid4().hex, level))
                        raw[level].append(raw_wal_commits(Path(tmp), level))
                results += [median(runs) for runs in rounds.values()]
            if not pg_problem:
                modes = [m.strip() for m in args.starts.split(",") if m.strip()]
                pg_runs: dict[tuple[int, str], list[tuple[Result, float]]] = {}
                for r in range(args.repeat):  # interleaved: x1 serial, x1 clients, x2 serial, ... each round
                    for count in worker_counts:
                        for mode in modes:
                            print(f"{design}: PostgreSQL, {count} worker(s), {mode} starts, round {r + 1}/"
                                  f"{args.repeat} ...", file=sys.stderr, flush=True)
                            pg_runs.setdefault((count, mode), []).append(run_postgres(
                                design, n, count, args.pg, args.batch, args.poll, args.timeout, mode))
                for (count, mode), runs in pg_runs.items():
                    best = median([r for r, _ in runs])
                    results.append(best)
                    notes.append(f"{design} PostgreSQL x{count} {mode} starts: {max(w for _, w in runs):.2f} s from "
                                 "spawning the workers until all wait at the gate (not in run s); rounds (start+run "
                                 "s): " + ", ".join(f"{x.start_s:.2f}+{x.run_s:.2f}" for x, _ in runs))
                    if best.cpu:
                        notes.append(f"{design} PostgreSQL x{count} {mode} starts, CPU s of the median run: "
                                     + "; ".join(f"{k} {v:.2f}" for k, v in best.cpu.items()))
                for mode in modes:
                    one = [r for r in results if r.design == design and r.starts == mode and r.workers == "1"
                           and (1, mode) in pg_runs]
                    for r in results:
                        if one and r.design == design and r.starts == mode and r.workers not in ("1", "in-process"):
                            x1 = [a.seconds / b.seconds for (a, _), (b, _) in zip(
                                pg_runs[(1, mode)], pg_runs[(int(r.workers), mode)], strict=True)]
                            notes.append(f"{design} PostgreSQL {mode} starts: x{r.workers} / x1 end to end per round: "
                                         + ", ".join(f"{v:.2f}" for v in x1) + "; of the medians "
                                         f"{one[0].seconds / r.seconds:.2f} (run phase alone "
                                         f"{one[0].run_s / r.run_s:.2f}, starts alone "
                                         f"{one[0].start_s / r.start_s:.2f})")
    for level, rates in raw.items():
        if rates:
            rates.sort()
            notes.append(f"raw SQLite WAL commits (sqlite3 alone, one INSERT per transaction, synchronous="
                         f"{level.upper()}): {rates[len(rates) // 2]:,.0f}/s, median of {len(rates)} in the same run")
    anchor = Path(args.anchor)
    if anchor.exists() and not args.agent_ms and not args.no_sqlite:
        print("independent SpiffWorkflow anchor ...", file=sys.stderr, flush=True)
        rates_by = run_anchor(anchor, n)
        ours = {r.design: r.instances / r.seconds for r in results if r.runtime.startswith("SpiffWorkflow")}
        for design, anchor_name in (("pr_review", "pr_review"), ("marketing_campaign", "campaign")):
            if design in ours and anchor_name in rates_by:
                notes.append(f"anchor {anchor.name} {anchor_name}: {rates_by[anchor_name]:,.0f} inst/s in memory; "
                             f"this bench's Spiff {design}: {ours[design]:,.0f} inst/s "
                             f"({ours[design] / rates_by[anchor_name]:.2f}x the anchor: it also calls the demo agents"
                             + (", completes the approval and arms the timer and error boundaries"
                                if design == "marketing_campaign" else "") + ", as the engine does)")
    loads.append(os.getloadavg())
    notes.append("load averages (1, 5, 15 min) at the beginning: " + ", ".join(f"{v:.2f}" for v in loads[0])
                 + "; at the end: " + ", ".join(f"{v:.2f}" for v in loads[1]))
    df = table(results)
    print(f"\n{n:,} instances per row; {os.cpu_count()} CPUs; SpiffWorkflow {package_version('SpiffWorkflow')}; "
          f"Python {sys.version.split()[0]}; code {revision()}")
    print(markdown(df) if args.markdown else df.to_string(index=False))
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
