"""BPMN 2.0 XML -> ProcessDefinition, reporting every element it cannot carry over.

Mapping (element -> node kind); the original element name is kept in ``metadata['bpmn']`` when it is
not the default one for the kind, so an export writes it back:

    startEvent none/timer/message/signal -> start / timer_start / message_start / signal_start
    endEvent none/terminate/error        -> end / terminate_end / error_end
    endEvent signal/escalation           -> signal_end / escalation_end
    intermediate signal catch/throw      -> signal_catch / signal_throw (signals matched by name)
    intermediateThrowEvent escalation    -> escalation_throw (codes from escalationRef, as error codes)
    boundaryEvent signal/escalation      -> boundary_signal / boundary_escalation
    endEvent message/compensate          -> message_throw / compensation_throw (no outgoing flow)
    intermediateCatchEvent timer/message -> timer_catch / message_catch
    intermediateThrowEvent none          -> intermediate_throw (passes straight through)
    intermediate throw/catch link        -> link_throw / link_catch (paired by the link name in one scope)
    intermediateCatchEvent conditional   -> conditional_catch
    intermediateThrowEvent message/comp. -> message_throw / compensation_throw
    boundaryEvent timer/error/message    -> boundary_timer / boundary_error / boundary_message
    boundaryEvent compensate + association to an isForCompensation activity
                                         -> the activity's ``compensation``: the handler activity itself
                                            (user, service, plain or manual task; ``for_compensation``),
                                            else (script task, sub-process) a handler name
    task, manualTask                     -> task
    serviceTask, sendTask                -> service_task (agent from vendor extensions, else the id)
    sendTask with messageRef, no code    -> message_throw (sends the message and completes)
    userTask                             -> user_task
    receiveTask                          -> receive_task (an activity waiting for its message)
    subProcess triggeredByEvent          -> sub_process with triggered_by_event (an event sub-process): its start
                                            is timer/message/signal_start (isInterrupting kept), error_start,
                                            escalation_start or conditional_start
    boundaryEvent conditional            -> boundary_conditional
    exclusive/inclusive/parallel/eventBasedGateway -> the four gateway kinds (default flows kept)
    subProcess                           -> sub_process (embedded)
    transaction                          -> sub_process with transaction (cancel semantics, BPMN 2.0 §10.3.5)
    endEvent / boundaryEvent cancel      -> cancel_end / boundary_cancel
    adHocSubProcess                      -> ad_hoc_sub_process (ordering, cancelRemainingInstances,
                                            completionCondition, zeebe:adHoc activeElementsCollection)

A scriptTask whose script is assignments of safe expressions is a script_task (``engine.model.scripts``).
Refused (strict) or replaced by a placeholder and reported (lenient): any other scriptTask, businessRuleTask,
callActivity (-> task), complexGateway (-> inclusive gateway),
an event sub-process started by compensation (-> plain start/end/task;
boundary events and event sub-processes are left out with their outgoing flows), loops and
multi-instance (-> a single run), a default flow on a call activity or business rule task, timers that do not
parse (-> the
placeholder of the event), conditions that do not parse (-> no condition; the text is kept in the
flow's ``metadata['condition_text']`` and exported again).
Tolerated and listed as info: data objects and stores, data associations, annotations, groups,
lanes (kept as node metadata ``lane``), other pools, message flows, colours, vendor extensions that
have no meaning here, duplicate ids outside the imported process, flows without an id.
Refused in both modes, because the graph itself would be wrong: malformed XML, a missing or dangling
``sourceRef``/``targetRef``/``attachedToRef``/``messageRef``, duplicate ids, a default flow that does
not leave its gateway, a sequence flow that crosses a sub-process boundary, bad ``waooaw:fields`` JSON.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from pydantic import ValidationError

from engine.bpmn import conversions, diagram, extensions, labels
from engine.bpmn.extensions import VendorRead, deep_merge, own_fields
from engine.bpmn.ids import restore_ids
from engine.bpmn.mapping import DEFAULT_TAG
from engine.bpmn.namespaces import BPMN, BPMNDI, DC, DI, ZEEBE, b
from engine.bpmn.result import Category, Finding, ImportResult, raise_if_refused
from engine.errors import DefinitionError, Problem
from engine.model import expressions
from engine.model.definition import ProcessDefinition
from engine.model.nodes import NODE_CLASSES, Node, SequenceFlow
from engine.model.timers import Timer

ACTIVITY_TAGS = {
    "task", "manualTask", "userTask", "serviceTask", "sendTask", "receiveTask", "scriptTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
}
EVENT_TAGS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
              "implicitThrowEvent"}
GATEWAY_TAGS = {"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway"}
FLOW_NODE_TAGS = ACTIVITY_TAGS | EVENT_TAGS | GATEWAY_TAGS | {
    "callChoreography", "choreographyTask", "subChoreography"}
DATA_TAGS = {"dataObject", "dataObjectReference", "dataStoreReference", "dataInput", "dataOutput"}
# Children of a flow node that the model has no place for but that do not change how it runs.
QUIET_CHILDREN = {"documentation", "extensionElements", "incoming", "outgoing", "auditing", "monitoring",
                  "categoryValueRef", "laneSet", "property"}
DATA_CHILDREN = {"ioSpecification", "dataInputAssociation", "dataOutputAssociation", "ioBinding"}



def local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def ref(text: str | None) -> str:
    """An IDREF or QName reference without its prefix."""
    return (text or "").strip().split(":")[-1]


def parse_xml(text: str | bytes, source: str | None) -> etree._Element:
    """Parse safely (no entities, no network), keeping line numbers; a syntax error names its line."""
    if isinstance(text, str):
        # lxml refuses a str that declares an encoding: drop the declaration, keep the line count.
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise DefinitionError(Problem("xml", f"not well-formed XML: {exc.msg}", line=line), source) from None
    except ValueError as exc:
        raise DefinitionError(Problem("xml", f"cannot read the XML: {exc}"), source) from None
    if root.tag != b("definitions"):
        ns = etree.QName(root).namespace
        hint = f" (namespace {ns!r}; BPMN 2.0 uses {BPMN!r})" if ns != BPMN else ""
        raise DefinitionError(Problem(local(root) or "xml", f"root element is <{local(root)}>, not a BPMN 2.0 "
                                      f"<definitions>{hint}", line=root.sourceline), source)
    return root


def _named(el: etree._Element) -> str:
    """An element in a finding's words: its name and id (``'Check credit' (Activity_1x)``), else its id."""
    ident, name = el.get("id") or "(no id)", (el.get("name") or "").strip()
    return f"{name!r} ({ident})" if name else repr(ident)


