"""The audit trail says what became of each action: an allowed action's row commits with its change
(``succeeded``), an allowed action that then fails on its input leaves a ``failed`` row with the error and
nothing else, a refusal is ``refused``. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.errors import AuthorizationError, DefinitionError, EngineError
from engine.model import FormField, ProcessBuilder
from engine.runtime import Engine, VirtualClock
from engine.runtime.tables import (
    DefinitionRow,
    HumanTaskRow,
    IncidentRow,
    InstanceRow,
    JobRow,
    TokenRow,
    VariableHistoryRow,
    VariableRow,
)
from engine.security import Principal, audit_trail
from engine.versions.rollout import set_rollout

TABLES = [DefinitionRow, InstanceRow, TokenRow, VariableRow, VariableHistoryRow, JobRow, HumanTaskRow, IncidentRow]


def definition(name: str = "approval") -> Any:
    b = ProcessBuilder(name, variables={"amount": int, "approved": bool})
    b.start().user("approve", title="Approve", candidate_groups=["finance"],
                   form=[FormField(name="approved", type="boolean", required=True)]).end()
    return b.build()


def unregistered() -> Any:
    b = ProcessBuilder("calls_nobody")
    b.start().service("call", agent="no_such_agent").end()
    return b.build()


@pytest.fixture
def engine(db_url: str) -> Engine:
    engine = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    engine.deploy(definition())
    return engine


def counts(engine: Engine) -> dict[str, int]:
    with engine.db.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()
                for t in TABLES}


def newest(engine: Engine, n: int = 1) -> list[dict[str, Any]]:
    return audit_trail(engine.db, limit=n).to_dict("records")


OPERATOR = Principal("olga", roles={"operator", "deployer"})

FAILING = {  # allowed for OPERATOR, then refused by the engine on its input
    "start": (lambda e, iid: e.start("approval", {"amount": "five"}), EngineError, "'amount' must be"),
    "start many": (lambda e, iid: e.start_many("approval", [{"amount": 1}, {"amount": "x"}]), EngineError,
                   "'amount' must be"),
    "set_variables": (lambda e, iid: e.set_variables(iid, {"nope": 1}), EngineError, "not a declared variable"),
    "cancel": (lambda e, iid: e.cancel("no-such-instance"), EngineError, "no instance"),
    "correlate": (lambda e, iid: e.correlate("nobody-waits", None), EngineError, "no instance waits"),
    "deploy": (lambda e, iid: e.deploy(unregistered()), DefinitionError, "no_such_agent"),
    "retry": (lambda e, iid: e.retry(424242), EngineError, "no open incident"),
    "rollout": (lambda e, iid: set_rollout(e, "approval", {7: 1.0}), EngineError, "version 7"),
}


@pytest.mark.parametrize("action", sorted(FAILING))
def test_an_allowed_action_that_fails_leaves_a_failed_row_and_nothing_else(engine: Engine, action: str) -> None:
    iid = engine.start("approval", {"amount": 5})
    call, error, message = FAILING[action]
    before, trail = counts(engine), len(audit_trail(engine.db))
    with pytest.raises(error, match=message):
        call(engine.acting_as(OPERATOR), iid)
    assert counts(engine) == before  # the action wrote nothing
    rows = audit_trail(engine.db).iloc[trail:].to_dict("records")
    assert len(rows) == 1, rows  # one row, saying it failed - never "succeeded"
    (row,) = rows
    assert (row["principal"], bool(row["allowed"]), row["outcome"]) == ("olga", True, "failed")
    assert message.strip("'") in row["detail"]["error"] and row["detail"]["error"].startswith(error.__name__)


def test_an_allowed_action_that_succeeds_commits_its_row_with_the_change(engine: Engine) -> None:
    acting = engine.acting_as(OPERATOR)
    iid = acting.start("approval", {"amount": 5})
    (row,) = newest(engine)
    assert (row["action"], row["outcome"], row["target"], row["detail"]) == ("start", "succeeded", "approval",
                                                                             {"count": 1})
    acting.set_variables(iid, {"amount": 6})
    acting.advance(timedelta(minutes=5))  # several transactions: the row is written when it returns
    acting.cancel(iid)
    rows = newest(engine, 3)
    assert [(r["action"], r["outcome"]) for r in rows] == [("set_variables", "succeeded"),
                                                           ("clock.advance", "succeeded"),
                                                           ("cancel", "succeeded")]
    assert engine.instance(iid).status == "cancelled"


def test_a_refusal_is_still_audited_as_refused(engine: Engine) -> None:
    clerk = engine.acting_as(Principal("clerk", roles={"designer"}))
    before = counts(engine)
    with pytest.raises(AuthorizationError, match="rule 'start' needs the operator role"):
        clerk.start("approval", {"amount": 1})
    assert counts(engine) == before
    (row,) = newest(engine)
    assert (row["principal"], bool(row["allowed"]), row["outcome"], row["rule"]) == ("clerk", False, "refused",
                                                                                      "start")


def test_a_task_action_is_audited_with_its_change_and_a_failed_one_writes_nothing(engine: Engine) -> None:
    iid = engine.start("approval", {"amount": 5})
    task = engine.tasks(instance_id=iid)[0]["id"]
    fay = engine.acting_as(Principal("fay", groups={"finance"}))
    before, trail = counts(engine), len(audit_trail(engine.db))
    with pytest.raises(EngineError, match="'approved'"):
        fay.complete_task(task, {"approved": "yes please"})
    assert counts(engine) == before and len(audit_trail(engine.db)) == trail  # a form error is not an action
    fay.complete_task(task, {"approved": True})
    (row,) = newest(engine)
    assert (row["principal"], row["action"], row["outcome"]) == ("fay", "task.complete", "succeeded")
    assert engine.instance(iid).status == "completed"


def test_audit_trail_filters_by_outcome(engine: Engine) -> None:
    acting = engine.acting_as(OPERATOR)
    acting.start("approval", {"amount": 1})
    with pytest.raises(EngineError):
        acting.start("approval", {"amount": "one"})
    with pytest.raises(AuthorizationError):
        engine.acting_as(Principal("clerk")).start("approval", {"amount": 1})
    outcomes = {o: list(audit_trail(engine.db, outcome=o, action="start")["principal"])
                for o in ("succeeded", "failed", "refused")}
    assert outcomes == {"succeeded": ["olga"], "failed": ["olga"], "refused": ["clerk"]}
