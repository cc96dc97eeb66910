"""BPMN DI (diagram interchange) read into plain numbers, and the digest that marks a computed layout.

Positions read from a file are kept in the model's metadata (``bounds`` [x, y, w, h], ``label``,
``waypoints``) so an export draws the diagram as its author left it. A layout *we* computed is not
worth keeping: the exporter lists the elements it placed and a digest of their positions (and of the
set of drawn elements); when a file comes back with those unchanged they are dropped again, so
export -> import gives back exactly the model that was exported. Once someone moves, adds or deletes
a shape in bpmn.io the digest no longer matches and the (now hand-made) layout is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.bpmn.namespaces import BPMNDI, DC, DI, q

Number = int | float


def num(text: str | float | int | None) -> Number:
    """A coordinate as an int when whole (files write "100" or "100.0"), else a float."""
    value = float(text) if text is not None else 0.0
    return int(value) if value.is_integer() else round(value, 3)


def fmt(value: Number) -> str:
    return str(num(value))


@dataclass
class Shape:
    bounds: list[Number]
    label: list[Number] | None = None
    expanded: bool | None = None
    line: int | None = None


@dataclass
class Edge:
    waypoints: list[list[Number]]
    label: list[Number] | None = None
    line: int | None = None


@dataclass
class Diagram:
    shapes: dict[str, Shape] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    duplicates: list[tuple[str, int | None]] = field(default_factory=list)  # repeated DI for one element
    planes: list[str] = field(default_factory=list)  # bpmnElement of each plane


def _bounds(el: etree._Element | None) -> list[Number] | None:
    if el is None:
        return None
    return [num(el.get(k)) for k in ("x", "y", "width", "height")]


def read(root: etree._Element) -> Diagram:
    """Every shape and edge of every diagram; the first one drawn for an element wins."""
    out = Diagram()
    for plane in root.iter(q(BPMNDI, "BPMNPlane")):
        out.planes.append(_local_ref(plane.get("bpmnElement")))
    for el in root.iter(q(BPMNDI, "BPMNShape"), q(BPMNDI, "BPMNEdge")):
        ref = _local_ref(el.get("bpmnElement"))
        if not ref:
            continue
        label_el = el.find(q(BPMNDI, "BPMNLabel"))
        label = _bounds(label_el.find(q(DC, "Bounds"))) if label_el is not None else None
        if el.tag == q(BPMNDI, "BPMNShape"):
            bounds = _bounds(el.find(q(DC, "Bounds")))
            if bounds is None:
                continue
            if ref in out.shapes:
                out.duplicates.append((ref, el.sourceline))
                continue
            expanded = el.get("isExpanded")
            out.shapes[ref] = Shape(bounds, label, None if expanded is None else expanded == "true", el.sourceline)
        else:
            points = [[num(p.get("x")), num(p.get("y"))] for p in el.findall(q(DI, "waypoint"))]
            if ref in out.edges:
                out.duplicates.append((ref, el.sourceline))
                continue
            out.edges[ref] = Edge(points, label, el.sourceline)
    return out


def _local_ref(ref: str | None) -> str:
    """``bpmnElement`` is a QName: drop a prefix (``tns:Task_1``)."""
    return (ref or "").split(":")[-1].strip()


def digest(entries: dict[str, Any], drawn: set[str]) -> str:
    """A short digest of positions by element id (shape bounds or edge waypoints) and of which elements
    are drawn at all: adding or deleting a shape in an editor changes it as well as moving one."""
    def norm(value: Any) -> Any:
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, int | float):
            return num(value)
        return value

    data = {"positions": {k: norm(v) for k, v in sorted(entries.items())}, "drawn": sorted(drawn)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def drawn(diagram: Diagram) -> set[str]:
    """Every element the diagrams draw."""
    return set(diagram.shapes) | set(diagram.edges) | {ref for ref, _ in diagram.duplicates}


def positions(diagram: Diagram, ids: list[str]) -> dict[str, Any]:
    """The drawn position of each id (bounds or waypoints), as the digest covers it."""
    found: dict[str, Any] = {}
    for ident in ids:
        if ident in diagram.shapes:
            found[ident] = diagram.shapes[ident].bounds
        elif ident in diagram.edges:
            found[ident] = diagram.edges[ident].waypoints
    return found
