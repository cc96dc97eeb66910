"""Export: schema-valid BPMN with a diagram; round trips; layout computed (dot or fallback) or kept."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bpmn_support import XSD, assert_schema_valid, require_corpus, sample_definitions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from engine.bpmn import from_bpmn, import_bpmn, layout, to_bpmn
from engine.bpmn.namespaces import BPMN, BPMNDI, DC
from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.nodes import BoundaryEvent, UserTask


def shapes(xml: str) -> dict[str, list[float]]:
    root = etree.fromstring(xml.encode())
    out = {}
    for shape in root.iter(f"{{{BPMNDI}}}BPMNShape"):
        b = shape.find(f"{{{DC}}}Bounds")
        out[shape.get("bpmnElement")] = [float(b.get(k)) for k in ("x", "y", "width", "height")]
    return out


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("definition", sample_definitions(), ids=lambda d: d.id)
def test_export_is_schema_valid_and_round_trips(definition: ProcessDefinition) -> None:
    xml = to_bpmn(definition)
    assert_schema_valid(xml)
    back = from_bpmn(xml)
    assert back == definition
    assert to_bpmn(back) == xml  # export -> import -> export gives the same document


def test_samples_use_every_node_kind() -> None:
    from engine.model.nodes import NODE_CLASSES

    used = {n.kind for d in sample_definitions() for n in d.all_nodes()}  # type: ignore[attr-defined]
    assert used == set(NODE_CLASSES)


def test_samples_are_valid_definitions() -> None:
    from engine.validate import errors_only

    for definition in sample_definitions():
        assert errors_only(definition) == [], definition.id


def test_export_validates_with_xmlschema_too() -> None:
    xmlschema = pytest.importorskip("xmlschema")
    require_corpus()
    schema = xmlschema.XMLSchema(str(XSD / "BPMN20.xsd"))
    for definition in sample_definitions():
        assert schema.is_valid(to_bpmn(definition))


def test_standard_bpmn_carries_what_it_can() -> None:
    d = sample_definitions()[0]
    root = etree.fromstring(to_bpmn(d).encode())
    ns = {"bpmn": BPMN}
    assert root.xpath("//bpmn:userTask[@id='deploy_ok']", namespaces=ns)
    assert root.xpath("//bpmn:boundaryEvent[@id='remind'][@cancelActivity='false'][@attachedToRef='deploy_ok']"
                      "/bpmn:timerEventDefinition/bpmn:timeCycle/text()", namespaces=ns) == ["R3/PT1H"]
    assert root.xpath("//bpmn:exclusiveGateway[@id='approved']/@default", namespaces=ns) == ["approved__wait_or_fix"]
    assert root.xpath("//bpmn:message/@name", namespaces=ns) == ["review.reminder", "pr.closed", "pr.updated"]
    assert root.xpath("//bpmn:error/@errorCode", namespaces=ns) == ["DEPLOY_FAILED", "ROLLBACK"]
    # compensation the BPMN way: boundary event, association, handler marked isForCompensation
    handler = root.xpath("//bpmn:serviceTask[@isForCompensation='true']", namespaces=ns)[0]
    assoc = root.xpath("//bpmn:association", namespaces=ns)[0]
    boundary = root.xpath(f"//bpmn:boundaryEvent[@id='{assoc.get('sourceRef')}']", namespaces=ns)[0]
    assert assoc.get("targetRef") == handler.get("id") and boundary.get("attachedToRef") == "validate"
    # lanes inside a pool, every node in the lane it names
    lanes = {lane.get("name"): lane.xpath("bpmn:flowNodeRef/text()", namespaces=ns)
             for lane in root.xpath("//bpmn:lane", namespaces=ns)}
    assert lanes["People"] == ["deploy_ok", "deployed"]
    assert root.xpath("//bpmn:participant/@processRef", namespaces=ns) == ["pr_review"]


def test_a_compensation_handler_activity_is_exported_as_itself_with_is_for_compensation() -> None:
    """BPMN 2.0 §10.7.2 as Camunda Modeler writes it: the handler activity itself carries isForCompensation and
    the compensation boundary event of the activity it undoes is associated with it; no stand-in task."""
    d = sample_definitions()[1]
    xml = to_bpmn(d)
    assert_schema_valid(xml)
    root = etree.fromstring(xml.encode())
    ns = {"bpmn": BPMN}
    handlers = root.xpath("//bpmn:*[@isForCompensation='true']", namespaces=ns)
    assert sorted((etree.QName(h).localname, h.get("id")) for h in handlers) == [
        ("serviceTask", "undo_daily"), ("userTask", "undo_weekly")]
    for activity, handler in (("weekly", "undo_weekly"), ("daily", "undo_daily")):
        (boundary,) = root.xpath(f"//bpmn:boundaryEvent[@attachedToRef='{activity}']", namespaces=ns)
        assert boundary.find(f"{{{BPMN}}}compensateEventDefinition") is not None
        (assoc,) = root.xpath(f"//bpmn:association[@sourceRef='{boundary.get('id')}']", namespaces=ns)
        assert assoc.get("targetRef") == handler
    drawn = shapes(xml)
    assert {"undo_weekly", "undo_daily"} <= set(drawn)
    assert not overlaps(drawn["undo_weekly"], drawn["undo_daily"])
    back = import_bpmn(xml).definition
    assert back == d
    assert back.node("weekly").compensation == "undo_weekly"  # type: ignore[attr-defined]
    assert back.node("undo_daily").for_compensation  # type: ignore[attr-defined]
    b = ProcessBuilder("unnamed")  # a handler activity no activity names yet (a warning while designing) is kept
    b.start().task("t").end("e")
    b.add(UserTask(id="undo", for_compensation=True))
    lonely = b.build(validate=False)
    assert from_bpmn(to_bpmn(lonely)) == lonely


def test_a_handler_reference_is_carried_by_a_stand_in_task_and_read_back_as_a_reference() -> None:
    d = sample_definitions()[0]  # validate's compensation is a registered callable, not an activity
    root = etree.fromstring(to_bpmn(d).encode())
    (carrier,) = root.xpath("//bpmn:serviceTask[@isForCompensation='true']", namespaces={"bpmn": BPMN})
    assert carrier.get("id") not in {n.id for n in d.all_nodes()}
    back = from_bpmn(to_bpmn(d))
    assert back.node("validate").compensation == "agents.review:undo"  # type: ignore[attr-defined]
    assert carrier.get("id") not in {n.id for n in back.all_nodes()}


def test_an_older_export_with_a_stand_in_task_for_a_handler_activity_still_imports() -> None:
    """Files written before the handler activity carried isForCompensation itself: a stand-in service task
    whose agent is the handler activity's id."""
    older = f"""<definitions xmlns="{BPMN}" xmlns:waooaw="https://waooaw.dev/schema/bpmn/1.0" targetNamespace="t">
  <process id="p" isExecutable="true">
  <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/><task id="work"/>
  <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>
  <userTask id="undo"><extensionElements><waooaw:fields>{{"for_compensation": true}}</waooaw:fields>
  </extensionElements></userTask>
  <boundaryEvent id="b" attachedToRef="work"><compensateEventDefinition/></boundaryEvent>
  <serviceTask id="stand_in" isForCompensation="true"><extensionElements>
  <waooaw:fields>{{"agent": "undo"}}</waooaw:fields></extensionElements></serviceTask>
  <association sourceRef="b" targetRef="stand_in"/></process></definitions>"""
    d = import_bpmn(older).definition
    assert d.node("work").compensation == "undo"  # type: ignore[attr-defined]
    assert d.node("undo").for_compensation and "stand_in" not in {n.id for n in d.all_nodes()}  # type: ignore[attr-defined]


