"""A left-to-right diagram layout for definitions that have no positions yet.

Each scope (the process, then every expanded sub-process inside out) is ranked by graphviz ``dot``
(rankdir=LR), which keeps crossings low; a sub-process enters its parent's layout as one box of its
computed size, so no clusters are needed. If the ``dot`` binary is missing the same scopes are
layered with networkx (topological generations after dropping back edges), so export never fails.
Boundary events sit on the bottom edge of their activity, with free room below it for their labels; a
compensation handler sits right below its activity, in its column (as Camunda Modeler draws it); a flow
with a label gets a gap twice as wide. The writer draws the edges around the shapes (routing.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import graphviz
import networkx as nx

from engine.bpmn.mapping import TASK_SIZE, size_of, tag_of
from engine.model.definition import ProcessDefinition
from engine.model.nodes import BoundaryEvent, Node, SequenceFlow, SubProcess

Box = list[float]  # x, y, width, height

MARGIN = 40
PAD_X, PAD_TOP, PAD_BOTTOM = 30, 40, 30
RANK_SEP, NODE_SEP = 50, 40
LANE_HEADER, LANE_PAD, MIN_LANE = 30, 30, 150
# Free space above and below an activity with boundary events: the events reach 18 px below it, their
# labels (two lines) below that.
ROOM = 50


@dataclass
class Layout:
    """Absolute bounds of every node drawn; which engine produced them (for tests and reports)."""

    boxes: dict[str, Box] = field(default_factory=dict)
    engine: str = "dot"


def use_dot() -> bool:
    """Whether the graphviz ``dot`` binary can be run."""
    try:
        graphviz.Digraph().pipe(format="json")
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, OSError):
        return False
    return True


def compute(definition: ProcessDefinition, engine: str | None = None) -> Layout:
    """Positions for every node of the definition (sub-process contents included)."""
    chosen = engine or ("dot" if use_dot() else "layers")
    layout = Layout(engine=chosen)
    sizes: dict[str, tuple[float, float]] = {}
    relative: dict[str, dict[str, tuple[float, float]]] = {}

    def scope(nodes: list[Node], flows: list[SequenceFlow], key: str) -> tuple[float, float]:
        for node in nodes:
            if isinstance(node, SubProcess) and node.metadata.get("expanded", True) is not False:
                w, h = scope(list(node.nodes), list(node.flows), node.id)
                sizes[node.id] = (max(w + 2 * PAD_X, 200), max(h + PAD_TOP + PAD_BOTTOM, 140))
            elif not isinstance(node, BoundaryEvent):
                w, h = size_of(tag_of(node))
                slots = len(definition.boundaries(node.id)) + (1 if getattr(node, "compensation", None) else 0)
                sizes[node.id] = (max(w, 44 * slots + 12) if slots > 2 else w, h)  # room for its boundary events
            if isinstance(node, SubProcess) and node.metadata.get("expanded", True) is False:
                scope(list(node.nodes), list(node.flows), node.id)  # its own diagram page
        placed = _rank(nodes, flows, sizes, chosen)
        relative[key] = placed
        if not placed:
            return 0.0, 0.0
        width = max(x + sizes[i][0] for i, (x, _) in placed.items())
        roomy = {n.attached_to for n in nodes if isinstance(n, BoundaryEvent)}  # their labels hang below
        height = max(y + sizes[i][1] + (ROOM if i in roomy else 0) for i, (_, y) in placed.items())
        return width, height

    scope(list(definition.nodes), list(definition.flows), "")
    bands = _lanes(definition, relative.get("", {}), sizes)

    def absolute(key: str, ox: float, oy: float) -> None:
        for ident, (x, y) in relative.get(key, {}).items():
            w, h = sizes[ident]
            dy = bands.get(ident, 0.0) if key == "" else 0.0
            layout.boxes[ident] = [round(ox + x), round(oy + y + dy), round(w), round(h)]
            node = definition.index.nodes.get(ident) if "::" not in ident else None
            if isinstance(node, SubProcess):
                if node.metadata.get("expanded", True) is not False:
                    absolute(ident, ox + x + PAD_X, oy + y + dy + PAD_TOP)
                else:
                    absolute(ident, MARGIN, MARGIN)

    offset = LANE_HEADER + MARGIN if bands else MARGIN
    absolute("", offset, MARGIN)
    for node in definition.all_nodes():
        if isinstance(node, BoundaryEvent) and node.attached_to in layout.boxes:
            layout.boxes[node.id] = boundary_box(definition, node, layout.boxes[node.attached_to])
    return layout


def boundary_box(definition: ProcessDefinition, node: BoundaryEvent, activity: Box) -> Box:
    """On the bottom edge of the activity, from the right, one beside the other (the lower-left corner is the
    compensation boundary event's, when the activity has a compensation handler)."""
    siblings = [b for b in definition.boundaries(node.attached_to)]
    k = next((i for i, b in enumerate(siblings) if b.id == node.id), 0)
    x, y, w, h = activity
    owner = definition.index.nodes.get(node.attached_to)
    cx = x + w - 22 - k * 44
    if owner is not None and getattr(owner, "compensation", None) and cx < x + 62:
        cx = x + 62 + (k * 44) % max(w - 84, 1)  # (only on an activity drawn too narrow for all of them)
    elif cx < x + 18:
        cx = x + 18 + (k * 44) % max(w - 36, 1)
    return [round(cx - 18), round(y + h - 18), 36, 36]


def _graph_edges(nodes: list[Node], flows: list[SequenceFlow]) -> list[tuple[str, str]]:
    """Flows between the laid-out nodes; a flow leaving a boundary event leaves its activity."""
    attached = {n.id: n.attached_to for n in nodes if isinstance(n, BoundaryEvent)}
    edges = []
    for flow in flows:
        source = attached.get(flow.source, flow.source)
        target = attached.get(flow.target, flow.target)
        if source != target:
            edges.append((source, target))
    return edges


def compensation_key(activity_id: str) -> str:
    """The layout key of an activity's compensation handler box (':' never occurs in a node id)."""
    return f"{activity_id}::compensation"


def _rank(nodes: list[Node], flows: list[SequenceFlow], sizes: dict[str, tuple[float, float]],
          engine: str) -> dict[str, tuple[float, float]]:
    """Top-left corners of the scope's nodes (boundary events excluded), origin at (0, 0).
    A compensation handler is drawn too, in its activity's column right below it (as Camunda Modeler
    draws it). An activity with boundary events or a compensation handler is ranked with ``ROOM`` more
    space above and below it, so the events' labels and the association to the handler have a free band."""
    ids = [n.id for n in nodes if not isinstance(n, BoundaryEvent)]
    if not ids:
        return {}
    edges = [(s, t) for s, t in _graph_edges(nodes, flows) if s in sizes and t in sizes and s in ids and t in ids]
    below: list[tuple[str, str]] = []  # activity -> its compensation handler: same column, right below
    handlers = {n.id for n in nodes if getattr(n, "for_compensation", False)}
    pad: dict[str, float] = {}
    attached = {n.attached_to for n in nodes if isinstance(n, BoundaryEvent)}
    for node in nodes:
        handler = getattr(node, "compensation", None)
        if node.id in attached or (handler and node.id in ids):
            pad[node.id] = ROOM
        if handler and node.id in ids:
            if handler in handlers and handler in ids:  # a handler activity of the scope
                key = handler
                edges = [e for e in edges if key not in e]  # (it has no flows; kept out of the ranking)
            else:  # a handler reference: the export draws a task for it
                key = compensation_key(node.id)
                sizes[key] = TASK_SIZE
                ids.append(key)
            below.append((node.id, key))
    ranked = {i: (sizes[i][0], sizes[i][1] + 2 * pad.get(i, 0.0)) for i in ids}
    attached_of = {n.id: n.attached_to for n in nodes if isinstance(n, BoundaryEvent)}
    wide = {(attached_of.get(f.source, f.source), attached_of.get(f.target, f.target)) for f in flows
            if f.name or f.condition}  # a labelled flow: a wider gap, room for its label
    placed = _dot(ids, edges, ranked, below, wide) if engine == "dot" else None
    if placed is None:
        placed = _layers(ids, edges, ranked, below, wide)
    placed = {i: (x, y + pad.get(i, 0.0)) for i, (x, y) in placed.items()}
    min_x = min(x for x, _ in placed.values())
    min_y = min(y - pad.get(i, 0.0) for i, (_, y) in placed.items())
    return {i: (x - min_x, y - min_y) for i, (x, y) in placed.items()}


def _dot(ids: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]],
         below: list[tuple[str, str]] | None = None, wide: set[tuple[str, str]] | None = None
         ) -> dict[str, tuple[float, float]] | None:
    graph = graphviz.Digraph(graph_attr={"rankdir": "LR", "ranksep": str(RANK_SEP / 72),
                                         "nodesep": str(NODE_SEP / 72), "splines": "false"},
                             node_attr={"shape": "box", "fixedsize": "true", "label": ""})
    name = {ident: f"n{i}" for i, ident in enumerate(ids)}  # ids may contain ':' (a port in DOT)
    for ident in ids:
        w, h = sizes[ident]
        graph.node(name[ident], width=str(w / 72), height=str(h / 72))
    for source, target in edges:  # keep the flow straight; a labelled one spans two ranks
        graph.edge(name[source], name[target], weight="8", minlen="2" if (source, target) in (wide or ()) else "1")
    for activity, handler in below or ():  # a flat edge in one rank: the handler right below its activity
        with graph.subgraph() as same:
            same.attr(rank="same")
            same.node(name[activity])
            same.node(name[handler])
        graph.edge(name[activity], name[handler], weight="100")
    try:
        data = json.loads(graph.pipe(format="json"))
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, OSError, ValueError):
        return None
    top = float(data["bb"].split(",")[3])
    placed: dict[str, tuple[float, float]] = {}
    ident_of = {v: k for k, v in name.items()}
    for obj in data.get("objects", []):
        ident = ident_of.get(obj.get("name", ""))
        if ident is not None and "pos" in obj:
            cx, cy = (float(v) for v in obj["pos"].split(","))
            w, h = sizes[ident]
            placed[ident] = (cx - w / 2, (top - cy) - h / 2)  # dot's y grows upwards
    return placed if len(placed) == len(ids) else None


