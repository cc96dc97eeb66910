"""ProcessDefinition -> BPMN 2.0 XML with a diagram, valid against the OMG schema.

Standard BPMN carries what it can (events and their definitions, gateways and default flows,
conditions, messages, errors, sub-processes, compensation as boundary event + association + handler,
lanes in a pool, a user task's performers and potential owners). Everything else the model holds goes into typed
elements of our namespace inside ``bpmn:extensionElements`` (see typed.py; a user task's form is also written as
``camunda:formData``), so a file read back gives an equal definition.
Positions come from the nodes' metadata when present, else from :mod:`engine.bpmn.layout`; edges we
draw go around shapes and labels we place keep clear of shapes and of each other (:mod:`engine.bpmn.routing`);
the elements we placed ourselves are listed in ``<waooaw:layout>`` with a digest (see diagram.py).
Element order follows the schema's sequences, which validators check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata as pkg_metadata
from typing import Any

from lxml import etree

from engine.bpmn import diagram, labels, layout, routing, typed
from engine.bpmn.diagram import fmt
from engine.bpmn.extensions import LAYOUT
from engine.bpmn.ids import to_ascii_ids
from engine.bpmn.layout_check import EXTERNAL_LABEL
from engine.bpmn.mapping import size_of, tag_of
from engine.bpmn.namespaces import BPMNDI, CAMUNDA, DC, DI, NSMAP, TARGET_NAMESPACE, XSI, b, q
from engine.model import expressions
from engine.model.definition import ProcessDefinition
from engine.model.nodes import Activity, AdHocSubProcess, BoundaryEvent, Node, SequenceFlow, SubProcess, UserTask

# Node fields standard BPMN carries; the rest of a node goes to our typed extension elements.
STANDARD_FIELDS = {"id", "kind", "name", "documentation", "message", "error_code", "attached_to", "interrupting",
                   "signal", "escalation_code", "triggered_by_event", "transaction",
                   "default", "nodes", "flows", "compensation", "activity", "link", "script", "script_format",
                   "called_element", "condition", "ordering", "cancel_remaining", "completion_condition"}
# Metadata keys drawn or written as BPMN (DI, lanes, element name, unusable condition text).
NODE_META = {"bounds", "label", "lane", "bpmn"}  # and "expanded": False on a sub-process (isExpanded)
FLOW_META = {"waypoints", "label", "condition_text", "documentation"}
FEEL_LANGUAGE = "https://www.omg.org/spec/DMN/20191111/FEEL/"  # DMN 1.3, as Camunda and Trisotech write it
TIMER_STANDARD = {"duration": "timeDuration", "date": "timeDate", "cycle": "timeCycle"}


def _version() -> str:
    try:
        return pkg_metadata.version("waooaw")
    except pkg_metadata.PackageNotFoundError:
        return "0"


def _safe(text: str) -> str:
    """A name made into an id for an element we add (a message, a definition): ASCII letters, digits, '_', '.', '-'
    only, so it is an id under every edition's NCName rule (XSD validators use XML 1.0's older letter tables,
    which refuse some letters the model's ids may use: see engine/model/ids.py)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
    return cleaned if re.match(r"^[A-Za-z_]", cleaned) else f"_{cleaned}"


@dataclass
class _Ids:
    used: set[str] = field(default_factory=set)

    def new(self, base: str) -> str:
        ident, n = _safe(base), 2
        while ident in self.used:
            ident, n = f"{_safe(base)}_{n}", n + 1
        self.used.add(ident)
        return ident


@dataclass
class _Drawing:
    """What goes into the diagram: shapes and edges per plane, and what we computed."""

    shapes: dict[str, list[tuple[str, list[float], dict[str, str], list[float] | None]]] = field(default_factory=dict)
    edges: dict[str, list[tuple[str, list[list[float]], list[float] | None]]] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    positions: dict[str, Any] = field(default_factory=dict)  # of computed elements, for the digest

    def drawn(self) -> set[str]:
        return {s[0] for shapes in self.shapes.values() for s in shapes} | {
            e[0] for edges in self.edges.values() for e in edges}

    def shape(self, plane: str, element: str, bounds: list[float], attrs: dict[str, str] | None = None,
              label: list[float] | None = None, computed: bool = False) -> None:
        self.shapes.setdefault(plane, []).append((element, bounds, attrs or {}, label))
        if computed:
            self.computed.append(element)
            self.positions[element] = bounds

    def edge(self, plane: str, element: str, points: list[list[float]], label: list[float] | None = None,
             computed: bool = False) -> None:
        self.edges.setdefault(plane, []).append((element, points, label))
        if computed:
            self.computed.append(element)
            self.positions[element] = points