def test_computed_layout_draws_every_node_left_to_right_without_overlaps() -> None:
    b = ProcessBuilder("flow")
    gate = b.start().service("a", agent="x").exclusive("g")
    one = gate.when("x > 1").task("b")
    two = gate.otherwise().user("c")
    b.merge("m", one, two).end("e")
    d = b.build(validate=False)
    boxes = shapes(to_bpmn(d))
    assert set(boxes) == {n.id for n in d.all_nodes()}
    for flow in d.flows:
        assert boxes[flow.target][0] > boxes[flow.source][0], flow.id
    ids = sorted(boxes)
    assert not [(i, j) for i in ids for j in ids if i < j and overlaps(boxes[i], boxes[j])]


@pytest.mark.parametrize("engine", ["dot", "layers"])
def test_both_layout_engines_place_sub_process_contents_inside(engine: str) -> None:
    if engine == "dot" and not layout.use_dot():
        pytest.skip("graphviz dot binary not installed")
    b = ProcessBuilder("nested")
    b.start().sub_process("sub", lambda s: s.start("s1").task("t1").timer("w1", "PT1M").end("e1")).end("e")
    d = b.build(validate=False)
    boxes = layout.compute(d, engine=engine).boxes
    sub = boxes["sub"]
    for inner in ("s1", "t1", "w1", "e1"):
        x, y, w, h = boxes[inner]
        assert sub[0] < x and x + w < sub[0] + sub[2] and sub[1] < y and y + h < sub[1] + sub[3]
    assert boxes["e"][0] > sub[0] + sub[2]


