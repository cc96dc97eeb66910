"""Migrating running instances between versions: dry run, refusals per instance, timers that keep their
due time, tasks that keep their assignee and SLA clock, and migrating back. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import register
from engine.model import ProcessBuilder
from engine.runtime import AgentContext, Engine, EngineError, VirtualClock
from engine.runtime.tables import InstanceRow, JobRow, MigrationRow
from engine.security import Principal
from engine.versions.migration import migrate, migrations, plan_migration

NOTIFIED: list[str] = []


@register("migration_notify")
def notify(inputs: dict[str, Any], context: AgentContext) -> dict[str, Any]:
    NOTIFIED.append(context.instance_id)
    return {}


def v1() -> Any:
    """cool off one day, then a person approves (4 h SLA)."""
    b = ProcessBuilder("expense", variables={"amount": int})
    b.start().timer("cool_off", "P1D").user("approve", "Approve", assignee="lead", sla_hours=4).end("done")
    return b.build()


def v2() -> Any:
    """the approval is renamed 'review' and followed by a notification."""
    b = ProcessBuilder("expense", variables={"amount": int})
    (b.start().timer("cool_off", "P1D").user("review", "Review", assignee="lead", sla_hours=4)
     .service("notify", agent="migration_notify").end("done"))
    return b.build()


def v3_bad() -> Any:
    """'approve' is a service task now, and amount became a string."""
    b = ProcessBuilder("expense", variables={"amount": str})
    b.start().timer("cool_off", "P1D").service("approve", agent="migration_notify").end("done")
    return b.build()


def _count(engine: Engine, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table.__table__)
    for column, value in where.items():
        query = query.where(table.__table__.c[column] == value)
    with engine.db.connect() as conn:
        return conn.execute(query).scalar_one()


@pytest.fixture
def engine(db_url: str) -> Engine:
    e = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    for d in (v1(), v2(), v3_bad()):
        e.deploy(d)
    return e


def test_dry_run_refuses_per_instance_and_writes_nothing(engine: Engine) -> None:
    approving = engine.start("expense", {"amount": 7}, version=1)
    engine.advance(timedelta(days=1))  # past the timer, at 'approve'
    waiting = engine.start("expense", {"amount": 5}, version=1)  # at the timer
    plan = plan_migration(engine, "expense", 1, 3)
    frame = plan.to_frame().set_index("instance_id")
    assert frame.loc[waiting, "action"] == "refused"  # the variable's type changed
    assert "variable 'amount' changes type from integer to string" in frame.loc[waiting, "reasons"]
    assert "a token at 'approve' (user_task) maps to 'approve', a service_task" in frame.loc[approving, "reasons"]
    result = migrate(engine, plan, actor="ops")
    assert result.migrated == [] and set(result.refused) == {waiting, approving}
    assert _count(engine, MigrationRow) == 0
    assert _count(engine, InstanceRow, definition_version=1) == 2
    with pytest.raises(EngineError, match="'approve' to 'nope', which is not a node"):
        plan_migration(engine, "expense", 1, 2, {"approve": "nope"})


def test_migration_keeps_due_times_and_assignments_and_can_go_back(engine: Engine) -> None:
    at_timer = engine.start("expense", {"amount": 1}, version=1)
    engine.advance(timedelta(days=1))  # at_timer's timer fired: it waits at 'approve'
    at_task = engine.start("expense", {"amount": 2}, version=1)
    engine.advance(timedelta(hours=6))  # at_task's timer is due in 18 h

    def timer_due() -> Any:
        with engine.db.connect() as conn:
            return conn.execute(select(JobRow.__table__.c.due_at).where(
                JobRow.__table__.c.instance_id == at_task, JobRow.__table__.c.kind == "timer")).scalar_one()

    due_before = timer_due()
    (task,) = engine.tasks(instance_id=at_timer)
    assert task["node_id"] == "approve"

    plan = plan_migration(engine, "expense", 1, 2, {"approve": "review"})
    assert set(plan.migratable) == {at_timer, at_task} and plan.refused == []
    assert plan.to_frame().set_index("instance_id").loc[at_timer, "moves"] == "approve -> review"
    result = migrate(engine, plan, actor="ops")
    assert sorted(result.migrated) == sorted([at_timer, at_task])

    (moved,) = engine.tasks(instance_id=at_timer)
    assert (moved["id"], moved["node_id"], moved["assignee"], moved["due_at"]) == \
        (task["id"], "review", "lead", task["due_at"])
    assert engine.instance(at_timer).version == 2 and engine.instance(at_timer).active_nodes == ["review"]
    history = migrations(engine, at_timer)
    assert list(history["actor"]) == ["ops"] and history["mapping"].iloc[0] == {"approve": "review"}

    # the migrated timer keeps its due time and fires then, once: not re-armed by the migration
    assert timer_due() == due_before
    assert engine.instance(at_task).active_nodes == ["cool_off"]
    engine.advance(timedelta(hours=17, minutes=59))
    assert engine.instance(at_task).active_nodes == ["cool_off"]
    engine.advance(timedelta(minutes=1))
    assert engine.instance(at_task).active_nodes == ["review"]

    # back to v1 with the inverse mapping: the same position on the original version
    back = migrate(engine, plan_migration(engine, "expense", 2, 1, {"review": "approve"},
                                          instance_ids=[at_timer]), actor="ops")
    assert back.migrated == [at_timer]
    assert engine.instance(at_timer).version == 1 and engine.instance(at_timer).active_nodes == ["approve"]
    engine.complete_task(moved["id"], {}, actor="lead")
    engine.run_until_idle()
    assert engine.instance(at_timer).status == "completed" and at_timer not in NOTIFIED  # v1's path: no notify

    # the one that stayed on v2 runs v2's path
    (other,) = engine.tasks(instance_id=at_task)
    engine.complete_task(other["id"], {}, actor="lead")
    engine.run_until_idle()
    assert engine.instance(at_task).status == "completed" and at_task in NOTIFIED


def test_a_moved_instance_is_checked_again_when_applied(engine: Engine) -> None:
    """The plan is made at the timer; before it is applied the instance moves on to 'approve', which has
    no identity counterpart in v2: the migration refuses it instead of forcing a stale plan."""
    instance = engine.start("expense", {"amount": 3}, version=1)
    plan = plan_migration(engine, "expense", 1, 2)  # no mapping for approve: fine while at the timer
    assert plan.migratable == [instance]
    engine.advance(timedelta(days=1))
    result = migrate(engine, plan)
    assert result.migrated == [] and "'approve' has no counterpart in v2" in result.refused[instance]
    assert engine.instance(instance).version == 1