class Writer:
    def __init__(self, definition: ProcessDefinition, generated_labels: bool = True) -> None:
        self.d = definition
        self.generated_labels = generated_labels  # write labels for unnamed elements (labels.py)
        self.ids = _Ids({n.id for n in definition.all_nodes()} | {f.id for f in definition.all_flows()}
                        | {definition.id})
        self.messages: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.signals: dict[str, str] = {}
        self.escalations: dict[str, str] = {}
        self.boxes: dict[str, list[float]] = {}
        self.computed_nodes: set[str] = set()
        self.comp_boxes: dict[str, list[float]] = {}  # activity id -> its compensation handler's box
        self.drawing = _Drawing()
        self.plane_of: dict[str, str] = {}  # node id -> plane it is drawn on
        self.compensation: list[tuple[Activity, str, str, str]] = []  # activity, boundary, handler, association
        # compensation handler activities of the definition (BPMN isForCompensation): written as themselves
        self.handler_nodes = {n.id for n in definition.all_nodes() if getattr(n, "for_compensation", False)}
        self.labels: dict[str, str] = {}  # element id -> the label we wrote for it (see labels.py)
        self.comp_events: dict[str, list[float]] = {}  # activity id -> its compensation boundary event's box
        self.obstacles: set[str] = set()  # drawn elements edges must go around (not pools and lanes)
        self.routes: list[tuple[str, str, str, list[float], list[float], bool, bool]] = []  # edges still to route
        self.route_from: dict[str, list[float]] = {}  # edge -> its source's box
        self.texts: dict[str, tuple[str, str]] = {}  # element -> (label text, "shape"|"boundary"|"flow") to place

    # --- document -------------------------------------------------------------------------------

    def write(self) -> str:
        d = self.d
        root = etree.Element(b("definitions"), nsmap=NSMAP)
        root.set("id", self.ids.new(f"{d.id}_definitions"))
        root.set("targetNamespace", TARGET_NAMESPACE)
        root.set("exporter", "waooaw")
        root.set("exporterVersion", _version())
        self._collect_messages(d.all_nodes())
        for name, ident in self.messages.items():
            etree.SubElement(root, b("message"), id=ident, name=name)
        for code, ident in self.errors.items():
            etree.SubElement(root, b("error"), id=ident, name=code, errorCode=code)
        for name, ident in self.signals.items():
            etree.SubElement(root, b("signal"), id=ident, name=name)
        for code, ident in self.escalations.items():
            etree.SubElement(root, b("escalation"), id=ident, name=code, escalationCode=code)
        lanes = self._lanes()
        pool = self._pool(lanes)
        collaboration = None
        if pool is not None:
            collaboration = etree.SubElement(root, b("collaboration"), id=self.ids.new(f"{d.id}_collaboration"))
            participant = etree.SubElement(collaboration, b("participant"), id=pool["id"], processRef=d.id)
            participant.set("name", pool["name"])
        process = etree.SubElement(root, b("process"), id=d.id)
        if d.name:
            process.set("name", d.name)
        process.set("isExecutable", "true")
        if d.description:
            etree.SubElement(process, b("documentation")).text = d.description
        ext = etree.SubElement(process, b("extensionElements"))
        typed.write_fields(ext, self._process_fields())
        typed.marker(ext)  # the process's fields are ours even when none is set
        layout_el = etree.SubElement(ext, LAYOUT)
        if lanes:
            lane_set = etree.SubElement(process, b("laneSet"), id=self.ids.new(f"{d.id}_lanes"))
            for lane in lanes:
                lane_el = etree.SubElement(lane_set, b("lane"), id=lane["id"])
                if lane.get("name"):
                    lane_el.set("name", lane["name"])
                for node_id in lane["nodes"]:
                    etree.SubElement(lane_el, b("flowNodeRef")).text = node_id
        self._place()
        main_plane = collaboration.get("id") if collaboration is not None else d.id
        self._scope(process, list(d.nodes), list(d.flows), main_plane)
        if pool is not None:
            self._draw_pool(main_plane, pool, lanes)
        self._route()
        self._place_labels()
        if self.drawing.computed or self.drawing.generated:
            layout_el.set("computed", " ".join(self.drawing.computed))
            if self.drawing.generated:
                layout_el.set("generated", " ".join(self.drawing.generated))
            layout_el.set("digest", diagram.digest(self.drawing.positions, self.drawing.drawn()))
        else:
            ext.remove(layout_el)
        labels.record(ext, self.labels)
        self._diagram(root, main_plane)
        to_ascii_ids(root)  # bpmn.io refuses non-ASCII ids: written in ASCII, the model's kept in <waooaw:ids>
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode("utf-8")

    def _process_fields(self) -> dict[str, Any]:
        data = self.d.to_dict()
        for key in ("id", "name", "description", "nodes", "flows"):
            if not (key == "description" and _loses_space(self.d.description)):
                data.pop(key, None)
        meta = dict(data.get("metadata", {}))
        bpmn = meta.get("bpmn")
        if isinstance(bpmn, dict):
            rest = {k: v for k, v in bpmn.items() if k not in ("pool", "lanes")}
            if rest:
                meta["bpmn"] = rest
            else:
                meta.pop("bpmn")
        if meta:
            data["metadata"] = meta
        else:
            data.pop("metadata", None)
        return data

    def _collect_messages(self, nodes: list[Node]) -> None:
        for node in nodes:
            message = getattr(node, "message", None)
            if message and message not in self.messages:
                self.messages[message] = self.ids.new(f"Message_{message}")
            code = getattr(node, "error_code", None)
            if code and code not in self.errors:
                self.errors[code] = self.ids.new(f"Error_{code}")
            signal = getattr(node, "signal", None)
            if signal and signal not in self.signals:
                self.signals[signal] = self.ids.new(f"Signal_{signal}")
            escalation = getattr(node, "escalation_code", None)
            if escalation and escalation not in self.escalations:
                self.escalations[escalation] = self.ids.new(f"Escalation_{escalation}")

    # --- pool and lanes -------------------------------------------------------------------------

    def _lanes(self) -> list[dict[str, Any]]:
        recorded = self._bpmn_meta().get("lanes", [])
        names = layout.lane_order(self.d)
        if not names:
            return []
        lanes: list[dict[str, Any]] = []
        for name in names:
            entry = next((dict(lane) for lane in recorded if (lane.get("name") or lane.get("id")) == name), None)
            if entry is None:
                entry = {"id": self.ids.new(f"Lane_{name}"), "name": name, "generated": True}
            else:
                self.ids.used.add(entry["id"])
            entry["nodes"] = [n.id for n in self.d.all_nodes() if n.metadata.get("lane") == name]
            lanes.append(entry)
        return lanes

    def _bpmn_meta(self) -> dict[str, Any]:
        meta = self.d.metadata.get("bpmn")
        return meta if isinstance(meta, dict) else {}

    def _pool(self, lanes: list[dict[str, Any]]) -> dict[str, Any] | None:
        recorded = self._bpmn_meta().get("pool")
        if recorded is None and not lanes:
            return None
        pool = dict(recorded or {})
        pool["generated"] = recorded is None
        pool["id"] = self.ids.new(f"{self.d.id}_participant")
        pool.setdefault("name", self.d.name or self.d.id)
        return pool

    def _draw_pool(self, plane: str, pool: dict[str, Any], lanes: list[dict[str, Any]]) -> None:
        top_boxes = [self.boxes[n.id] for n in self.d.nodes if n.id in self.boxes]
        if pool["generated"]:
            self.drawing.generated.append(pool["id"])
        for lane in lanes:
            if lane.get("generated"):
                self.drawing.generated.append(lane["id"])
        pool_box = pool.get("bounds")
        if pool_box is None:
            known = [lane["bounds"] for lane in lanes if lane.get("bounds")] + top_boxes + list(
                self.comp_boxes.values())
            x0 = min((bx[0] for bx in known), default=layout.MARGIN) - layout.LANE_HEADER - 20
            y0 = min((bx[1] for bx in known), default=layout.MARGIN) - layout.LANE_PAD
            x1 = max((bx[0] + bx[2] for bx in known), default=400) + 40
            y1 = max((bx[1] + bx[3] for bx in known), default=200) + layout.LANE_PAD
            pool_box = [x0, y0, x1 - x0, y1 - y0]
            self.drawing.shape(plane, pool["id"], pool_box, {"isHorizontal": "true"}, computed=True)
        else:
            self.drawing.shape(plane, pool["id"], pool_box, {"isHorizontal": "true"})
        lane_x = pool_box[0] + layout.LANE_HEADER
        lane_w = pool_box[2] - layout.LANE_HEADER
        band = layout.bands(self.d, [lane.get("name") or lane["id"] for lane in lanes])
        y = pool_box[1]
        for i, lane in enumerate(lanes):
            if lane.get("bounds"):
                self.drawing.shape(plane, lane["id"], lane["bounds"], {"isHorizontal": "true"})
                y = lane["bounds"][1] + lane["bounds"][3]
                continue
            name = lane.get("name") or lane["id"]
            members = [self.boxes[n.id] for n in self.d.nodes if band.get(n.id) == name and n.id in self.boxes]
            members += [self.comp_boxes[n.id] for n in self.d.nodes if band.get(n.id) == name
                        and n.id in self.comp_boxes]
            bottom = max((bx[1] + bx[3] for bx in members), default=y + layout.MIN_LANE - layout.LANE_PAD)
            bottom = max(bottom + layout.LANE_PAD, y + layout.MIN_LANE)
            if i == len(lanes) - 1:
                bottom = max(bottom, pool_box[1] + pool_box[3])
            box = [lane_x, y, lane_w, bottom - y]
            y = bottom
            self.drawing.shape(plane, lane["id"], box, {"isHorizontal": "true"}, computed=True)
        if pool.get("bounds") is None and y > pool_box[1] + pool_box[3]:  # lanes grew: the pool follows
            pool_box[3] = y - pool_box[1]

    # --- positions ------------------------------------------------------------------------------

    def _place(self) -> None:
        """Bounds for every node: kept from metadata, computed for the rest."""
        nodes = self.d.all_nodes()
        missing = [n for n in nodes if not _box(n.metadata.get("bounds"))]
        for node in nodes:
            box = _box(node.metadata.get("bounds"))
            if box:
                self.boxes[node.id] = box
        if not missing:
            return
        computed = layout.compute(self.d).boxes
        dy = 0.0
        if self.boxes:  # some kept: put the new ones under the existing drawing
            kept_bottom = max(bx[1] + bx[3] for bx in self.boxes.values())
            new_top = min(computed[n.id][1] for n in missing if n.id in computed)
            dy = kept_bottom + 80 - new_top
        for node in missing:
            if isinstance(node, BoundaryEvent) and node.attached_to in self.boxes:
                continue
            box = computed.get(node.id)
            if box is None:
                box = [layout.MARGIN, layout.MARGIN, *size_of(tag_of(node))]
            self.boxes[node.id] = [box[0], box[1] + dy, box[2], box[3]]
            self.computed_nodes.add(node.id)
            handler = computed.get(layout.compensation_key(node.id))
            if handler is not None:
                self.comp_boxes[node.id] = [handler[0], handler[1] + dy, handler[2], handler[3]]
        for node in missing:
            if isinstance(node, BoundaryEvent) and node.id not in self.boxes and node.attached_to in self.boxes:
                self.boxes[node.id] = layout.boundary_box(self.d, node, self.boxes[node.attached_to])
                self.computed_nodes.add(node.id)

    def _compensation_boxes(self, activity: Activity) -> None:
        """The compensation boundary event on the activity's bottom-left corner; a handler task the layout
        did not place goes right below the activity."""
        x, y, _w, h = self.boxes[activity.id]
        self.comp_events[activity.id] = [x + 4, y + h - 18, 36, 36]
        self.comp_boxes.setdefault(activity.id, [x, y + h + layout.ROOM + layout.NODE_SEP, 100, 80])

    # --- scopes ---------------------------------------------------------------------------------

    def _scope(self, parent: etree._Element, nodes: list[Node], flows: list[SequenceFlow], plane: str) -> None:
        incoming: dict[str, list[str]] = {}
        outgoing: dict[str, list[str]] = {}
        for flow in flows:
            outgoing.setdefault(flow.source, []).append(flow.id)
            incoming.setdefault(flow.target, []).append(flow.id)
        for node in nodes:
            self._node(parent, node, incoming.get(node.id, []), outgoing.get(node.id, []), plane)
        for flow in flows:
            self._flow(parent, flow, plane)
        here = {n.id for n in nodes}
        mine = [c for c in self.compensation if c[0].id in here]
        for activity, boundary_id, handler_id, _ in mine:
            self._compensation(parent, activity, boundary_id, handler_id, plane)
        for activity, boundary_id, handler_id, assoc_id in mine:  # artifacts follow every flow element
            self._association(parent, activity, boundary_id, handler_id, assoc_id, plane)

    def _node(self, parent: etree._Element, node: Node, incoming: list[str], outgoing: list[str],
              plane: str) -> None:
        tag = tag_of(node)
        el = etree.SubElement(parent, b(tag), id=node.id)
        self._draw_node(node, tag, plane)  # containers before their contents: renderers paint in order
        if node.name:
            el.set("name", node.name)
        elif self.generated_labels and (text := labels.node_label(node)) is not None:
            el.set("name", text)
            self.labels[node.id] = text
        if node.id in self.computed_nodes and tag.endswith(EXTERNAL_LABEL) and el.get("name"):
            self.texts[node.id] = (el.get("name") or "", "boundary" if isinstance(node, BoundaryEvent) else "shape")
        if node.documentation:
            etree.SubElement(el, b("documentation")).text = node.documentation
        extra = _node_fields(node)
        kind = node.kind  # type: ignore[attr-defined]
        if extra or kind == "user_task":
            ext = etree.SubElement(el, b("extensionElements"))
            typed.write_fields(ext, extra)
            if kind == "user_task":  # ours even when empty: the standard/Camunda forms below are not read over it
                typed.marker(ext)
                _camunda_form(ext, node)  # type: ignore[arg-type]
        for flow_id in incoming:
            etree.SubElement(el, b("incoming")).text = flow_id
        for flow_id in outgoing:
            etree.SubElement(el, b("outgoing")).text = flow_id
        if isinstance(node, BoundaryEvent):
            el.set("attachedToRef", node.attached_to)
            if not node.interrupting:
                el.set("cancelActivity", "false")
        elif tag == "startEvent" and getattr(node, "interrupting", True) is False:
            el.set("isInterrupting", "false")
        if getattr(node, "triggered_by_event", False):
            el.set("triggeredByEvent", "true")
        if (kind in ("exclusive_gateway", "inclusive_gateway") or node.is_activity) and getattr(node, "default", None):
            el.set("default", node.default)  # type: ignore[attr-defined]
        self._event_definition(el, node, tag)
        if kind == "call_activity":
            el.set("calledElement", node.called_element)  # type: ignore[attr-defined]
        if kind == "user_task":  # who does it, as Camunda Modeler and Tasklist read it (our fields keep the rest)
            if node.assignee:  # type: ignore[attr-defined]
                el.set(q(CAMUNDA, "assignee"), node.assignee)  # type: ignore[attr-defined]
            if node.candidate_groups:  # type: ignore[attr-defined]
                el.set(q(CAMUNDA, "candidateGroups"), ",".join(node.candidate_groups))  # type: ignore[attr-defined]
        if isinstance(node, UserTask):
            _performers(el, node)
        if isinstance(node, Activity):
            self._loop_characteristics(el, node)
        if kind == "task" and tag == "scriptTask" and isinstance(node.metadata.get("script"), str):
            if isinstance(node.metadata.get("script_format"), str):  # a print-only script, imported as a task
                el.set("scriptFormat", node.metadata["script_format"])
            etree.SubElement(el, b("script")).text = node.metadata["script"]
        if kind == "script_task":
            if node.script_format:  # type: ignore[attr-defined]
                el.set("scriptFormat", node.script_format)  # type: ignore[attr-defined]
            etree.SubElement(el, b("script")).text = node.script  # type: ignore[attr-defined]
        if isinstance(node, SubProcess):
            inner_plane = plane if node.metadata.get("expanded", True) is not False else node.id
            self._scope(el, list(node.nodes), list(node.flows), inner_plane)
        if isinstance(node, AdHocSubProcess):  # after its contents, as the schema orders them (BPMN 2.0 §10.3.6)
            if node.completion_condition is not None:
                _formal(el, "completionCondition", node.completion_condition)
            if not node.cancel_remaining:
                el.set("cancelRemainingInstances", "false")
            el.set("ordering", node.ordering.capitalize())
        if getattr(node, "for_compensation", False):
            el.set("isForCompensation", "true")
        if isinstance(node, Activity) and node.compensation:
            boundary = self.ids.new(f"{node.id}_compensation")
            handler = (str(node.compensation) if node.compensation in self.handler_nodes
                       else self.ids.new(f"{node.id}_compensation_handler"))
            assoc = self.ids.new(f"{node.id}_compensation_association")
            self.compensation.append((node, boundary, handler, assoc))
            if node.id in self.boxes:
                self._compensation_boxes(node)

    def _loop_characteristics(self, el: etree._Element, node: Activity) -> None:
        """``multiInstanceLoopCharacteristics`` / ``standardLoopCharacteristics`` (BPMN 2.0 §10.2.8), in the
        schema's order; the input and output collections (expressions BPMN has no attribute for) stay in our
        typed extension fields (see ``_node_fields``)."""
        mi, loop = node.multi_instance, node.loop
        if mi is not None:
            chars = etree.SubElement(el, b("multiInstanceLoopCharacteristics"))
            if mi.sequential:
                chars.set("isSequential", "true")
            if mi.cardinality is not None:
                _formal(chars, "loopCardinality", mi.cardinality)
            if mi.element_variable:
                etree.SubElement(chars, b("inputDataItem"), id=self.ids.new(f"{node.id}_element"),
                                 name=mi.element_variable)
            if mi.output_element and mi.output_element.isidentifier():
                etree.SubElement(chars, b("outputDataItem"), id=self.ids.new(f"{node.id}_output"),
                                 name=mi.output_element)
            if mi.completion_condition is not None:
                _formal(chars, "completionCondition", mi.completion_condition)
        elif loop is not None:
            chars = etree.SubElement(el, b("standardLoopCharacteristics"))
            if loop.test_before:
                chars.set("testBefore", "true")
            if loop.maximum is not None:
                chars.set("loopMaximum", str(loop.maximum))
            if loop.condition is not None:
                _formal(chars, "loopCondition", loop.condition)

    def _event_definition(self, el: etree._Element, node: Node, tag: str) -> None:
        kind = node.kind  # type: ignore[attr-defined]
        defn_id = self.ids.new(f"{node.id}_definition")
        if kind in ("timer_start", "timer_catch", "boundary_timer"):
            timer = node.timer  # type: ignore[attr-defined]
            definition = etree.SubElement(el, b("timerEventDefinition"), id=defn_id)
            for attr, element in TIMER_STANDARD.items():
                value = getattr(timer, attr)
                if value:
                    expr = etree.SubElement(definition, b(element))
                    expr.set(q(XSI, "type"), "bpmn:tFormalExpression")
                    expr.text = value
        elif kind in ("message_start", "message_catch", "message_throw", "boundary_message", "receive_task"):
            ref = self.messages[node.message]  # type: ignore[attr-defined]
            if tag in ("receiveTask", "sendTask"):
                el.set("messageRef", ref)
                self.ids.used.discard(defn_id)
            else:
                etree.SubElement(el, b("messageEventDefinition"), id=defn_id, messageRef=ref)
        elif kind in ("error_end", "boundary_error", "error_start"):
            definition = etree.SubElement(el, b("errorEventDefinition"), id=defn_id)
            code = getattr(node, "error_code", None)
            if code:
                definition.set("errorRef", self.errors[code])
        elif kind in ("signal_start", "signal_catch", "signal_throw", "signal_end", "boundary_signal"):
            etree.SubElement(el, b("signalEventDefinition"), id=defn_id,
                             signalRef=self.signals[node.signal])  # type: ignore[attr-defined]
        elif kind in ("escalation_throw", "escalation_end", "boundary_escalation", "escalation_start"):
            definition = etree.SubElement(el, b("escalationEventDefinition"), id=defn_id)
            code = getattr(node, "escalation_code", None)
            if code:
                definition.set("escalationRef", self.escalations[code])
        elif kind == "terminate_end":
            etree.SubElement(el, b("terminateEventDefinition"), id=defn_id)
        elif kind in ("cancel_end", "boundary_cancel"):
            etree.SubElement(el, b("cancelEventDefinition"), id=defn_id)
        elif kind in ("conditional_catch", "conditional_start", "boundary_conditional"):
            definition = etree.SubElement(el, b("conditionalEventDefinition"), id=defn_id)
            condition = etree.SubElement(definition, b("condition"))
            condition.set(q(XSI, "type"), "bpmn:tFormalExpression")
            condition.text = node.condition  # type: ignore[attr-defined]
        elif kind in ("link_throw", "link_catch"):
            etree.SubElement(el, b("linkEventDefinition"), id=defn_id, name=node.link)  # type: ignore[attr-defined]
        elif kind == "compensation_throw":
            definition = etree.SubElement(el, b("compensateEventDefinition"), id=defn_id)
            activity = getattr(node, "activity", None)
            if activity:
                definition.set("activityRef", activity)
        else:
            self.ids.used.discard(defn_id)

    def _flow(self, parent: etree._Element, flow: SequenceFlow, plane: str) -> None:
        el = etree.SubElement(parent, b("sequenceFlow"), id=flow.id, sourceRef=flow.source, targetRef=flow.target)
        if flow.name:
            el.set("name", flow.name)
        elif self.generated_labels and (text := labels.flow_label(flow)) is not None:
            el.set("name", text)
            self.labels[flow.id] = text
        doc = flow.metadata.get("documentation")
        if isinstance(doc, str) and doc:
            etree.SubElement(el, b("documentation")).text = doc
        extra = _flow_fields(flow)
        if extra:
            typed.write_fields(etree.SubElement(el, b("extensionElements")), extra)
        text = flow.condition if flow.condition is not None else flow.metadata.get("condition_text")
        if isinstance(text, str) and text:
            cond = etree.SubElement(el, b("conditionExpression"))
            cond.set(q(XSI, "type"), "bpmn:tFormalExpression")
            if flow.condition is not None and not text.lstrip().startswith("=") and expressions.is_feel(text):
                cond.set("language", FEEL_LANGUAGE)  # Zeebe's '=' says FEEL itself
            cond.text = text
        points = flow.metadata.get("waypoints")
        label = _box(flow.metadata.get("label"))
        if _points(points):
            self.drawing.edge(plane, flow.id, points, label)
        elif flow.source in self.boxes and flow.target in self.boxes:
            source = self.d.index.nodes.get(flow.source)
            target = self.d.index.nodes.get(flow.target)
            exact = target is None or not target.is_activity  # type: ignore[attr-defined]
            self.routes.append((plane, flow.id, "flow", self.boxes[flow.source], self.boxes[flow.target],
                                isinstance(source, BoundaryEvent), exact))
            if el.get("name"):
                self.texts[flow.id] = (el.get("name") or "", "flow")

    def _compensation(self, parent: etree._Element, activity: Activity, boundary_id: str, handler_id: str,
                      plane: str) -> None:
        """Compensation the BPMN way (BPMN 2.0 §10.7.2, as Camunda Modeler draws it): a compensation boundary
        event on the activity, associated with its handler activity, which is marked ``isForCompensation``.
        A handler activity of the definition is that activity itself; a handler reference (a registered
        callable) is carried by a service task written here, its reference in our ``handler`` field."""
        event = etree.SubElement(parent, b("boundaryEvent"), id=boundary_id, name="Compensate",
                                 attachedToRef=activity.id)
        etree.SubElement(event, b("compensateEventDefinition"), id=self.ids.new(f"{boundary_id}_definition"))
        if handler_id not in self.handler_nodes:
            handler = str(activity.compensation)
            task = etree.SubElement(parent, b("serviceTask"), id=handler_id, name=labels.words(handler),
                                    isForCompensation="true")
            typed.write_fields(etree.SubElement(task, b("extensionElements")), {"handler": handler})
        event_box = self.comp_events.get(activity.id)
        if event_box is not None:
            self.drawing.shape(plane, boundary_id, event_box)
            self.obstacles.add(boundary_id)
            self.texts[boundary_id] = ("Compensate", "boundary")
            if handler_id not in self.handler_nodes:
                self.drawing.shape(plane, handler_id, self.comp_boxes[activity.id])
                self.obstacles.add(handler_id)

    def _association(self, parent: etree._Element, activity: Activity, boundary_id: str, handler_id: str,
                     assoc_id: str, plane: str) -> None:
        etree.SubElement(parent, b("association"), id=assoc_id, associationDirection="One",
                         sourceRef=boundary_id, targetRef=handler_id)
        event_box = self.comp_events.get(activity.id)
        handler_box = self.boxes.get(handler_id) if handler_id in self.handler_nodes else \
            self.comp_boxes.get(activity.id)
        if event_box is not None and handler_box is not None:
            self.routes.append((plane, assoc_id, "association", event_box, handler_box, True, False))

    def _draw_node(self, node: Node, tag: str, plane: str) -> None:
        box = self.boxes.get(node.id)
        if box is None:
            return
        self.obstacles.add(node.id)
        attrs: dict[str, str] = {}
        if tag == "exclusiveGateway":
            attrs["isMarkerVisible"] = "true"
        if tag in ("subProcess", "transaction", "adHocSubProcess"):
            attrs["isExpanded"] = "false" if node.metadata.get("expanded", True) is False else "true"
        self.drawing.shape(plane, node.id, box, attrs, _box(node.metadata.get("label")),
                           computed=node.id in self.computed_nodes)

    # --- edges and labels -----------------------------------------------------------------------

    def _shapes_on(self, plane: str) -> list[tuple[str, list[float]]]:
        return [(s[0], s[1]) for s in self.drawing.shapes.get(plane, []) if s[0] in self.obstacles]

    def _route(self) -> None:
        """Every edge without kept waypoints, drawn around the shapes of its diagram (see routing.py): a
        flow leaves a boundary event downwards, any other flow by its right side first."""
        for plane, element, kind, source, target, from_below, exact in self.routes:
            obstacles = [box for _, box in self._shapes_on(plane) if not (_contains(box, source)
                                                                          or _contains(box, target))]
            obstacles += [source, target]
            exits = ("bottom",) if from_below else ("right", "bottom", "top")
            entries = ("top", "left", "bottom") if kind == "association" else ("left", "top", "bottom")
            points = routing.route(source, target, obstacles, exits, entries, exact_target=exact)
            self.drawing.edge(plane, element, points, computed=kind == "flow")
            self.route_from[element] = source

    def _place_labels(self) -> None:
        """Label bounds for the events, gateways and flows we placed, clear of shapes and of each other."""
        for plane, shapes in self.drawing.shapes.items():
            boxes = dict(self._shapes_on(plane))
            edges = self.drawing.edges.get(plane, [])
            lines = [points for _, points, _ in edges]
            placed = [label for *_, label in shapes if label] + [label for *_, label in edges if label]
            for i, (element, bounds, attrs, label) in enumerate(shapes):
                if label is None and element in self.texts:
                    text, kind = self.texts[element]
                    others = [box for ident, box in boxes.items() if ident != element and not _contains(box, bounds)]
                    label = routing.place_label(text, kind, bounds, None, others, placed, lines)
                    placed.append(label)
                    shapes[i] = (element, bounds, attrs, label)
            for i, (element, points, label) in enumerate(edges):
                if label is None and element in self.texts:
                    text, _ = self.texts[element]
                    source = self.route_from.get(element, [*points[0], 0, 0])
                    others = [box for box in boxes.values() if not _contains(box, source)]
                    label = routing.place_label(text, "flow", None, points, others, placed,
                                                [p for p in lines if p is not points])
                    placed.append(label)
                    edges[i] = (element, points, label)

    # --- diagram --------------------------------------------------------------------------------

    def _diagram(self, root: etree._Element, main_plane: str) -> None:
        planes = [main_plane] + [p for p in self.drawing.shapes if p != main_plane]
        for plane in planes:
            dia = etree.SubElement(root, q(BPMNDI, "BPMNDiagram"), id=self.ids.new(f"{plane}_diagram"))
            plane_el = etree.SubElement(dia, q(BPMNDI, "BPMNPlane"), id=self.ids.new(f"{plane}_plane"),
                                        bpmnElement=plane)
            for element, bounds, attrs, label in self.drawing.shapes.get(plane, []):
                shape = etree.SubElement(plane_el, q(BPMNDI, "BPMNShape"), id=self.ids.new(f"{element}_di"),
                                         bpmnElement=element)
                for key, value in attrs.items():
                    shape.set(key, value)
                _bounds(shape, bounds)
                if label:
                    _bounds(etree.SubElement(shape, q(BPMNDI, "BPMNLabel")), label)
            for element, points, label in self.drawing.edges.get(plane, []):
                edge = etree.SubElement(plane_el, q(BPMNDI, "BPMNEdge"), id=self.ids.new(f"{element}_di"),
                                        bpmnElement=element)
                for x, y in points:
                    etree.SubElement(edge, q(DI, "waypoint"), x=fmt(x), y=fmt(y))
                if label:
                    _bounds(etree.SubElement(edge, q(BPMNDI, "BPMNLabel")), label)


