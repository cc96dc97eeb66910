"""The public BPMN conformance corpus (../shared/corpus/bpmn): import, report, export, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from bpmn_support import CORPUS, XSD, assert_schema_valid

from engine.bpmn import import_bpmn, to_bpmn
from engine.bpmn.conformance import corpus_files, markdown, run
from engine.bpmn.schema import schema_errors
from engine.errors import DefinitionError

FILES = corpus_files(CORPUS) if CORPUS.is_dir() else []
README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "bpmn.md"


def rel(path: Path) -> str:
    return str(path.relative_to(CORPUS))


@pytest.fixture(scope="module", autouse=True)
def _corpus() -> None:
    if not FILES:
        pytest.skip(f"BPMN corpus not found at {CORPUS} (clone shared/ next to the repo)")


@pytest.mark.parametrize("path", FILES or [None], ids=rel if FILES else None)
def test_corpus_file(path: Path) -> None:
    """Lenient import always works; strict import refuses exactly the unsupported elements, each with its
    line; the export is schema-valid and imports back to the same definition."""
    data = path.read_bytes()
    result = import_bpmn(data, source=rel(path), lenient=True)
    assert not [f for f in result.findings if f.category == "error"]
    expected = [(f.element, f.id, f.line) for f in result.unsupported]
    try:
        strict = import_bpmn(data, source=rel(path))
    except DefinitionError as exc:
        refused = [p for p in exc.problems if p.where != "import"]
        assert [(p.where, p.line) for p in refused] == [
            (f"{element} {ident!r}" if ident else element, line) for element, ident, line in expected]
        assert all(p.line for p in refused)
    else:
        assert not expected
        assert strict.definition == result.definition
    xml = to_bpmn(result.definition)
    assert_schema_valid(xml)
    back = import_bpmn(xml, lenient=True).definition
    assert back == result.definition
    assert to_bpmn(back) == xml


# What each kind of file is known to contain (see MANIFEST.md): the report names exactly these elements.
KNOWN_UNSUPPORTED = {
    "executable/process.bpmn": [],  # its Groovy script only prints: a task that does nothing
    "executable/invoice.v2.bpmn": [],  # businessRuleTask camunda:decisionRef: a service task, agent = the decision
    "executable/transaction.bpmn": [],  # a transaction with a cancel end and a cancel boundary event
    "executable/BPMN2-AdHocSubProcess.bpmn2": [],  # an ad-hoc sub-process; print-only scripts; onEntry Java: warned
    "miwg/C.3.0.bpmn": [],  # Service Level == 'Premium': a name with spaces
    "miwg/C.6.0.bpmn": ["boundaryEvent", "intermediateCatchEvent", "subProcess"],  # event sub-process
    "miwg/C.7.0.bpmn": ["multiInstanceLoopCharacteristics"],  # neither cardinality nor collection
    "miwg/C.8.1.bpmn": [],  # FEEL conditions, a business rule task run by a Zeebe job worker
    "miwg/C.9.0.bpmn": [],  # Camunda 8: FEEL some/every ... satisfies
}
IMPORTED_FULLY = [
    "miwg/A.1.0.bpmn", "miwg/A.2.0.bpmn", "executable/event-gateway.bpmn",
    "executable/InclusiveGatewayTest.testJoinAfterSubprocesses.bpmn20.xml", "executable/VacationRequest.bpmn20.xml",
    "executable/FormDataTest.testGetFormFieldBuiltInTypes.bpmn20.xml",
    "miwg-exports/bpmn.io-camunda-modeler-18.6.1/A.2.0-export.bpmn",
    "executable/usertaskmodel.bpmn",  # Flowable: a timeCycle ${cronExpression}, evaluated when armed
]


@pytest.mark.parametrize("name", sorted(KNOWN_UNSUPPORTED))
def test_known_unsupported_elements_are_reported(name: str) -> None:
    result = import_bpmn((CORPUS / name).read_bytes(), lenient=True)
    assert result.unsupported_elements == KNOWN_UNSUPPORTED[name]


@pytest.mark.parametrize("name", IMPORTED_FULLY)
def test_supported_files_import_strictly_without_warnings(name: str) -> None:
    result = import_bpmn((CORPUS / name).read_bytes())
    assert result.warnings == []
    assert result.definition.all_nodes()


def test_specific_details_survive_import() -> None:
    d = import_bpmn((CORPUS / "executable/reviewSalesLead.bpmn20.xml").read_bytes()).definition
    provide = d.node("provideNewSalesLead")
    assert provide.kind == "user_task" and [f.name for f in provide.form] == ["customerName", "potentialProfit",
                                                                                 "details"]
    assert any(n.kind == "boundary_error" and n.error_code == "not_enough_info" for n in d.all_nodes())
    zeebe = import_bpmn((CORPUS / "executable/pr-created.bpmn").read_bytes(), lenient=True).definition
    assert zeebe.node("deploySnapshot").agent == "deploySnapshot"
    assert zeebe.node("prCreated").kind == "message_start" and zeebe.node("prCreated").message == "prCreated"


def test_schema_invalid_inputs_are_tolerated_and_the_tolerance_is_reported() -> None:
    invalid = [p for p in FILES if schema_errors(p.read_bytes(), XSD)]
    assert sorted(rel(p) for p in invalid) == [
        "executable/BPMN2-UserTaskCompensation.bpmn2",
        "miwg-exports/sap-signavio-process-manager-19.9.0/B.1.0-roundtrip.bpmn",
    ]
    jbpm = import_bpmn(invalid[0].read_bytes(), lenient=True)
    assert any("duplicate diagram id 'BPMNLabel_11'" in p.message for p in jbpm.info)
    signavio = import_bpmn(invalid[1].read_bytes(), lenient=True)
    assert any("duplicate id 'Process_ba16239e" in p.message and "outside the imported process" in p.message
               for p in signavio.info)


def test_published_table_is_current() -> None:
    """docs/bpmn.md carries the per-file table this run produces; README's "BPMN interchange" its summary."""
    if not DOCS.exists():
        pytest.skip("no docs/bpmn.md yet")
    table = markdown(run(CORPUS))
    assert table in DOCS.read_text(), "regenerate with: python -m engine.bpmn.conformance"
    summary = table.split("\n\n")[0]
    if README.exists() and "## BPMN interchange" in README.read_text():
        assert summary in README.read_text(), "copy the summary line of python -m engine.bpmn.conformance to README"


