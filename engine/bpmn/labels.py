"""Labels other modelers show: every task, event and conditional flow gets a readable name in the export.

The model leaves ``name`` empty where an id or a title says enough, but bpmn.io then draws empty boxes and bare
events, and bpmnlint's ``label-required`` rule fails. The exporter writes a label for each such element: a user
task's title, else the id in words (``issue_created`` -> "Issue created"; a modeler's random id such as
``Gateway_09ddg4m`` -> the element's kind, "Exclusive gateway"); a conditional flow's condition; a
compensation handler's agent in words ("Rollback validation", not ``designs.agents:rollback_validation``). Each
generated label is recorded in the process's ``<waooaw:labels>`` and dropped again on import while it is
unchanged, so export -> import gives the same definition; a label someone edited in another tool is kept.
"""

from __future__ import annotations

import re

from lxml import etree

from engine.bpmn.namespaces import WAOOAW, q
from engine.model.nodes import Node, SequenceFlow

LABELS = q(WAOOAW, "labels")
LABEL = q(WAOOAW, "label")
MAX_CONDITION = 60
# The ids bpmn-js (and Camunda Modeler) give a new element: a type word, "_" and seven random characters.
MODELER_ID = re.compile(r"^(Activity|Gateway|Event|StartEvent|EndEvent|Flow|Task|SubProcess)_[0-9a-z]{7}$")


def words(text: str) -> str:
    """An identifier in words: the last part of ``module:function`` or ``a.b``; ``_``/``-``/camelCase -> spaces."""
    tail = re.split(r"[:.]", text)[-1] or text
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", tail)
    spaced = re.sub(r"[_\-\s]+", " ", spaced).strip()
    return (spaced[:1].upper() + spaced[1:].lower()) if spaced else text


def node_label(node: Node) -> str | None:
    """The label written for a node without a name (None: it has one)."""
    if node.name:
        return None
    title = getattr(node, "title", None)
    if isinstance(title, str) and title.strip():
        return title
    if MODELER_ID.match(node.id):  # "Gateway_09ddg4m" in words is noise: say what the element is
        kind = node.kind  # type: ignore[attr-defined]
        return words(kind) + (" event" if kind in ("start", "end") else "")
    return words(node.id)


def flow_label(flow: SequenceFlow) -> str | None:
    """The label written for a conditional flow without a name: its condition."""
    if flow.name or not flow.condition:
        return None
    text = " ".join(flow.condition.split())
    return text if len(text) <= MAX_CONDITION else text[: MAX_CONDITION - 1] + "…"


def record(extension_elements: etree._Element, generated: dict[str, str]) -> None:
    """List the generated labels (element id -> text) in ``<waooaw:labels>``."""
    if not generated:
        return
    table = etree.SubElement(extension_elements, LABELS)
    for element, text in generated.items():
        etree.SubElement(table, LABEL, element=element, text=text)


def drop_generated(root: etree._Element) -> None:
    """Remove each recorded label that is still as generated (the element's ``name`` equals the recorded text)."""
    recorded = {entry.get("element"): entry.get("text") for table in root.iter(LABELS) for entry in table.iter(LABEL)}
    if not recorded:
        return
    for el in root.iter():
        if isinstance(el.tag, str) and el.get("id") in recorded and el.get("name") == recorded[el.get("id")]:
            del el.attrib["name"]
