"""Timers whose value is an expression (issue 16): ``${cronExpression}``, ``#{delay}`` in timeDuration, timeDate
and timeCycle, as Camunda, Flowable and jBPM write them.

BPMN 2.0 §10.5.2 types the three as Expressions. The expression (the project's safe language) is checked to parse
when the model is made, evaluated against the token's variables when the timer is armed (Camunda 7: when the timer
job is created), and what it gives is read as a written value is. A value that cannot be evaluated, or is no
valid duration, date or cycle, is an incident naming the timer and the value: never a crash or a silent skip.
Tested in the model, validation, the core (pure), the engine (SQLite and PostgreSQL), the simulator, and the BPMN
import (with a finding) and export round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bpmn_support import CORPUS
from semantics_harness import Harness
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.errors import DefinitionError, TimerSpecError
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.timers import Timer
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.semantics import effects as fx
from engine.semantics import events as ev
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# --- the model --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "resolved"), [
    ("duration", "PT2H", "PT2H"),
    ("duration", "5s", "PT5S"),  # jBPM's duration, as jBPM's #{delay} gives it
    ("duration", timedelta(minutes=90), "PT1H30M"),  # a typed duration variable
    ("date", "2026-02-01T08:00:00Z", "2026-02-01T08:00:00Z"),
    ("date", datetime(2026, 2, 1, 8, 0, tzinfo=UTC), "2026-02-01T08:00:00+00:00"),
    ("cycle", "0 0/5 * * * ?", "0/5 * * * *"),  # Quartz cron, as Flowable's ${cronExpression} holds it
    ("cycle", "R3/PT10M", "R3/PT10M"),
    ("cycle", "5m", "R/PT5M"),
])
def test_an_expression_timer_resolves_against_the_variables(field: str, value: Any, resolved: str) -> None:
    timer = Timer(**{field: "${when}"}, timezone="Europe/Berlin")
    assert (timer.kind, timer.expression) == (field, "${when}")
    got = timer.resolve({"when": value})
    assert getattr(got, field) == resolved and got.expression is None and got.timezone == "Europe/Berlin"
    assert Timer(**{field: "#{when}"}).resolve({"when": value}) == got.model_copy(update={"timezone": None})


@pytest.mark.parametrize(("field", "value", "said"), [
    ("duration", None, "duration '${when}' gave None: is when set?"),
    ("duration", 30, "duration '${when}' gave 30, not a duration"),
    ("duration", "soon", "duration '${when}' gave 'soon': 'soon' is not an ISO-8601 duration"),
    ("date", "tomorrow", "date '${when}' gave 'tomorrow': 'tomorrow' is not an ISO-8601 date-time"),
    ("cycle", "0 61 * * *", "cycle '${when}' gave '0 61 * * *': '0 61 * * *' is not a valid cron expression"),
    ("cycle", "${other}", "cycle '${when}' gave another expression"),
])
def test_a_value_that_is_no_timer_is_refused_naming_the_expression_and_value(field: str, value: Any,
                                                                            said: str) -> None:
    with pytest.raises(TimerSpecError) as caught:
        Timer(**{field: "${when}"}).resolve({"when": value})
    assert said in str(caught.value)


def test_an_expression_that_does_not_parse_or_fails_is_refused() -> None:
    with pytest.raises(ValueError, match=r"duration '\$\{1 \+\}' is an expression that does not parse"):
        Timer(duration="${1 +}")
    with pytest.raises(TimerSpecError, match=r"duration '\$\{a / b\}' cannot be evaluated: .*ZeroDivisionError"):
        Timer(duration="${a / b}").resolve({"a": 1, "b": 0})
    with pytest.raises(ValueError, match="say which value the expression"):
        Timer.model_validate("${delay}")  # the short form cannot tell a duration from a date
    with pytest.raises(TimerSpecError, match="resolve"):
        Timer(duration="${delay}").first_due(T0)  # an unresolved timer has no due time


# --- validation -------------------------------------------------------------------------------------


def reminder(timer: dict[str, str] | None = None, variables: dict[str, str] | None = None) -> ProcessDefinition:
    """Wait ``${wait}``, then work; a non-interrupting cycle ``${every}`` reminds while the work runs."""
    b = ProcessBuilder("reminder", variables=variables if variables is not None
                       else {"wait": "string", "every": "string"})
    work = b.start().timer("pause", timer or {"duration": "${wait}"}).user("work", assignee="ann")
    work.end("done")
    work.on_timer({"cycle": "${every}"}, id="remind", interrupting=False).task("nudge").end("nudged")
    return b.build(validate=False)


def test_validation_warns_about_variables_an_expression_reads_that_are_not_declared() -> None:
    problems = validate(reminder({"duration": "${wiat}"}))
    (warning,) = [p for p in problems if p.where == "pause"]
    assert warning.severity == "warning" and "reads 'wiat', not declared as variables" in warning.message
    assert "did you mean 'wait'" in warning.message
    assert not [p for p in validate(reminder()) if p.where in ("pause", "remind")]


def test_a_process_timer_start_with_an_expression_is_an_error() -> None:
    b = ProcessBuilder("scheduled", variables={"when": "string"})
    b.timer_start("tick", {"cycle": "${when}"}).end("e")
    with pytest.raises(DefinitionError, match=r"tick.*'\$\{when\}' is an expression, and a process's timer start "
                                              r"has no variables"):
        b.build()


# --- the core ---------------------------------------------------------------------------------------


def test_the_core_arms_a_timer_catch_from_its_expression() -> None:
    h = Harness(reminder()).start(wait="PT2H", every="R/PT30M")
    (timer,) = h.of(fx.ScheduleTimer)
    assert (timer.node_id, timer.due) == ("pause", T0 + timedelta(hours=2))
    h.advance(timedelta(hours=2))
    assert h.open_work("work")
    reminders = [t for t in h.of(fx.ScheduleTimer) if t.node_id == "work" and t.purpose == "boundary"]
    assert [t.due for t in reminders] == [T0 + timedelta(hours=2, minutes=30)]
    h.advance(timedelta(hours=1))
    assert h.entered().count("nudge") == 2  # the cycle re-arms from the expression at each repetition


def test_a_timer_catch_whose_value_fails_is_an_incident_that_a_retry_arms_again() -> None:
    h = Harness(reminder()).start(wait="later", every="R/PT30M")
    (incident,) = h.incidents
    assert incident.node_id == "pause"
    assert incident.error == ("timer of 'pause': duration '${wait}' gave 'later': 'later' is not an ISO-8601 "
                              "duration (examples: 'PT30M', 'PT4H', 'P7D'): Unable to parse duration string 'later'")
    assert not h.of(fx.ScheduleTimer) and h.status == "running"
    h.send(ev.SetVariables({"wait": "PT1H"}))
    h.send(ev.RetryIncident(incident.token_id, incident.node_id))
    (timer,) = h.of(fx.ScheduleTimer)
    assert timer.due == T0 + timedelta(hours=1)


def test_a_boundary_timer_whose_value_fails_is_an_incident_the_activity_runs_on_and_a_retry_arms_it() -> None:
    h = Harness(reminder()).start(wait="PT0S")
    h.advance(timedelta(0))
    (incident,) = h.incidents
    assert (incident.node_id, incident.error) == ("remind", "timer of 'remind': cycle '${every}' gave None: is "
                                                            "every set?")
    assert h.open_work("work") and not [t for t in h.of(fx.ScheduleTimer) if t.node_id == "work"]
    h.send(ev.RetryIncident(incident.token_id, "remind"))  # not fixed yet: reported again
    assert len(h.incidents) == 2 and h.open_work("work")
    h.send(ev.SetVariables({"every": "R/PT10M"}))
    h.send(ev.RetryIncident(incident.token_id, "remind"))
    (timer,) = [t for t in h.of(fx.ScheduleTimer) if t.node_id == "work"]
    assert timer.due == T0 + timedelta(minutes=10)
    h.send(ev.RetryIncident(incident.token_id, "remind"))  # armed already: a second retry arms nothing more
    assert len([t for t in h.of(fx.ScheduleTimer) if t.node_id == "work"]) == 1
    h.done("work")
    assert h.status == "completed"


def test_an_event_gateway_races_a_timer_from_its_expression() -> None:
    b = ProcessBuilder("race", variables={"patience": "string"})
    gate = b.start().race("gate")
    gate.branch().receive("answer", "answer").end("answered")
    gate.branch().timer("late", {"duration": "${patience}"}).end("timed_out")
    h = Harness(b.build()).start(patience="P1D")
    h.advance(timedelta(days=1))
    assert h.entered()[-1] == "timed_out"
    bad = Harness(b.build()).start()
    (incident,) = bad.incidents
    assert incident.node_id == "gate" and "timer of 'late'" in incident.error and not bad.subscriptions
    bad.send(ev.SetVariables({"patience": "PT1M"}))
    bad.send(ev.RetryIncident(incident.token_id, incident.node_id))
    assert len(bad.subscriptions) == 1
    bad.advance(timedelta(minutes=1))
    assert bad.entered()[-1] == "timed_out" and bad.status == "completed"


def test_an_event_sub_process_timer_start_from_an_expression() -> None:
    b = ProcessBuilder("esp", variables={"deadline": "string"})
    b.start().user("work", assignee="ann").end("done")
    b.event_sub_process("late", lambda s: s.timer_start("late_start", {"duration": "${deadline}"}).end("late_end"))
    d = b.build()
    h = Harness(d).start(deadline="PT3H")
    h.advance(timedelta(hours=3))
    assert h.entered()[-1] == "late_end" and h.status == "completed"
    bad = Harness(d).start()
    (incident,) = bad.incidents
    assert incident.node_id == "late_start" and "gave None" in incident.error and bad.open_work("work")
    bad.send(ev.SetVariables({"deadline": "PT1H"}))
    bad.send(ev.RetryIncident(incident.token_id, incident.node_id))
    bad.advance(timedelta(hours=1))
    assert bad.entered()[-1] == "late_end" and bad.status == "completed"


# --- the engine -------------------------------------------------------------------------------------


def test_engine_timer_expressions_arm_fail_as_incidents_and_retry(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reminder())
    good = engine.start("reminder", {"wait": "PT2H", "every": "R/PT30M"})
    bad = engine.start("reminder", {"wait": "2 hours", "every": "R/PT30M"})
    engine.run_until_idle()
    engine.advance(timedelta(hours=2))
    assert engine.instance(good).active_nodes == ["work"]
    (incident,) = engine.incidents()
    assert (incident["instance_id"], incident["node_id"]) == (bad, "pause")
    assert "timer of 'pause': duration '${wait}' gave '2 hours'" in incident["error"]
    assert engine.instance(bad).active_nodes == ["pause"]
    engine.set_variables(bad, {"wait": "PT1H"})
    engine.retry(incident["id"])
    assert engine.incidents() == []
    engine.advance(timedelta(minutes=59))
    assert engine.instance(bad).active_nodes == ["pause"]
    engine.advance(timedelta(minutes=1))
    assert engine.instance(bad).active_nodes == ["work"]
    engine.advance(timedelta(minutes=30))
    nudged = [a for a in engine.activities(bad).to_dict("records") if a["node_id"] == "nudge"]
    assert len(nudged) == 1


def test_engine_boundary_timer_expression_incident_keeps_the_task_and_retry_arms_it(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(reminder())
    iid = engine.start("reminder", {"wait": "PT0S", "every": "every ten minutes"})
    engine.run_until_idle()
    (incident,) = engine.incidents()
    assert incident["node_id"] == "remind" and "cycle '${every}' gave 'every ten minutes'" in incident["error"]
    (task,) = engine.inbox("ann")
    assert task["instance_id"] == iid  # the work goes on without its reminder
    engine.set_variables(iid, {"every": "R/PT10M"})
    engine.retry(incident["id"])
    engine.advance(timedelta(minutes=25))
    nudged = [a for a in engine.activities(iid).to_dict("records") if a["node_id"] == "nudge"]
    assert len(nudged) == 2 and engine.incidents() == []
    engine.complete_task(task["id"], {}, actor="ann")
    engine.run_until_idle()
    assert engine.instance(iid).status == "completed"


# --- the simulator ----------------------------------------------------------------------------------


def test_the_simulator_waits_as_long_as_the_expression_says() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"wait": "PT45M", "every": "R/PT1H"},
                 pools={"ann": {"size": 1}}, tasks={"work": {"duration": 600}})
    (row,) = simulate(reminder(), s).cases(0).to_dict("records")
    assert row["status"] == "completed" and timedelta(hours=row["cycle_time_h"]) == timedelta(minutes=55)


def test_the_simulator_records_the_incident_of_a_timer_whose_value_fails() -> None:
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"wait": "soon", "every": "R/PT1H"},
                 pools={"ann": {"size": 1}}, tasks={"work": {"duration": 600}})
    result = simulate(reminder(), s)
    (row,) = result.cases(0).to_dict("records")
    assert row["status"] != "completed"
    assert any("timer of 'pause'" in error for *_, error in result.runs[0].incidents)


# --- BPMN -------------------------------------------------------------------------------------------


def expression_timers() -> str:
    return doc('''<bpmn:startEvent id="s"/>
      <bpmn:intermediateCatchEvent id="pause"><bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">#{delay}</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
      <bpmn:intermediateCatchEvent id="until"><bpmn:timerEventDefinition>
        <bpmn:timeDate>${dueDate}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
      <bpmn:userTask id="work"/>
      <bpmn:boundaryEvent id="remind" attachedToRef="work" cancelActivity="false"><bpmn:timerEventDefinition>
        <bpmn:timeCycle>${cronExpression}</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
      <bpmn:endEvent id="e"/><bpmn:endEvent id="reminded"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="pause"/>
      <bpmn:sequenceFlow id="f2" sourceRef="pause" targetRef="until"/>
      <bpmn:sequenceFlow id="f3" sourceRef="until" targetRef="work"/>
      <bpmn:sequenceFlow id="f4" sourceRef="work" targetRef="e"/>
      <bpmn:sequenceFlow id="f5" sourceRef="remind" targetRef="reminded"/>''')


def test_bpmn_import_keeps_timer_expressions_says_so_and_round_trips() -> None:
    result = import_bpmn(expression_timers())
    d = result.definition
    assert (d.node("pause").timer.duration, d.node("until").timer.date, d.node("remind").timer.cycle) == (
        "#{delay}", "${dueDate}", "${cronExpression}")
    notes = {f.id: f.message for f in result.findings if "is an expression" in f.message}
    assert notes["remind"] == ("timeCycle '${cronExpression}' is an expression: evaluated against the process "
                               "variables when the timer is armed")
    assert set(notes) == {"pause", "until", "remind"}
    assert {"delay", "dueDate", "cronExpression"} <= {v.name for v in d.variables}  # declared, as conditions' are
    xml = to_bpmn(d)
    assert "${cronExpression}" in xml and "#{delay}" in xml
    back = import_bpmn(xml)
    assert back.definition == d


def test_bpmn_import_refuses_a_timer_expression_that_does_not_parse_or_starts_a_process() -> None:
    with pytest.raises(DefinitionError, match=r"timeCycle '\$\{cronExpression \+\}'.*does not parse"):
        import_bpmn(expression_timers().replace("${cronExpression}", "${cronExpression +}"))
    start = doc('''<bpmn:startEvent id="tick"><bpmn:timerEventDefinition><bpmn:timeCycle>${cron}</bpmn:timeCycle>
      </bpmn:timerEventDefinition></bpmn:startEvent><bpmn:endEvent id="e"/>
      <bpmn:sequenceFlow id="f1" sourceRef="tick" targetRef="e"/>''')
    with pytest.raises(DefinitionError, match=r"'\$\{cron\}' is an expression, and a timer start event of a process "
                                              r"has no variables"):
        import_bpmn(start)


def test_flowables_usertaskmodel_imports_strictly_and_runs_its_cron_expression(db_url: str) -> None:
    path = CORPUS / "executable/usertaskmodel.bpmn"
    if not path.exists():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    d = import_bpmn(path.read_bytes()).definition
    assert d.node("escalationTimer").timer.cycle == "${cronExpression}"
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    iid = engine.start(d.id, {"cronExpression": "0 0/5 * * * ?"})  # Quartz: every five minutes
    engine.run_until_idle()
    engine.advance(timedelta(minutes=5))
    assert engine.instance(iid).status == "completed"
    passed = list(engine.activities(iid)["node_id"])
    assert passed[-2:] == ["escalationTimer", "endEvent"] and "usertask" in passed
