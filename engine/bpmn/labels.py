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

from lxml import etree

from engine.bpmn.namespaces import WAOOAW, q
from engine.model import ids
from engine.model.nodes import Node, SequenceFlow

LABELS = q(WAOOAW, "labels")
LABEL = q(WAOOAW, "label")
MAX_CONDITION = 60
words = ids.words


def node_label(node: Node) -> str | None:
    """The label written for a node without a name (None: it has one): the node's ``label`` (a user task's
    title, else the id in words, else for a modeler's random id the element's kind)."""
    return None if node.name else node.label


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
