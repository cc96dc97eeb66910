"""The automatic diagram layout reads well in other modelers: no edge runs through a shape it does not
connect, compensation handlers sit right below their activity, and labels overlap no shape or label
(checked with engine.bpmn.layout_check on the exported XML)."""

from __future__ import annotations

import pytest
from bpmn_support import CORPUS, sample_definitions
from hypothesis import HealthCheck, given, settings
from lxml import etree
from model_strategies import GeneratedModel, generated_models

from designs import NAMES, load_design
from engine.bpmn import import_bpmn, layout, to_bpmn
from engine.bpmn.conformance import corpus_files
from engine.bpmn.layout_check import Problem, check, segment_hits, text_size
from engine.bpmn.namespaces import BPMNDI, DC
from engine.model import ProcessBuilder


def _shapes(xml: str) -> dict[str, list[float]]:
    root = etree.fromstring(xml.encode())
    return {s.get("bpmnElement"): [float(b.get(k)) for k in ("x", "y", "width", "height")]
            for s in root.iter(f"{{{BPMNDI}}}BPMNShape") for b in s.iter(f"{{{DC}}}Bounds")}


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_design_has_no_crossing_and_no_label_overlap(name: str) -> None:
    problems = check(to_bpmn(load_design(name)))
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("engine", ["dot", "layers"])
def test_the_designs_read_well_with_either_layout_engine(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "dot" and not layout.use_dot():
        pytest.skip("graphviz dot binary not installed")
    monkeypatch.setattr(layout, "use_dot", lambda: engine == "dot")
    for name in NAMES:
        problems = check(to_bpmn(load_design(name)))
        assert problems == [], f"{name}: " + "\n".join(map(str, problems))


def test_the_sample_definitions_read_well() -> None:
    for definition in sample_definitions():
        problems = check(to_bpmn(definition))
        assert problems == [], f"{definition.id}: " + "\n".join(map(str, problems))


def test_corpus_files_without_a_diagram_get_a_layout_that_reads_well() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"BPMN corpus not found at {CORPUS}")
    laid_out = 0
    for path in corpus_files(CORPUS):
        raw = path.read_bytes()
        if b"BPMNShape" in raw:
            continue
        result = import_bpmn(raw, source=str(path), lenient=True)
        if result.definition is None:
            continue
        laid_out += 1
        problems = check(to_bpmn(result.definition))
        assert problems == [], f"{path.name}: " + "\n".join(map(str, problems))
    assert laid_out > 0


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(generated_models(max_depth=2))
def test_generated_models_read_well(model: GeneratedModel) -> None:
    problems = check(to_bpmn(model.definition))
    assert problems == [], "\n".join(map(str, problems))


def test_a_compensation_handler_sits_right_below_its_activity_joined_straight_down() -> None:
    for name in NAMES:
        d = load_design(name)
        xml = to_bpmn(d)
        boxes = _shapes(xml)
        root = etree.fromstring(xml.encode())
        for assoc in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}association"):
            event = root.find(f".//*[@id='{assoc.get('sourceRef')}']")
            activity = boxes[event.get("attachedToRef")]
            handler = boxes[assoc.get("targetRef")]
            assert handler[0] == activity[0], (name, assoc.get("id"))  # the same column
            assert activity[1] + activity[3] < handler[1] < activity[1] + activity[3] + 150, (name, assoc.get("id"))


def test_the_checker_finds_an_edge_through_a_shape_and_overlapping_labels() -> None:
    b = ProcessBuilder("flow")
    b.start().task("a").task("b").end("e")
    xml = to_bpmn(b.build(validate=False))
    assert check(xml) == []
    boxes = _shapes(xml)
    e = boxes["e"]
    # the flow start -> a is made to run on through a and b to the end event's middle
    through = xml.replace('bpmnElement="start__a">',
                          f'bpmnElement="start__a"><di:waypoint x="{e[0] + 1}" y="{e[1] + e[3] / 2}"/>', 1)
    found = check(through)
    assert Problem("crossing", "start__a", "b", "flow") in found
    assert Problem("crossing", "start__a", "a", "flow") in found  # its own target, run through
    # the end event's label moved onto task b
    b_box = boxes["b"]
    moved = xml.replace('bpmnElement="e">', f'bpmnElement="e"><bpmndi:BPMNLabel><dc:Bounds x="{b_box[0] + 10}" '
                        f'y="{b_box[1] + 10}" width="20" height="14"/></bpmndi:BPMNLabel>', 1)
    assert Problem("label", "e", "b", "flow") in check(moved)


def test_segment_and_text_geometry() -> None:
    box = [0.0, 0.0, 100.0, 80.0]
    assert segment_hits([-10, 40], [110, 40], box)
    assert not segment_hits([-10, 0], [110, 0], box)  # along the border: touching only
    assert not segment_hits([100, 40], [200, 40], box)  # leaving from the border
    assert segment_hits([-10, -10], [110, 90], box)  # diagonal
    width, height = text_size("Resolved or late?")
    assert 80 < width <= 90 and height == 14  # bpmn-js draws it 86 px wide on one line
    assert text_size("engagement_score >= 50 and a longer condition")[1] > 14  # wraps at 90 px


def test_exported_label_bounds_are_not_imported() -> None:
    d = load_design("marketing_campaign")
    xml = to_bpmn(d)
    assert "BPMNLabel" in xml
    assert import_bpmn(xml).definition == d