def test_export_without_dot_falls_back_to_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "use_dot", lambda: False)
    monkeypatch.setattr(layout, "_dot", lambda *a: pytest.fail("dot must not be called"))
    for definition in sample_definitions():
        xml = to_bpmn(definition)
        assert_schema_valid(xml)
        assert from_bpmn(xml) == definition


def test_boundary_events_sit_on_their_activity() -> None:
    d = sample_definitions()[0]
    boxes = shapes(to_bpmn(d))
    for node in d.all_nodes():
        if isinstance(node, BoundaryEvent):
            x, y, w, h = boxes[node.attached_to]
            bx, by, bw, bh = boxes[node.id]
            assert x <= bx + bw / 2 <= x + w and by + bh / 2 == pytest.approx(y + h)


def test_imported_layout_is_kept_on_export() -> None:
    require_corpus()
    from bpmn_support import CORPUS

    original = (CORPUS / "miwg" / "A.2.0.bpmn").read_bytes()
    d = from_bpmn(original)
    exported = shapes(to_bpmn(d))
    given = shapes(original.decode("iso-8859-1"))
    for node in d.all_nodes():
        assert exported[node.id] == given[node.id]


def test_a_computed_layout_is_not_imported_but_a_moved_one_is() -> None:
    b = ProcessBuilder("moved")
    b.start().task("t").end("e")
    d = b.build(validate=False)
    xml = to_bpmn(d)
    assert "waooaw:layout" in xml
    assert "bounds" not in from_bpmn(xml).node("t").metadata  # ours, unchanged: not worth keeping
    x = shapes(xml)["t"][0]
    moved = re.sub(rf'(bpmnElement="t">\s*<dc:Bounds x="){int(x)}"', r'\g<1>500"', xml)
    assert moved != xml
    result = import_bpmn(moved)
    assert result.definition.node("t").metadata["bounds"][0] == 500  # someone moved it: keep it all
    assert result.definition.node("e").metadata["bounds"] == shapes(xml)["e"]
    assert any("edited since it was exported" in p.message for p in result.info)


def test_a_shape_added_in_an_editor_keeps_the_whole_layout() -> None:
    b = ProcessBuilder("added")
    b.start().task("t").end("e")
    xml = to_bpmn(b.build(validate=False))
    flow = '<bpmn:sequenceFlow id="start__t"'
    added = xml.replace(flow, '<bpmn:task id="new_task"/>' + flow)
    added = added.replace("</bpmndi:BPMNPlane>", '<bpmndi:BPMNShape id="new_di" bpmnElement="new_task">'
                          '<dc:Bounds x="300" y="300" width="100" height="80"/></bpmndi:BPMNShape></bpmndi:BPMNPlane>')
    d = from_bpmn(added)
    assert d.node("new_task").metadata["bounds"] == [300, 300, 100, 80]
    assert d.node("t").metadata["bounds"] == shapes(xml)["t"]  # not re-laid out around the new task


def test_partial_layout_keeps_what_is_there_and_places_the_rest() -> None:
    b = ProcessBuilder("partial")
    b.start(metadata={"bounds": [100, 100, 36, 36]}).task("t").end("e")
    d = b.build(validate=False)
    xml = to_bpmn(d)
    boxes = shapes(xml)
    assert boxes["start"] == [100, 100, 36, 36]
    assert not overlaps(boxes["t"], boxes["start"])
    assert from_bpmn(xml) == d


def test_collapsed_sub_process_gets_its_own_diagram() -> None:
    d = sample_definitions()[1]
    root = etree.fromstring(to_bpmn(d).encode())
    planes = [p.get("bpmnElement") for p in root.iter(f"{{{BPMNDI}}}BPMNPlane")]
    assert planes == ["nightly", "collect"]
    collapsed = root.xpath("//bpmndi:BPMNShape[@bpmnElement='collect']", namespaces={"bpmndi": BPMNDI})[0]
    assert collapsed.get("isExpanded") == "false"