# Strict imports won by FEEL conditions, business rule tasks and print-only scripts (issue 16): each deploys once
# its agents are registered (nothing else in the definition is refused by Engine.deploy's validation).
DEPLOYABLE = ["executable/invoice.v2.bpmn", "executable/process.bpmn", "miwg/C.8.0.bpmn", "miwg/C.8.1.bpmn",
              "miwg/C.9.0.bpmn", "executable/transaction.bpmn",  # and transactions, a Groovy 'def' local
              "executable/HistoricActivityInstanceTest.testEvents.bpmn",
              # sub-processes without start or end events (implicit start and end), an ad-hoc sub-process
              "miwg/A.3.0.bpmn", "miwg/C.3.0.bpmn", "executable/BPMN2-AdHocSubProcess.bpmn2"]


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_newly_imported_files_deploy_but_for_their_agents(name: str) -> None:
    result = import_bpmn((CORPUS / name).read_bytes())
    refused = [w.message for w in result.warnings if "refuses" in w.message and "is not registered" not in w.message]
    assert refused == []


def test_invoice_declares_what_its_call_activity_passes_on() -> None:
    d = import_bpmn((CORPUS / "executable/invoice.v2.bpmn").read_bytes()).definition
    passed = {"amount", "creditor", "invoiceCategory", "invoiceDocument", "invoiceNumber"}
    assert passed <= {v.name for v in d.variables}
    assign = d.node("assignApprover")
    assert (assign.kind, assign.agent, assign.metadata["bpmn"]) == ("service_task", "invoice-assign-approver",
                                                                     "businessRuleTask")