def _contains(outer: list[float], inner: list[float]) -> bool:
    """Whether ``outer`` holds all of ``inner`` (a sub-process around its contents) and is not it."""
    return outer is not inner and outer[0] <= inner[0] and outer[1] <= inner[1] and \
        inner[0] + inner[2] <= outer[0] + outer[2] and inner[1] + inner[3] <= outer[1] + outer[3] and \
        outer[2] * outer[3] > inner[2] * inner[3]


def _formal(parent: etree._Element, tag: str, text: str) -> None:
    expr = etree.SubElement(parent, b(tag))
    expr.set(q(XSI, "type"), "bpmn:tFormalExpression")
    expr.text = text


def _bounds(parent: etree._Element, box: list[float]) -> None:
    x, y, w, h = box
    etree.SubElement(parent, q(DC, "Bounds"), x=fmt(x), y=fmt(y), width=fmt(w), height=fmt(h))


def _box(value: Any) -> list[float] | None:
    if isinstance(value, list | tuple) and len(value) == 4 and all(isinstance(v, int | float) for v in value):
        return list(value)
    return None


def _points(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2 and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(v, int | float) for v in p) for p in value)


def _loses_space(text: str | None) -> bool:
    """Documentation is read back stripped (files indent it); text with outer white space goes to our fields too."""
    return bool(text) and text != text.strip()


