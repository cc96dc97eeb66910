"""History retention: finished instances past their definition's time-to-live go (with every row that
names them), in batches, archived first; running and younger instances stay."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import register
from engine.errors import EngineError
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.retention import instance_tables


def note(inputs: dict, context: object) -> dict:
    return {"noted": True}


register("test.retention_note", note)


def deploy(engine: Engine) -> None:
    quick = ProcessBuilder("quick", variables={"n": int, "noted": bool})
    quick.start().service("note", agent="test.retention_note", outputs=["noted"]).end("done")
    engine.deploy(quick.build())
    slow = ProcessBuilder("slow")
    slow.start().user("review", title="Review", assignee="ada").end("done")
    engine.deploy(slow.build())
    other = ProcessBuilder("other")
    other.start().end("done")
    engine.deploy(other.build())


def rows_of(engine: Engine, instance_ids: list[str]) -> int:
    with engine.reader.connect() as conn:
        return sum(conn.execute(select(func.count()).select_from(t).where(t.c.instance_id.in_(instance_ids)))
                   .scalar_one() for t in instance_tables())


@pytest.fixture
def world(db_url: str) -> tuple[Engine, VirtualClock, dict[str, list[str]]]:
    clock = VirtualClock()
    engine = Engine(db_url, clock=clock)
    deploy(engine)
    ids: dict[str, list[str]] = {"old": [], "young": [], "running": [], "other": []}
    for i in range(5):
        ids["old"].append(engine.start("quick", {"n": i}))
    ids["running"].append(engine.start("slow"))
    ids["other"].append(engine.start("other"))
    engine.run_until_idle()
    clock.advance(timedelta(days=2))
    for i in range(2):
        ids["young"].append(engine.start("quick", {"n": 10 + i}))
    engine.run_until_idle()
    clock.advance(timedelta(hours=1))
    return engine, clock, ids


def test_cleanup_removes_only_finished_instances_past_their_ttl(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _clock, ids = world
    assert engine.cleanup_history().total == 0  # no time-to-live: history is kept
    engine.set_history_ttl("quick", timedelta(days=1))
    engine.set_history_ttl("slow", timedelta(hours=1))
    assert engine.history_ttls() == {"quick": timedelta(days=1), "slow": timedelta(hours=1)}
    assert rows_of(engine, ids["old"]) > 0
    archive = tmp_path / "archive" / "history.jsonl.gz"
    report = engine.cleanup_history(batch_size=2, archive=archive)
    assert report.removed == {"quick": 5} and report.batches == 3 and not report.more
    left = set(engine.instances()["id"])
    assert left == {*ids["young"], *ids["running"], *ids["other"]}
    assert rows_of(engine, ids["old"]) == 0 and rows_of(engine, ids["young"]) > 0
    with gzip.open(archive, "rt") as lines:
        records = [json.loads(line) for line in lines]
    assert sorted(r["instance"]["id"] for r in records) == sorted(ids["old"])
    first = records[0]
    assert first["instance"]["status"] == "completed" and first["instance"]["definition_name"] == "quick"
    assert {v["name"] for v in first["rows"]["wf_variables"]} == {"n", "noted"}
    assert first["rows"]["wf_task_executions"][0]["node_id"] == "note"


def test_default_ttl_and_batches(world) -> None:  # type: ignore[no-untyped-def]
    engine, clock, ids = world
    engine.set_history_ttl(None, timedelta(hours=1))
    engine.set_history_ttl("quick", timedelta(days=30))  # its own setting wins over the default
    report = engine.cleanup_history()
    assert report.removed == {"other": 1}
    clock.advance(timedelta(days=31))
    seen: list[str] = []
    first = engine.cleanup_history(batch_size=3, max_batches=1, archive=lambda r: seen.append(r["instance"]["id"]))
    assert first.total == 3 and first.more and len(seen) == 3
    rest = engine.cleanup_history(batch_size=3)
    assert rest.total == 4 and not rest.more
    assert set(engine.instances()["id"]) == set(ids["running"])  # a running instance is never removed
    engine.set_history_ttl(None, None)
    assert engine.history_ttls() == {"quick": timedelta(days=30)}


def test_export_writes_without_removing(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _clock, ids = world
    path = tmp_path / "quick.jsonl"
    assert engine.export_history(path, definition="quick") == 7
    exported = [json.loads(line)["instance"]["id"] for line in path.read_text().splitlines()]
    assert sorted(exported) == sorted(ids["old"] + ids["young"])
    assert len(engine.instances()) == 9


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}")
    with pytest.raises(EngineError, match="must be positive"):
        engine.set_history_ttl("quick", timedelta(0))
    with pytest.raises(EngineError, match="batch_size"):
        engine.cleanup_history(batch_size=0)


def test_the_worker_runs_the_cleanup(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from engine.runtime.worker import run_worker

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = Engine(url, clock=VirtualClock(datetime(2020, 1, 6, tzinfo=UTC)))  # long before the worker's clock
    deploy(engine)
    engine.start("other")
    engine.set_history_ttl("other", timedelta(days=1))
    assert len(engine.instances()) == 1
    run_worker(url, poll=0.01, max_idle=0.05, cleanup_every=0.0)
    assert engine.instances().empty


def test_undelivered_messages_go_once_older_than_the_time_to_live(db_url: str) -> None:
    clock = VirtualClock()
    engine = Engine(db_url, clock=clock)
    waiter = ProcessBuilder("waiter", variables={"paid": str})
    waiter.start().receive("wait", "order.paid", outputs=["paid"]).end("done")
    engine.deploy(waiter.build())
    engine.correlate("order.paid", payload={"paid": "early"}, ttl=timedelta(minutes=30))  # nobody waits
    engine.correlate("order.shipped", payload={}, ttl=timedelta(hours=1))
    engine.set_history_ttl(None, timedelta(days=1))
    assert engine.cleanup_history().messages == 0  # still deliverable
    clock.advance(timedelta(hours=2))  # both expired, but younger than the time-to-live
    assert engine.cleanup_history().messages == 0
    assert set(engine.messages()["status"]) == {"expired"}
    clock.advance(timedelta(days=1))
    assert engine.cleanup_history().messages == 2
    assert engine.messages().empty
