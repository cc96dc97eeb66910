"""Right-angled edges around shapes, and labels that keep clear of shapes and of each other.

:func:`route` draws a sequence flow or association as an orthogonal polyline that leaves its source by one
side and enters its target by another, running through the inside of no shape (the source and target
included; touching a border is fine). Candidate polylines with 0, 1, 2, 3 and then 4 bends are built from
the ends' ports and from free channels beside the shapes near them; the first bend count that has a clear
candidate wins, the shortest of them (a side other than the usual right-to-left costs a little). When none
is clear, the candidate through the fewest shapes is used.

:func:`place_label` puts an event's, gateway's or flow's label where bpmn-js would (under the element, over
the flow's middle segment) unless that overlaps a shape or a label already placed, else at the next of a
few positions around it; running over an edge is avoided where possible.

Boxes are ``[x, y, width, height]``, points ``[x, y]``, in diagram pixels, y growing downwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

from engine.bpmn.layout_check import (
    LINE_HEIGHT,
    TOUCH,
    boxes_overlap,
    flow_label_point,
    label_box,
    segment_hits,
    text_size,
)

Box = Sequence[float]
Point = list[float]

SIDES = {"right": (1, 0), "left": (-1, 0), "top": (0, -1), "bottom": (0, 1)}
GAP = 15  # how far a channel runs beside a shape
NEAR = 200  # shapes this far around the ends offer channels
SIDE_COST = 30  # the cost of leaving or entering by a side other than the first one offered
BEND_COST = 10
LABEL_MARGIN = 2  # px kept between a label and what it must not overlap
CLEARANCE = 5  # an edge keeps this far from the shapes it passes (where it can)


def port(box: Box, side: str) -> Point:
    """The middle of one side of a box."""
    x, y, w, h = box
    return {"right": [x + w, y + h / 2], "left": [x, y + h / 2], "top": [x + w / 2, y],
            "bottom": [x + w / 2, y + h]}[side]


def _hits(a: Point, b: Point, box: Box) -> bool:
    """Fast test for an axis-parallel segment, the same as :func:`layout_check.segment_hits`."""
    x0, y0, w, h = box
    x1, y1 = x0 + w - TOUCH, y0 + h - TOUCH
    x0, y0 = x0 + TOUCH, y0 + TOUCH
    if a[1] == b[1]:
        lo, hi = min(a[0], b[0]), max(a[0], b[0])
        return y0 <= a[1] <= y1 and lo < x1 and hi > x0
    if a[0] == b[0]:
        lo, hi = min(a[1], b[1]), max(a[1], b[1])
        return x0 <= a[0] <= x1 and lo < y1 and hi > y0
    return segment_hits(a, b, box)


def _clean(points: list[Point]) -> list[Point]:
    out: list[Point] = []
    for p in points:
        p = [round(p[0]), round(p[1])]
        if out and out[-1] == p:
            continue
        if len(out) >= 2 and (out[-2][0] == out[-1][0] == p[0] or out[-2][1] == out[-1][1] == p[1]):
            out[-1] = p  # collinear: one segment
            continue
        out.append(p)
    return out


def _direction(a: Point, b: Point) -> tuple[int, int]:
    return ((b[0] > a[0]) - (b[0] < a[0]), (b[1] > a[1]) - (b[1] < a[1]))


def _shape_ok(points: list[Point], leave: tuple[int, int], enter: tuple[int, int]) -> bool:
    """Orthogonal, leaves and enters the right way, never doubles back on itself."""
    if len(points) < 2:
        return False
    dirs = [_direction(a, b) for a, b in pairwise(points)]
    if any(dx and dy for dx, dy in dirs):
        return False
    if dirs[0] != leave or dirs[-1] != (-enter[0], -enter[1]):
        return False
    return all(d1 != (-d2[0], -d2[1]) for d1, d2 in pairwise(dirs))


def _entries(target: Box, side: str, start: Point, exact: bool) -> list[Point]:
    """Where an edge may enter by ``side``: the middle; on a rectangle also straight across from ``start``."""
    mid = port(target, side)
    found = [mid]
    x, y, w, h = target
    if not exact:
        if side in ("top", "bottom") and x + 10 <= start[0] <= x + w - 10:
            found.append([start[0], mid[1]])
        if side in ("left", "right") and y + 10 <= start[1] <= y + h - 10:
            found.append([mid[0], start[1]])
    return found


def _candidates(p: Point, q: Point, xs: list[float], ys: list[float], bends: int) -> Iterator[list[Point]]:
    if bends == 0:
        yield [p, q]
    elif bends == 1:
        yield [p, [q[0], p[1]], q]
        yield [p, [p[0], q[1]], q]
    elif bends == 2:
        for m in xs:
            yield [p, [m, p[1]], [m, q[1]], q]
        for c in ys:
            yield [p, [p[0], c], [q[0], c], q]
    elif bends == 3:
        for m in xs:
            for c in ys:
                yield [p, [m, p[1]], [m, c], [q[0], c], q]
                yield [p, [p[0], c], [m, c], [m, q[1]], q]
    else:
        for c in ys:
            for m1 in xs:
                for m2 in xs:
                    yield [p, [m1, p[1]], [m1, c], [m2, c], [m2, q[1]], q]


def _channels(source: Box, target: Box, obstacles: list[Box]) -> tuple[list[float], list[float]]:
    lo_x = min(source[0], target[0]) - NEAR
    hi_x = max(source[0] + source[2], target[0] + target[2]) + NEAR
    lo_y = min(source[1], target[1]) - NEAR
    hi_y = max(source[1] + source[3], target[1] + target[3]) + NEAR
    near = [b for b in obstacles if b[0] < hi_x and b[0] + b[2] > lo_x and b[1] < hi_y and b[1] + b[3] > lo_y]
    xs = {(source[0] + source[2] + target[0]) / 2, source[0] + source[2] + GAP, target[0] - GAP,
          source[0] + source[2] / 2, target[0] + target[2] / 2}
    ys = {(source[1] + source[3] / 2 + target[1] + target[3] / 2) / 2, source[1] + source[3] + GAP,
          target[1] - GAP, target[1] + target[3] + GAP, source[1] - GAP}
    for b in near:
        xs.update((b[0] - GAP, b[0] + b[2] + GAP))
        ys.update((b[1] - GAP, b[1] + b[3] + GAP))
    if near:
        ys.add(max(b[1] + b[3] for b in near) + 2 * GAP)
        ys.add(min(b[1] for b in near) - 2 * GAP)
    return sorted(xs), sorted(ys)


def _length(points: list[Point]) -> float:
    return sum(abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in pairwise(points))


def crossings(points: list[Point], obstacles: Iterable[Box]) -> int:
    """How many of the boxes the polyline runs through."""
    return sum(1 for box in obstacles if any(_hits(a, b, box) for a, b in pairwise(points)))


def route(source: Box, target: Box, obstacles: list[Box], exits: Sequence[str] = ("right", "bottom", "top"),
          entries: Sequence[str] = ("left", "top", "bottom"), exact_target: bool = True) -> list[Point]:
    """An orthogonal polyline from a side in ``exits`` of ``source`` to a side in ``entries`` of ``target``
    that runs through none of ``obstacles`` (the source and target boxes belong in it too). ``exact_target``
    (a gateway, an event): enter at a side's middle; else (a task) straight across is fine too. It keeps
    ``CLEARANCE`` from the shapes it passes where some route can."""
    roomy = [b if b is source or b is target else [b[0] - CLEARANCE, b[1] - CLEARANCE, b[2] + 2 * CLEARANCE,
                                                    b[3] + 2 * CLEARANCE] for b in obstacles]
    return _route(source, target, roomy, exits, entries, exact_target, obstacles)


def _route(source: Box, target: Box, obstacles: list[Box], exits: Sequence[str], entries: Sequence[str],
           exact_target: bool, tight: list[Box]) -> list[Point]:
    xs, ys = _channels(source, target, tight)
    ends = []
    for i, out in enumerate(exits):
        p = port(source, out)
        for j, into in enumerate(entries):
            for q in _entries(target, into, p, exact_target):
                ends.append((p, q, SIDES[out], SIDES[into], (i + j) * SIDE_COST))
    fallback: tuple[float, list[Point]] | None = None
    for bends in range(5):
        best: tuple[float, list[Point]] | None = None
        for p, q, leave, enter, cost in ends:
            for raw in _candidates(p, q, xs, ys, bends):
                points = _clean(raw)
                if not _shape_ok(points, leave, enter):
                    continue
                score = _length(points) + cost + BEND_COST * (len(points) - 2)
                if best is not None and score >= best[0]:
                    continue
                hit = crossings(points, obstacles)
                if hit == 0:
                    best = (score, points)
                elif fallback is None or hit * 10_000 + score < fallback[0]:
                    fallback = (hit * 10_000 + score, points)
        if best is not None:
            return best[1]
    if tight is not obstacles:  # nothing keeps its distance: touching is fine
        return _route(source, target, tight, exits, entries, exact_target, tight)
    assert fallback is not None or not ends
    return fallback[1] if fallback else [port(source, "right"), port(target, "left")]


def _label_spots(text: str, box: Box, kind: str) -> list[tuple[float, float]]:
    """(centre x, top) of the positions to try for a shape's label, bpmn-js's own first."""
    x, y, w, h = box
    lw, lh = text_size(text)
    cx = x + w / 2
    if kind == "boundary":  # hangs under the activity's edge: below it, shifted, then further down
        spots = []
        for down in (0.0, LINE_HEIGHT, 2 * LINE_HEIGHT, 3 * LINE_HEIGHT, 4 * LINE_HEIGHT):
            spots += [(cx, y + h + down), (x + w + 2 + lw / 2, y + h + down - 4), (x - 2 - lw / 2, y + h + down - 4)]
        return spots
    return [(cx, y + h), (cx, y - lh - 2), (x + w + 4 + lw / 2, y + h - 6), (x - 4 - lw / 2, y + h - 6),
            (x + w + 4 + lw / 2, y - lh + 6), (x - 4 - lw / 2, y - lh + 6), (cx, y + h + LINE_HEIGHT)]


def _flow_spots(text: str, points: list[Point]) -> list[tuple[float, float]]:
    _, lh = text_size(text)
    first = flow_label_point(points)
    spots = [(first[0], first[1] - 10)]  # bpmn-js: a 20 px high default box around that point
    lw, _ = text_size(text)
    for share in (0.5, 0.25, 0.75):  # the middle of each segment first, then its quarters
        for a, b in pairwise(points):
            mx, my = a[0] + (b[0] - a[0]) * share, a[1] + (b[1] - a[1]) * share
            if a[1] == b[1]:
                spots += [(mx, my - lh - 3), (mx, my + 3)]
            else:
                spots += [(mx + 4 + lw / 2, my - lh / 2), (mx - 4 - lw / 2, my - lh / 2)]
    return spots


def place_label(text: str, kind: str, box: Box | None, points: list[Point] | None, shapes: list[Box],
                labels: list[Box], edges: list[list[Point]]) -> list[float]:
    """The label box for an element (``kind`` "shape" or "boundary", with its ``box``) or a flow (``kind``
    "flow", with its ``points``): the first spot clear of ``shapes``, ``labels`` and ``edges``; else the first
    clear of shapes and labels; else bpmn-js's own spot."""
    spots = _flow_spots(text, points or []) if kind == "flow" else _label_spots(text, box or [0, 0, 0, 0], kind)
    boxes = [[round(v) for v in label_box(text, cx, top)] for cx, top in spots]

    def clear(candidate: list[float]) -> bool:  # with a margin: the checker re-measures the text from the bounds
        wider = [candidate[0] - LABEL_MARGIN, candidate[1] - LABEL_MARGIN, candidate[2] + 2 * LABEL_MARGIN,
                 candidate[3] + 2 * LABEL_MARGIN]
        return not any(boxes_overlap(wider, s) for s in shapes) and not any(
            boxes_overlap(wider, other) for other in labels)

    for candidate in boxes:
        if clear(candidate) and not any(segment_hits(a, b, candidate) for line in edges
                                        for a, b in pairwise(line)):
            return candidate
    return next((candidate for candidate in boxes if clear(candidate)), boxes[0])
