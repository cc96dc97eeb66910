"""Broken BPMN files: every one is refused (or, for unsupported content, imported leniently) with a message
that names the element, its id and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn import import_bpmn
from engine.errors import DefinitionError

BROKEN = Path(__file__).parent / "fixtures" / "bpmn_broken"

# file -> (where, line, words in the message, does a lenient import accept it?)
CASES: dict[str, tuple[str, int, tuple[str, ...], bool]] = {
    "bad_xml.bpmn": ("xml", 6, ("not well-formed", "startEvent line 4"), False),
    "not_bpmn.bpmn": ("definitions", 2, ("not a BPMN 2.0", "DMN"), False),
    "no_process.bpmn": ("definitions", 2, ("no <process>",), False),
    "missing_source_ref.bpmn": ("sequenceFlow 'f1'", 7, ("has no sourceRef",), False),
    "missing_target_ref.bpmn": ("sequenceFlow 'f2'", 8, ("has no targetRef",), False),
    "dangling_target_ref.bpmn": ("sequenceFlow 'f2'", 7, ("'the_end'", "names no element"), False),
    "duplicate_ids.bpmn": ("task 'review'", 6, ("duplicate id 'review'", "lines 5, 6"), False),
    "duplicate_flow_id.bpmn": ("sequenceFlow 'work'", 7, ("duplicate id 'work'",), False),
    "boundary_dangling.bpmn": ("boundaryEvent 'too_late'", 6, ("attachedToRef 'wrok'",), False),
    "default_not_outgoing.bpmn": ("exclusiveGateway 'check'", 5, ("default flow 'f1'", "not an outgoing"), False),
    "flow_crosses_subprocess.bpmn": ("sequenceFlow 'f1'", 10, ("'inner_work'", "sub-process boundary"), False),
    "bad_extension_json.bpmn": ("userTask 'approve'", 7, ("waooaw:fields", "not valid JSON"), False),
    "bad_typed_value.bpmn": ("serviceTask 'charge'", 8, ("<waooaw:retry>", "attempts='five'", "whole number"), False),
    "bad_timer_duration.bpmn": ("intermediateCatchEvent 'wait'", 5, ("'seven days'", "ISO-8601 duration"), True),
    "bad_timer_cycle.bpmn": ("startEvent 'daily'", 4, ("every monday at nine", "cron"), True),
    "timer_expression.bpmn": ("boundaryEvent 'reminder'", 6, ("${reminderCycle +}", "does not parse"), True),
    "timer_start_duration.bpmn": ("startEvent 'later'", 4, ("needs a date or a cycle",), True),
    "bad_condition.bpmn": ("sequenceFlow 'f2'", 9, ("not empty orders", "does not parse"), True),
    "complex_gateway.bpmn": ("complexGateway 'pick'", 5, ("not supported",), True),
    "signal_and_script.bpmn": ("intermediateCatchEvent 'wait_for_go'", 6, ("signal", "not supported"), True),
    "bad_extension_value.bpmn": ("serviceTask 'charge'", 5, ("retry.attempts", "greater than or equal to 1"), True),
}


def test_every_fixture_has_a_case() -> None:
    files = {p.name for p in BROKEN.glob("*.bpmn")}
    assert files == set(CASES), "a broken fixture without an expectation (or the other way round)"
    assert len(files) >= 10


@pytest.mark.parametrize("name", sorted(CASES))
def test_strict_import_refuses_with_place(name: str) -> None:
    where, line, words, _ = CASES[name]
    path = BROKEN / name
    with pytest.raises(DefinitionError) as caught:
        import_bpmn(path.read_bytes(), source=str(path))
    problem = next((p for p in caught.value.problems if p.where == where), None)
    assert problem is not None, f"no problem at {where!r}: {caught.value}"
    assert problem.line == line
    for word in words:
        assert word in problem.message
    assert str(path) in str(caught.value)  # the message names the file too


@pytest.mark.parametrize("name", sorted(CASES))
def test_lenient_import_imports_unsupported_content_but_never_broken_files(name: str) -> None:
    where, line, _, accepted = CASES[name]
    data = (BROKEN / name).read_bytes()
    if not accepted:
        with pytest.raises(DefinitionError):
            import_bpmn(data, lenient=True)
        return
    result = import_bpmn(data, lenient=True)
    warning = next(p for p in result.warnings if p.where == where)
    assert warning.line == line and warning.severity == "warning"


def test_strict_refusal_of_unsupported_elements_suggests_lenient_import() -> None:
    with pytest.raises(DefinitionError) as caught:
        import_bpmn((BROKEN / "signal_and_script.bpmn").read_bytes())
    wheres = [p.where for p in caught.value.problems]
    assert wheres == ["intermediateCatchEvent 'wait_for_go'", "scriptTask 'compute'", "import"]
    assert "lenient" in caught.value.problems[-1].message


def test_broken_reference_is_not_hidden_by_lenient_mode() -> None:
    """A lenient import still refuses a file whose references are broken: it would import a wrong graph."""
    with pytest.raises(DefinitionError) as caught:
        import_bpmn((BROKEN / "dangling_target_ref.bpmn").read_bytes(), lenient=True)
    assert [p.severity for p in caught.value.problems] == ["error"]


def test_lenient_placeholders_keep_the_graph_connected() -> None:
    result = import_bpmn((BROKEN / "signal_and_script.bpmn").read_bytes(), lenient=True)
    d = result.definition
    assert d.node("wait_for_go").kind == "task"
    assert d.node("wait_for_go").metadata["bpmn"] == "intermediateCatchEvent"
    assert d.node("compute").metadata["bpmn"] == "scriptTask"
    assert [f.target for f in d.outgoing("start")] == ["wait_for_go"]
    assert result.unsupported_elements == ["intermediateCatchEvent", "scriptTask"]


def test_unusable_condition_is_kept_as_text_and_written_back() -> None:
    from engine.bpmn import to_bpmn

    result = import_bpmn((BROKEN / "bad_condition.bpmn").read_bytes(), lenient=True)
    flow = result.definition.index.flows["f2"]
    assert flow.condition is None
    assert flow.metadata["condition_text"] == "${not empty orders}"
    assert "${not empty orders}" in to_bpmn(result.definition)


def test_unsupported_boundary_event_is_left_out_with_its_flows_and_says_so() -> None:
    result = import_bpmn((BROKEN / "timer_expression.bpmn").read_bytes(), lenient=True)
    d = result.definition
    assert "reminder" not in d.index.nodes and "f3" not in d.index.flows
    assert "reminded" in d.index.nodes  # what followed is kept
    left_out = next(p for p in result.warnings if p.where == "sequenceFlow 'f3'")
    assert "reminder" in left_out.message and "does not parse" in left_out.message


def test_text_with_encoding_declaration_and_bytes_in_latin1() -> None:
    xml = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">\n'
           '<bpmn:process id="p"><bpmn:task id="t" name="Prüfen"/></bpmn:process></bpmn:definitions>')
    assert import_bpmn(xml).definition.node("t").name == "Prüfen"
    assert import_bpmn(xml.encode("iso-8859-1")).definition.node("t").name == "Prüfen"


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
           '<bpmn:process id="p"><bpmn:task id="t"><bpmn:documentation>&leak;</bpmn:documentation></bpmn:task>'
           '</bpmn:process></bpmn:definitions>')
    node = import_bpmn(xml).definition.node("t")
    assert "TOP-SECRET" not in (node.documentation or "")
