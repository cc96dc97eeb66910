"""Does a BPMN diagram read well? Edges that cross shapes they do not connect, labels that overlap.

``check(xml)`` reads a BPMN file's diagram (``BPMNShape`` bounds, ``BPMNEdge`` waypoints, ``BPMNLabel``
bounds) and reports, per diagram plane:

- **crossing**: a segment of a sequence flow or association passes through the inside of a shape
  (activity, event, gateway, sub-process) that it does not connect. A flow's own source and target count
  too (a flow must not run back through them), but touching a border does not; the sub-processes that
  contain the edge are not obstacles. A flow leaving a boundary event must not run through the activity
  it is attached to.
- **label**: the external label of an event or gateway (or of a sequence flow) overlaps a shape other than
  its own element and its containers; **labels**: it overlaps another such label.

Labels are placed as bpmn-js places them (``bpmn-js/lib/import/BpmnImporter#addLabel`` and
``util/LabelUtil``): centred on the middle of the ``BPMNLabel`` bounds, its top at their top; without
bounds, an element's label starts at its bottom edge, centred under it, and a flow's label sits 15 px
above the middle of its middle segment. The text box is estimated with :func:`text_size` (bpmn-js measures
11 px Arial, wrapped at 90 px); that is the one approximation here.

Boxes are ``[x, y, width, height]`` in diagram pixels, y growing downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from lxml import etree

from engine.bpmn.namespaces import BPMN, BPMNDI, DC, DI, q

Box = list[float]
Point = list[float]

FONT_SIZE = 11.0  # bpmn-js's external labels: 11 px Arial
# Arial advance widths per 1000 em (the Adobe font metrics); other characters count as a digit's width.
_ARIAL = dict(zip("abcdefghijklmnopqrstuvwxyz", (556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833,
                                                  556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500),
                  strict=True))
_ARIAL |= dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
                                                   722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611),
                   strict=True))
_ARIAL |= {" ": 278, ".": 278, ",": 278, ":": 278, ";": 278, "'": 191, '"': 355, "-": 333, "(": 333, ")": 333,
           "!": 278, "|": 260, "/": 278, "=": 584, "<": 584, ">": 584, "+": 584, "*": 389, "[": 278, "]": 278}
SAFETY = 1.04  # the estimate errs a little wide, towards finding an overlap
LINE_HEIGHT = 14.0  # bpmn-js: 11 px * line height 1.2, rounded up
LABEL_WIDTH = 90.0  # bpmn-js wraps external labels at 90 px
FLOW_LABEL_INDENT = 15.0  # bpmn-js LabelUtil.FLOW_LABEL_INDENT
TOUCH = 1.0  # a segment this close to a border only touches it
EXTERNAL_LABEL = ("Event", "Gateway")  # element tags (by suffix) whose label bpmn-js draws outside the shape
SHAPE_TAGS = ("task", "Task", "Event", "Gateway", "subProcess", "transaction", "callActivity")


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is "crossing" (edge ``element`` runs through shape ``other``), "label" (the label
    of ``element`` overlaps shape ``other``) or "labels" (the labels of ``element`` and ``other`` overlap)."""

    kind: str
    element: str
    other: str
    plane: str

    def __str__(self) -> str:
        what = {"crossing": "crosses", "label": "label overlaps", "labels": "label overlaps the label of"}[self.kind]
        return f"{self.element} {what} {self.other} (plane {self.plane})"


def text_width(text: str) -> float:
    """Estimated width in px of one line of 11 px Arial."""
    return sum(_ARIAL.get(c, 556) for c in text) * FONT_SIZE / 1000 * SAFETY


