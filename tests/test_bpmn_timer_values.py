"""Timer values as jBPM writes them (issue 16, item 8): imported as ISO-8601 with a finding that says so,
run by the engine and the simulator like any ISO timer; an empty timer is refused, saying it is empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sim_support import scenario
from test_bpmn_import import doc

from engine.bpmn import import_bpmn, to_bpmn
from engine.bpmn.conversions import jbpm_duration
from engine.errors import DefinitionError
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "iso"), [
    ("2s", "PT2S"), ("500ms", "PT0.5S"), ("1d 2h", "P1DT2H"), ("1h30m", "PT1H30M"), ("1500ms", "PT1.5S"),
    ("1m", "PT1M"), ("3d", "P3D"), ("1000", "PT1S"), ("1s 250ms", "PT1.25S"),
])
def test_jbpm_durations_convert_to_iso(text: str, iso: str) -> None:
    assert jbpm_duration(text) == iso


@pytest.mark.parametrize("text", ["PT2S", "0 9 * * *", "2h 1d", "two seconds", "", "5x", "R/PT1H"])
def test_other_texts_are_not_jbpm_durations(text: str) -> None:
    assert jbpm_duration(text) is None


def timers(duration: str = "1d 2h", cycle: str = "5m") -> str:
    return doc(f'''<bpmn:startEvent id="s"/>
      <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>
        <bpmn:timeDuration>{duration}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
      <bpmn:userTask id="work"/>
      <bpmn:boundaryEvent id="remind" attachedToRef="work" cancelActivity="false"><bpmn:timerEventDefinition>
        <bpmn:timeCycle>{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
      <bpmn:endEvent id="e"/><bpmn:endEvent id="reminded"/>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
      <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="work"/>
      <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="e"/>
      <bpmn:sequenceFlow id="f4" sourceRef="remind" targetRef="reminded"/>''')


def test_import_converts_and_says_so_and_the_export_round_trips() -> None:
    result = import_bpmn(timers())
    d = result.definition
    assert d.node("wait").timer.duration == "P1DT2H"
    assert d.node("remind").timer.cycle == "R/PT5M"
    notes = {f.id: f.message for f in result.findings if "jBPM duration" in f.message}
    assert notes == {"wait": "jBPM duration '1d 2h' read as ISO-8601 'P1DT2H'",
                     "remind": "jBPM duration '5m' read as ISO-8601 'R/PT5M'"}
    xml = to_bpmn(d)
    assert "P1DT2H" in xml and "R/PT5M" in xml
    back = import_bpmn(xml)
    assert back.definition == d and not [f for f in back.findings if "jBPM" in f.message]


@pytest.mark.parametrize(("body", "said"), [
    ("<bpmn:timeDuration>  </bpmn:timeDuration>", "the timeDuration is empty"),
    ("<bpmn:timeCycle/>", "the timeCycle is empty"),
    ("", "the timer is empty"),
])
def test_an_empty_timer_is_refused_saying_it_is_empty(body: str, said: str) -> None:
    xml = doc(f'''<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait">
      <bpmn:timerEventDefinition>{body}</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
      <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>''')
    with pytest.raises(DefinitionError) as caught:
        import_bpmn(xml)
    (problem,) = [p for p in caught.value.problems if p.where != "import"]
    assert problem.where == "intermediateCatchEvent 'wait'" and said in problem.message and problem.line


def test_a_jbpm_delay_period_cycle_is_refused_with_the_reason() -> None:
    with pytest.raises(DefinitionError, match="delay###period"):
        import_bpmn(timers(cycle="1s###5s"))


def test_the_engine_waits_the_converted_duration(db_url: str) -> None:
    d = import_bpmn(timers(duration="1d 2h 500ms")).definition
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(d)
    iid = engine.start("p")
    engine.advance(timedelta(days=1, hours=2))
    assert engine.instance(iid).active_nodes == ["wait"]
    engine.advance(timedelta(milliseconds=500))
    assert engine.instance(iid).active_nodes == ["work"]


def test_the_simulator_waits_the_converted_duration() -> None:
    d = import_bpmn(timers(duration="2h 30m")).definition
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, tasks={"work": {"duration": 600}})
    (row,) = simulate(d, s).cases(0).to_dict("records")
    assert timedelta(hours=row["cycle_time_h"]) == timedelta(hours=2, minutes=40)
