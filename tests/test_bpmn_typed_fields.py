"""Our extension fields as typed XML (engine/bpmn/typed.py), the standard and Camunda forms written beside them,
and the older JSON form (``<waooaw:fields>``), which still imports."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from test_bpmn_interop import typed_fields_design

import designs
from app.components.bpmn_canvas.bundle import FRONTEND
from engine.bpmn import from_bpmn, import_bpmn, to_bpmn, typed
from engine.bpmn.namespaces import BPMN, CAMUNDA, WAOOAW
from engine.model import ProcessDefinition
from engine.model.nodes import NODE_CLASSES

OLD = Path(__file__).parent / "fixtures" / "bpmn_json_fields"
NS = {"bpmn": BPMN, "camunda": CAMUNDA, "waooaw": WAOOAW}


def test_the_canvas_descriptor_is_the_one_the_tables_make() -> None:
    committed = (FRONTEND / "src" / "waooaw-moddle.json").read_text()
    assert committed == typed.moddle_json(), "run `python -m engine.bpmn.typed > " \
        "app/components/bpmn_canvas/frontend/src/waooaw-moddle.json` and `make canvas`"


def test_exports_carry_no_json_and_every_field_comes_back() -> None:
    for definition in [typed_fields_design()] + [designs.load_design(n) for n in designs.names()]:
        xml = to_bpmn(definition)
        assert "waooaw:fields" not in xml and "{" not in "".join(
            etree.fromstring(xml.encode()).xpath("//waooaw:*/text()", namespaces=NS))
        assert from_bpmn(xml) == definition, definition.id


def test_every_model_field_has_a_typed_element_or_standard_bpmn() -> None:
    """A field the model gains later must get an element here (the writer raises for one it cannot type)."""
    from engine.bpmn.writer import STANDARD_FIELDS
    structured = set(typed.NESTED) | set(typed.REPEATED) | set(typed.NAMES) | set(typed.MAPPINGS) | {"metadata"}
    for cls in [*NODE_CLASSES.values(), ProcessDefinition]:
        for name in cls.model_fields:
            assert name in typed.TOP_SCALARS or name in structured or name in STANDARD_FIELDS | {
                "kind", "nodes", "flows"}, f"{cls.__name__}.{name}"


def test_typed_values_keep_their_types() -> None:
    xml = to_bpmn(typed_fields_design())
    root = etree.fromstring(xml.encode())
    retry = root.find(".//bpmn:serviceTask[@id='score']//waooaw:retry", NS)
    assert dict(retry.attrib) == {"attempts": "5", "backoff": "PT5S", "multiplier": "1.5", "maxBackoff": "PT1M"}
    count = root.find(".//waooaw:formField[@name='count']/waooaw:default", NS)
    assert (count.get("type"), count.get("value")) == ("integer", "0")
    review = from_bpmn(xml).node("review")
    assert review.form[0].default is False and review.form[2].default == 0  # type: ignore[attr-defined]
    assert review.on_timeout.values == {"ok": False, "note": "auto", "n": 0}  # type: ignore[attr-defined]


def test_user_tasks_carry_standard_performers_and_a_camunda_form() -> None:
    root = etree.fromstring(to_bpmn(typed_fields_design()).encode())
    task = root.find(".//bpmn:userTask[@id='review']", NS)
    assert task.xpath("bpmn:humanPerformer//bpmn:formalExpression/text()", namespaces=NS) == ["anna"]
    assert task.xpath("bpmn:potentialOwner//bpmn:formalExpression/text()", namespaces=NS) == [
        "group(risk)", "group(ops)"]
    fields = task.findall(".//camunda:formData/camunda:formField", NS)
    assert [(f.get("id"), f.get("type")) for f in fields] == [
        ("ok", "boolean"), ("level", "enum"), ("count", "long"), ("remark", "string")]
    assert fields[0].find("camunda:validation/camunda:constraint", NS).get("name") == "required"
    assert [v.get("id") for v in fields[1].findall("camunda:value", NS)] == ["low", "high"]


def _without_ours(xml: str) -> bytes:
    """The file as Camunda Modeler would keep it if it dropped our namespace: standard and Camunda forms only."""
    root = etree.fromstring(xml.encode())
    for el in root.xpath("//waooaw:*[not(self::waooaw:layout or self::waooaw:labels or self::waooaw:ids)]"
                         "[parent::bpmn:extensionElements]", namespaces=NS):
        el.getparent().remove(el)
    return etree.tostring(root)


def test_the_standard_and_camunda_forms_import_alone() -> None:
    task = from_bpmn(_without_ours(to_bpmn(typed_fields_design())), source="camunda.bpmn").node("review")
    assert task.assignee == "anna" and task.candidate_groups == ["risk", "ops"]  # type: ignore[attr-defined]
    form = {f.name: f for f in task.form}  # type: ignore[attr-defined]
    assert form["ok"].required and form["ok"].type == "boolean" and form["ok"].default is False
    assert form["level"].choices == ["low", "high"] and form["count"].type == "integer"


def test_ours_win_over_the_standard_forms_of_the_same_field() -> None:
    """A panel edit updates our fields only; the (stale) humanPerformer and camunda:formData are not read over
    them, not even when ours say "none"."""
    xml = to_bpmn(typed_fields_design())
    root = etree.fromstring(xml.encode())
    task = root.find(".//bpmn:userTask[@id='review']", NS)
    props = task.find(".//waooaw:properties", NS)
    del props.attrib["assignee"]
    for el in task.findall(".//waooaw:candidateGroups", NS) + task.findall(".//waooaw:formField", NS):
        el.getparent().remove(el)
    node = from_bpmn(etree.tostring(root)).node("review")
    assert node.assignee is None and node.candidate_groups == [] and node.form == []  # type: ignore[attr-defined]


def test_old_exports_with_json_fields_still_import() -> None:
    """Files exported before the typed elements (saved in tests/fixtures/bpmn_json_fields) give their definition;
    exported again they carry typed elements and give it once more."""
    old = {"typed_fields.bpmn": typed_fields_design(),
           "customer_onboarding.bpmn": ProcessDefinition.model_validate_json(
               (OLD / "customer_onboarding.json").read_text())}
    for name, definition in old.items():
        text = (OLD / name).read_bytes()
        assert b"<waooaw:fields>" in text
        result = import_bpmn(text, source=name)
        assert result.definition == definition, name
        again = to_bpmn(result.definition)
        assert "waooaw:fields" not in again and from_bpmn(again) == definition
