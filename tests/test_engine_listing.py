"""Paged, filtered instance lists: pages, counts, cursors and filters agree with the whole list, and the
queries are served by indexes (no scan of wf_instances, no sort)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from engine.errors import EngineError
from engine.model import ProcessBuilder
from engine.runtime import Engine, VirtualClock, listing
from engine.security import Principal


def two_definitions(engine: Engine) -> None:
    a = ProcessBuilder("alpha", variables={"x": int})
    a.start().user("review", title="Review", assignee="ada").end("done")
    engine.deploy(a.build())
    b = ProcessBuilder("beta")
    b.start().end("done")
    engine.deploy(b.build())


@pytest.fixture
def filled(db_url: str) -> tuple[Engine, VirtualClock]:
    """17 alpha instances (waiting: running) and 8 beta ones (completed at once), a minute apart; three
    started in the same instant (the cursor's tie-break on id)."""
    clock = VirtualClock()
    engine = Engine(db_url, clock=clock, principal=Principal.system())
    two_definitions(engine)
    for i in range(25):
        if i % 3 == 2:
            engine.start("beta", business_key=f"b-{i}")
        else:
            engine.start("alpha", {"x": i}, business_key=f"a-{i}")
        if i not in (10, 11):
            clock.advance(timedelta(minutes=1))
    engine.run_until_idle()
    return engine, clock


def test_pages_walk_the_whole_list_in_order(filled: tuple[Engine, VirtualClock]) -> None:
    engine, _ = filled
    everything = engine.instances()
    assert len(everything) == 25
    assert list(everything["started_at"]) == sorted(everything["started_at"], reverse=True)
    walked, after, pages = [], None, 0
    while True:
        page = engine.instance_page(limit=7, after=after)
        assert page.total == 25
        walked += list(page.rows["id"])
        pages += 1
        if not page.has_next:
            break
        after = page.next_after
    assert walked == list(everything["id"]) and pages == 4
    by_offset = [i for offset in range(0, 25, 7) for i in engine.instance_page(limit=7, offset=offset).rows["id"]]
    assert by_offset == walked
    assert list(engine.instances(limit=5, offset=5)["id"]) == walked[5:10]


def test_filters_and_counts(filled: tuple[Engine, VirtualClock]) -> None:
    engine, _ = filled
    page = engine.instance_page(status="completed", limit=3)
    assert page.total == 8 and set(page.rows["definition_name"]) == {"beta"} and len(page) == 3
    assert engine.instance_page(definition="alpha", status="running").total == 17
    assert engine.instance_page(definition="alpha", version=1).total == 17
    assert engine.instance_page(definition="alpha", version=2).total == 0
    assert engine.instance_page(status=["running", "completed"]).total == 25
    assert list(engine.instance_page(business_key="a-4").rows["business_key"]) == ["a-4"]
    first = engine.instances()["started_at"].min()
    window = engine.instance_page(started_from=first + timedelta(minutes=3),
                                  started_before=first + timedelta(minutes=6))
    assert window.total == 3 and not window.has_next
    empty = engine.instance_page(status="failed")
    assert empty.total == 0 and list(empty.rows.columns) == list(listing.INSTANCE_COLUMNS) and not empty.has_next
    assert engine.instance_page(count_up_to=0).total is None
    capped = engine.instance_page(count_up_to=10)
    assert capped.total == 10 and capped.total_capped and capped.total_text == "10+"
    exact = engine.instance_page(count_up_to=None, status="completed")
    assert exact.total == 8 and not exact.total_capped and exact.total_text == "8"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"offset": -1}, "offset"),
    ({"after": "not a cursor"}, "cursor"), ({"version": 1}, "needs its definition")])
def test_bad_paging_is_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}", principal=Principal.system())
    with pytest.raises(EngineError, match=message):
        engine.instance_page(**kwargs)


@pytest.mark.parametrize("filters", [{}, {"status": "running"}, {"definition": "alpha"},
                                     {"definition": "alpha", "status": "running"}])
def test_sqlite_serves_every_filter_from_an_index(tmp_path: Path, filters: dict) -> None:
    """The plan walks an index in order: no full scan, no temporary B-tree for ORDER BY (a sort of every
    matching row, what made a list take seconds at 500,000 instances)."""
    engine = Engine(f"sqlite:///{tmp_path / 'e.db'}", principal=Principal.system())
    two_definitions(engine)
    columns = [listing.INST.c[c] for c in listing.INSTANCE_COLUMNS]
    query = listing.filtered(select(*columns), **filters).order_by(
        listing.INST.c.started_at.desc(), listing.INST.c.id.desc()).limit(50)
    with engine.reader.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        count = select(listing.func.count()).select_from(listing.filtered(select(listing.INST.c.id), **filters)
                                                         .limit(10_001).subquery())
        count_sql = str(count.compile(conn, compile_kwargs={"literal_binds": True}))
        count_plan = " | ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {count_sql}")))
    assert "USING INDEX ix_wf_instances_" in plan and "TEMP B-TREE" not in plan, plan
    assert "COVERING INDEX" in count_plan or not filters, count_plan


def _ledger_down(inputs: dict, context: object) -> dict:
    raise RuntimeError("the ledger is down")


def test_the_incident_filter_keeps_instances_with_an_open_incident_on_a_token(db_url: str) -> None:
    """with_incident=True: running instances whose token waits on an open incident; cancelling one of them
    resolves its incident and takes it off that list; False gives the rest. Counts and pages agree."""
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    fragile = ProcessBuilder("fragile")
    fragile.start().service("post", agent=_ledger_down, retry={"attempts": 1}).end("done")
    engine.deploy(fragile.build())
    two_definitions(engine)
    broken = [engine.start("fragile") for _ in range(3)]
    healthy = [engine.start("alpha", {"x": 1}) for _ in range(2)]
    engine.run_until_idle()
    assert len(engine.incidents()) == 3
    page = engine.instance_page(with_incident=True)
    assert sorted(page.rows["id"]) == sorted(broken) and page.total == 3
    assert set(page.rows["status"]) == {"running"}
    others = engine.instance_page(with_incident=False, status="running")
    assert sorted(others.rows["id"]) == sorted(healthy)
    engine.cancel(broken[0])
    assert sorted(engine.instance_page(with_incident=True).rows["id"]) == sorted(broken[1:])
    assert broken[0] in set(engine.instance_page(with_incident=False).rows["id"])
