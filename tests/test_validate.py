"""Structural and soundness validation: each check has a minimal model that must fail, and valid models pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_strategies import GeneratedModel, generated_models
from seed_workflows import campaign, onboarding, pr_review

from engine.errors import DefinitionError, Problem
from engine.model import ProcessBuilder, ProcessDefinition, SequenceFlow, from_dict, from_yaml
from engine.model import nodes as n
from engine.validate import errors_only, validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bpmn"


def errors(d: ProcessDefinition) -> list[Problem]:
    return errors_only(d)


def warnings(d: ProcessDefinition) -> list[Problem]:
    return [p for p in validate(d) if p.severity == "warning"]


def at(problems: list[Problem], where: str, *fragments: str) -> Problem:
    """The one problem placed at ``where`` whose message has every fragment; fails with the list otherwise."""
    found = [p for p in problems if p.where == where and all(f in p.message for f in fragments)]
    assert len(found) == 1, f"expected one problem at {where!r} with {fragments}, got:\n" + "\n".join(
        f"  [{p.severity}] {p}" for p in problems)
    return found[0]


def model(nodes: list[dict[str, Any]], flows: list[str | tuple[str, ...]], **fields: Any) -> ProcessDefinition:
    """A definition from node dicts and flows written 'a>b' (id a__b) or (id, 'a>b', condition)."""
    out = []
    for flow in flows:
        if isinstance(flow, str):
            source, target = flow.split(">")
            out.append({"id": f"{source}__{target}", "source": source, "target": target})
        else:
            ident, arrow, *condition = flow
            source, target = arrow.split(">")
            out.append({"id": ident, "source": source, "target": target,
                        **({"condition": condition[0]} if condition else {})})
    return from_dict({"id": "p", "nodes": nodes, "flows": out, **fields})


def kinds(**ids: str) -> list[dict[str, Any]]:
    """Nodes by id=kind, with the fields each kind needs filled in."""
    needs: dict[str, dict[str, Any]] = {
        "service_task": {"agent": "a"}, "user_task": {"assignee": "ann"}, "timer_catch": {"timer": "PT1H"},
        "message_catch": {"message": "m"}, "message_throw": {"message": "m"}, "error_end": {"error_code": "E"},
        "timer_start": {"timer": "0 9 * * *"}, "message_start": {"message": "go"},
    }
    return [{"id": ident, "kind": kind, **needs.get(kind, {})} for ident, kind in ids.items()]


# --- valid models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [pr_review, onboarding, campaign])
def test_seed_workflows_have_no_problem_at_all(builder: Any) -> None:
    d = builder().build()  # build() validates; no DefinitionError
    assert validate(d) == []
    assert d.validate_definition() == []


def test_retry_loop_through_an_exclusive_gateway_is_legal() -> None:
    b = ProcessBuilder("retry", variables={"ok": bool, "tries": int})
    again = b.start().exclusive("again")
    check = again.service("call", agent="a", outputs=["ok", "tries"]).exclusive("worked")
    check.when("not ok and tries < 3").to("again")
    check.otherwise().end("done")
    assert validate(b.build()) == []


def test_retry_loop_back_into_the_task_is_only_an_implicit_merge_warning() -> None:
    b = ProcessBuilder("retry", variables={"ok": bool})
    check = b.start().service("call", agent="a", outputs=["ok"]).exclusive("worked")
    check.when("not ok").to("call")
    check.otherwise().end("done")
    d = b.build()
    assert errors(d) == []
    at(warnings(d), "call", "implicit merge")


def test_parallel_block_inside_a_loop_and_choices_inside_a_parallel_branch_are_sound() -> None:
    b = ProcessBuilder("nested", variables={"x": int})
    loop = b.start().exclusive("loop")
    fork = loop.parallel("fork")
    choice = fork.branch().exclusive("choice")
    left, right = choice.when("x > 1").task("l"), choice.otherwise().task("r")
    merged = b.merge("merged", left, right)
    inner = fork.branch().parallel("inner")
    sync_inner = b.join("sync_inner", inner.branch().task("i1"), inner.branch().task("i2"))
    again = b.join("sync", merged, sync_inner, fork.branch().task("third")).exclusive("again")
    again.when("x < 3").to("loop")
    again.otherwise().end("done")
    assert errors(b.build()) == []


def test_inclusive_split_with_inclusive_join_and_a_race_are_sound() -> None:
    b = ProcessBuilder("or", variables={"x": int})
    split = b.start().inclusive("split")
    one, two = split.when("x > 1").task("one"), split.otherwise().task("two")
    race = b.join("join", one, two, kind="inclusive_gateway").race("race")
    timeout = race.branch().timer("timeout", "P1D").end("timed_out")
    race.branch().receive("answer", "reply", correlation_key="x").end("answered")
    assert timeout.node_id == "timed_out"
    assert validate(b.build()) == []


def test_plain_starts_of_a_sub_process_all_start_so_they_must_be_joined() -> None:
    def sub(join_kind: str) -> ProcessDefinition:
        inner = {"id": "sub", "kind": "sub_process",
                 "nodes": kinds(a="start", b="start", meet=join_kind, work="task", done="end"),
                 "flows": [{"id": "a_meet", "source": "a", "target": "meet"},
                           {"id": "b_meet", "source": "b", "target": "meet"},
                           {"id": "meet_work", "source": "meet", "target": "work"},
                           {"id": "work_done", "source": "work", "target": "done"}]}
        return model([*kinds(s="start"), inner, *kinds(e="end")], ["s>sub", "sub>e"])

    assert errors(sub("parallel_gateway")) == []
    at(errors(sub("exclusive_gateway")), "meet", "lack of synchronisation", "start events of sub-process 'sub'")


def test_several_plain_starts_are_fine() -> None:
    d = model(kinds(s1="start", s2="start", a="task", e="end"), ["s1>a", "s2>a", "a>e"])
    assert errors(d) == []


# --- scopes: starts, ends, ids, flows --------------------------------------------------------------


def test_missing_start_and_end() -> None:
    d = model(kinds(a="task"), [])  # BPMN 2.0 §10.5.2: without start events, 'a' (no incoming flow) starts
    at(warnings(d), "p", "has no start event", "implicit start")
    at(warnings(d), "p", "has no end event", "implicit end")  # 'a' has no outgoing flow: its token ends there
    assert errors(d) == []
    circle = model(kinds(a="task", b="task", e="end"), ["a>b", "b>a", "b>e"])
    at(errors(circle), "p", "has no start event and every node has an incoming flow")
    at(errors(model([], [])), "p", "has no start event")
    looping = model(kinds(s="start", a="task", b="task"), ["s>a", "a>b", "b>a"])
    at(errors(looping), "p", "has no end event and every node leads on")


def test_implicit_end_is_a_warning_as_in_bpmn_and_the_core_ends_the_token() -> None:
    """BPMN 2.0 (and Camunda, SpiffWorkflow, jBPM): a flow node without outgoing flow ends its token; a
    process needs no end event. Only gateways and start events must lead on."""
    d = model(kinds(s="start", a="task", b="task"), ["s>a", "a>b"])
    assert errors(d) == []
    at(warnings(d), "b", "no outgoing flow", "implicit end")
    at(warnings(d), "p", "has no end event")
    gateway = model(kinds(s="start", g="parallel_gateway"), ["s>g"])
    at(errors(gateway), "g", "has no outgoing flow")
    start = model(kinds(s="start", e="end"), [])
    at(errors(start), "s", "has no outgoing flow")


def test_sub_process_is_checked_as_its_own_scope() -> None:
    sub = {"id": "sub", "kind": "sub_process", "nodes": kinds(inner="task", t="timer_start"), "flows": [
        {"id": "t_inner", "source": "t", "target": "inner"}]}
    d = model([*kinds(s="start"), sub, *kinds(e="end")], ["s>sub", "sub>e"])
    found = errors(d)
    at(warnings(d), "sub", "sub-process 'sub' has no end event")
    at(found, "sub", "no plain start event")
    at(found, "t", "only starts from plain start events")
    at(warnings(d), "inner", "no outgoing flow", "implicit end")
    assert all(p.where not in ("s", "e") for p in found)


def test_duplicate_ids_are_reported_once_each() -> None:
    d = model(kinds(s="start", a="task", e="end") + kinds(a="task"), ["s>a", "a>e", ("e", "s>e")])
    found = errors(d)
    at(found, "a", "used more than once")
    at(found, "e", "used more than once")


def test_dangling_flows_name_the_flow_and_suggest_the_node() -> None:
    d = model(kinds(s="start", approve="task", e="end"), ["s>aprove", "approve>e", ("f8", "ghost>e")])
    at(errors(d), "s__aprove", "target 'aprove', which is not a node of the process (did you mean 'approve'?)")
    at(errors(d), "f8", "source 'ghost'")


def test_flows_cannot_cross_a_sub_process_boundary() -> None:
    sub = {"id": "sub", "kind": "sub_process", "nodes": kinds(s2="start", x="task", e2="end"),
           "flows": [{"id": "in", "source": "s2", "target": "x"}, {"id": "out", "source": "x", "target": "e2"},
                     {"id": "leak", "source": "x", "target": "e"}]}
    d = model([*kinds(s="start"), sub, *kinds(e="end")], ["s>sub", "sub>e"])
    at(errors(d), "leak", "cannot cross a sub-process boundary", "'e' is in the process")


def test_unreachable_node_and_node_that_cannot_reach_an_end() -> None:
    d = model(kinds(s="start", a="task", g="exclusive_gateway", orphan="task", e="end"),
              ["s>a", "a>g", "orphan>e"])
    found = errors(d)
    at(found, "orphan", "cannot be reached from any start event")
    at(found, "g", "has no outgoing flow")
    at(found, "a", "no path from task 'a' reaches an end event", "every path stops at 'g'")
    at(found, "s", "reaches an end event")
    assert [p.where for p in found].count("g") == 1  # the dead end itself is reported once


def test_boundary_path_is_reachable_through_its_activity() -> None:
    b = ProcessBuilder("b")
    work = b.start().task("work")
    work.on_timer("PT1H", id="late").task("apologise").end("sorry")
    work.end("done")
    assert errors(b.build(validate=False)) == []
    orphan = b.add(n.Task(id="lonely"))
    orphan.on_error(id="oops").end("oops_end")
    found = errors(b.build(validate=False))
    at(found, "lonely", "cannot be reached")
    assert not [p for p in found if p.where == "oops"]  # its activity is reported, not the boundary again


def test_flows_into_starts_out_of_ends_and_boundary_rules() -> None:
    nodes = [*kinds(s="start", a="task", e="end", x="end"),
             {"id": "b", "kind": "boundary_timer", "attached_to": "a", "timer": "PT1H"},
             {"id": "b2", "kind": "boundary_error", "attached_to": "a"}]
    d = model(nodes, ["s>a", "a>e", "e>s", "a>b", "b>x"])
    found = errors(d)
    at(found, "s", "start event 's' has incoming flow(s) 'e__s'")
    at(found, "e", "end event 'e' has outgoing flow(s) 'e__s'")
    at(found, "b", "boundary event 'b' has incoming flow(s) 'a__b'")
    at(warnings(d), "b2", "has no outgoing flow", "implicit end")


def test_implicit_merge_and_implicit_parallel_split_are_warnings() -> None:
    d = model(kinds(s="start", a="task", b="task", c="task", e="end"), ["s>a", "a>b", "a>c", "b>e", "c>e"])
    at(warnings(d), "a", "implicit parallel split")
    conditional = model(kinds(s="start", a="task", b="task", e="end", e2="end"),
                        ["s>a", ("go", "a>b", "x > 1"), "a>e2", "b>e"], variables=[{"name": "x"}])
    at(warnings(conditional), "a", "conditional outgoing flows ('go')")


def test_activity_without_outgoing_flow_is_an_implicit_end_and_a_message_end_is_not_even_warned() -> None:
    d = model(kinds(s="start", a="task", m="message_throw"), ["s>a", "a>m"])
    assert errors(d) == [] and all(p.where != "m" for p in warnings(d))
    d = model(kinds(s="start", a="task", e="end"), ["s>a"])
    assert errors(d) == [Problem("e", "end event 'e' cannot be reached from any start event of the process: "
                                      "connect a flow into it, or remove it")]
    at(warnings(d), "a", "task 'a' has no outgoing flow", "implicit end")


# --- gateways ----------------------------------------------------------------------------------------


def test_exclusive_split_flow_without_condition_and_not_default() -> None:
    """Camunda 7 and jBPM take an unconditioned flow of an exclusive gateway as one that holds (BPMN files
    from them rely on it, e.g. the MIWG A.2.0 reference): a warning, and the core takes it in order."""
    d = model(kinds(s="start", approved="exclusive_gateway", e1="end", e2="end"),
              ["s>approved", ("f2", "approved>e1", "ok"), ("f3", "approved>e2")], variables=[{"name": "ok"}])
    assert errors(d) == []
    p = at(warnings(d), "f3", "no condition and it is not the default")
    assert "taken whenever no flow before it holds" in p.message


def test_inclusive_split_default_rules() -> None:
    nodes = [{"id": "g", "kind": "inclusive_gateway", "default": "nope"}, *kinds(s="start", e1="end", e2="end")]
    d = model(nodes, ["s>g", ("f1", "g>e1", "x > 1"), ("f2", "g>e2", "x > 2")], variables=[{"name": "x"}])
    at(errors(d), "g", "default='nope', which is not one of its outgoing flows ('f1', 'f2')")
    nodes[0]["default"] = "f2"
    d = model(nodes, ["s>g", ("f1", "g>e1", "x > 1"), ("f2", "g>e2", "x > 2")], variables=[{"name": "x"}])
    assert errors(d) == []
    at(warnings(d), "f2", "default flow 'f2' with condition")


def test_single_conditional_flow_and_conditions_on_parallel_and_event_gateways_are_ignored() -> None:
    nodes = kinds(s="start", x="exclusive_gateway", p="parallel_gateway", a="task", b="task", e1="end", e2="end")
    d = model(nodes, ["s>x", ("only", "x>p", "x_ok"), ("pa", "p>a", "x_ok"), "p>b", "a>e1", "b>e2"],
              variables=[{"name": "x_ok"}])
    at(warnings(d), "only", "never checked")
    at(warnings(d), "pa", "ignored (a parallel gateway takes every flow)")


def test_gateway_without_outgoing_flow() -> None:
    d = model(kinds(s="start", g="parallel_gateway", e="end"), ["s>g"])
    at(errors(d), "g", "parallel gateway 'g' has no outgoing flow")


def test_event_gateway_needs_two_catch_events() -> None:
    d = model(kinds(s="start", race="event_gateway", w="timer_catch", t="task", e="end"),
              ["s>race", "race>w", "race>t", "w>e", "t>e"])
    at(errors(d), "race__t", "must lead to a timer_catch, message_catch or signal_catch")
    d = model(kinds(s="start", race="event_gateway", w="timer_catch", e="end"), ["s>race", "race>w", "w>e"])
    at(errors(d), "race", "has 1 outgoing flow")


# --- expressions and variables -------------------------------------------------------------------------


def test_conditions_must_read_declared_variables() -> None:
    d = model(kinds(s="start", g="exclusive_gateway", e1="end", e2="end"),
              ["s>g", ("hi", "g>e1", "scroe > 3"), ("lo", "g>e2", "score <= 3")], variables=[{"name": "score"}])
    p = at(errors(d), "hi", "reads 'scroe'", "did you mean 'score'?")
    assert "declare" in p.message
    undeclared = model(kinds(s="start", g="exclusive_gateway", e1="end", e2="end"),
                       ["s>g", ("hi", "g>e1", "scroe > 3"), ("lo", "g>e2", "score <= 3")])
    assert errors(undeclared) == []
    at(warnings(undeclared), "hi", "declares no variables")


def test_unparsable_condition_is_reported_even_when_construction_was_bypassed() -> None:
    d = model(kinds(s="start", g="exclusive_gateway", e1="end", e2="end"), ["s>g", "g>e1", "g>e2"])
    broken = SequenceFlow.model_construct(id="g__e1", source="g", target="e1", condition="x >", metadata={})
    d = d.model_copy(update={"flows": [d.flows[0], broken, d.flows[2]]})
    at(errors(d), "g__e1", "does not parse")


def test_correlation_keys_are_checked_like_conditions() -> None:
    nodes = [*kinds(s="start", e="end"),
             {"id": "wait", "kind": "message_catch", "message": "m", "correlation_key": "order_id"}]
    d = model(nodes, ["s>wait", "wait>e"], variables=[{"name": "order"}])
    at(errors(d), "wait", "correlation_key", "'order_id'")


def test_undeclared_inputs_outputs_and_form_fields_are_warnings_when_variables_are_declared() -> None:
    b = ProcessBuilder("v", variables={"pr_number": int})
    b.start().service("svc", agent="a", inputs=["pr_numbr"], outputs=["approved"]).user(
        "u", assignee="x", form=[{"name": "comment"}]).end()
    d = b.build()
    at(warnings(d), "svc", "input_variables", "'pr_numbr'", "did you mean 'pr_number'?")
    at(warnings(d), "svc", "output_variables", "'approved'")
    at(warnings(d), "u", "form", "'comment'")
    b2 = ProcessBuilder("v")
    b2.start().service("svc", agent="a", outputs=["approved"]).end()
    assert validate(b2.build()) == []


def test_user_task_without_anyone_to_do_it_is_a_warning() -> None:
    b = ProcessBuilder("u")
    b.start().user("orphan_task", title="Nobody").user("group_task", candidate_groups=["ops"]).end()
    found = warnings(b.build())
    at(found, "orphan_task", "no assignee and no candidate groups")
    assert [p.where for p in found] == ["orphan_task"]


# --- boundary events and compensation ---------------------------------------------------------------------


@pytest.mark.parametrize(("attached_to", "fragment"), [
    ("missing", "which does not exist"),
    ("g", "boundary events attach only to activities"),
    ("inner", "is not: put the boundary event in the same scope"),
])
def test_boundary_must_be_attached_to_an_activity_in_its_scope(attached_to: str, fragment: str) -> None:
    sub = {"id": "sub", "kind": "sub_process", "nodes": kinds(s2="start", inner="task", e2="end"),
           "flows": [{"id": "a1", "source": "s2", "target": "inner"}, {"id": "a2", "source": "inner", "target": "e2"}]}
    nodes = [*kinds(s="start", g="exclusive_gateway", e="end", late="end"), sub,
             {"id": "b", "kind": "boundary_timer", "attached_to": attached_to, "timer": "PT1H"}]
    d = model(nodes, ["s>g", "g>sub", "sub>e", "b>late"])
    at(errors(d), "b", fragment)


def test_compensation_throw_needs_an_activity_with_a_handler() -> None:
    def build(activity: str) -> ProcessDefinition:
        b = ProcessBuilder("c")
        b.start().service("pay", agent="a", compensation="refund").task("ship").compensate(
            "undo", activity=activity).end()
        return b.build(validate=False)

    assert validate(build("pay")) == []
    at(errors(build("ship")), "undo", "has no compensation handler", "set compensation= on 'ship'")
    at(errors(build("payy")), "undo", "does not exist", "did you mean 'pay'?")
    at(errors(build("start")), "undo", "not an activity")


# --- soundness --------------------------------------------------------------------------------------------


def test_deadlock_exclusive_split_parallel_join() -> None:
    b = ProcessBuilder("dead", variables={"x": int})
    split = b.start().exclusive("choose")
    a, c = split.when("x > 1").task("a"), split.otherwise().task("c")
    b.join("wait_all", a, c).end()
    p = at(errors(b.build(validate=False)), "wait_all", "deadlock")
    assert "exclusive gateway 'choose'" in p.message and "'a__wait_all'" in p.message
    with pytest.raises(DefinitionError) as info:
        b.build()
    assert "deadlock" in str(info.value) and info.value.problems[0].where == "wait_all"


def test_deadlock_event_gateway_and_interrupting_boundary_and_start_events() -> None:
    race = model(kinds(s="start", race="event_gateway", w="timer_catch", m="message_catch", j="parallel_gateway",
                       e="end"), ["s>race", "race>w", "race>m", "w>j", "m>j", "j>e"])
    at(errors(race), "j", "deadlock", "event gateway 'race'")
    b = ProcessBuilder("boundary")
    work = b.start().task("work")
    late = work.on_timer("PT1H", id="late").task("chase")
    b.join("both", work.task("next"), late).end()
    at(errors(b.build(validate=False)), "both", "deadlock", "interrupting boundary events",
       "boundary event 'late'")
    starts = model(kinds(s1="start", s2="message_start", j="parallel_gateway", e="end"), ["s1>j", "s2>j", "j>e"])
    at(errors(starts), "j", "deadlock", "start events of the process")


def test_deadlock_loop_back_into_a_parallel_join() -> None:
    d = model(kinds(s="start", j="parallel_gateway", a="task", x="exclusive_gateway", e="end"),
              ["s>j", "j>a", "a>x", ("back", "x>j", "again"), "x>e"], variables=[{"name": "again"}])
    nodes = d.model_dump()["nodes"]
    nodes[3]["default"] = "x__e"
    d = model(nodes, ["s>j", "j>a", "a>x", ("back", "x>j", "again"), "x>e"], variables=[{"name": "again"}])
    at(errors(d), "j", "deadlock", "'back'", "itself")


def test_inclusive_split_into_parallel_join_is_a_warning() -> None:
    b = ProcessBuilder("or", variables={"x": int})
    split = b.start().inclusive("some")
    b.join("all", split.when("x > 1").task("a"), split.when("x > 2").task("c")).end()
    d = b.build()
    at(warnings(d), "all", "deadlock", "inclusive gateway 'some'", "not every condition holds")


def test_lack_of_synchronisation_parallel_split_exclusive_merge() -> None:
    b = ProcessBuilder("sync")
    fork = b.start().parallel("fork")
    b.merge("merge", fork.branch().task("a"), fork.branch().task("c")).task("after").end()
    p = at(errors(b.build(validate=False)), "merge", "lack of synchronisation")
    assert "parallel gateway 'fork'" in p.message and "run once per branch" in p.message


def test_lack_of_synchronisation_through_an_implicit_merge_and_an_implicit_split() -> None:
    d = model(kinds(s="start", a="task", b="task", c="task", after="task", e="end"),
              ["s>a", "a>b", "a>c", "b>after", "c>after", "after>e"])
    at(errors(d), "after", "lack of synchronisation", "task 'a' (several outgoing flows)")
    at(warnings(d), "after", "implicit merge")


def test_partial_join_does_not_hide_a_third_branch() -> None:
    b = ProcessBuilder("partial")
    fork = b.start().parallel("fork")
    pair = b.join("pair", fork.branch().task("a"), fork.branch().task("c"))
    b.merge("merge", pair, fork.branch().task("d")).end()
    at(errors(b.build(validate=False)), "merge", "lack of synchronisation")


def test_non_interrupting_boundary_merged_back_is_a_warning() -> None:
    b = ProcessBuilder("remind")
    work = b.start().user("work", assignee="a")
    nudge = work.on_timer("PT1H", id="nudge", interrupting=False).task("remind")
    b.merge("merge", work, nudge).end()
    at(warnings(b.build()), "merge", "lack of synchronisation", "non-interrupting")


def test_cycle_without_exit() -> None:
    d = model(kinds(s="start", a="task", g="parallel_gateway", c="task", e="end"),
              ["s>a", "a>g", "g>c", "c>a"])
    found = errors(d)
    at(found, "a", "the loop through 'a', 'g', 'c' has no way out")
    at(found, "s", "every path stops at 'a'")
    assert not [p for p in found if p.where in ("g", "c")]  # the loop is reported once, on its first node


def test_self_loop_without_exit() -> None:
    d = model(kinds(s="start", spin="task", e="end"), ["s>spin", "spin>spin"])
    at(errors(d), "spin", "has no way out")


def test_every_problem_is_returned_not_only_the_first() -> None:
    d = model(kinds(s="start", g="exclusive_gateway", a="task", orphan="task", e="end", e2="end"),
              ["s>g", "g>a", "g>e2", "a>e", ("lost", "a>nowhere"), "e>a"])
    wheres = {p.where for p in errors(d)}
    assert {"lost", "orphan", "e"} <= wheres
    assert {"g__a", "g__e2"} <= {p.where for p in warnings(d)}  # unconditioned XOR flows: taken in order


def test_build_raises_every_error_together() -> None:
    b = ProcessBuilder("many", variables={"x": int})
    gate = b.start().exclusive("g")
    gate.when("y > 1").task("a")
    gate.otherwise().parallel("stuck")
    with pytest.raises(DefinitionError) as info:
        b.build()
    d = b.build(validate=False)
    assert info.value.problems == errors(d)
    assert {p.where for p in info.value.problems} >= {"g__a", "stuck"}
    assert str(info.value).startswith("many: ")


def test_every_problem_names_an_existing_place() -> None:
    d = model(kinds(s="start", g="exclusive_gateway", a="task", e="end"), ["s>g", "g>a", "g>e", ("f", "a>zz")])
    places = {x.id for x in d.all_nodes()} | {f.id for f in d.all_flows()} | {d.id}
    assert all(p.where in places for p in validate(d))


# --- generated models: sound by construction, then broken on purpose ----------------------------------


def _with_kind(d: ProcessDefinition, node_id: str, kind: str) -> ProcessDefinition:
    data = d.to_dict()

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if node["id"] == node_id:
                node["kind"] = kind
                node.pop("default", None)
            walk(node.get("nodes", []))

    walk(data["nodes"])
    return from_dict(data)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(generated_models())
def test_generated_sound_models_have_no_errors(m: GeneratedModel) -> None:
    assert errors(m.definition) == []


@PROPERTY
@given(generated_models(), st.data())
def test_generated_models_broken_on_purpose_are_caught(m: GeneratedModel, data: st.DataObject) -> None:
    blocks = [blk for blk in m.blocks if blk[0] in ("exclusive", "race", "parallel")]
    if not blocks:
        return
    kind, split, join = data.draw(st.sampled_from(blocks))
    if kind == "parallel":  # AND split merged by XOR: lack of synchronisation at the merge
        broken = _with_kind(m.definition, join, "exclusive_gateway")
        at(errors(broken), join, "lack of synchronisation", repr(split))
    else:  # XOR / race split joined by AND: deadlock at the join
        broken = _with_kind(m.definition, join, "parallel_gateway")
        at(errors(broken), join, "deadlock", repr(split))


# --- the shared BPMN corpus ------------------------------------------------------------------------------


def test_validation_runs_on_every_corpus_model_and_places_every_problem() -> None:
    if not CORPUS.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    from engine.bpmn import import_bpmn

    checked = 0
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix not in (".bpmn", ".bpmn2", ".xml"):
            continue
        d = import_bpmn(path.read_bytes(), source=str(path), lenient=True).definition
        places = {x.id for x in d.all_nodes()} | {f.id for f in d.all_flows()} | {d.id}
        for problem in validate(d):
            assert problem.severity in ("error", "warning")
            assert problem.where in places, (path.name, problem)
        checked += 1
    assert checked >= 50


def test_yaml_definition_with_a_flow_to_a_missing_node_names_the_flow() -> None:
    d = from_yaml("""
id: broken
nodes:
  - {id: start, kind: start}
  - {id: work, kind: task}
  - {id: done, kind: end}
flows:
  - {id: f1, source: start, target: work}
  - {id: f2, source: work, target: donee}
""")
    p = at(errors(d), "f2", "target 'donee'", "did you mean 'done'?")
    assert p.severity == "error"


def test_timer_start_with_required_variables_without_defaults_is_a_warning() -> None:
    b = ProcessBuilder("daily", variables={"day": {"type": "string", "required": True}, "note": str})
    b.timer_start("tick", "0 9 * * *").end("done")
    problems = validate(b.build())
    assert [(p.where, p.severity) for p in problems] == [("tick", "warning")]
    assert "'day'" in problems[0].message and "'note'" not in problems[0].message
    b = ProcessBuilder("daily", variables={"day": {"type": "string", "required": True, "default": "today"}})
    b.timer_start("tick", "0 9 * * *").end("done")
    assert validate(b.build()) == []