def _layers(ids: list[str], edges: list[tuple[str, str]], sizes: dict[str, tuple[float, float]],
            below: list[tuple[str, str]] | None = None, wide: set[tuple[str, str]] | None = None
            ) -> dict[str, tuple[float, float]]:
    """Layered fallback: ranks are topological generations once back edges (loops) are dropped; a
    compensation handler goes right below its activity in the activity's column."""
    under = dict(below or ())
    handlers = set(under.values())
    ranked = [i for i in ids if i not in handlers]
    graph = nx.DiGraph()
    graph.add_nodes_from(ranked)
    graph.add_edges_from((s, t) for s, t in edges if s in graph and t in graph)
    roots = [n for n in ranked if graph.in_degree(n) == 0]
    back = _back_edges(graph, roots + ranked)
    dag = nx.DiGraph()
    dag.add_nodes_from(ranked)
    dag.add_edges_from(e for e in graph.edges if e not in back)
    order = {n: i for i, n in enumerate(ids)}
    placed: dict[str, tuple[float, float]] = {}
    x = 0.0
    for generation in nx.topological_generations(dag):
        column: list[str] = []
        for node in sorted(generation, key=order.__getitem__):
            column.append(node)
            if node in under:
                column.append(under[node])
        width = max(sizes[n][0] for n in column)
        total = sum(sizes[n][1] for n in column) + NODE_SEP * (len(column) - 1)
        y = -total / 2
        for node in column:
            w, h = sizes[node]
            placed[node] = (x + (width - w) / 2, y)
            y += h + NODE_SEP
        labelled = any(s in column for s, _ in (wide or ()))
        x += width + RANK_SEP * (2 if labelled else 1)
    return placed