# Camunda 7's form field types for ours (Camunda Modeler offers these; others are custom types there)
_CAMUNDA_FORM_TYPE = {"string": "string", "text": "string", "integer": "long", "number": "double",
                      "boolean": "boolean", "date": "date", "datetime": "date", "enum": "enum"}


def _camunda_form(ext: etree._Element, task: UserTask) -> None:
    """The form as ``camunda:formData`` (Camunda Modeler's properties panel and Camunda 7's Tasklist read it):
    ``formField id type label defaultValue``, ``validation/constraint name="required"``, an enum's ``value``s.
    Our typed ``<waooaw:formField>`` keeps what Camunda's form cannot (a text or decimal type, typed defaults,
    the variable set); on import ours wins."""
    if not task.form:
        return
    data = etree.SubElement(ext, q(CAMUNDA, "formData"))
    for item in task.form:
        field_el = etree.SubElement(data, q(CAMUNDA, "formField"), id=item.name)
        if item.label:
            field_el.set("label", item.label)
        field_el.set("type", _CAMUNDA_FORM_TYPE.get(item.type, "string"))
        if item.default is not None and not isinstance(item.default, dict | list):
            field_el.set("defaultValue", str(item.default).lower() if isinstance(item.default, bool)
                         else str(item.default))
        if item.required:
            validation = etree.SubElement(field_el, q(CAMUNDA, "validation"))
            etree.SubElement(validation, q(CAMUNDA, "constraint"), name="required")
        if item.type == "enum":
            for choice in item.choices or []:
                etree.SubElement(field_el, q(CAMUNDA, "value"), id=choice, name=choice)


