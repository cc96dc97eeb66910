"""The process model: every node kind accepts its valid fields and refuses bad ones with a clear reason."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from engine.errors import DefinitionError, UnknownHandlerError
from engine.model import (
    OnTimeout,
    ProcessBuilder,
    ProcessDefinition,
    RetryPolicy,
    SequenceFlow,
    ServiceTask,
    UserTask,
    VariableDecl,
    complete_with,
    escalate,
    from_dict,
    notify,
    reassign,
    type_matches,
)
from engine.model.nodes import BOUNDARY_KINDS, CATCH_KINDS, END_KINDS, NODE_CLASSES, START_KINDS
from engine.registry import ref_of, register, registered, resolve, unregister

# --- the design review's constructor shapes -----------------------------------------------------------


class WowVisionPrime:
    """An agent class, passed as the design review writes it."""

    def __call__(self, pr_number: int) -> dict[str, Any]:
        return {"vision_approved": pr_number % 2 == 0}


def rollback_function(pr_number: int) -> None:
    """A compensation handler."""


def escalate_to_cto(task: Any) -> None:
    """A timeout handler."""


def test_service_task_as_written_in_the_design_review() -> None:
    task = ServiceTask(
        id="wowvision_validate",
        agent=WowVisionPrime,
        input_variables=["pr_number"],
        output_variables=["vision_approved"],
        compensation=rollback_function,
    )
    assert isinstance(task.agent, str) and isinstance(task.compensation, str)
    assert task.agent.endswith(":WowVisionPrime") and task.compensation.endswith(":rollback_function")
    assert resolve(task.agent) is WowVisionPrime
    assert resolve(task.compensation) is rollback_function
    assert task.retry == RetryPolicy() and task.timeout is None
    assert task.is_activity and not task.is_gateway


def test_user_task_as_written_in_the_design_review() -> None:
    task = UserTask(
        id="approval",
        title="Review Major Change",
        assignee="engineering-lead",
        sla_hours=4,
        on_timeout=escalate_to_cto,
    )
    assert task.sla == "PT4H" and task.sla_delta == timedelta(hours=4)
    assert task.on_timeout is not None and task.on_timeout.action == "handler"
    assert task.on_timeout.handler is not None and resolve(task.on_timeout.handler) is escalate_to_cto
    assert "sla_hours" not in task.model_dump()  # stored as the ISO duration only
    assert UserTask(id="a", sla_hours=1.5).sla == "PT1H30M"


def test_named_agents_and_registry() -> None:
    class Agent:
        agent_name = "agents.vision"

    assert ref_of(Agent) == "agents.vision" and resolve("agents.vision") is Agent

    @register("custom.handler")
    def handler() -> str:
        return "ran"

    assert resolve("custom.handler")() == "ran" and "custom.handler" in registered()
    unregister("custom.handler")
    assert resolve("designs.agents:notify").__name__ == "notify"  # module:qualname imports an allowed module
    with pytest.raises(UnknownHandlerError, match=r"'os\.path' is not on the allow-list"):
        resolve("os.path:join")  # definitions are data: they never choose what is imported
    with pytest.raises(UnknownHandlerError, match=r"register it with engine\.register"):
        resolve("designs.no_such:thing")
    with pytest.raises(TypeError, match="expected a callable"):
        ref_of(42)


# --- every node kind: valid fields, bad fields --------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "start": {},
    "timer_start": {"timer": "0 9 * * MON-FRI"},
    "message_start": {"message": "order.placed"},
    "end": {},
    "terminate_end": {},
    "error_end": {"error_code": "PAYMENT_FAILED"},
    "cancel_end": {},
    "timer_catch": {"timer": "P7D"},
    "message_catch": {"message": "reply", "correlation_key": "order_id", "outputs": ["answer"]},
    "message_throw": {"message": "notify", "payload": ["order_id"], "correlation_key": "order_id"},
    "compensation_throw": {"activity": "pay"},
    "intermediate_throw": {"name": "Order received"},
    "conditional_catch": {"condition": "stock > 0 and not blocked"},
    "script_task": {"script": "total = price * quantity\nlabel = upper(name)", "script_format": "groovy"},
    "call_activity": {"called_element": "approval", "inputs": {"amount": "total * 2"}, "binding": "version",
                      "version": 2},
    "link_throw": {"link": "archive"},
    "link_catch": {"link": "archive"},
    "signal_start": {"signal": "all_clear"},
    "signal_catch": {"signal": "all_clear"},
    "signal_throw": {"signal": "all_clear", "payload": ["note"]},
    "signal_end": {"signal": "all_clear"},
    "boundary_signal": {"attached_to": "work", "signal": "stop", "interrupting": False},
    "escalation_throw": {"escalation_code": "LATE"},
    "escalation_end": {"escalation_code": "LATE"},
    "boundary_escalation": {"attached_to": "work", "escalation_code": "LATE", "interrupting": False},
    "boundary_conditional": {"attached_to": "work", "condition": "blocked", "interrupting": False},
    "error_start": {"error_code": "DAMAGED"},
    "escalation_start": {"escalation_code": "LATE", "interrupting": False},
    "conditional_start": {"condition": "priority > 5", "interrupting": False},
    "receive_task": {"message": "reply", "correlation_key": "order_id", "compensation": "agents:undo"},
    "boundary_timer": {"attached_to": "work", "timer": "PT4H", "interrupting": False},
    "boundary_error": {"attached_to": "work", "error_code": "E1"},
    "boundary_cancel": {"attached_to": "trip"},
    "boundary_message": {"attached_to": "work", "message": "cancel", "correlation_key": "order_id"},
    "exclusive_gateway": {"default": "f1"},
    "inclusive_gateway": {"default": "f2"},
    "parallel_gateway": {},
    "event_gateway": {},
    "task": {"name": "Manual step", "documentation": "Done by hand."},
    "service_task": {"agent": "agents:run", "input_variables": ["a"], "output_variables": ["b"],
                     "retry": {"attempts": 5, "backoff": "PT2S", "multiplier": 3, "max_backoff": "PT1M"},
                     "timeout": "PT5M", "compensation": "agents:undo"},
    "user_task": {"title": "Approve", "assignee": "ann", "candidate_groups": ["leads"],
                  "form": [{"name": "ok", "type": "boolean", "required": True},
                           {"name": "env", "type": "enum", "choices": ["dev", "prod"]}],
                  "sla": "PT4H", "sla_calendar": "office", "on_timeout": "escalate:cto"},
    "sub_process": {"nodes": [{"id": "s", "kind": "start"}, {"id": "e", "kind": "end"}],
                    "flows": [{"id": "f", "source": "s", "target": "e"}]},
    "ad_hoc_sub_process": {"nodes": [{"id": "a", "kind": "task"}, {"id": "b", "kind": "task"}],
                           "active_elements": "['b']", "completion_condition": "done", "cancel_remaining": False,
                           "ordering": "sequential"},
}

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("timer_start", {}, "Field required"),
    ("message_start", {"message": ""}, "at least 1 character"),
    ("error_end", {}, "Field required"),
    ("timer_catch", {"timer": "P1Y"}, "years or months"),
    ("timer_catch", {"timer": "soon"}, "not an ISO-8601 date-time"),
    ("timer_catch", {"timer": {"duration": "PT1H", "cycle": "R/PT1H"}}, "exactly one of duration, date or cycle"),
    ("timer_catch", {"timer": {"cycle": "61 9 * * *"}}, "not a valid cron expression"),
    ("timer_catch", {"timer": {"cycle": "0 9 * * *", "timezone": "Mars/Base"}}, "unknown time zone"),
    ("timer_catch", {"timer": "R5/PT0S"}, "positive interval"),
    ("message_catch", {"message": "m", "correlation_key": "__import__('os')"}, "calls something other than"),
    ("message_throw", {"message": "m", "correlation_key": "x >"}, "does not parse"),
    ("boundary_timer", {"timer": "PT1H"}, "attached_to"),
    ("boundary_error", {"attached_to": "work", "interrupting": False}, "always interrupts"),
    ("boundary_message", {"attached_to": "work"}, "message"),
    ("parallel_gateway", {"default": "f1"}, "Extra inputs are not permitted"),
    ("event_gateway", {"default": "f1"}, "Extra inputs are not permitted"),
    ("task", {"agent": "x"}, "Extra inputs are not permitted"),
    ("service_task", {}, "agent"),
    ("service_task", {"agent": 42}, "expected a callable"),
    ("service_task", {"agent": "a", "retry": {"attempts": 0}}, "greater than or equal to 1"),
    ("service_task", {"agent": "a", "retry": {"multiplier": 0.5}}, "greater than or equal to 1"),
    ("service_task", {"agent": "a", "timeout": "1h"}, "not an ISO-8601 duration"),
    ("service_task", {"agent": "a", "timeout": "-PT1H"}, "negative"),
    ("user_task", {"form": [{"name": "env", "type": "enum"}]}, "is an enum and needs choices"),
    ("user_task", {"form": [{"name": "a"}, {"name": "a"}]}, "form fields repeated: a"),
    ("user_task", {"form": [{"name": "bad name"}]}, "should match pattern"),
    ("user_task", {"form": [{"name": "x", "type": "colour"}]}, "Input should be"),
    ("user_task", {"sla": "PT1H", "sla_hours": 2}, "either sla or sla_hours, not both"),
    ("user_task", {"sla_hours": -1}, "sla_hours must be a positive number"),
    ("user_task", {"sla_hours": 0}, "sla_hours must be a positive number"),
    ("user_task", {"sla_hours": "4"}, "sla_hours must be a positive number"),
    ("user_task", {"sla": "four hours"}, "not an ISO-8601 duration"),
    ("user_task", {"on_timeout": {"action": "escalate"}}, "'escalate' needs 'assignee'"),
    ("user_task", {"on_timeout": "escalate:"}, "'escalate' needs 'assignee'"),
    ("user_task", {"on_timeout": {"action": "notify"}}, "'notify' needs 'message'"),
    ("user_task", {"on_timeout": {"action": "explode"}}, "Input should be"),
    ("user_task", {"asignee": "ann"}, "Extra inputs are not permitted"),
    ("sub_process", {"nodes": [{"id": "x", "kind": "strat"}]}, "does not match any of the expected tags"),
]


@pytest.mark.parametrize("kind", sorted(NODE_CLASSES))
def test_every_kind_constructs_from_valid_fields(kind: str) -> None:
    cls = NODE_CLASSES[kind]
    node = cls(id=f"{kind}_1", **VALID[kind])
    # the label: its name, else a user task's title, else the id in words ("user_task_1" -> "User task 1")
    expected = VALID[kind].get("name") or VALID[kind].get("title") or f"{kind}_1".replace("_", " ").capitalize()
    assert node.kind == kind and node.label == expected
    assert cls.model_validate(node.model_dump()) == node
    with pytest.raises(ValidationError):  # frozen
        node.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("kind", "fields", "reason"), BAD, ids=[f"{k}-{r[:30]}" for k, _, r in BAD])
def test_every_kind_refuses_bad_fields(kind: str, fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        NODE_CLASSES[kind](id="n", **fields)


@pytest.mark.parametrize("ident", ["", "1st", "has space", "a/b"])
def test_ids_must_be_identifiers(ident: str) -> None:
    with pytest.raises(ValidationError):
        NODE_CLASSES["task"](id=ident)
    with pytest.raises(ValidationError):
        SequenceFlow(id=ident, source="a", target="b")


def test_kind_sets_and_class_flags_agree() -> None:
    assert set(NODE_CLASSES) >= START_KINDS | END_KINDS | BOUNDARY_KINDS | CATCH_KINDS
    assert {k for k, c in NODE_CLASSES.items() if c.is_gateway} == {
        "exclusive_gateway", "inclusive_gateway", "parallel_gateway", "event_gateway"}
    assert {k for k, c in NODE_CLASSES.items() if c.is_activity} == {"task", "service_task", "user_task", "script_task",
                                                                        "receive_task", "call_activity", "sub_process",
                                                                            "ad_hoc_sub_process"}
    assert all(NODE_CLASSES[k].is_event for k in START_KINDS | END_KINDS | BOUNDARY_KINDS | CATCH_KINDS)


def test_on_timeout_short_forms_and_helpers() -> None:
    assert OnTimeout.model_validate("escalate:cto") == escalate("cto") == OnTimeout(action="escalate", assignee="cto")
    assert OnTimeout.model_validate("reassign:ops") == reassign("ops")
    assert OnTimeout.model_validate("notify:sla.late") == notify("sla.late")
    assert complete_with(ok=False).values == {"ok": False}
    handler = OnTimeout.model_validate("handlers:late")
    assert (handler.action, handler.handler) == ("handler", "handlers:late")


def test_retry_delay_grows_and_is_capped() -> None:
    retry = RetryPolicy(attempts=5, backoff="PT1S", multiplier=2, max_backoff="PT5S")
    assert [retry.delay(n).total_seconds() for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert RetryPolicy(backoff=timedelta(seconds=90)).backoff == "PT1M30S"


# --- the definition -------------------------------------------------------------------------------------


def definition() -> ProcessDefinition:
    b = ProcessBuilder("order", name="Order", version=2, variables={"total": float, "paid": bool})
    pay = b.start().service("pay", agent="a", inputs=["total"], outputs=["paid"], compensation="refund")
    pay.on_error("DECLINED", id="declined").end("failed")
    pay.sub_process("ship", lambda s: s.start("s0").task("pack").end("s_end")).end("done")
    return b.build()


def test_lookups_cover_nested_scopes() -> None:
    d = definition()
    assert d.node("pack").kind == "task" and d.index.scope_of["pack"] == "ship"
    assert d.index.scope_of["pay"] is None and d.index.scope_of["s0__pack"] == "ship"
    assert {n.id for n in d.all_nodes()} == {"start", "pay", "declined", "failed", "ship", "s0", "pack", "s_end",
                                            "done"}
    assert [f.id for f in d.outgoing("pay")] == ["pay__ship"] and [f.id for f in d.incoming("pack")] == ["s0__pack"]
    assert [b.id for b in d.boundaries("pay")] == ["declined"]
    assert [n.id for n in d.start_nodes()] == ["start"] and [n.id for n in d.start_nodes("ship")] == ["s0"]
    nodes, flows = d.scope("ship")
    assert [n.id for n in nodes] == ["s0", "pack", "s_end"] and len(flows) == 2
    assert d.index.duplicates == [] and d.key == "order:2" and d.label == "Order"
    assert d.variable_types == {"total": "number", "paid": "boolean"}
    with pytest.raises(KeyError, match="has no node 'nope'"):
        d.node("nope")


def test_equality_and_hash_ignore_the_lazy_index() -> None:
    one, two = definition(), definition()
    one.index  # noqa: B018 (build the cache on one side only)
    assert one == two and one.content_hash() == two.content_hash()
    changed = two.model_copy(update={"version": 3})
    assert changed != one and changed.content_hash() != one.content_hash()


def test_duplicate_ids_are_indexed_for_validation() -> None:
    d = from_dict({"id": "p", "nodes": [{"id": "a", "kind": "task"}, {"id": "a", "kind": "end"}],
                   "flows": [{"id": "a", "source": "a", "target": "a"}]})
    assert d.index.duplicates == ["a", "a"]


@pytest.mark.parametrize(("kind", "value", "ok"), [
    ("integer", 3, True), ("integer", True, False), ("integer", 2.5, False), ("number", 2, True),
    ("number", False, False), ("boolean", False, True), ("string", "x", True), ("string", 1, False),
    ("object", {}, True), ("array", [1], True), ("array", "ab", False), ("datetime", "2026-01-01", False),
    ("datetime", datetime(2026, 1, 1, tzinfo=UTC), True), ("date", date(2026, 1, 1), True),
    ("date", datetime(2026, 1, 1), False), ("time", time(9), True), ("duration", timedelta(hours=1), True),
    ("decimal", Decimal("1.5"), True), ("decimal", 1.5, False),
    ("any", object(), True), ("integer", None, True),
])
def test_variable_types(kind: str, value: Any, ok: bool) -> None:
    assert type_matches(kind, value) is ok


def test_variable_declarations_accept_python_types() -> None:
    assert VariableDecl(name="n", type=int).type == "integer"
    assert VariableDecl(name="d", type=Decimal).type == "decimal"
    assert VariableDecl(name="d", type=timedelta, default="PT1H").default == timedelta(hours=1)
    with pytest.raises(ValidationError):
        VariableDecl(name="n", type="money")
    with pytest.raises(ValidationError, match="default must be an ISO 8601 date"):
        VariableDecl(name="n", type="date", default="next tuesday")
    with pytest.raises(ValidationError):
        VariableDecl(name="not valid")


# --- the builder ------------------------------------------------------------------------------------------


def test_builder_sets_defaults_conditions_and_refuses_invalid_models() -> None:
    b = ProcessBuilder("pr", variables={"ok": bool})
    gate = b.start().exclusive("gw")
    gate.when("ok").end("yes")
    gate.otherwise().end("no")
    d = b.build()
    assert d.node("gw").default == "gw__no"  # type: ignore[attr-defined]
    assert {f.id: f.condition for f in d.outgoing("gw")} == {"gw__yes": "ok", "gw__no": None}
    with pytest.raises(DefinitionError, match="ids must be unique"):
        b.start("gw")
    with pytest.raises(DefinitionError, match="no such node"):
        b.at("missing")
    broken = ProcessBuilder("broken")
    broken.start().parallel("a")
    with pytest.raises(DefinitionError) as info:
        broken.build()
    assert {p.where for p in info.value.problems} >= {"a"}
    assert broken.build(validate=False).node("a").kind == "parallel_gateway"


def test_builder_wraps_field_errors_in_a_definition_error() -> None:
    b = ProcessBuilder("bad id!")
    b.start().end()
    with pytest.raises(DefinitionError, match="is not a valid id"):
        b.build()


def test_a_copy_with_other_nodes_looks_up_its_own_nodes() -> None:
    from engine.model import ProcessBuilder

    b = ProcessBuilder("copied")
    b.start().service("work", agent="designs.agents:deploy").end("done")
    original = b.build()
    assert original.node("work").id == "work"  # the original's index is built
    renamed = [n.model_copy(update={"name": "Renamed"}) if n.id == "work" else n for n in original.nodes]
    copy = original.model_copy(update={"nodes": renamed})
    assert copy.node("work").name == "Renamed"
    assert original.node("work").name != "Renamed"


def test_a_node_label_never_shows_a_modeler_id() -> None:
    """What every page shows for a node: its name; a modeler's random id (Activity_1wkter0) only as its kind."""
    from engine.model.nodes import EndEvent, ExclusiveGateway, ServiceTask, UserTask

    assert ServiceTask(id="Activity_1wkter0", name="Check documents", topic="docs").label == "Check documents"
    assert ServiceTask(id="Activity_1wkter0", topic="docs").label == "Service task"
    assert ExclusiveGateway(id="Gateway_09ddg4m").label == "Exclusive gateway"
    assert EndEvent(id="EndEvent_0x1y2z3").label == "End event"
    assert EndEvent(id="issue_created").label == "Issue created"
    assert UserTask(id="Activity_0aaaaaa", title="Approve documents").label == "Approve documents"
