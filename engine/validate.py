"""Structural and soundness checks of a process definition: every problem, each with its place and a fix.

``validate(definition)`` returns every problem found (errors and warnings), never only the first, so the
designer can mark them all at once; ``errors_only`` keeps the errors (what ``ProcessBuilder.build`` refuses).

Checks run per *scope* (the process, then each sub-process on its own), because sequence flows never cross a
scope: starts and ends, duplicate and dangling ids, reachability, flows in and out of each kind of node,
gateway conditions and defaults, expressions against the declared variables, boundary events, event gateways,
compensation, and three classic soundness faults found on the flow graph (a ``networkx.MultiDiGraph`` whose
edges are the sequence flows, keyed by flow id, plus one edge from every activity to each of its boundary
events, so a boundary path is reachable when its activity is).

How the soundness checks reason, and where they stop
----------------------------------------------------
A *split* is a node from which one token may leave on several branches (each branch is one outgoing edge):

* alternative splits (only one branch is taken): exclusive and event-based gateways, an activity with
  interrupting boundary events (its normal flow and each boundary path are alternatives), and the start events
  of the process (an instance begins at one of them);
* concurrent splits (several branches are taken): parallel gateways, an activity with two or more
  unconditional outgoing flows (an implicit parallel split), the plain start events of a sub-process (they all
  start when a token enters it), and - reported as warnings because they only
  *may* run several branches - inclusive gateways, activities with conditional outgoing flows, and activities
  with non-interrupting boundary events.

For a split ``S`` and a node ``M`` the *entries* of a branch are the incoming flows of ``M`` that a token can
reach from that branch without passing ``S`` again and without passing through ``M``. They come from one
dominator tree per branch (``networkx.immediate_dominators`` on the graph without ``S``): the source ``u`` of
a flow into ``M`` is reached "without passing ``M``" exactly when ``M`` does not dominate ``u``. So checking a
split against every join costs one tree per branch, not one search per pair. Then:

* **deadlock** - a parallel join ``J`` (a parallel gateway with 2+ incoming flows) where two alternative
  branches of ``S`` both reach ``J`` but through different sets of entries. Whichever branch is taken, some
  incoming flow of ``J`` never gets its token and the join waits forever. The error is placed on ``J`` and
  names ``S``. (An inclusive split doing the same is a warning: the join hangs unless every condition holds.)
* **lack of synchronisation** - a merge ``M`` (an exclusive gateway with 2+ incoming flows, or any other
  non-end node with 2+ incoming flows) that two concurrent branches of ``S`` reach through *different*
  incoming flows, where the search stops at every parallel/inclusive join that all branches of ``S`` reach
  (that join synchronises them first). Each branch's token passes ``M``, so what follows runs once per branch.
  Placed on ``M``, naming ``S``. Requiring different incoming flows reports the first merge only, not every
  node after it; a loop that returns to ``M`` from a single branch (a retry) is therefore not reported.
  A parallel join that waits for a flow only a token that has passed the join can reach (a loop back into
  it; the join dominates that flow's source, seen from the start events) is a deadlock too.
* **cycle without exit** - a strongly connected component (2+ nodes, or a node with a flow to itself) with no
  edge leaving it. A loop through an exclusive gateway back to an earlier node is legal when the gateway (or a
  boundary event) has a way out.

Other choices: end events with several incoming flows get no implicit-merge warning (each token just ends);
a flow node without outgoing flow ends its token (BPMN 2.0's *implicit end*, as Camunda, SpiffWorkflow and jBPM
run it): a warning on tasks, events and boundary events (say it with an end event), no finding on a message or
compensation throw event (BPMN's message/compensation end event, as the BPMN import maps it), and an error on a
gateway or a start event; a scope without end events is a warning when it has an implicit end, an error when
no token can ever end; an undeclared variable in a condition is an error only when the definition
declares variables at all (else one warning per condition); every node that cannot reach an end is reported,
naming the dead ends or exit-less loops it runs into, which are reported once themselves.

Cost, measured: a chain of 200 alternating exclusive/parallel blocks (802 nodes) validates in about 1.2 s,
100 blocks (402 nodes) in 0.3 s, 50 blocks in 0.1 s; the 61 files of the shared BPMN corpus (604 nodes) in
0.03 s together.

Limits, by design: conditions are not evaluated (a loop whose only exit condition can never hold is not
found; any branch is assumed possible); a concurrent branch that *avoids* a parallel join while another
reaches it (e.g. an exclusive gateway inside one parallel branch sending a token straight to an end) is not
reported; joins that synchronise only part of a split are looked through, which can report a merge that
another, unusual construct would have made safe; tokens that leave a parallel block through a loop back to
before its split are only caught when they also meet a parallel join. Message flows, timers and compensation
are outside the flow graph. None of these yields a false *pass* on the textbook examples (XOR split + AND
join, AND split + XOR merge, loops without exit), which the tests pin down.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from engine.errors import Problem
from engine.model import expressions
from engine.model.definition import ProcessDefinition
from engine.model.nodes import (
    BOUNDARY_KINDS,
    CATCH_KINDS,
    END_KINDS,
    EVENT_SUB_PROCESS_START_KINDS,
    LOOP_VARIABLES,
    START_KINDS,
    AdHocSubProcess,
    BoundaryEvent,
    CompensationThrowEvent,
    MessageCatchEvent,
    MessageThrowEvent,
    Node,
    SequenceFlow,
    ServiceTask,
    SignalEndEvent,
    SignalThrowEvent,
    SubProcess,
    UserTask,
)
from engine.model.serialize import serialisation_problems

if TYPE_CHECKING:
    import networkx as nx

#: Throw events with no outgoing flow are end events in BPMN (a message or compensation end event).
THROW_END_KINDS = frozenset({"message_throw", "compensation_throw", "signal_throw", "escalation_throw"})
#: Kinds a boundary event may be attached to.
ATTACHABLE_KINDS = frozenset({"task", "service_task", "user_task", "sub_process", "script_task", "receive_task",
                              "call_activity", "ad_hoc_sub_process"})
SYNC_JOIN_KINDS = frozenset({"parallel_gateway", "inclusive_gateway"})

_LABELS = {
    "start": "start event", "timer_start": "timer start event", "message_start": "message start event",
    "end": "end event", "terminate_end": "terminate end event", "error_end": "error end event",
    "timer_catch": "timer event", "message_catch": "message catch event",
    "conditional_catch": "conditional event", "message_throw": "message throw event",
    "compensation_throw": "compensation event", "intermediate_throw": "intermediate throw event",
    "link_throw": "link throw event", "link_catch": "link catch event", "boundary_timer": "timer boundary event",
    "signal_start": "signal start event", "signal_catch": "signal catch event", "signal_throw": "signal throw event",
    "signal_end": "signal end event", "boundary_signal": "signal boundary event",
    "escalation_throw": "escalation throw event", "escalation_end": "escalation end event",
    "boundary_escalation": "escalation boundary event",
    "boundary_error": "error boundary event", "boundary_message": "message boundary event",
    "exclusive_gateway": "exclusive gateway", "inclusive_gateway": "inclusive gateway",
    "parallel_gateway": "parallel gateway", "event_gateway": "event gateway", "task": "task",
    "service_task": "service task", "user_task": "user task", "script_task": "script task",
    "sub_process": "sub-process", "cancel_end": "cancel end event", "boundary_cancel": "cancel boundary event",
    "ad_hoc_sub_process": "ad-hoc sub-process",
}


def validate(definition: ProcessDefinition) -> list[Problem]:
    """Every structural and soundness problem of ``definition``, errors and warnings, in model order."""
    return _Validator(definition).run()


def errors_only(definition: ProcessDefinition) -> list[Problem]:
    return [p for p in validate(definition) if p.severity == "error"]


def deploy_problems(definition: ProcessDefinition) -> list[Problem]:
    """What keeps ``definition`` from being deployed: the errors of :func:`validate` and, as errors, every
    agent or handler name that resolves to nothing (``Engine.deploy`` and a strict BPMN import use this)."""
    return errors_only(definition) + handler_problems(definition, severity="error")


def handler_problems(definition: ProcessDefinition, severity: str = "warning") -> list[Problem]:
    """Agent and handler names (a service task's ``agent``, an activity's ``compensation``, a user task's
    ``on_timeout`` handler) that :func:`engine.registry.resolve` cannot find. A warning while designing (the
    agent may be registered later); an error at deploy, where a missing agent would only surface as an
    incident when the first instance reaches the task."""
    from engine.errors import UnknownHandlerError
    from engine.registry import resolve

    problems: list[Problem] = []
    for node in definition.all_nodes():
        names: list[tuple[str, str]] = []
        if isinstance(node, ServiceTask) and node.agent:  # a topic-only task's workers live elsewhere
            names.append(("agent", node.agent))
        compensation = getattr(node, "compensation", None)
        handler_node = definition.index.nodes.get(compensation) if isinstance(compensation, str) else None
        if handler_node is not None and getattr(handler_node, "for_compensation", False):
            compensation = None  # a handler activity of the definition, checked as a node
        if isinstance(compensation, str):
            names.append(("compensation handler", compensation))
        timeout = getattr(node, "on_timeout", None)
        if timeout is not None and timeout.action == "handler" and timeout.handler:
            names.append(("on_timeout handler", timeout.handler))
        for what, name in names:
            try:
                resolve(name)
            except UnknownHandlerError:
                problems.append(Problem(node.id, f"{describe(node)}: {what} {name!r} is not registered and cannot "
                                                 f"be imported: register it (engine.register({name!r}, fn)) or "
                                                 "name an importable 'module:function'", severity=severity))
            except Exception as exc:  # the module exists but fails to import: still a name that cannot run
                problems.append(Problem(node.id, f"{describe(node)}: {what} {name!r} cannot be loaded "
                                                 f"({type(exc).__name__}: {exc})", severity=severity))
    return problems


def describe(node: Node) -> str:
    """``exclusive gateway 'approved'``: how messages name a node."""
    if isinstance(node, SubProcess) and node.transaction:
        return f"transaction {node.id!r}"
    return f"{_LABELS.get(node.kind, node.kind)} {node.id!r}"  # type: ignore[attr-defined]


def _names(items: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in items)


@dataclass(frozen=True)
class _Split:
    """A node one token leaves on several branches; ``branches`` are graph edges (source, target, key)."""

    node: str
    concurrent: bool  # True: several branches run; False: exactly one does
    severity: str
    why: str  # e.g. "parallel gateway 'fork'"
    branches: tuple[tuple[str, str, str], ...]


@dataclass
class _Scope:
    """The nodes and flows directly inside the process or one sub-process, and their flow graph."""

    id: str | None
    where: str  # the process id or the sub-process id, for scope-level problems
    title: str  # "the process" / "sub-process 'x'"
    nodes: dict[str, Node]
    flows: list[SequenceFlow]
    graph: nx.MultiDiGraph
    outgoing: dict[str, list[SequenceFlow]]
    incoming: dict[str, list[SequenceFlow]]

    @cached_property
    def simple(self) -> nx.DiGraph:
        """The graph without parallel edges (reachability and dominance do not need them)."""
        import networkx as nx  # imported where a graph is built: importing the engine stays light

        return nx.DiGraph(self.graph)


class _Validator:
    def __init__(self, definition: ProcessDefinition) -> None:
        self.d = definition
        self.index = definition.index
        self.problems: list[Problem] = []
        self.declared = {v.name for v in definition.variables}

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, severity="error"))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, severity="warning"))

    def add(self, where: str, message: str, severity: str) -> None:
        self.problems.append(Problem(where, message, severity=severity))

    # --- driver ----------------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        for ident in dict.fromkeys(self.index.duplicates):
            self.error(ident, f"id {ident!r} is used more than once (nodes and flows share one id space): "
                              "give each node and flow its own id")
        for scope in self._scopes():
            self._check_scope(scope)
        self._check_variables()
        self.problems.extend(serialisation_problems(self.d))  # what validates saves and loads back (issue 14)
        return self.problems

    def _scopes(self) -> list[_Scope]:
        scopes = [self._scope(None, list(self.d.nodes), list(self.d.flows))]
        todo = list(self.d.nodes)
        seen: set[str] = set()
        while todo:
            node = todo.pop(0)
            if isinstance(node, SubProcess) and node.id not in seen:
                seen.add(node.id)
                scopes.append(self._scope(node.id, list(node.nodes), list(node.flows)))
                todo.extend(node.nodes)
        return scopes

    def _scope(self, scope_id: str | None, nodes: list[Node], flows: list[SequenceFlow]) -> _Scope:
        import networkx as nx  # imported where a graph is built: importing the engine stays light

        by_id = {n.id: n for n in nodes}
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(by_id)
        outgoing: dict[str, list[SequenceFlow]] = {n: [] for n in by_id}
        incoming: dict[str, list[SequenceFlow]] = {n: [] for n in by_id}
        for flow in flows:
            if flow.source in by_id and flow.target in by_id:
                graph.add_edge(flow.source, flow.target, key=flow.id)
                outgoing[flow.source].append(flow)
                incoming[flow.target].append(flow)
        for node in nodes:
            if isinstance(node, BoundaryEvent) and by_id.get(node.attached_to) is not None:
                graph.add_edge(node.attached_to, node.id, key=f"{node.attached_to}>{node.id}", boundary=True)
        for throw, catch in self.d.link_targets().items():  # a link pair is a sequence flow (BPMN 2.0 §10.5.6)
            if throw in by_id and catch in by_id:
                graph.add_edge(throw, catch, key=f"{throw}>{catch}", link=True)
        where = self.d.id if scope_id is None else scope_id
        title = "the process" if scope_id is None else f"sub-process {scope_id!r}"
        return _Scope(scope_id, where, title, by_id, flows, graph, outgoing, incoming)

    # --- one scope -------------------------------------------------------------------------------

    def _check_scope(self, s: _Scope) -> None:
        self._check_flows(s)
        self._check_starts_and_ends(s)
        for node in s.nodes.values():
            self._check_node(s, node)
        exitless = self._check_cycles(s)
        self._check_reachability(s, exitless)
        splits = self._splits(s)
        self._check_deadlocks(s, splits)
        self._check_synchronisation(s, splits)

    def _check_flows(self, s: _Scope) -> None:
        for flow in s.flows:
            for end, ref in (("source", flow.source), ("target", flow.target)):
                if ref in s.nodes:
                    continue
                if ref in self.index.nodes:
                    other = self.index.scope_of.get(ref)
                    there = "the process" if other is None else f"sub-process {other!r}"
                    self.error(flow.id, f"flow {flow.id!r} ({flow.source!r} -> {flow.target!r}) belongs to "
                                        f"{s.title} but its {end} {ref!r} is in {there}: flows cannot cross a "
                                        "sub-process boundary; connect the sub-process node itself, or move the "
                                        "flow inside")
                else:
                    hint = _did_you_mean(ref, s.nodes)
                    self.error(flow.id, f"flow {flow.id!r} has {end} {ref!r}, which is not a node of {s.title}"
                                        f"{hint}: point it at an existing node or remove the flow")

    def _check_starts_and_ends(self, s: _Scope) -> None:
        starts = [n for n in s.nodes.values() if n.kind in START_KINDS]  # type: ignore[attr-defined]
        scope_node = self.index.nodes.get(s.id) if s.id is not None else None
        esp = isinstance(scope_node, SubProcess) and scope_node.triggered_by_event
        for node in starts:
            timer = getattr(node, "timer", None)
            if not esp and timer is not None and timer.kind == "duration":
                self.error(node.id, f"{describe(node)}: a timer start needs a date or a cycle (a duration has nothing "
                                    "to count from; inside an event sub-process it counts from when its scope starts)")
            elif not esp and timer is not None and timer.expression is not None:
                self.error(node.id, f"{describe(node)}: its {timer.kind} {timer.expression!r} is an expression, and a "
                                    "process's timer start has no variables to evaluate it against: write the value")
            if (not esp and node.kind in EVENT_SUB_PROCESS_START_KINDS  # type: ignore[attr-defined]
                    and not (s.id is None and node.kind == "conditional_start")):  # type: ignore[attr-defined]
                self.error(node.id, f"{describe(node)} starts only an event sub-process (triggered_by_event): put it "
                                    "in one, or use another start event")
            if not esp and getattr(node, "interrupting", True) is False:
                self.warn(node.id, f"{describe(node)} is non-interrupting, which only means something in an event "
                                   "sub-process: it is ignored here")
        if isinstance(scope_node, AdHocSubProcess):
            self._check_ad_hoc(s, scope_node, starts)
            return
        if esp:
            if len(starts) != 1 or starts[0].kind == "start":  # type: ignore[attr-defined]
                self.error(s.where, f"{s.title} is an event sub-process: it needs exactly one start event with a "
                                    "trigger (timer, message, signal, conditional, error or escalation), found "
                                    f"{_names(n.id for n in starts) or 'none'}")
        elif not starts and not s.nodes and s.id is None:
            self.error(s.where, f"{s.title} has no start event: add a start event")
        elif not starts and not s.nodes:
            self.warn(s.where, f"{s.title} is empty: it completes as soon as a token enters it")
            return
        elif not starts:
            implicit = self._entries(s)
            if implicit:
                self.warn(s.where, f"{s.title} has no start event: a token starts on each node without incoming flow "
                                   f"({_names(implicit)}) at once (an implicit start, as BPMN 2.0 §10.5.2 allows); add "
                                   "a start event to make the start visible")
            else:
                self.error(s.where, f"{s.title} has no start event and every node has an incoming flow, so nothing "
                                    "ever starts: add a start event")
        elif s.id is not None:
            for node in starts:
                if node.kind != "start":  # type: ignore[attr-defined]
                    self.error(node.id, f"{describe(node)} is inside {s.title}, which only starts from plain start "
                                        "events when a token enters it: make this a plain start event (no trigger)")
            if not any(n.kind == "start" for n in starts):  # type: ignore[attr-defined]
                self.error(s.where, f"{s.title} has no plain start event: add a start event without a trigger")
        if not any(n.kind in END_KINDS for n in s.nodes.values()):  # type: ignore[attr-defined]
            if self._ends(s):
                self.warn(s.where, f"{s.title} has no end event: its tokens end where no flow leads on (an implicit "
                                   "end, as BPMN 2.0 allows); add an end event to make the end visible")
            else:
                self.error(s.where, f"{s.title} has no end event and every node leads on, so no token can ever "
                                    "end: add an end event")

    def _entries(self, s: _Scope) -> list[str]:
        """Where tokens start in the scope: its start events; else (none at all) the nodes without incoming
        flow (the implicit start, ``ProcessDefinition.implicit_starts``); in an ad-hoc sub-process with
        ``active_elements``, any of its elements."""
        starts = [n for n in s.nodes if s.nodes[n].kind in START_KINDS]  # type: ignore[attr-defined]
        if starts:
            return starts
        scope_node = self.index.nodes.get(s.id) if s.id is not None else None
        if isinstance(scope_node, AdHocSubProcess) and scope_node.active_elements is not None:
            return [n.id for n in s.nodes.values() if not isinstance(n, BoundaryEvent)
                    and not getattr(n, "triggered_by_event", False) and not getattr(n, "for_compensation", False)]
        return [n.id for n in self.d.implicit_starts(s.id)]

    def _check_ad_hoc(self, s: _Scope, node: AdHocSubProcess, starts: list[Node]) -> None:
        """An ad-hoc sub-process holds activities (with flows, gateways and intermediate events between them)
        and no start event (BPMN 2.0 §10.3.6; Camunda 8 alike): what runs is what it activates."""
        for start in starts:
            self.error(start.id, f"{describe(start)} is inside ad-hoc {s.title}, which has no start events: its "
                                 "elements without incoming flow (or those its active elements expression names) "
                                 "start when a token enters it; remove the start event")
        if not any(n.is_activity for n in s.nodes.values()):
            self.error(s.where, f"ad-hoc {s.title} has no activity: add the tasks it may run")
        if node.active_elements is None and not starts and not self._entries(s):
            self.error(s.where, f"ad-hoc {s.title} has no element without incoming flow and no active elements "
                                "expression, so nothing in it ever starts: remove an inner flow into its first "
                                "activity or give the active elements")

    def _ends(self, s: _Scope) -> set[str]:
        """Explicit end events and implicit ends: a node without outgoing flow ends its token (BPMN 2.0 §13.2.1:
        "a flow node without outgoing sequence flows" consumes the token), except a gateway, whose missing
        flows are an error, and a start event."""
        return {n.id for n in s.nodes.values()
                if n.kind in END_KINDS or (not s.outgoing[n.id] and not n.is_gateway  # type: ignore[attr-defined]
                                           and n.kind not in START_KINDS  # type: ignore[attr-defined]
                                           and not getattr(n, "for_compensation", False)
                                           and not getattr(n, "triggered_by_event", False)
                                           and n.kind != "link_throw")}  # type: ignore[attr-defined]

    def _check_node(self, s: _Scope, node: Node) -> None:
        kind: str = node.kind  # type: ignore[attr-defined]
        out, inc = s.outgoing[node.id], s.incoming[node.id]
        name = describe(node)
        if getattr(node, "for_compensation", False):  # BPMN isForCompensation: no flows, run by compensation
            if inc or out:
                self.error(node.id, f"{name} is a compensation handler (for_compensation) but has flows "
                                    f"{_names(f.id for f in [*inc, *out])}: a handler runs only when compensation "
                                    "reaches its activity; remove the flows or for_compensation")
            if not any(getattr(n, "compensation", None) == node.id for n in self.index.nodes.values()):
                self.warn(node.id, f"{name} is a compensation handler that no activity names: set "
                                   f"compensation={node.id!r} on the activity it undoes")
            return
        if kind in START_KINDS and inc:
            self.error(node.id, f"{name} has incoming flow(s) {_names(f.id for f in inc)}: a start event cannot be "
                                "entered; remove them or point them at the node after the start")
        if kind in END_KINDS and out:
            self.error(node.id, f"{name} has outgoing flow(s) {_names(f.id for f in out)}: nothing runs after an "
                                "end event; remove them or use another kind of node")
        if isinstance(node, SubProcess) and node.triggered_by_event:
            if inc or out:
                self.error(node.id, f"{name} is an event sub-process: its start event starts it, so it has no flows "
                                    f"in or out; remove {_names(f.id for f in [*inc, *out])}")
            if self.index.boundaries.get(node.id):
                self.error(node.id, f"{name} is an event sub-process: boundary events cannot attach to it")
            return
        if kind in ("link_throw", "link_catch"):
            self._check_link(s, node, out, inc)
        elif kind in BOUNDARY_KINDS:
            self._check_boundary(s, node, out, inc)  # type: ignore[arg-type]
        elif node.is_gateway:
            self._check_gateway(s, node, out)
        elif kind not in END_KINDS:
            if len(inc) > 1:
                self.warn(node.id, f"{name} has {len(inc)} incoming flows ({_names(f.id for f in inc)}): each token "
                                   "that arrives runs it again (an implicit merge); if that is meant, merge with an "
                                   "exclusive gateway to say so, or join with a parallel gateway to run it once")
            if not out and kind in START_KINDS:
                self.error(node.id, f"{name} has no outgoing flow: connect it to the first step")
            elif not out and kind not in THROW_END_KINDS and not isinstance(self.index.nodes.get(s.id or ""),
                                                                              AdHocSubProcess):  # (its paths end so)
                self.warn(node.id, f"{name} has no outgoing flow: a token ends here (an implicit end); connect it "
                                   "to the next step, or to an end event to make the end visible")
            elif len(out) > 1:
                conditional = [f.id for f in out if f.condition]
                if conditional:
                    self.warn(node.id, f"{name} has conditional outgoing flows ({_names(conditional)}): every flow "
                                       "whose condition holds is taken, and the token stops if none does; use an "
                                       "exclusive or inclusive gateway to make the choice explicit")
                else:
                    self.warn(node.id, f"{name} has {len(out)} outgoing flows without conditions: all of them are "
                                       "taken at once (an implicit parallel split); use a parallel gateway to say so")
        default = getattr(node, "default", None) if node.is_activity else None
        if default is not None and default not in [f.id for f in out]:
            self.error(node.id, f"{name} has default={default!r}, which is not one of its outgoing flows "
                                f"({_names(f.id for f in out)}): set default to one of them or remove it")
        if isinstance(node, CompensationThrowEvent):
            self._check_compensation(s, node)
        if kind == "cancel_end":
            scope_node = self.index.nodes.get(s.id) if s.id is not None else None
            if not (isinstance(scope_node, SubProcess) and scope_node.transaction):
                self.error(node.id, f"{name} is in {s.title}, which is not a transaction: a cancel end event cancels "
                                    "the transaction it sits in (BPMN 2.0 §10.4.3); move it directly inside a "
                                    "transaction (or make its sub-process one), or use an end or error end event")
        if isinstance(node, SubProcess) and node.transaction:
            self._check_transaction(node)
        if isinstance(node, UserTask):
            self._check_user_task(node)

    def _check_transaction(self, node: SubProcess) -> None:
        """BPMN 2.0 §10.3.5 / §10.4.3: a cancel end event inside a transaction leaves it through its cancel boundary
        event, so a transaction with one needs exactly one such boundary (more would be a choice nobody makes).

        The messages speak of elements as the canvas draws them; in the builder a transaction is
        ``ProcessBuilder.transaction(id, body)`` (``transaction=True``), its cancel boundary event ``.on_cancel()``
        (kind ``boundary_cancel``) and a cancel end event a node of kind ``cancel_end``."""
        cancels = [b.id for b in self.index.boundaries.get(node.id, []) if b.kind == "boundary_cancel"]  # type: ignore[attr-defined]
        ends = [n.id for n in node.nodes if n.kind == "cancel_end"]  # type: ignore[attr-defined]
        if ends and not cancels:
            self.error(node.id, f"{describe(node)} has cancel end event(s) {_names(ends)} but no cancel boundary "
                                "event: a cancelled transaction is left through one; add a cancel boundary event to "
                                "it")
        if len(cancels) > 1:
            self.error(node.id, f"{describe(node)} has {len(cancels)} cancel boundary events ({_names(cancels)}): a "
                                "cancelled transaction is left through one; remove the others")

    def _check_link(self, s: _Scope, node: Node, out: list[SequenceFlow], inc: list[SequenceFlow]) -> None:
        """BPMN 2.0 §10.5.6: a link throw has no outgoing flow and one target, the catch event of the same name
        in the same process level; a catch has no incoming flow, and its name is unique in that level."""
        name, link = describe(node), getattr(node, "link", "")
        if node.kind == "link_throw":  # type: ignore[attr-defined]
            if out:
                self.error(node.id, f"{name} has outgoing flow(s) {_names(f.id for f in out)}: a link throw event "
                                    f"continues at its link catch event {link!r}; remove them")
            if self.d.link_targets().get(node.id) is None:
                self.error(node.id, f"{name} jumps to link {link!r}, but {s.title} has no link catch event of that "
                                    "name: add one (kind 'link_catch', link "
                                    f"{link!r}) or rename the link")
            return
        if inc:
            self.error(node.id, f"{name} has incoming flow(s) {_names(f.id for f in inc)}: a link catch event is "
                                f"entered only from link throw events named {link!r}; point them at a link throw")
        same = [n.id for n in s.nodes.values() if n.kind == "link_catch" and n.link == link]  # type: ignore
        if len(same) > 1 and same[0] != node.id:
            self.error(node.id, f"{name} has the link name {link!r} of {same[0]!r} in {s.title}: link catch names "
                                "must be unique in a process level, so a throw has one target; rename one")
        if not s.outgoing[node.id]:
            self.warn(node.id, f"{name} has no outgoing flow: a token ends here (an implicit end); connect it "
                               "to the next step")

    def _check_boundary(self, s: _Scope, node: BoundaryEvent, out: list[SequenceFlow],
                        inc: list[SequenceFlow]) -> None:
        name = describe(node)
        if inc:
            self.error(node.id, f"{name} has incoming flow(s) {_names(f.id for f in inc)}: a boundary event is "
                                f"entered only from its activity {node.attached_to!r}; remove them")
        if not out:
            self.warn(node.id, f"{name} has no outgoing flow: when it fires its token ends here (an implicit end); "
                               "connect it to what should happen then, or to an end event")
        target = self.index.nodes.get(node.attached_to)
        if target is None:
            hint = _did_you_mean(node.attached_to, [n for n in s.nodes.values() if n.kind in ATTACHABLE_KINDS])
            self.error(node.id, f"{name} is attached to {node.attached_to!r}, which does not exist{hint}: set "
                                "attached_to to an activity's id")
        elif target.kind not in ATTACHABLE_KINDS:  # type: ignore[attr-defined]
            self.error(node.id, f"{name} is attached to {describe(target)}: boundary events attach only to "
                                "activities (task, service_task, user_task, script_task, receive_task, sub_process, "
                                "ad_hoc_sub_process, call_activity)")
        elif node.attached_to not in s.nodes:
            self.error(node.id, f"{name} is in {s.title} but its activity {node.attached_to!r} is not: put the "
                                "boundary event in the same scope as the activity")
        elif node.kind == "boundary_cancel" and not (isinstance(target, SubProcess) and target.transaction):
            self.error(node.id, f"{name} is attached to {describe(target)}, which is not a transaction: a cancel "
                                "boundary event goes only on a transaction (BPMN 2.0 §10.4.3); move it onto a "
                                "transaction, make this sub-process one, or use another boundary event")
        elif node.kind == "boundary_escalation" and not isinstance(target, SubProcess) \
                and target.kind != "call_activity":  # type: ignore[attr-defined]
            self.warn(node.id, f"{name} is attached to {describe(target)}, which cannot throw an escalation (only "
                               "what runs inside a sub-process or a called process can): it never fires")

    def _check_gateway(self, s: _Scope, node: Node, out: list[SequenceFlow]) -> None:
        kind: str = node.kind  # type: ignore[attr-defined]
        name = describe(node)
        if not out:
            self.error(node.id, f"{name} has no outgoing flow: connect it to the next step")
            return
        if kind in ("exclusive_gateway", "inclusive_gateway"):
            default = getattr(node, "default", None)
            ids = [f.id for f in out]
            if default is not None and default not in ids:
                hint = _did_you_mean(default, ids)
                self.error(node.id, f"{name} has default={default!r}, which is not one of its outgoing flows "
                                    f"({_names(ids)}){hint}: set default to one of them")
            if len(out) > 1:
                for flow in out:
                    if flow.id == default:
                        if flow.condition:
                            self.warn(flow.id, f"{name} has default flow {flow.id!r} with condition "
                                               f"{flow.condition!r}: a default flow is taken when no other "
                                               "condition holds and its condition is ignored; remove it")
                    elif not flow.condition:
                        self.warn(flow.id, f"{name} has outgoing flow {flow.id!r} with no condition and it is not "
                                           "the default: it is taken whenever no flow before it holds (as Camunda "
                                           f"and jBPM do); add a condition or set default={flow.id!r}")
            elif out[0].condition and default is None:
                self.warn(out[0].id, f"{name} has a single outgoing flow {out[0].id!r}; its condition "
                                     f"{out[0].condition!r} is never checked: remove it or add the other branches")
        elif kind == "parallel_gateway":
            for flow in out:
                if flow.condition:
                    self.warn(flow.id, f"flow {flow.id!r} leaves {name} with condition {flow.condition!r}, which is "
                                       "ignored (a parallel gateway takes every flow): use an inclusive gateway")
        elif kind == "event_gateway":
            if len(out) < 2:
                self.error(node.id, f"{name} has {len(out)} outgoing flow: an event gateway races two or more "
                                    "catch events; add another (e.g. a timer as a time-out)")
            for flow in out:
                target = s.nodes.get(flow.target)
                if target is not None and target.kind not in CATCH_KINDS:  # type: ignore[attr-defined]
                    self.error(flow.id, f"{name} leads by flow {flow.id!r} to {describe(target)}: every flow out "
                                        "of an event gateway must lead to a timer_catch, message_catch or "
                                        "signal_catch event")
                if flow.condition:
                    self.warn(flow.id, f"flow {flow.id!r} leaves {name} with condition {flow.condition!r}, which "
                                       "is ignored (the first event to happen wins): remove it")

    def _check_compensation(self, s: _Scope, node: CompensationThrowEvent) -> None:
        name = describe(node)
        if node.activity is None:
            scope_nodes = [self.index.nodes[i] for i, sc in self.index.scope_of.items()
                           if i in self.index.nodes and self._inside(sc, s.id)]
            if not any(getattr(n, "compensation", None) for n in scope_nodes):
                self.warn(node.id, f"{name} compensates {s.title}, but no activity there has a compensation "
                                   "handler: nothing will be undone; set compensation= on the activities to undo")
            return
        target = self.index.nodes.get(node.activity)
        if target is None:
            activities = [n for n in self.index.nodes.values() if n.is_activity]
            hint = _did_you_mean(node.activity, activities)
            self.error(node.id, f"{name} compensates {node.activity!r}, which does not exist{hint}: name an "
                                "activity that has a compensation handler")
        elif not target.is_activity:
            self.error(node.id, f"{name} compensates {describe(target)}, which is not an activity: name an "
                                "activity that has a compensation handler")
        elif not getattr(target, "compensation", None):
            self.error(node.id, f"{name} compensates {describe(target)}, which has no compensation handler: set "
                                f"compensation= on {target.id!r} or compensate another activity")

    def _inside(self, scope: str | None, ancestor: str | None) -> bool:
        """Is ``scope`` ``ancestor`` or nested inside it?"""
        while True:
            if scope == ancestor:
                return True
            if scope is None:
                return False
            scope = self.index.scope_of.get(scope)

    def _check_user_task(self, node: UserTask) -> None:
        name = describe(node)
        if not node.assignee and not node.candidate_groups:
            self.warn(node.id, f"{name} has no assignee and no candidate groups: it shows in nobody's inbox; set "
                               "assignee= or candidate_groups=")
        if node.requires_claim and not node.candidate_groups:
            self.warn(node.id, f"{name} has requires_claim but no candidate groups: only a candidate claims a task, "
                               "so it has no effect; set candidate_groups= or drop requires_claim")
        if node.on_timeout is not None and not node.sla:
            self.warn(node.id, f"{name} has on_timeout but no sla: the timeout never happens; set sla (e.g. 'PT4H')")

    # --- graph checks ----------------------------------------------------------------------------

    def _check_cycles(self, s: _Scope) -> set[str]:
        """Report loops with no way out; returns their nodes (they need no further 'cannot end' report)."""
        import networkx as nx  # imported where a graph is built: importing the engine stays light

        stuck: set[str] = set()
        order = {n: i for i, n in enumerate(s.nodes)}
        for component in nx.strongly_connected_components(s.graph):
            if len(component) == 1:
                (only,) = component
                if not s.graph.has_edge(only, only):
                    continue
            leaves = any(v not in component for u in component for v in s.graph.successors(u))
            if leaves or any(s.nodes[n].kind in END_KINDS for n in component):  # type: ignore[attr-defined]
                continue
            members = sorted(component, key=order.__getitem__)
            stuck.update(members)
            self.error(members[0], f"the loop through {_names(members)} has no way out: a token that enters it "
                                   "never reaches an end; add an exit (a conditional flow out of a gateway in the "
                                   "loop, or a boundary event)")
        return stuck

    def _check_reachability(self, s: _Scope, exitless: set[str]) -> None:
        import networkx as nx  # imported where a graph is built: importing the engine stays light

        g = s.graph
        starts = self._entries(s)
        if starts:
            reached = set(starts).union(*(nx.descendants(g, x) for x in starts))
            for node in s.nodes.values():
                if node.id in reached:
                    continue
                if isinstance(node, BoundaryEvent) and node.attached_to in s.nodes \
                        and node.attached_to not in reached:
                    continue  # its activity is reported
                if getattr(node, "for_compensation", False) or getattr(node, "triggered_by_event", False):
                    continue  # a compensation handler is run by compensation, an event sub-process by its event
                self.error(node.id, f"{describe(node)} cannot be reached from any start event of {s.title}: "
                                    "connect a flow into it, or remove it")
        ends = self._ends(s)
        if not ends:
            return
        can_end = set(ends).union(*(nx.ancestors(g, e) for e in ends))
        dead = {n for n in s.nodes if n not in can_end and n not in exitless and g.out_degree(n) == 0}
        for node in s.nodes.values():
            if node.id in can_end or node.id in exitless or node.id in dead or getattr(node, "for_compensation", False):
                continue
            below = nx.descendants(g, node.id)
            causes = sorted((below & (dead | exitless)), key=list(s.nodes).index)
            because = f": every path stops at {_names(causes)}" if causes else ""
            self.error(node.id, f"no path from {describe(node)} reaches an end event{because}; connect it onward "
                                "to an end event")

    def _splits(self, s: _Scope) -> list[_Split]:
        splits: list[_Split] = []
        g = s.graph
        # The start events of a scope form a split too: an instance begins at one start of the process
        # (alternatives), while a sub-process starts all its plain starts at once (concurrent).
        implicit = not any(n.kind in START_KINDS for n in s.nodes.values())  # type: ignore[attr-defined]
        if implicit:  # the nodes without incoming flow all start at once (an ad-hoc sub-process's: as it activates)
            starts = self._entries(s)
            if len(starts) > 1 and not isinstance(self.index.nodes.get(s.id or ""), AdHocSubProcess):
                splits.append(_Split("", True, "error", f"the nodes without incoming flow of {s.title} (all start at "
                                                        "once)", tuple(("", x, "") for x in starts)))
        elif s.id is None:
            starts = [n for n in s.nodes if s.nodes[n].kind in START_KINDS]  # type: ignore[attr-defined]
            if len(starts) > 1:
                splits.append(_Split("", False, "error", "the start events of the process",
                                     tuple(("", x, "") for x in starts)))
        else:
            starts = [n for n in s.nodes if s.nodes[n].kind == "start"]  # type: ignore[attr-defined]
            if len(starts) > 1:
                splits.append(_Split("", True, "error", f"the start events of {s.title} (all start at once)",
                                     tuple(("", x, "") for x in starts)))
        for node in s.nodes.values():
            kind: str = node.kind  # type: ignore[attr-defined]
            flows = [(f.source, f.target, f.id) for f in s.outgoing[node.id] if f.target in s.nodes]
            bounds = [(node.id, b, k) for _, b, k, data in g.out_edges(node.id, keys=True, data=True)
                      if data.get("boundary")]
            name = describe(node)
            if node.is_gateway and len(flows) > 1:
                if kind == "parallel_gateway":
                    splits.append(_Split(node.id, True, "error", name, tuple(flows)))
                elif kind in ("exclusive_gateway", "event_gateway"):
                    splits.append(_Split(node.id, False, "error", name, tuple(flows)))
                elif kind == "inclusive_gateway":
                    splits.append(_Split(node.id, True, "warning", name, tuple(flows)))
                    splits.append(_Split(node.id, False, "warning", name, tuple(flows)))
            elif not node.is_gateway and kind not in BOUNDARY_KINDS:
                default = getattr(node, "default", None) if node.is_activity else None
                others = [f for f in s.outgoing[node.id] if f.id != default]
                if len(flows) > 1 and default is not None and all(f.condition for f in others):
                    # a default flow: the conditional flows, else the default (as an exclusive/inclusive gateway)
                    if len(others) == 1:
                        splits.append(_Split(node.id, False, "error", f"{name} (a condition or its default flow)",
                                             tuple(flows)))
                    else:
                        splits.append(_Split(node.id, True, "warning", f"{name} (conditional flows)", tuple(flows)))
                        splits.append(_Split(node.id, False, "warning", f"{name} (conditional flows)", tuple(flows)))
                elif len(flows) > 1:
                    conditional = any(f.condition for f in s.outgoing[node.id])
                    splits.append(_Split(node.id, True, "warning" if conditional else "error",
                                         f"{name} (several outgoing flows)", tuple(flows)))
                interrupting = [e for e in bounds if getattr(s.nodes[e[1]], "interrupting", True)]
                if interrupting and flows:
                    splits.append(_Split(node.id, False, "error", f"{name} and its interrupting boundary events",
                                         tuple(flows + interrupting)))
                lasting = [e for e in bounds if not getattr(s.nodes[e[1]], "interrupting", True)]
                if lasting and flows:
                    splits.append(_Split(node.id, True, "warning", f"{name} and its non-interrupting boundary events",
                                         tuple(flows + lasting)))
        return splits

    def _reaches(self, s: _Scope, split: _Split, avoid: set[str]) -> list[tuple[tuple[str, str, str], _Reach]]:
        """One dominator tree per branch of ``split`` on the scope graph without ``avoid``."""
        graph = s.simple.copy()
        graph.remove_nodes_from(avoid)
        return [(branch, _Reach(graph, branch)) for branch in split.branches]

    def _check_deadlocks(self, s: _Scope, splits: list[_Split]) -> None:
        joins = [n for n in s.nodes.values() if n.kind == "parallel_gateway" and len(s.incoming[n.id]) > 1]  # type: ignore
        starts = self._entries(s)
        # A loop back into a parallel join: the join waits for a token only the join itself can send, i.e.
        # the join dominates the source of one of its incoming flows (seen from all the start events).
        rooted = s.simple.copy()
        rooted.add_edges_from(("", x) for x in starts)
        from_starts = _Reach(rooted, ("", "", ""))
        for join in joins:
            sources = {f.source for f in s.incoming[join.id]}
            behind = [f.id for f in s.incoming[join.id]
                      if f.source in from_starts.reached and from_starts.dominates(join.id, f.source)]
            if behind and any(not from_starts.dominates(join.id, x) for x in sources if x in from_starts.reached):
                self.error(join.id, f"deadlock: {describe(join)} waits for flow(s) {_names(behind)}, which only a "
                                    f"token that has passed {join.id!r} itself can reach (a loop back into a "
                                    "parallel join), so it waits forever; merge the loop with an exclusive gateway")
        if not joins:
            return
        for split in (x for x in splits if not x.concurrent):
            reaches = self._reaches(s, split, {split.node})
            for join in joins:
                if join.id == split.node:
                    continue
                reach = [(b, r.entries(s.graph, join.id)) for b, r in reaches]
                reach = [(b, r) for b, r in reach if r]
                pair = next(((a, ra, b, rb) for i, (a, ra) in enumerate(reach) for b, rb in reach[i + 1:]
                             if ra != rb), None)
                if pair is None:
                    continue
                a, ra, b, rb = pair
                waits = sorted(f.id for f in s.incoming[join.id])
                node = s.nodes.get(split.node)
                also = f", or make {split.node!r} a parallel gateway" if node is not None and node.is_gateway else ""
                inclusive = node is not None and node.kind == "inclusive_gateway"  # type: ignore[attr-defined]
                taken = "when not every condition holds some are not taken" if inclusive else "only one is taken"
                self.add(join.id, f"deadlock: {describe(join)} waits for every incoming flow ({_names(waits)}), but "
                                  f"they come from alternative paths of {split.why} ({_branch(s, a)} arrives by "
                                  f"{_names(sorted(ra))}, {_branch(s, b)} by {_names(sorted(rb))}) and {taken}, so "
                                  f"the join waits forever; merge those paths with an exclusive gateway "
                                  f"(or an inclusive one) instead{also}",
                         split.severity)

    def _check_synchronisation(self, s: _Scope, splits: list[_Split]) -> None:
        merges = [n for n in s.nodes.values()
                  if len(s.incoming[n.id]) > 1 and n.kind not in END_KINDS  # type: ignore[attr-defined]
                  and n.kind not in SYNC_JOIN_KINDS]  # type: ignore[attr-defined]
        if not merges:
            return
        sync_joins = [n for n in s.nodes if s.nodes[n].kind in SYNC_JOIN_KINDS and len(s.incoming[n]) > 1]  # type: ignore
        for split in (x for x in splits if x.concurrent):
            # joins every branch reaches synchronise the branches: paths are not followed through them
            below = [r.reached for _, r in self._reaches(s, split, {split.node})]
            full = {j for j in sync_joins if j != split.node and all(j in d for d in below)}
            reaches = self._reaches(s, split, {split.node} | full)
            for merge in merges:
                if merge.id == split.node:
                    continue
                reach = [(b, r.entries(s.graph, merge.id)) for b, r in reaches]
                pair = next(((a, ra, b, rb) for i, (a, ra) in enumerate(reach) for b, rb in reach[i + 1:]
                             if ra and rb and len(ra | rb) > 1), None)
                if pair is None:
                    continue
                a, ra, b, rb = pair
                self.add(merge.id, f"lack of synchronisation: {describe(merge)} merges branches of {split.why} "
                                   f"({_branch(s, a)} arrives by {_names(sorted(ra))}, {_branch(s, b)} by "
                                   f"{_names(sorted(rb))}) that both run, so {merge.id!r} and what follows run once "
                                   f"per branch; join them with a parallel gateway (inclusive after an inclusive "
                                   f"split) before {merge.id!r}",
                         split.severity)

    # --- expressions and variables ---------------------------------------------------------------

    def _check_variables(self) -> None:
        required = [v.name for v in self.d.variables if v.required and v.default is None]
        for node in self.d.start_nodes():
            if node.kind == "timer_start" and required:
                self.warn(node.id, f"a timer starts instances with no variables, yet required variables "
                                   f"({_names(required)}) have no default: give them defaults")
        for flow in self.d.all_flows():
            if flow.condition is not None:
                self._check_expression(flow.id, f"condition of flow {flow.id!r}", flow.condition,
                                       self._loop_locals(self.index.scope_of.get(flow.source)))
        for node in self.d.all_nodes():
            local = self._loop_locals(node.id)
            key = getattr(node, "correlation_key", None)
            if key is not None:
                self._check_expression(node.id, f"correlation_key of {describe(node)}", key, local)
            payload = getattr(node, "payload_expression", None)
            if payload is not None:
                self._check_expression(node.id, f"payload_expression of {describe(node)}", payload, local)
            timer = getattr(node, "timer", None)
            if timer is not None and timer.expression is not None:  # parses (the model checked): names it reads
                self._check_expression(node.id, f"{timer.kind} of {describe(node)}", timer.expression, local,
                                       unknown="warning")
            self._check_loop(node)
            if node.kind == "call_activity":  # type: ignore[attr-defined]
                for target, source in (node.inputs or {}).items():  # type: ignore[attr-defined]
                    self._check_expression(node.id, f"input mapping {target!r} of {describe(node)}", source, local)
                if self.declared and node.outputs:  # type: ignore[attr-defined]
                    self._check_names(node, "outputs", list(node.outputs))  # type: ignore[attr-defined]
            target = getattr(node, "result_variable", None)
            if target is not None and self.declared and target not in self.declared:
                self._check_names(node, "result_variable", [target])
            if not self.declared:
                continue
            if isinstance(node, ServiceTask):
                self._check_names(node, "input_variables", node.input_variables)
                self._check_names(node, "output_variables", node.output_variables)
            elif isinstance(node, UserTask):
                self._check_names(node, "form", [f.variable or f.name for f in node.form])
            elif isinstance(node, MessageThrowEvent | SignalThrowEvent | SignalEndEvent):
                self._check_names(node, "payload", node.payload)
            elif isinstance(node, MessageCatchEvent) and node.outputs:
                self._check_names(node, "outputs", node.outputs)

    def _loop_locals(self, node_id: str | None) -> frozenset[str]:
        """The variables multi-instance and loop activities define for what runs inside them (``node_id`` and
        the sub-processes around it): loopCounter, the nrOf* counters, the element and output element."""
        names: set[str] = set()
        while node_id is not None:
            node = self.index.nodes.get(node_id)
            mi = getattr(node, "multi_instance", None)
            if mi is not None or getattr(node, "loop", None) is not None:
                names.update(LOOP_VARIABLES)
            if mi is not None:
                names.update(n for n in (mi.element_variable, mi.output_element) if n and n.isidentifier())
            node_id = self.index.scope_of.get(node_id)
        return frozenset(names)

    def _check_loop(self, node: Node) -> None:
        """The expressions of a multi-instance or loop activity: the input before the instances exist (the
        enclosing scope's variables), the completion and loop conditions with the loop's own variables too."""
        mi, loop = getattr(node, "multi_instance", None), getattr(node, "loop", None)
        outer = self._loop_locals(self.index.scope_of.get(node.id))
        if mi is not None:
            if mi.collection is not None:
                self._check_expression(node.id, f"multi-instance collection of {describe(node)}", mi.collection,
                                       outer)
            if mi.cardinality is not None:
                self._check_expression(node.id, f"multi-instance cardinality of {describe(node)}", mi.cardinality,
                                       outer)
            if mi.completion_condition is not None:
                self._check_expression(node.id, f"completion condition of {describe(node)}",
                                       mi.completion_condition, self._loop_locals(node.id))
            if mi.output_element is not None and not mi.output_element.isidentifier():
                self._check_expression(node.id, f"output element of {describe(node)}", mi.output_element,
                                       self._loop_locals(node.id))
            if mi.output_collection and self.declared and mi.output_collection not in self.declared:
                self._check_names(node, "output collection", [mi.output_collection])
        if loop is not None and loop.condition is not None:
            self._check_expression(node.id, f"loop condition of {describe(node)}", loop.condition,
                                   self._loop_locals(node.id))

    def _check_expression(self, where: str, what: str, source: str, local: frozenset[str] = frozenset(),
                          unknown: str = "error") -> None:
        """``source`` parses, and reads only declared variables (else an error, or ``unknown``'s severity)."""
        reason = expressions.check(source)
        if reason is not None:
            self.error(where, f"{what} {source!r} {reason}: fix the expression (e.g. 'score >= 70 and not churned')")
            return
        names = sorted(set(expressions.variable_names(source)) - local)
        if not self.declared:
            if names:
                self.warn(where, f"{what} reads {_names(names)}, but the definition declares no variables, so the "
                                 "names cannot be checked: declare them in variables")
            return
        undeclared = [n for n in names if n not in self.declared]
        if undeclared:
            hints = "".join(_did_you_mean(n, self.declared) for n in undeclared)
            (self.error if unknown == "error" else self.warn)(
                where, f"{what} {source!r} reads {_names(undeclared)}, not declared as variables{hints}: "
                       "declare them in variables or fix the spelling")

    def _check_names(self, node: Node, field: str, names: list[str]) -> None:
        local = self._loop_locals(node.id)
        unknown = [n for n in names if n not in self.declared and n not in local]
        if unknown:
            hints = "".join(_did_you_mean(n, self.declared) for n in unknown)
            self.warn(node.id, f"{describe(node)} {field} names {_names(unknown)}, not declared as variables{hints}: "
                               "declare them so their values are checked and shown")


class _Reach:
    """What one branch of a split reaches, with its dominator tree (``networkx.immediate_dominators``).

    The entries of a node ``M`` from the branch are the incoming edges ``u -> M`` whose source the branch
    reaches *without passing M*; that is exactly when ``M`` does not dominate ``u`` in the tree rooted at the
    branch's first node. Pre/post numbers of the tree answer each question in O(1), so checking a split
    against every join costs one dominator computation per branch instead of one search per pair.
    """

    def __init__(self, graph: nx.DiGraph, branch: tuple[str, str, str]) -> None:
        import networkx as nx  # imported where a graph is built: importing the engine stays light

        _, self.first, self.key = branch
        self.reached: set[str] = set()
        self.pre: dict[str, int] = {}
        self.post: dict[str, int] = {}
        if self.first not in graph:
            return
        idom = nx.immediate_dominators(graph, self.first)
        self.reached = {*idom, self.first}  # newer networkx leave the start out
        children: dict[str, list[str]] = {}
        for node, parent in idom.items():
            if node != parent:
                children.setdefault(parent, []).append(node)
        clock = 0
        stack: list[tuple[str, bool]] = [(self.first, False)]
        while stack:
            node, done = stack.pop()
            if done:
                self.post[node] = clock
            else:
                self.pre[node] = clock
                stack.append((node, True))
                stack.extend((child, False) for child in children.get(node, []))
            clock += 1

    def dominates(self, a: str, b: str) -> bool:
        """Does every path from the branch to ``b`` pass ``a``?"""
        return a in self.pre and b in self.pre and self.pre[a] <= self.pre[b] and self.post[b] <= self.post[a]

    def entries(self, full: nx.MultiDiGraph, target: str) -> frozenset[str]:
        """Keys of the edges into ``target`` that the branch reaches without passing ``target`` first."""
        if self.first == target:
            return frozenset({self.key})
        return frozenset(k for u, _, k in full.in_edges(target, keys=True)
                         if u in self.reached and u != target and not self.dominates(target, u))


def _branch(s: _Scope, edge: tuple[str, str, str]) -> str:
    """How a message names one branch of a split: its flow, or the boundary event it leaves by."""
    source, target, key = edge
    if not source:
        return f"the path from start event {target!r}"
    if s.graph.get_edge_data(source, target, key, default={}).get("boundary"):
        return f"the path of boundary event {target!r}"
    return f"the path by flow {key!r}"


def _did_you_mean(word: str, options: Iterable[object]) -> str:
    names = [o if isinstance(o, str) else getattr(o, "id", str(o)) for o in options]
    close = difflib.get_close_matches(word, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