class Reader:
    """One import: reads a chosen process of a definitions document into the model."""

    def __init__(self, root: etree._Element, source: str | None, lenient: bool, process_id: str | None) -> None:
        self.root = root
        self.source = source
        self.lenient = lenient
        self.process_id = process_id
        self.findings: list[Finding] = []
        self.by_id: dict[str, list[etree._Element]] = {}
        self.di_ids: dict[str, list[etree._Element]] = {}
        for el in root.iter():
            if not isinstance(el.tag, str) or not el.get("id"):
                continue
            # Only BPMN elements are referenced by id; vendor elements (camunda:formProperty) reuse names freely.
            namespace = etree.QName(el).namespace
            if namespace == BPMN:
                self.by_id.setdefault(el.get("id"), []).append(el)
            elif namespace in (BPMNDI, DC, DI):
                self.di_ids.setdefault(el.get("id"), []).append(el)
        self.di = diagram.read(root)
        self.skip_di: set[str] = set()
        self.generated: set[str] = set()
        self.lane_of: dict[str, str] = {}
        self.compensation_of: dict[str, str] = {}
        self.folded: set[str] = set()  # ids of elements folded into another's field (never the empty id)
        self.handler_nodes: set[str] = set()  # compensation handler activities imported as nodes (user tasks)
        # folded <association> elements by id() (their id is optional); the element is kept so lxml keeps its proxy
        self.folded_associations: dict[int, etree._Element] = {}
        self.dropped: dict[str, str] = {}  # node id -> why it is not in the model (for its flows)
        self.start_variables: list[dict[str, Any]] = []
        self.flows_seen: list[SequenceFlow] = []
        self.generated_flow_ids: set[str] = set()
        self.dropped_flows: set[str] = set()

    # --- findings -------------------------------------------------------------------------------

    def note(self, category: Category, el: etree._Element, message: str, element: str | None = None) -> None:
        self.findings.append(Finding(category, element or local(el), el.get("id"), el.sourceline, message))

    def _own_error(self, el: etree._Element, holder: etree._Element | None, message: str) -> None:
        line = holder.sourceline if holder is not None else el.sourceline
        self.findings.append(Finding("error", local(el), el.get("id"), line, message))

    def element(self, ident: str) -> etree._Element | None:
        found = self.by_id.get(ident)
        return found[0] if found else None

    # --- the whole document ---------------------------------------------------------------------

    def read(self) -> ImportResult:
        process = self._choose_process()
        self._check_duplicates(process)
        own, holder, err = own_fields(process)
        if err:
            self._own_error(process, holder, err)
        self._layout_marks(process)
        metadata: dict[str, Any] = {}
        bpmn_meta = self._pool_and_lanes(process)
        if bpmn_meta:
            metadata["bpmn"] = bpmn_meta
        self._compensation(process)
        nodes, flows = self.read_scope(process, None)
        data: dict[str, Any] = {"id": process.get("id"), "nodes": nodes, "flows": flows}
        name = process.get("name") or self._participant_name(process)
        if name:
            data["name"] = name
        description = _documentation(process)
        if description:
            data["description"] = description
        if metadata:
            data["metadata"] = metadata
        if own is None:
            data["variables"] = self._foreign_variables(process, nodes)
        else:
            data = deep_merge(data, own)
        self._tolerated_root(process)
        for el in process:
            if local(el) in ("ioSpecification", "property", "resourceRole", "performer", "humanPerformer",
                             "potentialOwner", "correlationSubscription"):
                self.note("info", el, "process-level data/resources are not imported")
        for name_ in extensions.unmapped(process, set()):
            self.note("info", process, f"vendor extension {name_} not imported", element="process")
        raise_if_refused(self.findings, self.lenient, self.source)
        try:
            definition = ProcessDefinition.model_validate(data)
        except ValidationError as exc:
            raise DefinitionError([Problem("process " + repr(process.get("id")), _pydantic_message(exc),
                                           line=process.sourceline)], self.source) from None
        self._check_deployable(definition, process)
        return ImportResult(definition, self.findings, self.lenient)

    def _check_deployable(self, definition: ProcessDefinition, process: etree._Element) -> None:
        """Import, validation and deploy agree: whatever ``Engine.deploy`` would refuse (a validation error, an
        agent or handler name not registered yet) is a warning of the import naming the element, so an import
        that succeeds either yields a deployable definition or says why not."""
        from engine.validate import handler_problems, validate

        for problem in [*validate(definition), *handler_problems(definition)]:
            if problem.severity != "error" and not problem.message.startswith(("service task", "user task", "task",
                                                                                 "sub-process")):
                continue
            el = self.element(problem.where)
            place = el if el is not None else process
            if problem.severity == "error":
                self.findings.append(Finding("warning", local(place), place.get("id"), place.sourceline,
                                             f"imported, but Engine.deploy refuses it until this is fixed: "
                                             f"{problem.message}"))
            elif "is not registered" in problem.message or "cannot be loaded" in problem.message:
                self.findings.append(Finding("warning", local(place), place.get("id"), place.sourceline,
                                             f"{problem.message} (deploy refuses it until then)"))
        raise_if_refused(self.findings, self.lenient, self.source)

    def _choose_process(self) -> etree._Element:
        processes = self.root.findall(b("process"))
        if not processes:
            raise DefinitionError(Problem("definitions", "the file has no <process> (a choreography or "
                                          "conversation only?)", line=self.root.sourceline), self.source)
        if self.process_id is not None:
            for p in processes:
                if p.get("id") == self.process_id:
                    return p
            known = ", ".join(repr(p.get("id")) for p in processes)
            raise DefinitionError(Problem("definitions", f"no process with id {self.process_id!r} (the file has "
                                          f"{known})", line=self.root.sourceline), self.source)
        with_nodes = [p for p in processes if any(local(c) in FLOW_NODE_TAGS for c in p)]
        executable = [p for p in with_nodes if (p.get("isExecutable") or "").lower() == "true"]
        in_pools = {ref(part.get("processRef")) for part in self.root.iter(b("participant"))}
        pooled = [p for p in with_nodes if p.get("id") in in_pools]
        chosen = (executable or pooled or with_nodes or processes)[0]
        others = [p for p in with_nodes if p is not chosen]
        if others:
            why = ("the first executable one" if executable else "the first one in a pool" if pooled
                   else "the first one with flow nodes")
            names = ", ".join(repr(p.get("id")) for p in others)
            self.note("warning", chosen, f"the file has {len(with_nodes)} processes; imported {chosen.get('id')!r} "
                      f"({why}); not imported: {names} (pass process_id= to choose)", element="process")
        return chosen

    def _check_duplicates(self, process: etree._Element) -> None:
        """Ids inside the imported process must be unique in the document (refs would be ambiguous)."""
        seen: set[str] = set()
        for el in process.iter():
            ident = el.get("id") if isinstance(el.tag, str) else None
            if not ident or el is process or ident in seen:
                continue
            seen.add(ident)
            others = self.by_id.get(ident, [])
            if len(others) > 1:
                lines = ", ".join(str(o.sourceline) for o in others)
                self.note("error", others[1], f"duplicate id {ident!r} (used on lines {lines}); ids must be unique")
        for ident, els in self.by_id.items():
            if len(els) > 1 and ident not in seen:
                lines = ", ".join(str(o.sourceline) for o in els)
                self.note("info", els[1], f"duplicate id {ident!r} outside the imported process (lines {lines}): "
                          "tolerated, nothing imported refers to it", element=local(els[1]))
        for ident, els in self.di_ids.items():
            if len(els) > 1:
                lines = ", ".join(str(o.sourceline) for o in els)
                self.note("info", els[1], f"duplicate diagram id {ident!r} (lines {lines}): tolerated, diagram "
                          "element ids are not referenced", element=local(els[1]))
        for ident, line in self.di.duplicates:
            self.findings.append(Finding("info", "BPMNShape", ident, line,
                                         "drawn more than once (several diagrams): the first drawing is kept"))

    def _layout_marks(self, process: etree._Element) -> None:
        """Drop positions that our own exporter computed, if nobody moved them since (see diagram.py)."""
        for child in extensions.extension_elements(process):
            if child.tag != extensions.LAYOUT:
                continue
            computed = (child.get("computed") or "").split()
            generated = (child.get("generated") or "").split()
            if diagram.digest(diagram.positions(self.di, computed), diagram.drawn(self.di)) == child.get("digest"):
                self.skip_di = set(computed)
                self.generated = set(generated)
            else:
                self.note("info", child, "the diagram was edited since it was exported: its layout is kept",
                          element="waooaw:layout")

    # --- pools and lanes ------------------------------------------------------------------------

    def _participant(self, process: etree._Element) -> etree._Element | None:
        pid = process.get("id")
        for part in self.root.iter(b("participant")):
            if ref(part.get("processRef")) == pid:
                return part
        return None

    def _participant_name(self, process: etree._Element) -> str | None:
        part = self._participant(process)
        if part is None or part.get("id") in self.generated:  # a pool we drew only to hold lanes
            return None
        return part.get("name")

    def _pool_and_lanes(self, process: etree._Element) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        part = self._participant(process)
        if part is not None and part.get("id") not in self.generated:
            pool: dict[str, Any] = {}
            if part.get("name") and process.get("name") and part.get("name") != process.get("name"):
                pool["name"] = part.get("name")
            shape = self._shape(part.get("id", ""))
            if shape is not None:
                pool["bounds"] = shape.bounds
            meta["pool"] = pool
        lanes: list[dict[str, Any]] = []
        leaf_lanes = [lane for lane in process.iter(b("lane")) if lane.find(b("childLaneSet")) is None
                      or not len(lane.find(b("childLaneSet")))]
        nested = [lane for lane in process.iter(b("lane")) if lane not in leaf_lanes]
        for lane in nested:
            self.note("info", lane, "nested lanes are flattened: nodes keep their innermost lane")
        names = [lane.get("name") or lane.get("id") for lane in leaf_lanes]
        for lane, label in zip(leaf_lanes, names, strict=True):
            use = label if names.count(label) == 1 else lane.get("id")
            for node_ref in lane.findall(b("flowNodeRef")):
                self.lane_of[ref(node_ref.text)] = use
            if lane.get("id") in self.generated:
                continue
            entry: dict[str, Any] = {"id": lane.get("id")}
            if lane.get("name"):
                entry["name"] = lane.get("name")
            shape = self._shape(lane.get("id", ""))
            if shape is not None:
                entry["bounds"] = shape.bounds
            lanes.append(entry)
        if lanes:
            meta["lanes"] = lanes
        return meta

    def _shape(self, ident: str) -> diagram.Shape | None:
        return None if ident in self.skip_di else self.di.shapes.get(ident)

    def _tolerated_root(self, process: etree._Element) -> None:
        others = [p for p in self.root.iter(b("participant")) if ref(p.get("processRef")) != process.get("id")]
        for part in others:
            if not part.get("processRef"):
                self.note("info", part, "a pool without a process (black box) is not imported")
        for flow in self.root.iter(b("messageFlow")):
            self.note("info", flow, "message flows between pools are not imported (messages match by name)")

    # --- compensation ---------------------------------------------------------------------------

    def _compensation(self, process: etree._Element) -> None:
        """Fold compensation boundary event + association + handler into ``activity.compensation``."""
        pairs: list[tuple[str, str, etree._Element]] = []
        for assoc in process.iter(b("association")):
            pairs.append((ref(assoc.get("sourceRef")), ref(assoc.get("targetRef")), assoc))
        for event in process.iter(b("boundaryEvent")):
            if event.find(b("compensateEventDefinition")) is None:
                continue
            bid = event.get("id") or ""
            activity = ref(event.get("attachedToRef"))
            handler_el: etree._Element | None = None
            for src, dst, assoc in pairs:
                other = dst if src == bid else src if dst == bid else None
                candidate = self.element(other) if other else None
                if candidate is not None and local(candidate) in ACTIVITY_TAGS:
                    handler_el = candidate
                    self.folded_associations[id(assoc)] = assoc  # by element: an association may have no id
                    break
            if bid:
                self.folded.add(bid)
            if handler_el is None:
                self.note("info", event, "compensation boundary event without an associated handler: nothing "
                          "to run, not imported")
                continue
            if self._handler_is_node(handler_el):  # a handler activity of the process (BPMN isForCompensation)
                self.compensation_of[activity] = handler_el.get("id")
                self.handler_nodes.add(handler_el.get("id"))
                self.note("info", event, f"compensation of {activity!r}: {local(handler_el)} "
                          f"{handler_el.get('id')!r} imported as its handler activity (for_compensation)")
                continue
            name = self._handler_name(handler_el)
            self.compensation_of[activity] = name
            if handler_el.get("id"):
                self.folded.add(handler_el.get("id"))
            self.note("info", event, f"compensation of {activity!r}: handler {handler_el.get('id')!r} imported as "
                      f"its compensation handler {name!r}")
            if local(handler_el) in ("subProcess", "transaction", "adHocSubProcess") and len(
                    [c for c in handler_el if local(c) in FLOW_NODE_TAGS]):
                self.note("warning", handler_el, "a compensation sub-process is kept as a handler name only; its "
                          "inner elements are not imported")

    @staticmethod
    def _handler_is_node(el: etree._Element) -> bool:
        """A compensation handler imported as an activity (``for_compensation``, BPMN 2.0 §10.7.2), not folded into
        a handler name: a user task (people undo it), a service task (its agent undoes it), a plain or manual
        task, and any activity our export marked as a handler activity. Other kinds (a script task, a
        compensation sub-process) are folded into a handler name, with a finding for a sub-process's content."""
        if not el.get("id"):
            return False
        own, _, _ = own_fields(el)
        if own is not None:  # written by us: a handler activity says so; a stand-in for a reference does not
            return own.get("for_compensation") is True and "handler" not in own
        return local(el) in ("userTask", "serviceTask", "task", "manualTask")

    def _handler_name(self, el: etree._Element) -> str:
        own, _, _ = own_fields(el)
        for key in ("handler", "agent"):  # our handler-reference carrier (older exports: its agent)
            if own and isinstance(own.get(key), str):
                return own[key]
        found = extensions.agent(el, VendorRead())
        return found or el.get("id") or "compensation"

    # --- scopes ---------------------------------------------------------------------------------

    def read_scope(self, container: etree._Element, scope: str | None) -> tuple[list[Node], list[SequenceFlow]]:
        nodes: list[Node] = []
        flow_els: list[etree._Element] = []
        for el in container:
            tag = local(el)
            ident = el.get("id") or ""
            if not tag or etree.QName(el).namespace != BPMN:
                continue
            if (ident and ident in self.folded) or id(el) in self.folded_associations:
                continue
            if tag == "sequenceFlow":
                flow_els.append(el)
            elif tag in FLOW_NODE_TAGS:
                node = self.read_node(el, scope)
                if node is not None:
                    nodes.append(node)
            elif tag in DATA_TAGS:
                self.note("info", el, "data elements are not imported (process variables are global)")
            elif tag == "association":
                self.note("info", el, "association (to an annotation or data) is not imported")
            elif tag in ("textAnnotation", "group"):
                self.note("info", el, f"{tag} is not imported (does not change execution)")
            elif tag in QUIET_CHILDREN or tag in DATA_CHILDREN or tag in (
                    "ioSpecification", "resourceRole", "performer", "humanPerformer", "potentialOwner",
                    "correlationSubscription", "supports", "completionCondition", "multiInstanceLoopCharacteristics",
                    "standardLoopCharacteristics"):
                continue  # handled by the caller (process or sub-process element)
            else:
                self.note("unsupported", el, f"<{tag}> is not supported here")
        kept: list[Node] = []
        ids = {n.id for n in nodes}
        for node in nodes:  # a boundary event goes with its activity
            attached = getattr(node, "attached_to", None)
            if attached and attached not in ids:
                el = self.element(node.id)
                self.dropped[node.id] = f"its activity {attached!r} is not imported"
                if el is not None:
                    self.note("warning", el, f"left out with the activity {attached!r} it is attached to")
                continue
            kept.append(node)
        node_ids = {n.id for n in kept}
        flows = [f for f in (self.read_flow(el, node_ids, scope) for el in flow_els) if f is not None]
        return self._check_defaults(container, kept, flows), flows

    def read_flow(self, el: etree._Element, node_ids: set[str], scope: str | None) -> SequenceFlow | None:
        ident = el.get("id")
        if not ident:
            ident = self._flow_id(ref(el.get("sourceRef")), ref(el.get("targetRef")))
            self.note("info", el, f"a sequence flow without id: named {ident!r}")
        ends: dict[str, str] = {}
        for attr in ("sourceRef", "targetRef"):
            value = ref(el.get(attr))
            if not value:
                self.note("error", el, f"has no {attr}")
                return None
            if value not in node_ids:
                if value in self.dropped or value in self.folded:
                    self.dropped_flows.add(ident)
                    why = self.dropped.get(value, "it is a compensation handler")
                    self.note("warning", el, f"left out with its {'source' if attr == 'sourceRef' else 'target'} "
                              f"{value!r} ({why})")
                    return None
                target = self.element(value)
                if target is None:
                    self.note("error", el, f"{attr} {value!r} names no element in the file")
                elif local(target) not in FLOW_NODE_TAGS:
                    self.note("error", el, f"{attr} {value!r} is a <{local(target)}>, not a flow node")
                else:
                    where = f"sub-process {scope!r}" if scope else "the process"
                    self.note("error", el, f"{attr} {value!r} is not in {where} (a sequence flow cannot cross a "
                              "sub-process boundary)")
                return None
            ends[attr] = value
        data: dict[str, Any] = {"id": ident, "source": ends["sourceRef"], "target": ends["targetRef"]}
        if el.get("name"):
            data["name"] = el.get("name")
        meta: dict[str, Any] = {}
        doc = _documentation(el)
        if doc:
            meta["documentation"] = doc
        cond_el = el.find(b("conditionExpression"))
        if cond_el is not None:
            raw = "".join(cond_el.itertext())
            condition, note, reason = conversions.condition(raw)
            language = cond_el.get("language")
            if reason:
                lang = f" (language {language})" if language else ""
                self.note("unsupported", el, f"condition {raw.strip()!r}{lang} cannot be used: {reason}"
                          + ("; imported without a condition, the text is kept in metadata['condition_text']"
                             if self.lenient else ""))
                meta["condition_text"] = raw.strip()
            elif condition is None:
                self.note("info", el, "empty conditionExpression ignored")
            else:
                data["condition"] = condition
                if note:
                    self.note("info", el, note)
        edge = None if ident in self.skip_di else self.di.edges.get(ident)
        if edge is not None and len(edge.waypoints) >= 2:
            meta["waypoints"] = edge.waypoints
            if edge.label:
                meta["label"] = edge.label
        if meta:
            data["metadata"] = meta
        own, holder, err = own_fields(el)
        if err:
            self._own_error(el, holder, err)
        if own:
            data = deep_merge(data, own)
        try:
            flow = SequenceFlow.model_validate(data)
        except ValidationError as exc:
            self.note("error", el, _pydantic_message(exc))
            return None
        self.flows_seen.append(flow)
        return flow

    def _flow_id(self, source: str, target: str) -> str:
        """A stable id for a flow that has none (the schema allows that; Camunda's tests do it)."""
        base = f"{source or 'flow'}__{target or 'flow'}"
        ident, n = base, 2
        while ident in self.by_id or ident in self.generated_flow_ids:
            ident, n = f"{base}_{n}", n + 1
        self.generated_flow_ids.add(ident)
        return ident

    def _check_defaults(self, container: etree._Element, nodes: list[Node], flows: list[SequenceFlow]
                        ) -> list[Node]:
        """A gateway's default must be one of its outgoing flows (unless that flow was left out leniently)."""
        outgoing: dict[str, set[str]] = {}
        for flow in flows:
            outgoing.setdefault(flow.source, set()).add(flow.id)
        checked: list[Node] = []
        for node in nodes:
            default = getattr(node, "default", None)
            el = self.element(node.id)
            place = el if el is not None else container
            if default and default not in outgoing.get(node.id, set()):
                if default in self.dropped_flows:
                    self.note("warning", place, f"default flow {default!r} was left out: no default flow")
                    node = node.model_copy(update={"default": None})
                else:
                    self.note("error", place, f"default flow {default!r} is not an outgoing sequence flow of "
                              f"{node.id!r}")
            checked.append(node)
        return checked

    # --- nodes ----------------------------------------------------------------------------------

    def read_node(self, el: etree._Element, scope: str | None) -> Node | None:
        tag = local(el)
        ident = el.get("id")
        if not ident:
            self.note("error", el, f"a <{tag}> needs an id")
            return None
        data: dict[str, Any] = {"id": ident}
        if el.get("name"):
            data["name"] = el.get("name")
        doc = _documentation(el)
        if doc:
            data["documentation"] = doc
        meta: dict[str, Any] = {}
        shape = self._shape(ident)
        if shape is not None:
            meta["bounds"] = shape.bounds
            if shape.label:
                meta["label"] = shape.label
        drawn = self.di.shapes.get(ident)  # collapsed or not is kept even when we computed the position
        if drawn is not None and drawn.expanded is False and tag in ("subProcess", "transaction", "adHocSubProcess"):
            meta["expanded"] = False
        if ident in self.lane_of:
            meta["lane"] = self.lane_of[ident]
        vendor = VendorRead()
        kind, reason, placeholder = self._classify(el, tag, data, vendor, scope)
        meta.update(data.pop("_metadata", {}))
        if kind is None and reason == "":  # a broken reference, already reported as an error
            self.dropped[ident] = "it is broken"
            return None
        if ident in self.handler_nodes:
            data["for_compensation"] = True
        elif tag in ACTIVITY_TAGS and (el.get("isForCompensation") or "").lower() == "true" \
                and (own_fields(el)[0] or {}).get("for_compensation") is not True:  # (ours: nothing names it yet)
            self.dropped[ident] = "a compensation handler without a compensation boundary event"
            self.note("warning", el, "compensation handler not associated with any compensation boundary "
                      "event: not imported")
            return None
        loop = next((c for c in el if local(c) in ("multiInstanceLoopCharacteristics",
                                                    "standardLoopCharacteristics")), None)
        if loop is not None and tag in ACTIVITY_TAGS and kind is not None and NODE_CLASSES[kind].is_activity:
            reason = self._loop_characteristics(el, loop, data)
            if reason is not None:
                self.note("unsupported", el, reason + ("; imported as a single run" if self.lenient else ""),
                          element=local(loop))
        if kind is None:
            if placeholder is None:
                self.dropped[ident] = reason or f"<{tag}> is not supported"
                self.note("unsupported", el, f"{reason}" + ("; left out" if self.lenient else ""))
                return None
            self.note("unsupported", el, f"{reason}" + (f"; imported as a plain {placeholder.replace('_', ' ')}"
                                                        if self.lenient else ""))
            kind = placeholder
            data = {k: v for k, v in data.items() if k in ("id", "name", "documentation", "nodes", "flows")}
            vendor.values = {}
        if tag != DEFAULT_TAG[kind] and not (tag == "transaction" and data.get("transaction")):
            meta["bpmn"] = tag
        if ident in self.compensation_of and NODE_CLASSES[kind].is_activity:
            data["compensation"] = self.compensation_of[ident]
        data["kind"] = kind
        data["metadata"] = meta
        own, holder, err = own_fields(el)
        if own is not None:  # ours: the standard/Camunda forms of the same fields (maybe stale) are not read over it
            vendor.values = {k: v for k, v in vendor.values.items()
                             if k not in ("assignee", "candidate_groups", "form")}
        data = deep_merge(data, vendor.values)
        if err:
            self._own_error(el, holder, err)
        if own:
            data = deep_merge(data, own)
        for note in vendor.notes:
            self.note("warning", el, note)
        for script in extensions.extension_elements(el):
            name = etree.QName(script).localname
            if name in ("onEntry-script", "onExit-script"):  # jBPM: Java run on entering / leaving the element
                vendor.used.add(f"{etree.QName(script).namespace}|{name}")
                self.note("warning", el, f"{name} (a jBPM extension, {script.get('scriptFormat') or 'code'}) is not "
                          "run: definitions here are data, and what it would set is not set")
        left = extensions.unmapped(el, vendor.used)
        if left:
            self.note("info", el, f"vendor extensions not imported: {', '.join(left)}")
        self._data_children(el)
        try:
            return NODE_CLASSES[kind].model_validate(data)
        except ValidationError as exc:
            message = _pydantic_message(exc)
            fallback = _fallback(kind)
            keep = {k: data[k] for k in ("id", "name", "documentation") if k in data}
            meta = dict(meta)
            plain = None
            if fallback is not None and fallback != kind:
                if tag != DEFAULT_TAG[fallback]:
                    meta["bpmn"] = tag
                else:
                    meta.pop("bpmn", None)
                try:
                    plain = NODE_CLASSES[fallback].model_validate({**keep, "kind": fallback, "metadata": meta})
                except ValidationError as again:  # the fault is in what even a placeholder keeps (e.g. the id)
                    message = _pydantic_message(again)
            if plain is None:
                self.dropped[ident] = message
                self.note("unsupported", el, message + ("; left out" if self.lenient else ""))
                return None
            self.note("unsupported", el, message + (f"; imported as a plain {fallback.replace('_', ' ')}"
                                                    if self.lenient else ""))
            return plain

    def _data_children(self, el: etree._Element) -> None:
        tags = sorted({local(c) for c in el if local(c) in DATA_CHILDREN})
        if not tags:
            return
        mapped = any(c.find(f".//{b('assignment')}") is not None or c.find(f".//{b('transformation')}") is not None
                     for c in el if local(c) in DATA_CHILDREN)
        if mapped:
            self.note("warning", el, "data input/output associations with assignments or transformations are not "
                      "imported: the values they compute are not set")
        else:
            self.note("info", el, f"data inputs/outputs not imported ({', '.join(tags)}): variables are global")

    def _classify(self, el: etree._Element, tag: str, data: dict[str, Any], vendor: VendorRead,
                  scope: str | None) -> tuple[str | None, str | None, str | None]:
        """(kind, why unsupported, placeholder kind). Fills ``data`` with the kind's fields."""
        if tag in EVENT_TAGS:
            return self._event(el, tag, data, vendor, scope)
        if tag == "exclusiveGateway" or tag == "inclusiveGateway":
            if el.get("default"):
                data["default"] = ref(el.get("default"))
            return ("exclusive_gateway" if tag == "exclusiveGateway" else "inclusive_gateway"), None, None
        if tag == "parallelGateway":
            return "parallel_gateway", None, None
        if tag == "eventBasedGateway":
            if (el.get("instantiate") or "").lower() == "true" or el.get("eventGatewayType") == "Parallel":
                return None, "an instantiating or parallel event-based gateway is not supported", "event_gateway"
            return "event_gateway", None, None
        if tag == "complexGateway":
            return None, "complexGateway is not supported", "inclusive_gateway"
        if el.get("default") and tag in ("task", "manualTask", "userTask", "serviceTask", "scriptTask", "subProcess",
                                         "businessRuleTask"):
            data["default"] = ref(el.get("default"))  # BPMN 2.0 §10.3.1: taken when no conditional flow holds
        elif el.get("default"):
            self.note("unsupported", el, f"a default flow on an activity ({ref(el.get('default'))!r}) is not "
                      "supported" + ("; the flow is imported without its default role" if self.lenient else ""))
        if tag in ("task", "manualTask"):
            return "task", None, None
        if tag == "userTask":
            extensions.user_task(el, vendor)
            return "user_task", None, None
        if tag == "sendTask" and el.get("messageRef") and not self._has_implementation(el, vendor) \
                and not self._has_boundary(el):
            # BPMN 2.0 §10.3.3: a send task sends its message and completes, like a message throw event
            self._message_of(el, el, data)
            return "message_throw", None, None
        if tag in ("serviceTask", "sendTask"):
            found = extensions.agent(el, vendor)
            extensions.retry(el, vendor)
            own, _, _ = own_fields(el)
            if found:
                data["agent"] = found
            elif not (own and (own.get("agent") or own.get("topic"))) and "topic" not in vendor.values:
                data["agent"] = el.get("id")
                self.note("warning", el, f"no implementation given: the agent is named after the task id "
                          f"{el.get('id')!r}")
            if tag == "sendTask" and el.get("messageRef"):
                self.note("info", el, f"sendTask message {self._message_name(el.get('messageRef'))!r} not kept: "
                          "a send task is imported as a service task")
            return "service_task", None, None
        if tag == "receiveTask":
            data["message"] = self._message_name(el.get("messageRef")) or self._unnamed_message(el)
            return "receive_task", None, None  # an activity (boundary events, compensation, loops), as in BPMN
        if tag == "scriptTask":
            return self._script_task(el, data)
        if tag == "businessRuleTask":
            return self._business_rule_task(el, data, vendor)
        if tag == "callActivity":
            return self._call_activity(el, data, vendor)
        if tag == "subProcess":
            if (el.get("triggeredByEvent") or "").lower() == "true":
                starts = [c for c in el if local(c) == "startEvent"]
                if any(c.find(b("compensateEventDefinition")) is not None for c in starts):
                    inner = len([c for c in el.iter() if local(c) in FLOW_NODE_TAGS]) - 1
                    return None, ("an event sub-process started by compensation is not supported "
                                  f"({inner} inner elements not imported)"), None
                data["triggered_by_event"] = True
            nodes, flows = self.read_scope(el, el.get("id"))
            data["nodes"], data["flows"] = nodes, flows
            return "sub_process", None, None
        if tag == "transaction":
            if (el.get("method") or "##Compensate").strip() not in ("##Compensate", "##Any", ""):
                self.note("info", el, f"transaction method {el.get('method')!r} is not kept: a cancelled "
                          "transaction compensates what completed in it (##Compensate)")
            nodes, flows = self.read_scope(el, el.get("id"))
            data["nodes"], data["flows"], data["transaction"] = nodes, flows, True
            return "sub_process", None, None
        if tag == "adHocSubProcess":
            return self._ad_hoc(el, data, vendor)
        return None, f"<{tag}> is not supported", None

    def _event(self, el: etree._Element, tag: str, data: dict[str, Any], vendor: VendorRead,
               scope: str | None) -> tuple[str | None, str | None, str | None]:
        defs = [c for c in el if local(c).endswith("EventDefinition")]
        for ref_el in el.findall(b("eventDefinitionRef")):
            target = self.element(ref(ref_el.text))
            if target is not None:
                defs.append(target)
        kinds = [local(d).removesuffix("EventDefinition") for d in defs]
        placeholder = {"startEvent": "start", "endEvent": "end", "boundaryEvent": None,
                       "intermediateThrowEvent": "intermediate_throw",
                       "implicitThrowEvent": "intermediate_throw"}.get(tag, "task")
        if len(kinds) > 1:
            return None, f"an event with several triggers ({', '.join(kinds)}) is not supported", placeholder
        trigger = kinds[0] if kinds else "none"
        definition = defs[0] if defs else None
        if tag == "startEvent":
            if scope is None:
                self.start_variables.extend(extensions.start_variables(el, vendor))
            in_esp = scope is not None and (self.element(scope) is not None) and \
                (self.element(scope).get("triggeredByEvent") or "").lower() == "true"
            if in_esp and (el.get("isInterrupting") or "true").lower() == "false" and trigger != "error":
                data["interrupting"] = False
            if trigger == "none":
                return "start", None, None
            if in_esp and trigger == "error":
                code = self._error_code(definition)
                if code is not None:
                    data["error_code"] = code
                return "error_start", None, None
            if in_esp and trigger == "escalation":
                code = self._escalation_code(definition, el, throws=False)
                if code is not None:
                    data["escalation_code"] = code
                return "escalation_start", None, None
            if trigger == "conditional":  # inside an event sub-process, or Engine.evaluate_conditions at the top
                return self._conditional(definition, data, placeholder, "conditional_start")
            if trigger == "timer":
                found = self._timer(definition, data, "timer_start", placeholder)
                if found[0] == "timer_start" and not in_esp and "duration" in data.get("timer", {}):
                    return None, "a timer start needs a date or a cycle (a duration has nothing to count from)", \
                        placeholder
                if found[0] == "timer_start" and not in_esp and Timer(**data["timer"]).expression is not None:
                    return None, (f"{Timer(**data['timer']).expression!r} is an expression, and a timer start event "
                                  "of a process has no variables to evaluate it against: write the date or cycle"), \
                        placeholder
                return found
            if trigger == "message":
                self._message_of(definition, el, data, correlates=in_esp)
                return "message_start", None, None
            if trigger == "signal":
                data["signal"] = self._signal_name(definition, el)
                return "signal_start", None, None
        elif tag == "endEvent":
            if trigger == "none":
                return "end", None, None
            if trigger == "terminate":
                return "terminate_end", None, None
            if trigger == "error":
                code = self._error_code(definition)
                if code is None:
                    code = el.get("name") or el.get("id")
                    self.note("warning", el, f"error end event without errorRef: throws the code {code!r}")
                data["error_code"] = code
                return "error_end", None, None
            if trigger == "message":
                self._message_of(definition, el, data)
                return "message_throw", None, None
            if trigger == "compensate":
                return self._compensate_throw(definition, el, data)
            if trigger == "signal":
                data["signal"] = self._signal_name(definition, el)
                return "signal_end", None, None
            if trigger == "escalation":
                data["escalation_code"] = self._escalation_code(definition, el, throws=True)
                return "escalation_end", None, None
            if trigger == "cancel":
                return "cancel_end", None, None
        elif tag in ("intermediateCatchEvent",):
            if trigger == "timer":
                return self._timer(definition, data, "timer_catch", placeholder)
            if trigger == "message":
                self._message_of(definition, el, data)
                return "message_catch", None, None
            if trigger == "link":
                return self._link(definition, el, data, "link_catch")
            if trigger == "conditional":
                return self._conditional(definition, data, placeholder)
            if trigger == "signal":
                data["signal"] = self._signal_name(definition, el)
                return "signal_catch", None, None
            if trigger == "none":
                self.note("warning", el, "an intermediate catch event without a trigger waits for nothing: "
                          "imported as a pass-through task")
                return "task", None, None
        elif tag in ("intermediateThrowEvent", "implicitThrowEvent"):
            if trigger == "none":
                return "intermediate_throw", None, None
            if trigger == "link":
                return self._link(definition, el, data, "link_throw")
            if trigger == "message":
                self._message_of(definition, el, data)
                return "message_throw", None, None
            if trigger == "compensate":
                return self._compensate_throw(definition, el, data)
            if trigger == "signal":
                data["signal"] = self._signal_name(definition, el)
                return "signal_throw", None, None
            if trigger == "escalation":
                data["escalation_code"] = self._escalation_code(definition, el, throws=True)
                return "escalation_throw", None, None
        elif tag == "boundaryEvent":
            attached = ref(el.get("attachedToRef"))
            if not attached:
                self.note("error", el, "a boundary event needs attachedToRef")
                return None, "", None
            target = self.element(attached)
            if target is None:
                self.note("error", el, f"attachedToRef {attached!r} names no element in the file")
                return None, "", None
            if target.getparent() is not el.getparent():
                self.note("error", el, f"attached to {attached!r}, which is in another (sub-)process")
                return None, "", None
            if local(target) not in ACTIVITY_TAGS:
                self.note("error", el, f"attached to {attached!r}, a <{local(target)}>, not an activity")
                return None, "", None
            data["attached_to"] = attached
            interrupting = (el.get("cancelActivity") or "true").lower() != "false"
            if trigger == "timer":
                data["interrupting"] = interrupting
                return self._timer(definition, data, "boundary_timer", None)
            if trigger == "error":
                code = self._error_code(definition)
                if code is not None:
                    data["error_code"] = code
                return "boundary_error", None, None
            if trigger == "message":
                data["interrupting"] = interrupting
                self._message_of(definition, el, data)
                return "boundary_message", None, None
            if trigger == "signal":
                data["interrupting"] = interrupting
                data["signal"] = self._signal_name(definition, el)
                return "boundary_signal", None, None
            if trigger == "conditional":
                data["interrupting"] = interrupting
                return self._conditional(definition, data, None, "boundary_conditional")
            if trigger == "cancel":  # always interrupting (BPMN 2.0 §10.4.3), whatever cancelActivity says
                if not interrupting:
                    self.note("warning", el, "a cancel boundary event always interrupts its transaction: "
                              "cancelActivity=\"false\" is ignored")
                return "boundary_cancel", None, None
            if trigger == "escalation":
                data["interrupting"] = interrupting
                code = self._escalation_code(definition, el, throws=False)
                if code is not None:
                    data["escalation_code"] = code
                return "boundary_escalation", None, None
        where = {"startEvent": "start", "endEvent": "end", "boundaryEvent": "boundary"}.get(tag, "intermediate")
        article = "an" if trigger[0] in "aeiou" else "a"
        return None, f"{article} {trigger} {where} event is not supported", placeholder

    def _loop_characteristics(self, el: etree._Element, loop: etree._Element, data: dict[str, Any]) -> str | None:
        """Fill ``multi_instance`` or ``loop`` from ``<multiInstanceLoopCharacteristics>`` (BPMN's loopCardinality,
        loopDataInputRef/inputDataItem, loopDataOutputRef/outputDataItem, completionCondition; Camunda 7's
        ``collection``/``elementVariable``; Zeebe's ``loopCharacteristics``) or ``<standardLoopCharacteristics>``
        (testBefore, loopMaximum, loopCondition). Returns why it cannot run, or None."""
        def formal(tag: str) -> tuple[str | None, str | None]:
            child = loop.find(b(tag))
            text = "".join(child.itertext()).strip() if child is not None else ""
            if not text:
                return None, None
            value, note, why = conversions.condition(text)
            if note:
                self.note("info", el, f"{tag} {note}")
            return value, None if value is not None else f"{tag} {text!r} {why}"

        def name_of(child: etree._Element | None) -> str | None:
            if child is None:
                return None
            value = (child.get("name") or child.get("id") or "".join(child.itertext())).strip()
            return value or None

        def unwrap(text: str | None) -> str | None:
            if not text:
                return None
            text = text.strip()
            match = re.match(r"^[$#]\{(?P<body>.*)\}$", text, re.DOTALL)
            return (match.group("body") if match else text.removeprefix("=")).strip() or None

        if local(loop) == "standardLoopCharacteristics":
            spec: dict[str, Any] = {}
            if (loop.get("testBefore") or "").lower() == "true":
                spec["test_before"] = True
            maximum = (loop.get("loopMaximum") or "").strip()
            if maximum:
                if not maximum.isdigit():
                    return f"loopMaximum {maximum!r} is not a whole number"
                spec["maximum"] = int(maximum)
            condition, why = formal("loopCondition")
            if why:
                return why
            if condition is not None:
                spec["condition"] = condition
            if condition is None and "maximum" not in spec:
                return "a standard loop with neither loopCondition nor loopMaximum never ends"
            data["loop"] = spec
            return None
        spec = {}
        if (loop.get("isSequential") or "").lower() == "true":
            spec["sequential"] = True
        zeebe = next((c for c in extensions.extension_elements(loop)
                      if etree.QName(c).localname == "loopCharacteristics"), None)
        vendor = {k: v for k, v in ((etree.QName(a).localname, v) for a, v in loop.attrib.items())
                  if k in ("collection", "elementVariable")}
        own = (own_fields(el)[0] or {}).get("multi_instance")  # our export keeps the collections there
        own = own if isinstance(own, dict) else {}
        collection = own.get("collection") or (unwrap(zeebe.get("inputCollection")) if zeebe is not None else None) \
            or unwrap(vendor.get("collection")) or name_of(loop.find(b("loopDataInputRef")))
        element = (zeebe.get("inputElement") if zeebe is not None else None) or vendor.get("elementVariable") \
            or name_of(loop.find(b("inputDataItem")))
        output = own.get("output_collection") or (zeebe.get("outputCollection") if zeebe is not None else None) \
            or name_of(loop.find(b("loopDataOutputRef")))
        output_element = own.get("output_element") \
            or (unwrap(zeebe.get("outputElement")) if zeebe is not None else None) \
            or name_of(loop.find(b("outputDataItem")))
        cardinality, why = formal("loopCardinality")
        if why:
            return why
        completion, why = formal("completionCondition")
        if why:
            return why
        if cardinality is not None:
            spec["cardinality"] = cardinality
        elif collection is not None:
            value, _, why = conversions.condition(collection)
            if value is None:
                return f"input collection {collection!r} {why}"
            spec["collection"] = value
            if element:
                spec["element_variable"] = element.strip()
        else:
            return "a multi-instance activity with neither loopCardinality nor an input collection: how many " \
                   "instances to run is not said"
        if output and output_element:
            spec["output_collection"], spec["output_element"] = output.strip(), output_element
        elif output or output_element:
            self.note("warning", el, "an output collection needs its output element (and the element its "
                      "collection): the outputs are not collected")
        if completion is not None:
            spec["completion_condition"] = completion
        data["multi_instance"] = spec
        return None

    def _ad_hoc(self, el: etree._Element, data: dict[str, Any], vendor: VendorRead
                ) -> tuple[str | None, str | None, str | None]:
        """``adHocSubProcess`` (BPMN 2.0 §10.3.6): its inner scope, ``ordering``, ``cancelRemainingInstances``,
        ``completionCondition`` (read like a flow's condition) and Zeebe's ``zeebe:adHoc
        activeElementsCollection`` (leading ``=`` dropped) -> ``active_elements``."""
        from engine.bpmn.extensions import _vendor_children

        nodes, flows = self.read_scope(el, el.get("id"))
        data["nodes"], data["flows"] = nodes, flows
        if (el.get("ordering") or "Parallel") == "Sequential":
            data["ordering"] = "sequential"
        if (el.get("cancelRemainingInstances") or "true").strip().lower() == "false":
            data["cancel_remaining"] = False
        child = el.find(b("completionCondition"))
        text = "".join(child.itertext()).strip() if child is not None else ""
        if text:
            value, note, why = conversions.condition(text)
            if note:
                self.note("info", el, f"completionCondition {note}")
            if value is None:
                return None, f"completionCondition {text!r} {why}", "sub_process"
            data["completion_condition"] = value
        zeebe = _vendor_children(el, "adHoc", (ZEEBE,))
        if zeebe:
            vendor.used.add(f"{ZEEBE}|adHoc")
            collection = (zeebe[0].get("activeElementsCollection") or "").strip()
            if collection:
                value, _, why = conversions.condition(collection)
                if value is None:
                    return None, f"zeebe:adHoc activeElementsCollection {collection!r} {why}", "sub_process"
                data["active_elements"] = value
        return "ad_hoc_sub_process", None, None

    def _call_activity(self, el: etree._Element, data: dict[str, Any], vendor: VendorRead
                       ) -> tuple[str | None, str | None, str | None]:
        """``calledElement`` (or Zeebe's ``calledElement processId``), Camunda's ``calledElementBinding`` /
        ``calledElementVersion`` and ``in``/``out`` mappings (``variables="all"``, ``source``, ``sourceExpression``),
        Zeebe's ``ioMapping``."""
        from engine.bpmn.extensions import _vendor_children

        called = (el.get("calledElement") or "").strip()
        zeebe = _vendor_children(el, "calledElement", (ZEEBE,))
        if zeebe:
            vendor.used.add(f"{ZEEBE}|calledElement")
            called = called or (zeebe[0].get("processId") or "").removeprefix("=").strip()
        if not called:
            given = el.get("calledElement") is not None or bool(zeebe)
            what = "its calledElement is empty" if given else "it names no calledElement"
            return None, f"call activity {_named(el)}: {what}, so which process it calls is not said", "task"
        data["called_element"] = called
        binding = extensions._attr(el, "calledElementBinding", vendor)
        if binding in ("latest", "deployment"):
            data["binding"] = binding
        elif binding == "version":
            version = extensions._attr(el, "calledElementVersion", vendor) or ""
            if not version.strip().isdigit():
                return None, f"callActivity binding 'version' with calledElementVersion {version!r}: not a number", \
                    "task"
            data["binding"], data["version"] = "version", int(version)
        elif binding:
            return None, f"callActivity calledElementBinding {binding!r} is not supported (latest, deployment or " \
                         "version)", "task"
        for direction, key in (("in", "inputs"), ("out", "outputs")):
            found = _vendor_children(el, direction)
            if not found:
                continue
            vendor.used.update(f"{etree.QName(c).namespace}|{direction}" for c in found)
            if any((c.get("variables") or "") == "all" for c in found):
                continue  # every variable: the default (None)
            mapping: dict[str, str] = {}
            for c in found:
                target = (c.get("target") or "").strip()
                source = (c.get("sourceExpression") or c.get("source") or "").strip()
                value, _, why = conversions.condition(source) if source else (None, None, "is empty")
                if not target or value is None:
                    return None, f"camunda:{direction} {source!r} -> {target!r}: {why or 'no target'}", "task"
                mapping[target] = value
            data[key] = mapping
        io = _vendor_children(el, "ioMapping", (ZEEBE,))
        if io:
            vendor.used.add(f"{ZEEBE}|ioMapping")
            for direction, key in (("input", "inputs"), ("output", "outputs")):
                pairs = [c for c in io[0] if isinstance(c.tag, str) and etree.QName(c).localname == direction]
                if pairs:
                    mapping = {}
                    for c in pairs:
                        value, _, why = conversions.condition(c.get("source") or "")
                        if value is None or not c.get("target"):
                            return None, f"zeebe:{direction} {c.get('source')!r}: {why or 'no target'}", "task"
                        mapping[c.get("target", "")] = value
                    data[key] = mapping
        return "call_activity", None, None

    def _script_task(self, el: etree._Element, data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """A script in the safe language (assignments of safe expressions) is imported whatever language the file
        names, with a finding that says so; any other script is refused with the reason."""
        from engine.model.scripts import check_script

        fmt = el.get("scriptFormat")
        script_el = el.find(b("script"))
        text = "".join(script_el.itertext()) if script_el is not None else ""
        reason = check_script(text)
        if reason is not None and _prints_only(text):
            data["_metadata"] = {"script": text, **({"script_format": fmt} if fmt else {})}
            self.note("warning", el, f"the script ({fmt or 'no scriptFormat'}) only prints "
                      f"({text.strip().splitlines()[0][:80]!r}): imported as a task that does nothing, since "
                      "printing changes no process state; the script is kept and exported again")
            return "task", None, None
        if reason is not None:
            return None, f"scriptTask ({fmt or 'no scriptFormat'}) cannot run: {reason}", "task"
        data["script"] = text
        if fmt:
            data["script_format"] = fmt
            self.note("info", el, f"{fmt} script read as the safe expression language (assignments of "
                      "expressions); it is not run as " + fmt)
        return "script_task", None, None

    def _business_rule_task(self, el: etree._Element, data: dict[str, Any], vendor: VendorRead
                            ) -> tuple[str | None, str | None, str | None]:
        """A business rule task is a service task whose agent is the decision (``metadata['bpmn']`` keeps the
        element, so an export writes a businessRuleTask again). Camunda 8 lets a job worker implement it
        (``zeebe:taskDefinition``); the decision a Camunda file names (``camunda:decisionRef``,
        ``zeebe:calledDecision decisionId``) becomes the agent name, resolved at deploy like any agent: this
        engine evaluates no DMN itself. ``camunda:resultVariable`` / ``resultVariable`` is its output variable."""
        own, _, _ = own_fields(el)
        found = extensions.agent(el, vendor)
        extensions.retry(el, vendor)
        decision = extensions.decision(el, vendor)
        result = decision.get("result")
        if found is None and decision.get("ref"):
            found = decision["ref"]
            self.note("warning", el, f"the decision {found!r} is run by the agent of that name (this engine "
                      "evaluates no DMN): register an agent that returns the decision's result")
        if found:
            data["agent"] = found
        elif not (own and (own.get("agent") or own.get("topic"))) and "topic" not in vendor.values:
            data["agent"] = el.get("id")
            self.note("warning", el, f"no decision or implementation given: the agent is named after the task id "
                      f"{el.get('id')!r}")
        if result and re.match(r"^[A-Za-z_]\w*$", result) and not (own and "output_variables" in own):
            data["output_variables"] = [result]
        return "service_task", None, None

    def _has_implementation(self, el: etree._Element, vendor: VendorRead) -> bool:
        """Does the send task name code that sends (a vendor class, expression, topic or job type, or our
        ``waooaw:fields`` agent/topic)? Then it is a service task whose code sends the message."""
        probe = VendorRead()
        if extensions.agent(el, probe) is not None or "topic" in probe.values or "topic" in vendor.values:
            return True
        own, _, _ = own_fields(el)
        return bool(own and (own.get("agent") or own.get("topic")))

    def _has_boundary(self, el: etree._Element) -> bool:
        parent = el.getparent()
        return parent is not None and any(local(c) == "boundaryEvent" and ref(c.get("attachedToRef")) == el.get("id")
                                          for c in parent)

    def _conditional(self, definition: etree._Element | None, data: dict[str, Any], placeholder: str | None,
                     kind: str = "conditional_catch") -> tuple[str | None, str | None, str | None]:
        """A conditional catch event's ``condition`` is read like a flow's condition (JUEL/FEEL rewrites)."""
        cond_el = definition.find(b("condition")) if definition is not None else None
        text = "".join(cond_el.itertext()) if cond_el is not None else ""
        if not text.strip():
            return None, "a conditional event without a condition", placeholder
        condition, note, reason = conversions.condition(text)
        if condition is None:
            return None, f"condition {text.strip()!r} cannot be used: {reason}", placeholder
        if note:
            assert definition is not None
            self.findings.append(Finding("info", "condition", definition.getparent().get("id"),
                                         cond_el.sourceline if cond_el is not None else None, note))
        data["condition"] = condition
        return kind, None, None

    def _link(self, definition: etree._Element | None, el: etree._Element, data: dict[str, Any], kind: str
              ) -> tuple[str | None, str | None, str | None]:
        """A link event's name is its linkEventDefinition's ``name`` (BPMN 2.0 §10.5.6); modelers that leave
        it out pair by the event's own name, which is used then, with a warning."""
        name = (definition.get("name") if definition is not None else None) or ""
        if not name.strip():
            name = el.get("name") or el.get("id") or ""
            self.note("warning", el, f"a link event without a link name: paired by the event's name {name!r}")
        data["link"] = name.strip()
        return kind, None, None

    def _compensate_throw(self, definition: etree._Element | None, el: etree._Element, data: dict[str, Any]
                          ) -> tuple[str | None, str | None, str | None]:
        activity = ref(definition.get("activityRef")) if definition is not None else ""
        if activity:
            if self.element(activity) is None:
                self.note("error", el, f"activityRef {activity!r} names no element in the file")
                return None, "", None
            data["activity"] = activity
        return "compensation_throw", None, None

    def _timer(self, definition: etree._Element | None, data: dict[str, Any], kind: str,
               placeholder: str | None) -> tuple[str | None, str | None, str | None]:
        assert definition is not None
        for child in definition:
            name = local(child)
            if name in ("timeDuration", "timeDate", "timeCycle"):
                timer, note, reason = conversions.timer(name, "".join(child.itertext()))
                if reason:
                    return None, reason, placeholder
                assert timer is not None
                if note:
                    self.findings.append(Finding("info", name, definition.getparent().get("id"), child.sourceline,
                                                 note))
                data["timer"] = timer.model_dump(exclude_none=True)
                return kind, None, None
        return None, "the timer is empty: its timerEventDefinition has no timeDuration, timeDate or timeCycle", \
            placeholder

    def _message_name(self, message_ref: str | None) -> str | None:
        if not message_ref:
            return None
        msg = self.element(ref(message_ref))
        if msg is None:
            return ref(message_ref)
        return _one_line(msg.get("name") or msg.get("id")) or None

    def _unnamed_message(self, el: etree._Element) -> str:
        name = _one_line(el.get("name") or el.get("id")) or "message"
        self.note("warning", el, f"no message given: the message is named {name!r} after the element")
        return name

    def _message_of(self, definition: etree._Element | None, el: etree._Element, data: dict[str, Any],
                    correlates: bool = True) -> None:
        """Set ``message`` (the message's name) and, where the kind has one, ``correlation_key``."""
        message_ref = definition.get("messageRef") if definition is not None else None
        name = self._message_name(message_ref)
        if message_ref and self.element(ref(message_ref)) is None:
            self.note("error", el, f"messageRef {ref(message_ref)!r} names no element in the file")
        data["message"] = name if name is not None else self._unnamed_message(el)
        msg = self.element(ref(message_ref)) if message_ref else None
        if definition is not None:
            self._message_payload(definition, el, data)
        key = extensions.correlation_key(el, msg, VendorRead())
        if key and correlates:
            condition, _, reason = conversions.condition(key)
            if condition is None:
                self.note("warning", el, f"correlation key {key!r} cannot be used ({reason}); not imported")
            else:
                data["correlation_key"] = condition

    def _message_payload(self, definition: etree._Element, el: etree._Element, data: dict[str, Any]) -> None:
        """SpiffWorkflow's payload expression (throw) and result variable (catch): imported, or named."""
        expression, variable = extensions.message_payload(definition)
        throws = local(el) in ("endEvent", "intermediateThrowEvent", "implicitThrowEvent")
        if expression is not None:
            reason = expressions.check(expression)
            if not throws:
                self.note("warning", el, f"a payload expression {expression!r} on a catching event is ignored")
            elif reason is not None:
                self.note("unsupported", el, f"message payload expression {expression!r} {reason}"
                          + ("; the message is sent without it" if self.lenient else ""))
            else:
                data["payload_expression"] = expression
        if variable is not None:
            if throws:
                self.note("warning", el, f"a result variable {variable!r} on a throwing event is ignored")
            elif not re.match(r"^[A-Za-z_]\w*$", variable):
                self.note("unsupported", el, f"result variable {variable!r} is not a variable name"
                          + ("; the payload's fields become variables" if self.lenient else ""))
            else:
                data["result_variable"] = variable

    def _signal_name(self, definition: etree._Element | None, el: etree._Element) -> str:
        """The signal's name: its ``<signal name>`` (else the signal's id); without a signalRef, the event's name,
        with a warning (BPMN 2.0 §10.5.4: signals are matched by name)."""
        signal_ref = ref(definition.get("signalRef")) if definition is not None else ""
        if signal_ref:
            signal = self.element(signal_ref)
            if signal is None:
                self.note("error", el, f"signalRef {signal_ref!r} names no element in the file")
                return signal_ref
            return _one_line(signal.get("name") or signal.get("id")) or signal_ref
        name = _one_line(el.get("name") or el.get("id")) or "signal"
        self.note("warning", el, f"no signal given: the signal is named {name!r} after the event")
        return name

    def _escalation_code(self, definition: etree._Element | None, el: etree._Element, throws: bool) -> str | None:
        """The ``escalationCode`` of the escalation referred to (else its name or id). A catch without one catches
        every escalation; a throw without one throws the event's name, with a warning."""
        escalation_ref = ref(definition.get("escalationRef")) if definition is not None else ""
        if escalation_ref:
            escalation = self.element(escalation_ref)
            if escalation is None:
                self.note("error", el, f"escalationRef {escalation_ref!r} names no element in the file")
                return escalation_ref
            code = _one_line(escalation.get("escalationCode") or escalation.get("name") or escalation.get("id"))
            if code:
                return code
        if not throws:
            return None
        code = el.get("name") or el.get("id") or "escalation"
        self.note("warning", el, f"escalation event without an escalation code: throws the code {code!r}")
        return code

    def _error_code(self, definition: etree._Element | None) -> str | None:
        error_ref = definition.get("errorRef") if definition is not None else None
        if not error_ref:
            return None
        err = self.element(ref(error_ref))
        if err is None:
            return ref(error_ref)
        return _one_line(err.get("errorCode") or err.get("name") or err.get("id")) or None

    # --- variables of a file that is not ours ---------------------------------------------------

    def _foreign_variables(self, process: etree._Element, nodes: list[Node]) -> list[dict[str, Any]]:
        """Declare what a foreign file uses: its start form fields, then every name a condition, a correlation
        key or a timer's expression reads and every variable a user task's form sets (our validation only lets
        expressions read declared variables; completion accepts declared variables beyond the form)."""
        declared: dict[str, dict[str, Any]] = {}
        for var in self.start_variables:
            declared.setdefault(var["name"], var)
        read: set[str] = set()
        for flow in self.flows_seen:
            if flow.condition:
                read |= expressions.variable_names(flow.condition)
        pending = list(nodes)
        while pending:
            node = pending.pop()
            key = getattr(node, "correlation_key", None)
            if key:
                read |= expressions.variable_names(key)
            for form_field in getattr(node, "form", None) or []:  # what completing a user task sets
                read.add(form_field.variable or form_field.name)
            for source in (getattr(node, "inputs", None) or {}).values():  # a call activity's input mappings
                if isinstance(source, str):
                    read |= expressions.variable_names(source)
            if getattr(node, "payload_expression", None):
                read |= expressions.variable_names(node.payload_expression)  # type: ignore[attr-defined]
            timer = getattr(node, "timer", None)
            if timer is not None and timer.expression is not None:  # evaluated when the timer is armed
                read |= expressions.variable_names(timer.expression)
            if getattr(node, "result_variable", None):
                read.add(node.result_variable)  # type: ignore[attr-defined]
            pending.extend(getattr(node, "nodes", []))
        for name in sorted(read):
            if name not in declared and re.match(r"^[A-Za-z_]\w*$", name):
                declared[name] = {"name": name}
        if declared:
            self.note("info", process, f"declared {len(declared)} process variables from start forms and the "
                      f"names expressions read: {', '.join(declared)}", element="process")
        return list(declared.values())


# One print statement: Groovy's println, Java's System.out.println, JavaScript's console.log, Python's print.
_PRINT_LINE = re.compile(r"^\s*(?:println\b.*|(?:System\.out\.print(?:ln)?|console\.log|print)\s*\(.*\)\s*;?)\s*$")


def _prints_only(text: str) -> bool:
    """Is the script nothing but print statements (and comments)? Printing writes to the console of the engine
    that runs it, which is no part of a process's state: such a script task is a task that does nothing."""
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.strip().startswith(("//", "#"))]
    return bool(lines) and all(_PRINT_LINE.match(line) for line in lines)