def _performers(el: etree._Element, task: UserTask) -> None:
    """Who does the task in standard BPMN (§10.3.2 resource assignment), as Camunda reads it: the assignee as a
    ``humanPerformer``, each candidate group as a ``potentialOwner`` with ``group(name)``."""
    people = [("humanPerformer", task.assignee)] if task.assignee else []
    people += [("potentialOwner", f"group({group})") for group in task.candidate_groups]
    for role, text in people:
        res = etree.SubElement(el, b(role))
        expr = etree.SubElement(etree.SubElement(res, b("resourceAssignmentExpression")), b("formalExpression"))
        expr.text = text


def _node_fields(node: Node) -> dict[str, Any]:
    """The node's fields that standard BPMN does not carry."""
    data = node.model_dump(mode="json", exclude_defaults=True)
    for key in STANDARD_FIELDS:
        if not (key == "documentation" and _loses_space(node.documentation)):
            data.pop(key, None)
    kind = node.kind  # type: ignore[attr-defined]
    if kind in ("boundary_error", "boundary_cancel"):
        data.pop("interrupting", None)
    data.pop("loop", None)  # standardLoopCharacteristics carries all of it
    mi = data.pop("multi_instance", None)
    if mi:  # what multiInstanceLoopCharacteristics does not carry: the collections (expressions, names)
        rest = {k: v for k, v in mi.items() if k in ("collection", "output_collection", "output_element")}
        if str(rest.get("output_element", "")).isidentifier():
            rest.pop("output_element")
        if rest:
            data["multi_instance"] = rest
    timer = data.get("timer")
    if isinstance(timer, dict):
        rest = {k: v for k, v in timer.items() if k not in TIMER_STANDARD}
        if rest:
            data["timer"] = rest
        else:
            data.pop("timer")
    meta = {k: v for k, v in node.metadata.items() if k not in NODE_META}
    if meta.get("expanded") is False and tag_of(node) in ("subProcess", "transaction", "adHocSubProcess"):
        meta.pop("expanded")
    if _box(node.metadata.get("bounds")) is None and "bounds" in node.metadata:
        meta["bounds"] = node.metadata["bounds"]  # not drawable: keep it as data
    if meta:
        data["metadata"] = meta
    else:
        data.pop("metadata", None)
    return data


def _flow_fields(flow: SequenceFlow) -> dict[str, Any]:
    data = flow.model_dump(mode="json", exclude_defaults=True)
    for key in ("id", "source", "target", "condition", "name", "metadata"):
        data.pop(key, None)
    meta = {k: v for k, v in flow.metadata.items() if k not in FLOW_META}
    doc = flow.metadata.get("documentation")
    if doc is not None and (not isinstance(doc, str) or _loses_space(doc)):
        meta["documentation"] = doc
    if "waypoints" in flow.metadata and not _points(flow.metadata["waypoints"]):
        meta["waypoints"] = flow.metadata["waypoints"]
    if meta:
        data["metadata"] = meta
    return data


def write(definition: ProcessDefinition, generated_labels: bool = True) -> str:
    return Writer(definition, generated_labels).write()