def test_bpmn_moddle_reads_and_rewrites_exports_losslessly(node: str, tmp_path: Path) -> None:
    """bpmn.io's own parser (bpmn-moddle) reads our files without a warning (every reference and diagram
    element resolves), and what it writes back (as bpmn.io does on save) imports to the same definition.
    Needs node and bpmn-moddle (``npm install bpmn-moddle`` in a folder named by WAOOAW_BPMN_MODDLE)."""
    import os

    canvas = Path(__file__).resolve().parents[1] / "app" / "components" / "bpmn_canvas" / "frontend"
    folder = os.environ.get("WAOOAW_BPMN_MODDLE") or str(canvas)  # the canvas's `npm ci` installs bpmn-moddle
    moddle = Path(folder) / "node_modules" / "bpmn-moddle" / "dist" / "index.js"
    if not moddle.exists():
        pytest.skip("node + bpmn-moddle not available (`make canvas` or `npm ci` in the canvas frontend, or set "
                    "WAOOAW_BPMN_MODDLE to a folder with it installed)")
    script = tmp_path / "waooaw-check.mjs"
    script.write_text("""import BpmnModdle from '""" + moddle.as_uri() + """';
import { readFileSync, writeFileSync } from 'fs';
const moddle = new BpmnModdle(); let bad = 0;
for (const f of process.argv.slice(2)) {
  const { rootElement, warnings } = await moddle.fromXML(readFileSync(f, 'utf8'));
  let unresolved = 0;
  for (const d of rootElement.diagrams || [])
    for (const e of d.plane.planeElement || []) if (!e.bpmnElement) unresolved++;
  if (warnings.length || unresolved) { bad++; console.log(f, warnings.map(w => w.message), unresolved); }
  const { xml } = await moddle.toXML(rootElement, { format: true });
  writeFileSync(f + '.moddle', xml);
}
process.exit(bad ? 1 : 0);""")
    files = {}
    for definition in sample_definitions():
        path = tmp_path / f"{definition.id}.bpmn"
        path.write_text(to_bpmn(definition))
        files[str(path)] = definition
    run = subprocess.run([node, str(script), *files], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    for path, definition in files.items():
        assert from_bpmn(Path(path + ".moddle").read_bytes()) == definition


# --- property: any valid model the builder makes round-trips ----------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Zl", "Zp")),
                min_size=1, max_size=12).filter(str.strip)
idents = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
durations = st.sampled_from(["PT30M", "PT4H", "P7D", "PT1S"])
lanes = st.sampled_from([None, None, "Ops", "People & bots"])