def _fallback(kind: str) -> str | None:
    """What a node becomes in a lenient import when its fields are unusable."""
    if kind in ("timer_start", "message_start", "signal_start", "start", "error_start", "escalation_start",
                "conditional_start"):
        return "start"
    if kind in ("end", "terminate_end", "error_end", "signal_end", "escalation_end"):
        return "end"
    if kind.startswith("boundary_"):
        return None
    if kind in ("exclusive_gateway", "inclusive_gateway", "parallel_gateway", "event_gateway"):
        return None
    return "task"


def _documentation(el: etree._Element) -> str | None:
    texts = ["".join(d.itertext()).strip() for d in el.findall(b("documentation"))]
    texts = [t for t in texts if t]
    return "\n\n".join(texts) if texts else None


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"] if not (isinstance(p, str) and p in NODE_CLASSES))
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def read(text: str | bytes, source: str | None = None, lenient: bool = False,
         process_id: str | None = None) -> ImportResult:
    root = parse_xml(text, source)
    restore_ids(root)  # the model's own ids, where our exporter wrote them in ASCII for bpmn.io
    labels.drop_generated(root)  # labels our exporter made up for other modelers (names the model leaves empty)
    return Reader(root, source, lenient, process_id).read()


__all__ = ["Reader", "parse_xml", "read"]


def _one_line(text: str | None) -> str | None:
    """A message, signal, error or escalation name as the model takes it (printable text, ``engine.model.ids``):
    modelers write labels over several lines (``End Event 1&#10;Message``), a name is their words on one line."""
    if not text or not any(c in text for c in "\n\r\t"):
        return text  # a one-line name is kept exactly as written (an export reads back equal)
    return " ".join(text.split())