def text_size(text: str) -> tuple[float, float]:
    """Estimated (width, height) in px of an external label: words wrapped greedily at 90 px; a word longer
    than a line is broken, as bpmn-js does."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            while text_width(word) > LABEL_WIDTH:
                if current:
                    lines.append(current)
                    current = ""
                cut = max(1, next(i for i in range(len(word), 0, -1) if text_width(word[:i]) <= LABEL_WIDTH))
                lines.append(word[:cut])
                word = word[cut:]
            candidate = f"{current} {word}" if current else word
            if current and text_width(candidate) > LABEL_WIDTH:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    width = max(text_width(line) for line in lines)
    return min(width, LABEL_WIDTH), len(lines) * LINE_HEIGHT


def label_box(text: str, centre_x: float, top: float) -> Box:
    """The box of a label text centred on ``centre_x`` whose first line starts at ``top``."""
    w, h = text_size(text)
    return [centre_x - w / 2, top, w, h]


def flow_label_point(waypoints: list[Point]) -> Point:
    """Where bpmn-js puts a flow's label without bounds: the middle of the middle segment, lifted by 15 px
    on a horizontal segment, moved right on a vertical one (``LabelUtil.getFlowLabelPosition``)."""
    mid = len(waypoints) / 2 - 1
    first = waypoints[int(mid // 1)]
    second = waypoints[int(-(-(mid + 0.01) // 1))]
    x, y = (first[0] + second[0]) / 2, (first[1] + second[1]) / 2
    if abs(second[1] - first[1]) <= abs(second[0] - first[0]):
        return [x, y - FLOW_LABEL_INDENT]
    return [x + FLOW_LABEL_INDENT, y]


def _inside(box: Box, margin: float = TOUCH) -> Box:
    x, y, w, h = box
    return [x + margin, y + margin, max(w - 2 * margin, 0.0), max(h - 2 * margin, 0.0)]


def segment_hits(a: Point, b: Point, box: Box) -> bool:
    """Whether the segment a-b passes through the inside of ``box`` (its border, with a 1 px margin,
    excluded). Liang-Barsky clipping."""
    x0, y0, w, h = _inside(box)
    if w <= 0 or h <= 0:
        return False
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, qq in ((-dx, a[0] - x0), (dx, x0 + w - a[0]), (-dy, a[1] - y0), (dy, y0 + h - a[1])):
        if p == 0:
            if qq < 0:
                return False
            continue
        t = qq / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return t1 - t0 > 1e-9


def boxes_overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share some inside (touching borders do not count)."""
    return a[0] < b[0] + b[2] - TOUCH and b[0] < a[0] + a[2] - TOUCH and a[1] < b[1] + b[3] - TOUCH \
        and b[1] < a[1] + a[3] - TOUCH


@dataclass
class _Element:
    ident: str
    tag: str
    parents: tuple[str, ...]  # the containing sub-processes, innermost last
    source: str | None = None
    target: str | None = None
    attached_to: str | None = None
    name: str = ""


def _elements(root: etree._Element) -> dict[str, _Element]:
    found: dict[str, _Element] = {}

    def walk(el: etree._Element, parents: tuple[str, ...]) -> None:
        for child in el:
            if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{BPMN}}}"):
                continue
            tag = etree.QName(child).localname
            ident = child.get("id")
            if ident:
                found[ident] = _Element(ident, tag, parents, child.get("sourceRef"), child.get("targetRef"),
                                        child.get("attachedToRef"), " ".join((child.get("name") or "").split()))
            if tag in ("process", "subProcess", "transaction", "adHocSubProcess"):
                walk(child, parents + ((ident,) if tag != "process" and ident else ()))

    walk(root, ())
    return found


def _bounds(el: etree._Element | None) -> Box | None:
    if el is None:
        return None
    return [float(el.get(k, "0")) for k in ("x", "y", "width", "height")]


