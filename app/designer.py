"""The Designer's logic, without Streamlit: what the canvas holds, what is wrong with it, and the edits sent to it.

The canvas (bpmn-js, ``app/components/bpmn_canvas``) holds the design as BPMN XML; it is the truth while a
design is open. Every change it reports is read back with the project's BPMN importer (lenient, so an
unfinished drawing still reads) and validated; each problem names the element it is about so the canvas can
mark it. The property panel edits the *model* (a node's pydantic fields) and turns the difference into small
canvas commands (:func:`node_commands`), so an edit is one undoable step and nothing is re-imported.

    session = DesignerSession.open(definition)          # or .blank("my_design")
    session.receive(value_from_canvas)                  # after each canvas event
    session.reading.definition, session.reading.problems
    session.send(node_commands(old_node, new_node))     # property panel edit
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.palette import PALETTE
from engine.bpmn import typed
from engine.errors import DefinitionError
from engine.model import ProcessDefinition
from engine.model.nodes import LOOP_VARIABLES, Node, SequenceFlow

if TYPE_CHECKING:
    from app.workspace import Deployment

# Fields the panel does not show (structure is drawn on the canvas; metadata is the drawing itself).
HIDDEN_FIELDS = {"id", "kind", "metadata", "nodes", "flows", "attached_to", "source", "target"}


def hidden_fields(node: Node) -> set[str]:
    """Fields of ``node`` the panel leaves out because they do not apply to what it is: an ad-hoc sub-process is
    never an event sub-process or a transaction (the model refuses both), an event sub-process never a transaction
    and a transaction never an event sub-process; an event sub-process has no outgoing flows to pick a default
    from. A plain sub-process shows both check boxes (either turns it into that kind)."""
    if node.kind == "ad_hoc_sub_process":
        return {"triggered_by_event", "transaction"}
    if getattr(node, "triggered_by_event", False):
        return {"transaction", "default"}
    if getattr(node, "transaction", False):
        return {"triggered_by_event"}
    return set()


# Node fields carried by standard BPMN on the canvas, each set by its own command.
STANDARD_COMMANDS = {"name": "name", "message": "message", "error_code": "error", "interrupting": "interrupting",
                     "default": "default"}
_QUOTED = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class DesignProblem:
    """A problem with the element it is about (None: the whole design)."""

    element: str | None
    severity: str  # "error" | "warning" | "info"
    message: str
    where: str

    def as_marker(self) -> dict[str, str]:
        return {"id": self.element or "", "severity": self.severity, "message": self.message}


@dataclass
class Reading:
    """What the canvas's XML means: the definition (None when it cannot be read) and every problem."""

    definition: ProcessDefinition | None
    problems: list[DesignProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[DesignProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def deployable(self) -> bool:
        """The engine deploys only designs without errors."""
        return self.definition is not None and not self.errors


def _element_of(where: str, ids: set[str]) -> str | None:
    if where in ids:
        return where
    for found in _QUOTED.findall(where):
        if found in ids:
            return found
    head = re.split(r"[\s.\[]", where, maxsplit=1)[0]
    return head if head in ids else None


def element_ids(xml: str) -> set[str]:
    """Every id in the XML (cheap, for placing problems on elements)."""
    return set(re.findall(r'\sid="([^"]+)"', xml))


# The importer's note that a validation error makes the import undeployable: the Designer lists that error itself.
DEPLOY_REFUSES = "imported, but Engine.deploy refuses it"
_UNUSABLE_CONDITION = re.compile(r"^condition (?P<text>'.*') cannot be used: (?P<why>.*?); imported without a "
                                 r"condition.*$", re.DOTALL)


def _designer_problem(finding: Any, ids: set[str]) -> DesignProblem:
    """An import finding in the Designer's words: a condition that does not parse is an error of the flow (the
    engine would take the flow as if it had none), not an approximation of an import."""
    problem = finding.problem(lenient=True)
    element = finding.id if finding.id in ids else None
    match = _UNUSABLE_CONDITION.match(finding.message)
    if match:
        return DesignProblem(element, "error", f"condition {match['text']} {match['why']}", problem.where)
    return DesignProblem(element, problem.severity, finding.message, problem.where)


def read_canvas(xml: str, source: str = "canvas") -> Reading:
    """Read the canvas's BPMN XML leniently and validate it. Problems from the import (what could not be carried
    over) and from validation are listed together, each tied to its element where it names one."""
    from engine.bpmn import import_bpmn
    from engine.validate import validate

    ids = element_ids(xml)
    try:
        result = import_bpmn(xml, source=source, lenient=True)
    except DefinitionError as exc:
        return Reading(None, [DesignProblem(_element_of(p.where, ids), "error", p.message, p.where)
                              for p in exc.problems])
    problems = [_designer_problem(f, ids) for f in result.findings
                if f.category in ("unsupported", "warning", "error") and not f.message.startswith(DEPLOY_REFUSES)]
    ids |= {n.id for n in result.definition.all_nodes()} | {f.id for f in result.definition.all_flows()}
    unparsed = {f.id for f in result.definition.all_flows() if "condition_text" in f.metadata}
    problems += [DesignProblem(element, p.severity, p.message, p.where) for p in validate(result.definition)
                 if not ((element := _element_of(p.where, ids)) in unparsed and "with no condition" in p.message)]
    problems += unset_condition_variables(result.definition)
    order = {"error": 0, "warning": 1, "info": 2}
    problems.sort(key=lambda p: order.get(p.severity, 3))
    return Reading(result.definition, problems)


def unset_condition_variables(definition: ProcessDefinition) -> list[DesignProblem]:
    """Warnings for variables a flow condition reads that nothing in the design sets: no user task's form field,
    service task's or message's outputs, script, loop or result variable writes them, and they are not declared
    as inputs of the start form (``input: true`` or required). Such a condition takes the same branch for every
    instance unless the starter happens to give the value. Nothing is said when some node may write any name
    (a service task without ``output_variables`` keeps every key its agent returns; a message without
    ``outputs`` copies every payload field)."""
    from engine.model import expressions
    from engine.model.scripts import parse_script

    written: set[str] = {d.name for d in definition.variables if d.input or d.required}
    for node in definition.all_nodes():
        if getattr(node, "agent", None) is not None and not getattr(node, "output_variables", None):
            return []
        if hasattr(node, "outputs") and node.outputs is None and getattr(node, "message", None):
            return []
        written.update(getattr(node, "output_variables", None) or [])
        written.update(getattr(node, "outputs", None) or [])
        for f in getattr(node, "form", None) or []:
            written.update({f.name, getattr(f, "variable", None) or f.name})
        for attr in ("result_variable",):
            if getattr(node, attr, None):
                written.add(getattr(node, attr))
        loop = getattr(node, "multi_instance", None)
        if loop is not None:
            written.update(n for n in (loop.element_variable, loop.output_collection) if n)
        if getattr(node, "script", None):
            with contextlib.suppress(Exception):  # a script that does not parse is reported by validation
                written.update(parse_script(node.script).targets)  # type: ignore[attr-defined]
    declared = {d.name for d in definition.variables} - set(LOOP_VARIABLES)
    problems: list[DesignProblem] = []
    for flow in definition.all_flows():
        if not flow.condition:
            continue
        try:
            names = expressions.variable_names(flow.condition)
        except Exception:  # reported by validation
            continue
        for name in sorted((names & declared) - written):  # an undeclared name is a validation error already
            problems.append(DesignProblem(
                flow.id, "warning", f"the condition reads {name!r}, which nothing in the design sets (no task form "
                f"field, agent output, message or script writes it): every instance takes the same branch unless "
                f"the starter gives it. Add it to a user task's form, or declare it as a start input",
                f"sequenceFlow {flow.id!r}"))
    return problems


def blank_bpmn(process_id: str, name: str | None = None) -> str:
    """An empty design for the canvas: one process, one empty plane."""
    from xml.sax.saxutils import quoteattr

    title = f" name={quoteattr(name)}" if name else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:waooaw="https://waooaw.dev/schema/bpmn/1.0"
  id="{process_id}_definitions" targetNamespace="https://waooaw.dev/processes" exporter="waooaw">
  <bpmn:process id="{process_id}"{title} isExecutable="true" />
  <bpmndi:BPMNDiagram id="{process_id}_diagram">
    <bpmndi:BPMNPlane id="{process_id}_plane" bpmnElement="{process_id}" />
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def to_canvas(definition: ProcessDefinition) -> str:
    """A definition as the canvas opens it: BPMN with its own layout, else a computed one, and only the names the
    definition has. The labels the exporter makes up for other modelers (``engine.bpmn.labels``) are not written:
    on the canvas they would read as names the user typed, and an element drawn now would lack one until the next
    reload. What an unnamed element is called is shown beside it instead (:func:`placeholders`)."""
    from engine.bpmn import to_bpmn

    return to_bpmn(definition, generated_labels=False)


def placeholders(definition: ProcessDefinition | None) -> dict[str, str]:
    """Element id -> what the app calls an unnamed node (``Node.label``: a user task's title, else its id in
    words), drawn on the canvas in grey where its name would be; not for an id a modeler made up
    (``Activity_1wkter0``: its kind in words says no more than its shape)."""
    from engine.model.ids import is_modeler_id

    if definition is None:
        return {}
    return {n.id: n.label for n in definition.all_nodes()
            if not n.name and (getattr(n, "title", None) or not is_modeler_id(n.id))}


def import_upload(name: str, data: bytes, lenient: bool = False) -> tuple[ProcessDefinition, list[str]]:
    """An uploaded BPMN, YAML or JSON file as a definition, and what a lenient BPMN import left out or approximated.

    Strict (default) refuses a BPMN file with anything the model cannot carry (DefinitionError lists each with its
    line); lenient imports the rest. YAML and JSON must load as written. DefinitionError names the problem; a
    file larger than ``max_file_bytes`` is refused before it is parsed.
    """
    from pathlib import Path

    from engine.limits import LimitExceeded, check_file_size
    from engine.model import from_json, from_yaml

    try:  # before parsing, as for a file (Streamlit's server.maxUploadSize stops larger ones in the browser)
        check_file_size(len(data), name)
    except LimitExceeded as exc:
        raise DefinitionError(str(exc), name) from None
    suffix = Path(name).suffix.lower()
    if suffix in (".bpmn", ".bpmn2", ".xml"):
        from engine.bpmn import import_bpmn

        result = import_bpmn(data, source=name, lenient=lenient)
        return result.definition, [str(p) for p in result.warnings]
    if suffix not in (".yaml", ".yml", ".json"):
        raise DefinitionError(f"unknown file type {suffix!r}: upload .bpmn, .yaml or .json", name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", name) from None
    return (from_json(text, name) if suffix == ".json" else from_yaml(text, name)), []


def deployment_note(deployment: Deployment | None, definition: ProcessDefinition | None) -> str:
    """The status line's words for the open design's latest deployed version (``Workspace.deployed``): its number
    and time, and whether the design on the canvas is that content (the version number the design itself carries
    is not shown: the engine numbers versions as it deploys them)."""
    if deployment is None:
        return "not deployed yet"
    when = deployment.deployed_at.strftime("%Y-%m-%d %H:%M UTC")
    if definition is None or deployment.deploys(definition):
        return f"deployed as **version {deployment.version}** ({when})"
    return (f"latest deployed: **version {deployment.version}** ({when}); changed since: deploying it makes "
            f"version {deployment.version + 1}")


# --- commands -------------------------------------------------------------------------------------------------


def own_fields(node: Node) -> dict[str, Any]:
    """The node's fields that travel in our typed extension elements on the canvas (what BPMN has no element
    for; see engine/bpmn/typed.py)."""
    from engine.bpmn.writer import _node_fields

    data = _node_fields(node)
    data.pop("metadata", None)
    compensation = getattr(node, "compensation", None)
    if compensation:
        data["compensation"] = compensation  # drawn by the exporter; on the canvas it travels as a field
    if node.documentation:
        data["documentation"] = node.documentation
    return data


def node_commands(old: Node, new: Node) -> list[dict[str, Any]]:
    """The canvas commands that turn ``old`` into ``new`` (same element)."""
    commands: list[dict[str, Any]] = []
    if new.id != old.id:
        commands.append({"op": "id", "id": old.id, "value": new.id})
    ident = new.id
    for attr, op in STANDARD_COMMANDS.items():
        before, after = getattr(old, attr, None), getattr(new, attr, None)
        if before != after:
            commands.append({"op": op, "id": ident, "value": after})
    timer_old, timer_new = getattr(old, "timer", None), getattr(new, "timer", None)
    if timer_new is not None and timer_new != timer_old:
        commands.append({"op": "timer", "id": ident,
                         "value": {"kind": timer_new.kind, "text": getattr(timer_new, timer_new.kind)}})
    if own_fields(old) != own_fields(new):
        commands.append({"op": "fields", "id": ident,
                         "value": typed.panel_trees(own_fields(new), marked=new.kind == "user_task")})
    return commands


def flow_commands(old: SequenceFlow, new: SequenceFlow, gateway_default: tuple[str, bool, bool] | None = None
                  ) -> list[dict[str, Any]]:
    """Commands for a sequence flow's name and condition; ``gateway_default`` = (gateway id, was the default,
    is the default) when the flow leaves an exclusive or inclusive gateway."""
    commands: list[dict[str, Any]] = []
    if old.name != new.name:
        commands.append({"op": "name", "id": new.id, "value": new.name})
    if old.condition != new.condition:
        commands.append({"op": "condition", "id": new.id, "value": new.condition})
    if gateway_default is not None:
        gateway, was, now = gateway_default
        if was != now:
            commands.append({"op": "default", "id": gateway, "value": new.id if now else None})
    return commands


def process_fields(definition: ProcessDefinition) -> dict[str, Any]:
    """The process's fields that travel in our typed extension elements of the process element."""
    data = definition.to_dict()
    for key in ("id", "name", "nodes", "flows", "metadata"):
        data.pop(key, None)
    return data


def process_commands(old: ProcessDefinition, new: ProcessDefinition) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = []
    if old.name != new.name:
        commands.append({"op": "name", "id": None, "value": new.name})
    if process_fields(old) != process_fields(new):
        commands.append({"op": "fields", "id": None, "value": typed.panel_trees(process_fields(new), marked=True)})
    return commands


# --- readable ids ---------------------------------------------------------------------------------------------

# Where bpmn-js itself refers to a node (it follows an id change there): any other mention is a reference to keep.
_OWN_REFERENCES = re.compile(r'\s(?:id|bpmnElement|sourceRef|targetRef|attachedToRef|default)="(?P<id>[^"]+)"')


def readable_id(name: str, taken: set[str]) -> str | None:
    """A node's id from its name: lower case ASCII words joined by ``_`` (``Check documents`` ->
    ``check_documents``, ``Prüfung`` -> ``prufung``), at most 40 characters, made unique against ``taken``
    (``_2``, ``_3``...); None when the name has no ASCII letter to make one from (``审批``: the id stays)."""
    from engine.bpmn.ids import ascii_id

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")[:40].rstrip("_")
    if not re.search(r"[a-z]", slug):
        return None
    return ascii_id(slug, taken)


def _referenced(xml: str, ident: str) -> bool:
    """Is ``ident`` mentioned in the XML other than where bpmn-js keeps the reference itself?"""
    mentions = len(re.findall(rf"(?<![\w.\-]){re.escape(ident)}(?![\w.\-])", xml))
    own = sum(1 for m in _OWN_REFERENCES.finditer(xml) if m["id"] == ident)
    return mentions > own


def _node_ids(data: Any) -> set[str]:
    """Every node id in a definition's ``to_dict`` (sub-processes included)."""
    found: set[str] = set()
    if isinstance(data, dict):
        if "kind" in data and isinstance(data.get("id"), str):
            found.add(data["id"])
        for value in data.values():
            found |= _node_ids(value)
    elif isinstance(data, list):
        for item in data:
            found |= _node_ids(item)
    return found


# --- the open design ------------------------------------------------------------------------------------------


# Revisions are unique in the process: a design opened in place of another must re-import even when the canvas's
# frame (which remembers the last revision it imported) stays.
_REVISIONS = itertools.count(time.time_ns() // 1_000_000)
# Command and selection seqs never restart either (not per design, not when the server restarts: they start at the
# time in ms): the frame stays on the page when another design is opened or created in the same tab, and skips a
# command whose seq is not above the last it applied; seqs starting at 1 for each design made it drop the new
# design's first edits (and Python, taking the frame's ack back, dropped them too).
_SEQS = itertools.count(time.time_ns() // 1_000_000)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class DesignerSession:
    """One open design: the canvas's XML, what Python has asked of the canvas, and the saved baseline.

    ``revision`` changes when the canvas must re-import ``xml`` (a design opened, the YAML tab edited, an
    upload); ``commands`` are small edits not yet acknowledged by the canvas (each has a ``seq``, unique and
    increasing in the process, so a frame that stays while another design opens never takes one as applied).
    """

    xml: str
    name: str | None = None  # the workspace design it was opened from / saved as; None: never saved
    saved: dict[str, Any] | None = None  # the saved definition's content (to_dict), for "unsaved changes"
    saved_hash: str | None = None  # the workspace file's content hash when opened or saved
    revision: int = field(default_factory=lambda: next(_REVISIONS))
    commands: list[dict[str, Any]] = field(default_factory=list)
    ack: int = 0
    value_seq: int = 0
    selected: list[str] = field(default_factory=list)
    select_request: dict[str, Any] | None = None
    panel_seen: dict[str, Any] = field(default_factory=dict)  # element id -> the data its widgets show
    panel_gen: dict[str, int] = field(default_factory=dict)
    _reading: tuple[str, Reading] | None = None
    # Which design the canvas shows: an open, a new design or an upload is a new one (fitted to the view); the
    # YAML tab and a save re-import the same one (the view is kept).
    design: int = field(default_factory=lambda: next(_REVISIONS))
    renamed: set[str] = field(default_factory=set)  # modeler ids already given a readable id (never twice: undo)

    @classmethod
    def open(cls, definition: ProcessDefinition, name: str | None = None, saved_hash: str | None = None,
             saved: bool = True) -> DesignerSession:
        session = cls(to_canvas(definition), name=name, saved_hash=saved_hash)
        session.saved = session.reading.definition.to_dict() if saved and session.reading.definition else None
        return session

    @classmethod
    def blank(cls, process_id: str, title: str | None = None) -> DesignerSession:
        return cls(blank_bpmn(process_id, title))

    @property
    def reading(self) -> Reading:
        key = _digest(self.xml)
        if self._reading is None or self._reading[0] != key:
            self._reading = (key, read_canvas(self.xml))
        return self._reading[1]

    @property
    def dirty(self) -> bool:
        """Unsaved changes: the canvas's design differs from the saved one (or was never saved)."""
        definition = self.reading.definition
        if self.saved is None or definition is None:
            return True
        return definition.to_dict() != self.saved

    def mark_saved(self, name: str, saved_hash: str | None, definition: ProcessDefinition) -> None:
        """The design was stored as ``definition`` under ``name``: it becomes the baseline of "unsaved changes";
        the canvas re-imports when storing changed it (the process id follows the design's name)."""
        self.name, self.saved_hash = name, saved_hash
        self.saved = definition.to_dict()
        current = self.reading.definition
        if current is None or current.to_dict() != self.saved:
            self.replace(to_canvas(definition))

    def panel_key(self, element: str, data: Any) -> str:
        """Widget key prefix for an element's properties: it changes when the element changed elsewhere (undo,
        the YAML tab) so the widgets show the new values, and stays while the panel's own edits come back."""
        waiting = any(c.get("id") in (element, None) or c.get("value") == element for c in self.commands)
        if element not in self.panel_gen or (self.panel_seen.get(element) != data and not waiting):
            self.panel_seen[element] = data  # changed elsewhere (not while the panel's own edits are on their way)
            self.panel_gen[element] = self.panel_gen.get(element, 0) + 1
        return f"prop:{self.revision}:{element}:{self.panel_gen[element]}"

    def expect(self, element: str, data: dict[str, Any], before: dict[str, Any]) -> None:
        """The panel sent an edit: when the canvas reports ``data`` back, keep the widgets as they are, unless a
        list got shorter (its items' widgets are keyed by position and must be drawn again)."""
        if all(len(v) >= len(before.get(k) or []) for k, v in data.items() if isinstance(v, list)):
            self.panel_seen[element] = data

    def replace(self, xml: str) -> None:
        """Load new XML into the canvas (a re-import; the undo history starts again)."""
        self.xml = xml
        self.revision = next(_REVISIONS)
        self.commands = []

    def send(self, commands: list[dict[str, Any]]) -> None:
        for command in commands:
            self.commands.append({**command, "seq": next(_SEQS)})

    def select(self, element: str) -> None:
        self.select_request = {"seq": next(_SEQS), "id": element}

    def receive(self, value: dict[str, Any] | None) -> bool:
        """Take a value the canvas posted; True when it was new. Values about an older revision are ignored."""
        if not value or (value.get("seq", 0) == self.value_seq and value.get("revision") == self.revision):
            return False
        if value.get("revision") != self.revision:
            return False
        self.value_seq = value.get("seq", 0)
        before = self.reading.definition
        self.xml = value.get("xml") or self.xml
        self.selected = list(value.get("selected") or [])
        self.ack = max(self.ack, int(value.get("ack") or 0))
        self.commands = [c for c in self.commands if c["seq"] > self.ack]
        self.send(self.readable_ids(before))
        return True

    def readable_ids(self, before: ProcessDefinition | None) -> list[dict[str, Any]]:
        """Id commands for nodes named since ``before`` (the canvas's previous state) whose id is still the one
        bpmn-js made up (``Activity_1wkter0`` -> ``check_documents``, :func:`readable_id`), so the YAML, the
        scenario and the engine's tables read well.
        Only a node nothing can refer to yet: not in the saved design (a scenario or a deployment may name it),
        its id in no field of the XML other than the references bpmn-js keeps itself (flows, boundary events,
        defaults, diagram); each id once (an undo of the rename is not undone again)."""
        from engine.model.ids import is_modeler_id

        definition = self.reading.definition
        if definition is None or before is None:
            return []
        saved = _node_ids(self.saved)
        named = {n.id for n in before.all_nodes() if n.name}
        taken = element_ids(self.xml)
        commands: list[dict[str, Any]] = []
        for node in definition.all_nodes():
            if (not node.name or node.id in named or not is_modeler_id(node.id) or node.id in saved
                    or node.id in self.renamed or _referenced(self.xml, node.id)):
                continue
            new = readable_id(node.name, taken)
            if new is None:
                continue
            self.renamed.add(node.id)
            taken.add(new)
            commands.append({"op": "id", "id": node.id, "value": new})
        return commands

    def args(self) -> dict[str, Any]:
        """The canvas component's arguments."""
        return {"xml": self.xml, "revision": self.revision, "commands": self.commands, "ack": self.ack,
                "markers": [p.as_marker() for p in self.reading.problems if p.element],
                "select": self.select_request, "dirty": self.dirty, "palette": PALETTE, "design": self.design,
                "placeholders": placeholders(self.reading.definition)}
