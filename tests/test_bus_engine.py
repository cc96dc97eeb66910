"""The engine on the bus, on the real Redis (external workers are other processes) and on the in-process bus
(the same scenarios, workers on threads): start triggers, external workers, crash recovery, poison
messages, late answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bus_support import PR_OPENED, VALIDATE, pr_review_on_the_bus, runs_file, unique_prefix, validate, wait_for
from engine_support import sqlite_url
from sqlalchemy import select

from engine.bus import InProcessBus, MessageBus, connect_bus
from engine.bus.bridge import BusBridge, publish_message
from engine.bus.external import desk
from engine.bus.worker import AgentWorker
from engine.model import ProcessBuilder
from engine.runtime.clock import VirtualClock
from engine.runtime.engine import Engine
from engine.runtime.tables import TaskExecutionRow
from engine.security import Principal

X = TaskExecutionRow.__table__
TESTS = Path(__file__).resolve().parent
VISIBILITY = 1.0


@dataclass
class Rig:
    """An engine on a bus, its bridge, and the external workers of the test."""

    kind: str
    bus: MessageBus
    engine: Engine
    bridge: BusBridge
    url: str | None
    effects: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    threads: list[tuple[threading.Thread, threading.Event]] = field(default_factory=list)

    def start_worker(self) -> Any:
        """An external worker of the validate topic: a process on Redis, a thread on the in-process bus."""
        if self.kind == "redis":
            env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   "WAOOAW_TEST_EFFECTS": str(self.effects)}
            log = open(self.effects.parent / f"worker-{len(self.procs)}.log", "w")  # noqa: SIM115  (closed by exit)
            proc = subprocess.Popen([sys.executable, "-m", "engine.bus.cli", "agent-worker", "bus_support:validate",
                                     "--bus", str(self.url)], env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()  # the child holds its own copy
            self.procs.append(proc)
            return proc
        stop = threading.Event()
        thread = threading.Thread(target=AgentWorker(validate, VALIDATE, self.bus).run, args=(stop,),
                                  kwargs={"block": 0.05}, daemon=True)
        thread.start()
        self.threads.append((thread, stop))
        return thread

    def drive(self, until: Any, what: str, timeout: float = 60.0) -> Any:
        """Run the engine's side (bridge and jobs) until ``until()`` holds."""

        def step() -> Any:
            self.bridge.pump()
            self.engine.run_until_idle()
            return until()

        return wait_for(step, timeout=timeout, what=what)

    def executions(self, node: str = "wowvision_validate") -> list[Any]:
        with self.engine.db.connect() as conn:
            return conn.execute(select(X.c.status, X.c.error, X.c.work_id).where(X.c.node_id == node)
                                .order_by(X.c.id)).all()

    def runs(self) -> list[list[str]]:
        path = runs_file()
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def close(self) -> None:
        for thread, stop in self.threads:
            stop.set()
            thread.join(timeout=10)
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(params=["memory", "redis"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    effects = tmp_path / "effects"
    monkeypatch.setenv("WAOOAW_TEST_EFFECTS", str(effects))
    url = None
    if request.param == "redis":
        url = f"{request.getfixturevalue('redis_url')}?prefix={unique_prefix()}&visibility_timeout={VISIBILITY}"
        bus: MessageBus = connect_bus(url, max_failures=3)
    else:
        bus = InProcessBus(visibility_timeout=VISIBILITY, max_failures=3)
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus())
    r = Rig(request.param, bus, engine, BusBridge(engine, refresh=0.0), url, effects)
    try:
        yield r
    finally:
        r.close()
        if request.param == "redis":
            bus.delete_all()  # type: ignore[attr-defined]
            bus.close()


def test_a_pull_request_event_starts_the_review_and_an_external_worker_validates(rig: Rig) -> None:
    rig.start_worker()
    assert publish_message(rig.bus, PR_OPENED, {"pr_number": 42}, message_id="github-delivery-1", business_key="PR-42")
    assert publish_message(rig.bus, PR_OPENED, {"pr_number": 42}, message_id="github-delivery-1") is None  # resent
    instances = rig.drive(lambda: rig.engine.instances(status="completed"),
                          "the review to complete")
    assert list(instances["business_key"]) == ["PR-42"] and len(rig.engine.instances()) == 1
    view = rig.engine.instance(instances["id"][0])
    assert view.variables == {"pr_number": 42, "vision_approved": True, "deployed_pr": 42}  # approved: deployed
    ((status, error, work_id),) = rig.executions()
    assert (status, error) == ("completed", None)
    key = f"{view.id}:{work_id}"  # the idempotency key reached the worker: its side effect is filed under it
    assert [r[0] for r in rig.runs()] == [key]
    assert json.loads((rig.effects / key.replace(":", "_")).read_text()) == {"pr": 42, "comment": "reviewed"}
    stats = rig.bus.stats().set_index("topic")
    assert stats.loc[VALIDATE, "published"] == 1 and stats.loc[VALIDATE, "acked"] == 1
    assert stats.loc["workflow.responses", "acked"] >= 1 and stats["parked"].sum() == 0


def test_a_worker_killed_before_it_acknowledges_is_replaced_and_the_effect_happens_once(rig: Rig) -> None:
    publish_message(rig.bus, PR_OPENED, {"pr_number": 13}, message_id="pr-13")
    if rig.kind == "redis":
        doomed = rig.start_worker()
        rig.drive(lambda: (rig.effects / "ready_to_kill").exists(), "the first worker to take the task")
        doomed.send_signal(signal.SIGKILL)  # received, side effect done, never acknowledged
        doomed.wait(timeout=10)
    else:  # a consumer that received the task, did the work and vanished (what a SIGKILL leaves)
        rig.drive(lambda: VALIDATE in rig.bus.topics(), "the task to be handed out")
        (task,) = rig.bus.receive(VALIDATE, "workers", "doomed", count=1)
        (rig.effects / "survivor").parent.mkdir(parents=True, exist_ok=True)
        (rig.effects / "survivor").write_text("")
        from engine.bus.worker import TaskContext

        validate({"pr_number": 13}, TaskContext(instance_id=task.payload["instance_id"],
                                                work_id=task.payload["work_id"], worker_id="doomed"))
        rig.bus.clock = lambda base=rig.bus.clock: base() + VISIBILITY + 1  # type: ignore[attr-defined]
    (rig.effects / "survivor").write_text("")
    rig.start_worker()
    rig.drive(lambda: rig.engine.instances(status="completed").shape[0], "the survivor to finish the review",
              timeout=60)
    runs = rig.runs()
    assert len(runs) == 2 and runs[0][0] == runs[1][0]  # run twice, with the same idempotency key
    effects = [p for p in rig.effects.iterdir() if p.name not in ("runs.log", "survivor", "ready_to_kill")]
    assert len(effects) == 1  # ... but the side effect happened once
    assert [s for s, _, _ in rig.executions()] == ["completed"]  # and the engine applied one answer


def test_a_poison_message_is_parked_with_its_error_and_the_stream_flows_on(rig: Rig) -> None:
    """An ambiguous correlation (two instances wait with the same key) can never be delivered to one: it is
    refused N times and parked with the engine's error; a message that arrives before its instance waits is
    buffered and delivered when the catch opens; the start events behind them flow on."""
    b = ProcessBuilder("payment", variables={"order": int, "amount": int})
    b.start().receive("paid", "payment.received", correlation_key="order").end("done")
    rig.engine.deploy(b.build())
    twins = [rig.engine.start("payment", {"order": 7}) for _ in range(2)]
    rig.start_worker()
    publish_message(rig.bus, "payment.received", {"amount": 5}, correlation=7, message_id="pay-7")  # ambiguous
    publish_message(rig.bus, "payment.received", {"amount": 30}, correlation=8, message_id="pay-8")  # early
    rig.bus.publish("workflow.responses", {"what": "not an answer"}, message_id="junk")
    for n in (1, 2):
        publish_message(rig.bus, PR_OPENED, {"pr_number": n}, message_id=f"pr-{n}")
    if isinstance(rig.bus, InProcessBus):  # the retries of the poison message wait for the visibility timeout
        rig.bus.clock = lambda base=rig.bus.clock: base() + 1000 * VISIBILITY  # type: ignore[attr-defined]

    def settled() -> bool:
        return (len(rig.bus.dead_letters("payment.received")) == 1
                and rig.engine.instances(status="completed").shape[0] == 2)

    rig.drive(settled, "the poison message to be parked and the rest to complete")
    (dead,) = rig.bus.dead_letters("payment.received")
    assert dead["id"] == "pay-7" and dead["failures"] == 3
    assert "payment.received" in dead["error"] and all(t in dead["error"] for t in twins)
    assert [rig.engine.instance(t).status for t in twins] == ["running", "running"]  # neither got it by chance
    late = rig.engine.start("payment", {"order": 8})  # the early message was buffered: delivered on arrival
    rig.engine.run_until_idle()
    assert rig.engine.instance(late).variables["amount"] == 30
    (junk,) = rig.bus.dead_letters("workflow.responses")
    assert junk["error"] == "not an answer: missing task_id, lock_token, instance_id, status"


def test_a_late_answer_after_the_lock_expired_is_refused_and_recorded_and_the_second_attempt_wins(rig: Rig) -> None:
    desk(rig.engine).lock = timedelta(seconds=60)
    rig.start_worker()
    publish_message(rig.bus, PR_OPENED, {"pr_number": 21}, message_id="pr-21")
    rig.drive(lambda: any(r[1] == "21" for r in rig.runs()), "the first worker to start on the task")
    rig.start_worker()  # the second worker, idle so far
    rig.engine.clock.set(rig.engine.clock.now() + timedelta(seconds=61))  # the first worker's lock expires
    instance = rig.drive(lambda: list(rig.engine.instances(status="completed")["id"]),
                         "the second attempt to complete the review")
    (rig.effects / "lock_expired").write_text("")  # now the first worker answers, late
    rig.drive(lambda: len(rig.executions()) == 2, "the late answer to be recorded")
    (won, refused) = rig.executions()
    assert won[0] == "completed" and refused[0] == "refused" and won[2] == refused[2]
    assert "late answer (completed)" in refused[1] and "refused" in refused[1]
    runs = rig.runs()
    assert [r[3] for r in runs] == ["1", "2"] and runs[0][2] != runs[1][2]  # two deliveries, two workers
    assert rig.engine.instance(instance[0]).variables["vision_approved"] is False
    rig.bridge.pump()  # a redelivered late answer is not recorded twice
    assert len(rig.executions()) == 2


def test_a_bpmn_error_from_an_external_worker_is_caught_by_the_error_boundary(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_TEST_EFFECTS", str(tmp_path / "fx"))
    bus = InProcessBus()
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus(with_error_boundary=True))
    bridge = BusBridge(engine)
    publish_message(bus, PR_OPENED, {"pr_number": 666})
    bridge.pump()
    engine.run_until_idle()
    assert AgentWorker(validate, bus=bus).run(max_tasks=1, block=0) == 1
    bridge.pump()
    engine.run_until_idle()
    (row,) = engine.instances().itertuples()
    assert row.status == "completed" and "vision_approved" not in engine.instance(row.id).variables
    with engine.db.connect() as conn:
        (execution,) = conn.execute(select(X.c.status, X.c.error)).all()
    assert execution == ("failed", "vision_down: WowVision is down")


def test_a_failing_external_worker_gets_the_retry_policy(tmp_path: Path) -> None:
    bus = InProcessBus()
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus(max_attempts=2))
    bridge = BusBridge(engine)
    calls = []

    def flaky(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(context.attempt)
        if context.attempt == 1:
            raise ConnectionError("WowVision timed out")
        return {"vision_approved": True}

    publish_message(bus, PR_OPENED, {"pr_number": 4})
    for _ in range(3):
        bridge.pump()
        engine.run_until_idle()
        AgentWorker(flaky, VALIDATE, bus).run(max_tasks=1, block=0, max_idle=0)
        bridge.pump()
        engine.run_until_idle()
    assert calls == [1, 2]
    assert engine.instances()["status"].tolist() == ["completed"]
    with engine.db.connect() as conn:
        rows = conn.execute(select(X.c.status, X.c.attempt, X.c.error).where(X.c.node_id == "wowvision_validate")
                            .order_by(X.c.id)).all()
    assert [(r.status, r.attempt) for r in rows] == [("failed", 1), ("completed", 2)]
    assert rows[0].error == "ConnectionError: WowVision timed out"


def test_outbound_messages_are_published_on_their_topic(tmp_path: Path) -> None:
    bus = InProcessBus()
    b = ProcessBuilder("notify", variables={"order": int})
    b.start().send("tell", "order.shipped", payload=["order"], correlation_key="order").end("done")
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(b.build())
    engine.start("notify", {"order": 5})
    engine.run_until_idle()
    (m,) = bus.receive("order.shipped", "shipping-service", "s1")
    assert m.payload == {"order": 5} and json.loads(m.headers["correlation"]) == 5
    assert m.headers["origin"] == "engine"


def test_a_topic_without_a_bus_configured_still_runs_the_in_process_agent(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A task with both an agent and a topic: the agent runs in-process unless a bus is configured."""
    monkeypatch.delenv("WAOOAW_BUS", raising=False)
    b = ProcessBuilder("both", variables={"pr_number": int, "vision_approved": bool})
    b.start().service("v", agent="designs.agents:wowvision_validate", topic=VALIDATE, inputs=["pr_number"],
                      outputs=["vision_approved"]).end("e")
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), principal=Principal.system())
    engine.deploy(b.build())
    instance = engine.start("both", {"pr_number": 2})
    engine.run_until_idle()
    assert engine.instance(instance).variables["vision_approved"] is True


def test_start_triggers_and_answers_on_each_database(db_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge's transactions (starts with their message ids, answers under the task lock) on SQLite and
    PostgreSQL; a redelivered start event starts nothing twice."""
    monkeypatch.setenv("WAOOAW_TEST_EFFECTS", str(tmp_path / "fx"))
    bus = InProcessBus(visibility_timeout=5)
    engine = Engine(db_url, clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus())
    bridge = BusBridge(engine)
    for n in range(4):
        publish_message(bus, PR_OPENED, {"pr_number": n}, message_id=f"pr-{n}")
    (first, *_) = bus.receive(PR_OPENED, "waooaw-engine", "crashed-before-ack", count=1)
    bridge._start([first])  # started and committed, then the bridge died before acknowledging...
    bus.clock = lambda: time.monotonic() + 10  # type: ignore[method-assign]  # ...so the event comes back
    worker = AgentWorker(validate, VALIDATE, bus)
    for _ in range(4):
        bridge.pump()
        engine.run_until_idle()
        worker.run(max_tasks=4, block=0, max_idle=0)
        bridge.pump()
        engine.run_until_idle()
    frame = engine.instances()
    assert sorted(frame["status"]) == ["completed"] * 4 and len(frame) == 4
    assert bus.stats().set_index("topic").loc[PR_OPENED, "pending"] == 0


def test_the_engine_worker_serves_the_bus_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``waooaw worker`` with WAOOAW_BUS set also runs the bridge: start triggers and answers."""
    from engine.runtime.worker import run_worker as run_engine_worker

    monkeypatch.setenv("WAOOAW_TEST_EFFECTS", str(tmp_path / "fx"))
    monkeypatch.setenv("WAOOAW_BUS", "memory://")
    bus = connect_bus()
    url = sqlite_url(tmp_path)
    Engine(url, principal=Principal.system()).deploy(pr_review_on_the_bus())
    publish_message(bus, PR_OPENED, {"pr_number": 8}, message_id="pr-8-worker-test")
    stop = threading.Event()
    agents = threading.Thread(target=AgentWorker(validate, VALIDATE, bus).run, args=(stop,), kwargs={"block": 0.05})
    agents.start()
    try:
        run_engine_worker(url, poll=0.02, max_idle=3.0)
    finally:
        stop.set()
        agents.join()
    assert Engine(url, principal=Principal.system()).instances()["status"].tolist() == ["completed"]


def test_an_answer_for_a_cancelled_task_is_refused_and_recorded(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAOOAW_TEST_EFFECTS", str(tmp_path / "fx"))
    bus = InProcessBus()
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus())
    bridge = BusBridge(engine)
    publish_message(bus, PR_OPENED, {"pr_number": 2})
    bridge.pump()
    engine.run_until_idle()  # the task is handed out
    (instance,) = engine.instances()["id"]
    engine.cancel(instance)
    assert AgentWorker(validate, VALIDATE, bus).run(max_tasks=1, block=0) == 1  # the worker did not know
    bridge.pump()
    with engine.db.connect() as conn:
        (row,) = conn.execute(select(X.c.status, X.c.error)).all()
    assert row.status == "refused" and row.error.endswith("refused: the instance is cancelled")
    assert engine.instance(instance).status == "cancelled" and "vision_approved" not in \
        engine.instance(instance).variables


def test_a_worker_failing_for_good_opens_an_incident_with_its_traceback(tmp_path: Path) -> None:
    bus = InProcessBus()
    engine = Engine(sqlite_url(tmp_path), clock=VirtualClock(), bus=bus, principal=Principal.system())
    engine.deploy(pr_review_on_the_bus(max_attempts=1))
    bridge = BusBridge(engine)

    def broken(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("vision_model")

    publish_message(bus, PR_OPENED, {"pr_number": 3})
    bridge.pump()
    engine.run_until_idle()
    AgentWorker(broken, VALIDATE, bus).run(max_tasks=1, block=0)
    bridge.pump()
    (incident,) = engine.incidents()
    assert incident["node_id"] == "wowvision_validate" and incident["error"] == "KeyError: 'vision_model'"
    assert 'raise KeyError("vision_model")' in incident["traceback"]


def test_the_readme_bus_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (TESTS.parent / "README.md").read_text()
    section = readme[readme.index("## Message bus"):]
    code = section[section.index("The same loop in one process"):]
    code = code[code.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md (bus example)", "exec"), namespace)
    engine = namespace["engine"]
    (row,) = engine.instances().itertuples()
    assert row.status == "completed" and engine.instance(row.id).variables["vision_approved"] is True
