"""Ids in BPMN files: the model's ids are XML NCNames (engine/model/ids.py), bpmn.io's are ASCII.

bpmn-moddle, the parser of bpmn.io and of the Designer's canvas, refuses an id that is not
``[A-Za-z_][A-Za-z0-9_.-]*`` ("illegal ID <prüfen>") although XML and BPMN allow any letter. So the exporter writes
every other id in ASCII (``prüfen`` -> ``prufen``, ``审批`` -> ``u5ba1u6279``, kept unique) and records each
rewrite in the process's ``<waooaw:ids>`` (``<waooaw:id xml="prufen" model="prüfen"/>``); the importer puts the
model's ids back before reading, so export -> import gives the same definition, and a file from another tool with
Unicode ids is read as it is (there is no ``<waooaw:ids>`` to apply).
"""

from __future__ import annotations

import re
import unicodedata

from lxml import etree

from engine.bpmn.namespaces import WAOOAW, b, q

IDS = q(WAOOAW, "ids")
ID = q(WAOOAW, "id")
ASCII_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# Attributes that hold one id, and those that hold a space-separated list of ids.
REF_ATTRIBUTES = ("id", "sourceRef", "targetRef", "attachedToRef", "default", "activityRef", "bpmnElement",
                  "processRef", "calledElement")
LIST_ATTRIBUTES = ("computed", "generated")
REF_ELEMENTS = {b("incoming"), b("outgoing"), b("flowNodeRef"), b("sourceRef"), b("targetRef")}


def ascii_id(model_id: str, taken: set[str]) -> str:
    """An ASCII id for ``model_id``: accents dropped (``Ü`` -> ``U``), other characters ``_``, unique in ``taken``."""
    parts = []
    for char in model_id:
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        if base or unicodedata.combining(char):
            parts.append(base)
        else:  # no Latin base letter (审批 -> u5ba1u6279): its code point
            parts.append(f"u{ord(char):x}")
    plain = re.sub(r"[^A-Za-z0-9_.\-]", "_", "".join(parts)) or "_"
    if not re.match(r"^[A-Za-z_]", plain):
        plain = f"_{plain}"
    candidate, n = plain, 2
    while candidate in taken:
        candidate, n = f"{plain}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _rewrite(root: etree._Element, mapping: dict[str, str]) -> None:
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in REF_ATTRIBUTES:
            value = el.get(attr)
            if value is not None and value.strip() in mapping:
                el.set(attr, mapping[value.strip()])
        if etree.QName(el).namespace == WAOOAW:
            for attr in LIST_ATTRIBUTES:
                value = el.get(attr)
                if value:
                    el.set(attr, " ".join(mapping.get(v, v) for v in value.split()))
        if el.tag in REF_ELEMENTS and el.text and el.text.strip() in mapping:
            el.text = mapping[el.text.strip()]


def to_ascii_ids(root: etree._Element) -> None:
    """Rewrite every id bpmn.io would refuse (and every reference to it) and record the rewrites."""
    ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    wrong = sorted(i for i in ids if not ASCII_ID.match(i))
    if not wrong:
        return
    taken = {i for i in ids if ASCII_ID.match(i)}
    mapping = {model: ascii_id(model, taken) for model in wrong}
    _rewrite(root, mapping)
    process = root.find(b("process"))
    if process is None:
        return
    ext = process.find(b("extensionElements"))
    if ext is None:
        ext = etree.Element(b("extensionElements"))
        doc = process.find(b("documentation"))
        process.insert(0 if doc is None else process.index(doc) + 1, ext)
    table = etree.SubElement(ext, IDS)
    for model, written in mapping.items():
        etree.SubElement(table, ID, xml=written, model=model)


def restore_ids(root: etree._Element) -> None:
    """Put back the model's ids recorded in ``<waooaw:ids>`` (a file without it is left as it is)."""
    mapping: dict[str, str] = {}
    for table in root.iter(IDS):
        for entry in table.iter(ID):
            written, model = (entry.get("xml") or "").strip(), (entry.get("model") or "").strip()
            if written and model:
                mapping[written] = model
    if not mapping:
        return
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    # an id someone gave an element in another tool since the export wins over the recorded one
    mapping = {w: m for w, m in mapping.items() if m not in taken or m == w}
    _rewrite(root, mapping)


__all__ = ["ASCII_ID", "ID", "IDS", "ascii_id", "restore_ids", "to_ascii_ids"]
