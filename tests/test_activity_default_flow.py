"""A default flow on an activity (BPMN 2.0 §10.3.1, Activity ``default``): taken when none of the activity's
conditional outgoing flows holds. Model and builder (``otherwise()`` from an activity), validation, the core,
the engine (SQLite and PostgreSQL), the simulator, BPMN round trip and the MIWG file that uses it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bpmn_support import CORPUS
from semantics_harness import Harness
from sim_support import scenario

from engine.bpmn import import_bpmn, to_bpmn
from engine.model import ProcessBuilder, ProcessDefinition
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from engine.validate import validate
from simulator import simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def triage() -> ProcessDefinition:
    b = ProcessBuilder("triage", variables={"score": "integer"})
    check = b.start().script("check", "score = score + 0")
    check.when("score > 5").task("escalate").end("escalated")
    check.otherwise().task("file").end("filed")
    return b.build()


@pytest.mark.parametrize(("score", "taken"), [(9, "escalate"), (1, "file")])
def test_the_default_flow_is_taken_when_no_condition_holds(score: int, taken: str) -> None:
    h = Harness(triage()).start(score=score)
    assert taken in h.entered() and ({"escalate", "file"} - {taken}).isdisjoint(h.entered())
    assert h.status == "completed"


def test_validation_and_bpmn_round_trip() -> None:
    d = triage()
    assert d.node("check").default == "check__file"
    assert not [p for p in validate(d) if p.severity == "error"]
    xml = to_bpmn(d)
    assert 'default="check__file"' in xml
    assert import_bpmn(xml).definition == d
    broken = d.model_copy(update={"nodes": [n.model_copy(update={"default": "nope"}) if n.id == "check" else n
                                             for n in d.nodes]})
    assert any("default='nope'" in p.message for p in validate(broken) if p.severity == "error")
    path = CORPUS / "miwg/A.2.1.bpmn"
    if path.exists():
        imported = import_bpmn(path.read_bytes(), source="A.2.1").definition  # strict: no refusal
        assert sum(1 for n in imported.all_nodes() if getattr(n, "default", None)) == 3


def test_the_engine_and_the_simulator_take_the_default(db_url: str) -> None:
    engine = Engine(db_url, clock=VirtualClock(T0), principal=Principal.system())
    engine.deploy(triage())
    iid = engine.start("triage", {"score": 2})
    assert engine.instance(iid).status == "completed"
    assert "file" in list(engine.activities(iid)["node_id"])
    s = scenario(start=T0.isoformat(), horizon="PT1M", drain="P1D", replications=1, seed=1,
                 arrivals={"timestamps": [T0.isoformat()]}, variables={"score": 2})
    result = simulate(triage(), s)
    assert result.runs[0].entered.get("file") == 1 and not result.runs[0].entered.get("escalate")
