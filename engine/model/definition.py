"""A process definition: id, name, version, declared variables, nodes and sequence flows.

Designer, simulator and engine all read this one model. It is immutable once built; lookups
(node by id, flows in and out, boundary events of an activity, the scope a node lives in) come
from an index built on first use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from engine.model.ids import ElementId, VariableName
from engine.model.nodes import START_KINDS, AnyNode, BoundaryEvent, Node, SequenceFlow, SubProcess

VariableType = Literal["string", "integer", "number", "boolean", "decimal", "datetime", "date", "time", "duration",
                       "object", "array", "any"]

PYTHON_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", Decimal: "decimal",
    dict: "object", list: "array", datetime: "datetime", date: "date", time: "time", timedelta: "duration",
    object: "any", Any: "any",
}


def _type_name(value: Any) -> Any:
    return PYTHON_TYPES.get(value, value)


def type_matches(kind: str, value: Any) -> bool:
    """Does a value fit a declared variable type? (None fits every type: a variable may be unset.)
    The rules and the types live in :mod:`engine.runtime.values`."""
    from engine.model.values import matches

    return matches(kind, value)


class VariableDecl(BaseModel):
    """A declared process variable: conditions may only read declared names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: VariableName
    type: Annotated[VariableType, BeforeValidator(_type_name)] = "any"
    required: bool = False  # must be given when an instance starts
    default: Any = None
    description: str | None = None
    # Given when an instance starts? None: yes unless a node writes it (a service task's outputs, a form
    # field, a message's payload), so a start form asks only for real inputs; True/False says so explicitly.
    input: bool | None = None
    sensitive: bool = False  # masked wherever shown, unless the viewer may see it (engine.security.sensitive)

    @model_validator(mode="after")
    def _typed_default(self) -> VariableDecl:
        """A default given as text (YAML, JSON, BPMN) becomes a value of the declared type."""
        if self.default is not None and self.type != "any":
            from engine.model.values import coerce

            try:
                object.__setattr__(self, "default", coerce(self.type, self.default))
            except ValueError as exc:
                raise ValueError(f"variable {self.name!r}: default {exc}") from None
        return self