def check(xml: str | bytes) -> list[Problem]:
    """Every crossing and label overlap in the file's diagrams (empty: it reads well). Raises
    ``lxml.etree.XMLSyntaxError`` on a file that is not XML."""
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    elements = _elements(root)
    problems: list[Problem] = []
    for plane in root.iter(q(BPMNDI, "BPMNPlane")):
        plane_id = plane.get("bpmnElement") or ""
        shapes: dict[str, Box] = {}
        shape_labels: dict[str, Box | None] = {}
        edges: dict[str, tuple[list[Point], Box | None]] = {}
        for el in plane.iter(q(BPMNDI, "BPMNShape")):
            ref = (el.get("bpmnElement") or "").split(":")[-1]
            box = _bounds(el.find(q(DC, "Bounds")))
            info = elements.get(ref)
            if box is None or info is None or not info.tag.endswith(SHAPE_TAGS) or ref in shapes:
                continue
            if el.get("isExpanded") == "false" and ref == plane_id:
                continue
            shapes[ref] = box
            label = el.find(q(BPMNDI, "BPMNLabel"))
            shape_labels[ref] = _bounds(label.find(q(DC, "Bounds"))) if label is not None else None
        for el in plane.iter(q(BPMNDI, "BPMNEdge")):
            ref = (el.get("bpmnElement") or "").split(":")[-1]
            info = elements.get(ref)
            if info is None or info.tag not in ("sequenceFlow", "association"):
                continue
            points = [[float(p.get("x", "0")), float(p.get("y", "0"))] for p in el.findall(q(DI, "waypoint"))]
            label = el.find(q(BPMNDI, "BPMNLabel"))
            edges[ref] = (points, _bounds(label.find(q(DC, "Bounds"))) if label is not None else None)
        problems += _crossings(plane_id, elements, shapes, edges)
        problems += _label_overlaps(plane_id, elements, shapes, shape_labels, edges)
    return problems


def _crossings(plane: str, elements: dict[str, _Element], shapes: dict[str, Box],
               edges: dict[str, tuple[list[Point], Box | None]]) -> list[Problem]:
    found = []
    for ident, (points, _) in edges.items():
        containers = set(elements[ident].parents)
        for other, box in shapes.items():
            if other in containers:
                continue
            if any(segment_hits(a, b, box) for a, b in pairwise(points)):
                found.append(Problem("crossing", ident, other, plane))
    return found


def labels_of(elements: dict[str, _Element], shapes: dict[str, Box], shape_labels: dict[str, Box | None],
              edges: dict[str, tuple[list[Point], Box | None]]) -> dict[str, Box]:
    """The estimated label box of every labelled event, gateway and sequence flow drawn."""
    found: dict[str, Box] = {}
    for ident, box in shapes.items():
        info = elements[ident]
        if not info.name or not info.tag.endswith(EXTERNAL_LABEL):
            continue
        given = shape_labels.get(ident)
        if given is not None:
            found[ident] = label_box(info.name, given[0] + given[2] / 2, given[1])
        else:
            found[ident] = label_box(info.name, box[0] + box[2] / 2, box[1] + box[3])
    for ident, (points, given) in edges.items():
        info = elements[ident]
        if not info.name or info.tag != "sequenceFlow" or len(points) < 2:
            continue
        if given is not None:
            found[ident] = label_box(info.name, given[0] + given[2] / 2, given[1])
        else:
            x, y = flow_label_point(points)
            found[ident] = label_box(info.name, x, y - 10)  # bpmn-js: a 90x20 default box around the point
    return found


def _label_overlaps(plane: str, elements: dict[str, _Element], shapes: dict[str, Box],
                    shape_labels: dict[str, Box | None],
                    edges: dict[str, tuple[list[Point], Box | None]]) -> list[Problem]:
    found = []
    boxes = labels_of(elements, shapes, shape_labels, edges)
    owners = sorted(boxes)
    for ident in owners:
        containers = set(elements[ident].parents) | {ident}
        for other, box in shapes.items():
            if other not in containers and boxes_overlap(boxes[ident], box):
                found.append(Problem("label", ident, other, plane))
    for i, one in enumerate(owners):
        for two in owners[i + 1:]:
            if boxes_overlap(boxes[one], boxes[two]):
                found.append(Problem("labels", one, two, plane))
    return found