def _back_edges(graph: nx.DiGraph, roots: list[str]) -> set[tuple[str, str]]:
    """Edges that close a loop, found by depth-first search from the start nodes."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(graph.successors(root)))]
        while stack:
            node, successors = stack[-1]
            nxt = next(successors, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(graph.successors(nxt))))
    return back


def _lanes(definition: ProcessDefinition, placed: dict[str, tuple[float, float]],
           sizes: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Vertical shifts that stack the top-level nodes into one band per lane."""
    order = lane_order(definition)
    if not order:
        return {}
    band_of = bands(definition, order)
    for key in placed:
        if key.endswith("::compensation"):
            band_of[key] = band_of.get(key.removesuffix("::compensation"))
    band_of = {k: v for k, v in band_of.items() if k in placed}
    shifts: dict[str, float] = {}
    top = 0.0
    for lane in [*order, None]:
        members = [i for i, name in band_of.items() if name == lane]
        if not members:
            if lane is not None:
                top += MIN_LANE
            continue
        lo = min(placed[i][1] for i in members)
        hi = max(placed[i][1] + sizes[i][1] for i in members)
        for i in members:
            shifts[i] = top + LANE_PAD - lo
        top += max(hi - lo + 2 * LANE_PAD, MIN_LANE)
    return shifts


def bands(definition: ProcessDefinition, order: list[str]) -> dict[str, str | None]:
    """The lane each top-level node is drawn in: its own, else that of the nearest node before it
    (then after it) on a flow, so an unassigned node does not end up outside every lane."""
    band: dict[str, str | None] = {}
    for node in definition.nodes:
        lane = node.metadata.get("lane")
        if isinstance(lane, str):
            band[node.id] = lane
    attached = {n.id: n.attached_to for n in definition.nodes if isinstance(n, BoundaryEvent)}
    for _ in range(len(definition.nodes)):
        changed = False
        for flow in definition.flows:
            source = attached.get(flow.source, flow.source)
            if source in band and flow.target not in band:
                band[flow.target] = band[source]
                changed = True
        for flow in definition.flows:
            source = attached.get(flow.source, flow.source)
            if flow.target in band and source not in band:
                band[source] = band[flow.target]
                changed = True
        if not changed:
            break
    for node in definition.nodes:
        if isinstance(node, BoundaryEvent):
            band[node.id] = band.get(node.attached_to) or (order[0] if order else None)
        band.setdefault(node.id, order[0] if order else None)
    return band


def lane_order(definition: ProcessDefinition) -> list[str]:
    """Lane names: those recorded on the definition first, then any a node names."""
    names: list[str] = []
    recorded = definition.metadata.get("bpmn", {}).get("lanes", []) if isinstance(
        definition.metadata.get("bpmn"), dict) else []
    for lane in recorded:
        label = lane.get("name") or lane.get("id")
        if label and label not in names:
            names.append(label)
    for node in definition.nodes:
        lane = node.metadata.get("lane")
        if isinstance(lane, str) and lane not in names:
            names.append(lane)
    return names