@dataclass
class Index:
    """Derived lookups; built once per definition."""

    nodes: dict[str, Node] = field(default_factory=dict)
    flows: dict[str, SequenceFlow] = field(default_factory=dict)
    scope_of: dict[str, str | None] = field(default_factory=dict)  # node/flow id -> sub-process id
    outgoing: dict[str, list[SequenceFlow]] = field(default_factory=dict)
    incoming: dict[str, list[SequenceFlow]] = field(default_factory=dict)
    boundaries: dict[str, list[BoundaryEvent]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


class ProcessDefinition(BaseModel):
    """A whole process. Build one with :class:`engine.model.builder.ProcessBuilder` or load it from JSON/YAML."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ElementId = Field(min_length=1)
    name: str | None = None
    version: int = Field(default=1, ge=1)
    description: str | None = None
    variables: list[VariableDecl] = Field(default_factory=list)
    nodes: list[AnyNode] = Field(default_factory=list)
    flows: list[SequenceFlow] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _index: Index | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        """Equal content; the lazily built index is a cache and must not make two equal definitions differ."""
        if not isinstance(other, ProcessDefinition):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = BaseModel.__hash__

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> ProcessDefinition:
        """Pydantic's copy, without the node index of the original (its nodes or flows may be replaced)."""
        copy = super().model_copy(update=update, deep=deep)
        if copy.__pydantic_private__ is not None:
            copy.__pydantic_private__["_index"] = None
        return copy

    # --- lookups ---------------------------------------------------------------------------

    @property
    def index(self) -> Index:
        # Read the private dict directly: ``self._index`` goes through pydantic's ``__getattr__`` (~5 us), and
        # the core and the simulator look nodes and flows up on every token move.
        private = self.__pydantic_private__
        index = private.get("_index") if private is not None else None
        if index is None:
            index = _build_index(self)
            if private is None:
                self._index = index
            else:
                private["_index"] = index
        return index

    def node(self, node_id: str) -> Node:
        try:
            return self.index.nodes[node_id]
        except KeyError:
            raise KeyError(f"definition {self.id!r} has no node {node_id!r}") from None

    def all_nodes(self) -> list[Node]:
        return list(self.index.nodes.values())

    def all_flows(self) -> list[SequenceFlow]:
        return list(self.index.flows.values())

    def outgoing(self, node_id: str) -> list[SequenceFlow]:
        return self.index.outgoing.get(node_id, [])

    def incoming(self, node_id: str) -> list[SequenceFlow]:
        return self.index.incoming.get(node_id, [])

    def boundaries(self, activity_id: str) -> list[BoundaryEvent]:
        return self.index.boundaries.get(activity_id, [])

    def scope(self, scope_id: str | None) -> tuple[list[Node], list[SequenceFlow]]:
        """The nodes and flows directly inside the process (None) or a sub-process."""
        if scope_id is None:
            return list(self.nodes), list(self.flows)
        sub = self.node(scope_id)
        assert isinstance(sub, SubProcess)
        return list(sub.nodes), list(sub.flows)

    def link_targets(self) -> dict[str, str | None]:
        """Each link throw event's id -> the id of the link catch event with the same ``link`` name in the same
        (sub-)process, or None when there is none (BPMN 2.0 §10.5.6: links connect within one process level)."""
        index = self.index
        catches = {(index.scope_of.get(n.id), n.link): n.id  # type: ignore[attr-defined]
                   for n in index.nodes.values() if n.kind == "link_catch"}  # type: ignore[attr-defined]
        return {n.id: catches.get((index.scope_of.get(n.id), n.link))  # type: ignore[attr-defined]
                for n in index.nodes.values() if n.kind == "link_throw"}  # type: ignore[attr-defined]

    def start_nodes(self, scope_id: str | None = None) -> list[Node]:
        nodes, _ = self.scope(scope_id)
        return [n for n in nodes if getattr(n, "kind", "") in START_KINDS]

    def implicit_starts(self, scope_id: str | None = None) -> list[Node]:
        """Where a token starts in a (sub-)process without start events (BPMN 2.0 §10.5.2: "if there is no Start
        Event, all Flow Nodes with no incoming Sequence Flow are instantiated when the Process starts"): the
        flow nodes of the scope without incoming sequence flow, in model order. Not boundary events (their
        activity starts them), event sub-processes (their event does), compensation handlers (compensation
        does) nor link catch events (a link throw does). Empty when the scope has a start event."""
        nodes, flows = self.scope(scope_id)
        if any(getattr(n, "kind", "") in START_KINDS for n in nodes):
            return []
        targets = {f.target for f in flows}
        return [n for n in nodes if n.id not in targets and not isinstance(n, BoundaryEvent)
                and not getattr(n, "triggered_by_event", False) and not getattr(n, "for_compensation", False)
                and getattr(n, "kind", "") != "link_catch"]

    @property
    def variable_types(self) -> dict[str, str]:
        return {v.name: v.type for v in self.variables}

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def key(self) -> str:
        """``id:version``, how a deployed version is named."""
        return f"{self.id}:{self.version}"

    # --- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe), defaults left out so files stay short."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude_none=False)

    def content_hash(self) -> str:
        """A stable hash of the content: two deployments of the same content share it."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self, indent: int | None = 2) -> str:
        from engine.model.serialize import to_json

        return to_json(self, indent=indent)

    def to_yaml(self) -> str:
        from engine.model.serialize import to_yaml

        return to_yaml(self)

    def validate_definition(self) -> list[Any]:
        """Every structural and soundness problem (see :mod:`engine.validate`)."""
        from engine.validate import validate

        return validate(self)

    # --- notebook display ------------------------------------------------------------------

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from engine.render import to_dot, to_svg

        bundle = {"text/plain": repr(self)}
        try:
            bundle["image/svg+xml"] = to_svg(self)
        except Exception:  # no dot binary: show the DOT text rather than nothing
            bundle["text/plain"] = to_dot(self)
        return bundle

    def __repr__(self) -> str:
        return f"ProcessDefinition({self.id!r}, version={self.version}, nodes={len(self.index.nodes)})"


def _build_index(definition: ProcessDefinition) -> Index:
    index = Index()

    def walk(nodes: list[Any], flows: list[SequenceFlow], scope: str | None) -> None:
        for node in nodes:
            if node.id in index.nodes or node.id in index.flows:
                index.duplicates.append(node.id)
            index.nodes[node.id] = node
            index.scope_of[node.id] = scope
            if isinstance(node, BoundaryEvent):
                index.boundaries.setdefault(node.attached_to, []).append(node)
            if isinstance(node, SubProcess):
                walk(node.nodes, node.flows, node.id)
        for flow in flows:
            if flow.id in index.flows or flow.id in index.nodes:
                index.duplicates.append(flow.id)
            index.flows[flow.id] = flow
            index.scope_of[flow.id] = scope
            index.outgoing.setdefault(flow.source, []).append(flow)
            index.incoming.setdefault(flow.target, []).append(flow)

    walk(definition.nodes, definition.flows, None)
    return index
