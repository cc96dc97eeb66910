"""Batched steps: many events in one transaction must write exactly what one-at-a-time would."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import register
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.tables import JobRow, TokenRow, VariableHistoryRow
from engine.runtime.writes import Writes
from engine.security import Principal

J, T, H = JobRow.__table__, TokenRow.__table__, VariableHistoryRow.__table__


def bump(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"n": int(inputs.get("n") or 0) + 1}


register("test.bump", bump)


def counter_flow() -> Any:
    """Three service tasks in a row, each writing ``n``: three versions of one variable per instance."""
    b = ProcessBuilder("counter", variables={"n": int})
    (b.start().service("a", agent="test.bump", inputs=["n"], outputs=["n"])
     .service("b", agent="test.bump", inputs=["n"], outputs=["n"])
     .service("c", agent="test.bump", inputs=["n"], outputs=["n"]).end("done"))
    return b.build()


def race_flow() -> Any:
    """A parallel split: one branch waits on a timer while the other works on and waits at the join."""
    b = ProcessBuilder("forked", variables={"n": int})
    split = b.start().service("first", agent="test.bump", inputs=["n"], outputs=["n"]).parallel("fork")
    left = split.branch().service("left", agent="test.bump", inputs=["n"], outputs=["n"])
    right = split.branch().timer("pause", "PT1H")
    b.join("sync", left, right).end("done")
    return b.build()


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


@pytest.fixture
def engine(db_url: str) -> Engine:
    return Engine(db_url, clock=VirtualClock(), principal=Principal.system())


def test_a_batch_writes_each_variable_version_once_in_order(engine: Engine) -> None:
    engine.deploy(counter_flow())
    ids = engine.start_many("counter", [{"n": i * 10} for i in range(30)])
    engine.run_until_idle()
    for i, instance_id in enumerate(ids):
        view = engine.instance(instance_id)
        assert view.status == "completed"
        assert view.variables["n"] == i * 10 + 3
        assert list(view.history["version"]) == [1, 2, 3, 4]
        assert list(view.history["new_value"]) == [i * 10, i * 10 + 1, i * 10 + 2, i * 10 + 3]
    assert count(engine, J) == 0 and count(engine, T) == 0


def test_parallel_branches_in_one_batch_leave_the_token_table_equal_to_the_state(engine: Engine) -> None:
    engine.deploy(race_flow())
    ids = engine.start_many("forked", [{"n": 0}] * 20)
    engine.run_until_idle()
    for instance_id in ids:
        view = engine.instance(instance_id)
        assert sorted(view.active_nodes) == ["pause", "sync"]
    assert count(engine, J, J.c.kind == "timer") == 20
    engine.advance(timedelta(hours=1))
    assert set(engine.instances()["status"]) == {"completed"}
    assert count(engine, T) == 0 and count(engine, J) == 0


def test_start_many_checks_everything_first_and_writes_nothing_on_a_bad_row(engine: Engine) -> None:
    engine.deploy(counter_flow())
    with pytest.raises(Exception, match="'n' must be int"):
        engine.start_many("counter", [{"n": 1}, {"n": "two"}])
    assert engine.instances().empty


def test_one_failing_step_does_not_hold_up_the_rest_of_its_batch(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine.deploy(counter_flow())
    ids = engine.start_many("counter", [{"n": i} for i in range(5)])
    sem = engine.semantics("counter", 1)
    original = sem.step

    def broken(state: Any, event: Any, now: Any) -> Any:
        if state.variables.get("n") == 2:
            raise RuntimeError("a bug in one step")
        return original(state, event, now)

    monkeypatch.setattr(sem, "step", broken)
    assert engine.run_due_jobs(limit=10) == 5  # no exception: the failing step becomes an incident
    assert [engine.instance(i).active_nodes for i in ids] == [["b"], ["b"], ["a"], ["b"], ["b"]]
    incidents = engine.incidents()
    assert [i["instance_id"] for i in incidents] == [ids[2]] and "a bug in one step" in incidents[0]["error"]
    assert engine.run_due_jobs(limit=10) == 4  # its job is gone (no retry forever); the four others go on
    assert engine.instance(ids[2]).active_nodes == ["a"]
    assert sum(i["instance_id"] == ids[2] for i in engine.incidents()) == 1  # not tried again


def test_writes_drop_a_timer_armed_and_cancelled_in_the_same_batch() -> None:
    writes = Writes()
    writes.add_job({"instance_id": "i", "kind": "timer", "ref": "t1", "due_at": None, "payload": "{}"})
    writes.add_job({"instance_id": "i", "kind": "message", "ref": "m", "due_at": None, "payload": "{}"})
    writes.cancel_job("i", "timer", "t1")
    assert [j["ref"] for j in writes.jobs if j is not None] == ["m"]
    writes.add_job({"instance_id": "i", "kind": "work", "ref": "tok", "due_at": None, "payload": "{}"})
    writes.subscribe({"id": "i:s1", "instance_id": "i"})
    writes.instance_ended("i")
    assert [j["ref"] for j in writes.jobs if j is not None] == ["m"]  # messages still go out
    assert writes.subs == {} and writes.ended == ["i"]


def test_batched_history_matches_one_at_a_time(tmp_path: Path) -> None:
    """The same runs with batch size 1 and 50 leave the same history, step for step."""
    histories = []
    for size in (1, 50):
        engine = Engine(f"sqlite:///{tmp_path / f'b{size}.db'}", clock=VirtualClock(), principal=Principal.system())
        engine.deploy(counter_flow())
        ids = engine.start_many("counter", [{"n": i} for i in range(10)], business_keys=[str(i) for i in range(10)])
        while engine.run_due_jobs(limit=size):
            pass
        histories.append([engine.instance(i).history[["name", "version", "old_value", "new_value", "node_id"]]
                          .to_dict("records") for i in ids])
    assert histories[0] == histories[1]


ACTIVE = {"now": 0, "max": 0}
ACTIVE_LOCK = threading.Lock()


def overlapping(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    """Counts how many calls run at once (each waits a little, as a remote call would)."""
    with ACTIVE_LOCK:
        ACTIVE["now"] += 1
        ACTIVE["max"] = max(ACTIVE["max"], ACTIVE["now"])
    time.sleep(0.05)
    with ACTIVE_LOCK:
        ACTIVE["now"] -= 1
    return {"n": int(inputs.get("n") or 0) + 1}


register("test.overlapping", overlapping)


@pytest.mark.parametrize("threads", [1, 4])
def test_agent_calls_of_a_batch_run_on_the_worker_threads(tmp_path: Path, threads: int) -> None:
    b = ProcessBuilder("remote", variables={"n": int})
    b.start().service("call", agent="test.overlapping", inputs=["n"], outputs=["n"]).end("done")
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}", clock=VirtualClock(), agent_threads=threads,
                    principal=Principal.system())
    engine.deploy(b.build())
    ids = engine.start_many("remote", [{"n": i} for i in range(8)])
    ACTIVE["max"] = 0
    engine.run_until_idle()
    assert [engine.instance(i).variables["n"] for i in ids] == [i + 1 for i in range(8)]
    assert ACTIVE["max"] == 1 if threads == 1 else ACTIVE["max"] > 1


def replace_doc(inputs: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"doc": "y" * 500_000}


register("test.replace_doc", replace_doc)


def test_a_large_value_is_written_once_per_change_not_at_every_step(engine: Engine) -> None:
    """Issue 14: a value lives in wf_variables (current) and its history row (the audit), once per change; the
    instance's state keeps none of it, so a step that does not change it writes none of it, and the value a
    change replaced is the previous version's row, not a second copy (the history still shows it)."""
    from engine.runtime.tables import InstanceRow

    b = ProcessBuilder("carry", variables={"doc": str, "n": int})
    (b.start().service("a", agent="test.bump", inputs=["n"], outputs=["n"])
     .service("b", agent="test.replace_doc", inputs=["n"], outputs=["doc"])
     .service("c", agent="test.bump", inputs=["n"], outputs=["n"]).end("done"))
    engine.deploy(b.build())
    first = "x" * 500_000
    instance_id = engine.start("carry", {"doc": first, "n": 0})
    inst = InstanceRow.__table__
    with engine.db.connect() as conn:
        state = conn.execute(select(inst.c.state).where(inst.c.id == instance_id)).scalar_one()
    assert len(state) < 2_000 and "xxxx" not in state  # the state holds position, not values
    engine.run_until_idle()
    view = engine.instance(instance_id)
    assert view.status == "completed" and view.variables["doc"] == "y" * 500_000
    with engine.db.connect() as conn:
        rows = conn.execute(select(H.c.version, H.c.old_value, func.length(H.c.new_value)).where(
            H.c.instance_id == instance_id, H.c.name == "doc").order_by(H.c.version)).all()
        state = conn.execute(select(inst.c.state).where(inst.c.id == instance_id)).scalar_one()
    assert [(r.version, r.old_value) for r in rows] == [(1, None), (2, None)]  # no second copy of the old value
    assert "xxxx" not in state and "yyyy" not in state
    doc = view.history[view.history["name"] == "doc"]
    assert list(doc["old_value"]) == [None, first] and list(doc["new_value"]) == [first, "y" * 500_000]
    assert list(view.history[view.history["name"] == "n"]["old_value"]) == [None, 0, 1]