@st.composite
def definitions(draw: Any) -> ProcessDefinition:
    b = ProcessBuilder("gen", name=draw(st.none() | names), version=draw(st.integers(1, 9)),
                       variables={"x": int, "ok": bool}, **draw(st.dictionaries(idents, st.integers(), max_size=2)))
    counter = iter(range(1000))

    def nid(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def meta() -> dict[str, Any]:
        lane = draw(lanes)
        extra = draw(st.dictionaries(idents, st.integers() | names, max_size=1))
        return {**extra, **({"lane": lane} if lane else {})}

    cursor = b.start(metadata=meta()) if draw(st.booleans()) else b.message_start(nid("ms"), draw(names))
    for _ in range(draw(st.integers(1, 5))):
        step = draw(st.sampled_from(["service", "user", "task", "timer", "receive", "send", "xor", "and", "or",
                                     "race", "sub", "compensate"]))
        label = draw(st.none() | names)
        if step == "service":
            rules = {"bpmn": "businessRuleTask"} if draw(st.booleans()) else {}  # run by an agent too
            cursor = cursor.service(nid("s"), agent=draw(idents), inputs=draw(st.lists(idents, max_size=2)),
                                    retry={"attempts": draw(st.integers(1, 9))}, name=label,
                                    metadata={**meta(), **rules},
                                    timeout=draw(st.none() | durations),
                                    compensation=draw(st.none() | idents))
            if draw(st.booleans()):
                cursor.on_error(draw(st.none() | names), id=nid("be")).end(nid("failed"))
            if draw(st.booleans()):
                cursor.on_message(draw(names), id=nid("bm"), interrupting=draw(st.booleans())).end(nid("told"))
        elif step == "user":
            form = [{"name": n, "type": "integer", "default": draw(st.integers())}
                    for n in draw(st.lists(idents, unique=True, max_size=2))]
            cursor = cursor.user(nid("u"), title=label, assignee=draw(st.none() | idents),
                                 sla=draw(st.none() | durations), form=form, metadata=meta())
            if draw(st.booleans()):
                cursor.on_timer(draw(durations), id=nid("bt"), interrupting=draw(st.booleans())).end(nid("late"))
        elif step == "task":
            doc = draw(st.none() | names)
            cursor = cursor.task(nid("t"), name=label, documentation=doc)
        elif step == "timer":
            cursor = cursor.timer(nid("w"), draw(durations | st.just({"cycle": "0 9 * * *", "timezone": "Asia/Tokyo"})))
        elif step == "receive":
            cursor = cursor.receive(nid("r"), draw(names), correlation_key=draw(st.none() | st.just("x")))
        elif step == "send":
            cursor = cursor.send(nid("m"), draw(names), payload=["x"])
        elif step == "compensate":
            cursor = cursor.compensate(nid("c"))
        elif step == "race":
            race = cursor.race(nid("g"))
            left = race.branch().timer(nid("w"), draw(durations))
            right = race.branch().receive(nid("r"), draw(names))
            cursor = b.merge(nid("j"), left, right)
        elif step == "or":
            gate = cursor.inclusive(nid("g"))
            left = gate.when("x > 1").task(nid("a"))
            right = gate.otherwise().task(nid("b"))
            cursor = b.join(nid("j"), left, right, kind="inclusive_gateway")
        elif step in ("xor", "and"):
            gate = cursor.exclusive(nid("g")) if step == "xor" else cursor.parallel(nid("g"))
            condition = draw(st.sampled_from(["x > 1", 'x = 1 or ok = true', "= some v in [x, 2] satisfies v > 1"]))
            left = (gate.when(condition) if step == "xor" else gate.branch()).task(nid("a"))
            right = (gate.otherwise() if step == "xor" else gate.branch()).task(nid("b"))
            cursor = b.merge(nid("j"), left, right) if step == "xor" else b.join(nid("j"), left, right)
        else:
            inner = draw(st.integers(1, 3))
            cursor = cursor.sub_process(nid("sp"), lambda s, k=inner: _chain(s, k, nid),
                                        metadata={"expanded": draw(st.booleans())})
    ending = draw(st.sampled_from(["end", "terminate", "fail"]))
    if ending == "fail":
        cursor.fail(draw(names), id=nid("fail"))
    else:
        getattr(cursor, ending)(nid(ending))
    return b.build(validate=False)


def _chain(sub: ProcessBuilder, length: int, nid: Any) -> None:
    cursor = sub.start(nid("ss"))
    for _ in range(length):
        cursor = cursor.task(nid("st"))
    cursor.end(nid("se"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_property_generated_models_round_trip(definition: ProcessDefinition) -> None:
    xml = to_bpmn(definition)
    back = from_bpmn(xml)
    assert back == definition
    assert to_bpmn(back) == xml
    if (XSD / "BPMN20.xsd").exists():
        assert_schema_valid(xml)


def test_a_user_task_names_its_assignee_and_candidate_groups_as_camunda_modeler_reads_them() -> None:
    from lxml import etree

    from engine.bpmn import from_bpmn, to_bpmn
    from engine.model import ProcessBuilder

    b = ProcessBuilder("approval")
    b.start().user("approve", title="Approve expense", assignee="cto", candidate_groups=["finance", "leadership"]) \
        .end("done")
    definition = b.build()
    xml = to_bpmn(definition)
    task = etree.fromstring(xml.encode()).find(".//{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")
    camunda = "{http://camunda.org/schema/1.0/bpmn}"
    assert task.get(camunda + "assignee") == "cto"
    assert task.get(camunda + "candidateGroups") == "finance,leadership"
    assert from_bpmn(xml) == definition
    stripped = etree.fromstring(xml.encode())  # without our own fields, the Camunda attributes carry them
    for fields in stripped.iter("{https://waooaw.dev/schema/bpmn/1.0}fields"):
        fields.getparent().remove(fields)
    again = from_bpmn(etree.tostring(stripped).decode()).node("approve")
    assert (again.assignee, again.candidate_groups) == ("cto", ["finance", "leadership"])


def test_an_element_with_a_modelers_random_id_is_labelled_with_its_kind() -> None:
    from engine.bpmn import from_bpmn, to_bpmn
    from engine.model import ProcessBuilder

    b = ProcessBuilder("drawn", variables={"ok": bool})
    gate = b.start("StartEvent_1").exclusive("Gateway_09ddg4m")
    gate.when("ok").end("Event_1fofb85")
    gate.otherwise().end("issue_closed")
    definition = b.build()
    xml = to_bpmn(definition)
    assert 'name="Exclusive gateway"' in xml and 'name="End event"' in xml and 'name="Issue closed"' in xml
    assert from_bpmn(xml) == definition  # generated labels are dropped again on import
