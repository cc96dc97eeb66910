"""BPMN 2.0 XML interchange: import (with a report of what was left out) and export with a diagram.

    from engine.bpmn import from_bpmn, import_bpmn, to_bpmn
    definition = from_bpmn(path.read_bytes(), source=str(path))          # strict: refuses unsupported elements
    result = import_bpmn(xml, lenient=True)                               # imports the rest, lists the rest
    result.definition, result.warnings, result.info
    xml = to_bpmn(definition)                                             # schema-valid, opens in bpmn.io
"""

from __future__ import annotations

from engine.bpmn.namespaces import WAOOAW
from engine.bpmn.result import Finding, ImportResult
from engine.model.definition import ProcessDefinition


def import_bpmn(text: str | bytes, source: str | None = None, lenient: bool = False,
                process_id: str | None = None) -> ImportResult:
    """Read BPMN XML. Strict (default): raise DefinitionError listing every unsupported element with its
    line. Lenient: import what is supported and return the rest as warnings. Broken files (bad XML,
    missing or dangling references, duplicate ids) are refused in both modes."""
    from engine.bpmn.reader import read
    from engine.errors import DefinitionError
    from engine.limits import LimitExceeded, check_file_size

    try:  # before parsing: a 50 MB file took 37 s and 1.1 GB
        check_file_size(len(text), "the BPMN document")
    except LimitExceeded as exc:
        raise DefinitionError(str(exc), source) from None
    return read(text, source=source, lenient=lenient, process_id=process_id)


def from_bpmn(text: str | bytes, source: str | None = None, lenient: bool = False,
              process_id: str | None = None) -> ProcessDefinition:
    """Read BPMN XML into a definition (see :func:`import_bpmn` for the report)."""
    return import_bpmn(text, source=source, lenient=lenient, process_id=process_id).definition


def import_all(text: str | bytes, source: str | None = None, lenient: bool = False) -> list[ImportResult]:
    """Every executable process of a collaboration, one ImportResult each (``engine.bpmn.collaboration``)."""
    from engine.bpmn.collaboration import import_all as _import_all

    return _import_all(text, source=source, lenient=lenient)


def to_bpmn(definition: ProcessDefinition, *, generated_labels: bool = True) -> str:
    """Write BPMN 2.0 XML with a diagram (kept from an import, else laid out with graphviz).

    ``generated_labels``: give unnamed tasks, events and conditional flows a label (``engine.bpmn.labels``), as
    other modelers need; False writes only the names the definition has (the Designer's canvas)."""
    from engine.bpmn.writer import write

    return write(definition, generated_labels)


__all__ = ["WAOOAW", "Finding", "ImportResult", "from_bpmn", "import_all", "import_bpmn", "to_bpmn"]
