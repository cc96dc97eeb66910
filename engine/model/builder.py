"""A fluent builder that reads top to bottom, for notebooks and code.

    b = ProcessBuilder("pr_review", variables={"pr_number": int, "vision_approved": bool})
    gate = b.start().service("validate", agent=validate_pr, inputs=["pr_number"],
                             outputs=["vision_approved"]).exclusive("approved?")
    gate.when("vision_approved").service("deploy", agent=deploy).end("deployed")
    gate.otherwise().service("create_issue", agent=create_issue).end("rejected")
    definition = b.build()

A :class:`Cursor` stands on a node; each call adds a node, connects it from the cursor's node
and returns a cursor on the new node. ``when``/``otherwise``/``branch`` put the next flow's
condition on a gateway; ``ProcessBuilder.join`` brings branches together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from engine.errors import DefinitionError, Problem
from engine.model import nodes as n
from engine.model.definition import ProcessDefinition, VariableDecl
from engine.model.nodes import Node, SequenceFlow


class Cursor:
    """A position in the builder: the node the next flow starts from."""

    def __init__(self, builder: ProcessBuilder, node_id: str, condition: str | None = None,
                 default: bool = False) -> None:
        self.builder = builder
        self.node_id = node_id
        self._condition = condition
        self._default = default

    def __repr__(self) -> str:
        return f"Cursor(at={self.node_id!r})"

    # --- connecting ----------------------------------------------------------------------------

    def then(self, node: Node) -> Cursor:
        """Add any node and connect to it."""
        self.builder.add(node)
        return self.to(node.id)

    def to(self, node_id: str, name: str | None = None) -> Cursor:
        """Connect to a node that exists already (or will: loops, merges)."""
        self.builder.flow(self.node_id, node_id, condition=self._condition, default=self._default, name=name)
        return Cursor(self.builder, node_id)

    def when(self, condition: str) -> Cursor:
        """The next flow out of this gateway carries ``condition``."""
        return Cursor(self.builder, self.node_id, condition=condition)

    def otherwise(self) -> Cursor:
        """The next flow out of this gateway is its default flow."""
        return Cursor(self.builder, self.node_id, default=True)

    def branch(self) -> Cursor:
        """Another unconditional path out of this node (parallel split, event gateway)."""
        return Cursor(self.builder, self.node_id)

    # --- activities ----------------------------------------------------------------------------

    def service(self, id: str, agent: Any = None, inputs: Iterable[str] = (), outputs: Iterable[str] = (),
                **fields: Any) -> Cursor:
        """A service task: an in-process ``agent``, or ``topic=`` for external workers on the bus (or both)."""
        return self.then(n.ServiceTask(id=id, agent=agent, input_variables=list(inputs),
                                       output_variables=list(outputs), **fields))

    def user(self, id: str, title: str | None = None, **fields: Any) -> Cursor:
        return self.then(n.UserTask(id=id, title=title, **fields))

    def script(self, id: str, script: str, **fields: Any) -> Cursor:
        """A script task: assignments of safe expressions, one a line (``total = price * quantity``)."""
        return self.then(n.ScriptTask(id=id, script=script, **fields))

    def receive_task(self, id: str, message: str, correlation_key: str | None = None, **fields: Any) -> Cursor:
        """A receive task: waits for ``message`` like a message catch event, but boundary events attach to it."""
        return self.then(n.ReceiveTask(id=id, message=message, correlation_key=correlation_key, **fields))

    def call(self, id: str, called_element: str, inputs: Mapping[str, str] | None = None,
             outputs: Mapping[str, str] | None = None, **fields: Any) -> Cursor:
        """A call activity: runs the deployed process ``called_element`` and waits for it (``binding=`` 'latest',
        'deployment' or 'version' with ``version=``); ``inputs``/``outputs`` map variables by expressions (None:
        all of them)."""
        return self.then(n.CallActivity(id=id, called_element=called_element,
                                        inputs=dict(inputs) if inputs is not None else None,
                                        outputs=dict(outputs) if outputs is not None else None, **fields))

    def task(self, id: str, **fields: Any) -> Cursor:
        return self.then(n.Task(id=id, **fields))

    def sub_process(self, id: str, body: Callable[[ProcessBuilder], Any], **fields: Any) -> Cursor:
        """An embedded sub-process; ``body`` receives a builder for the inner scope."""
        inner = self.builder.nested(id)
        body(inner)
        self.builder._gateway_defaults.update(inner._gateway_defaults)
        return self.then(n.SubProcess(id=id, nodes=inner._final_nodes(), flows=inner._flows, **fields))

    def transaction(self, id: str, body: Callable[[ProcessBuilder], Any], **fields: Any) -> Cursor:
        """A transaction sub-process (BPMN 2.0 §10.3.5): ``body`` builds its inside, where ``cancel()`` ends a path
        with a cancel end event; give it a cancel boundary event with ``on_cancel()``."""
        return self.sub_process(id, body, transaction=True, **fields)

    def ad_hoc(self, id: str, body: Callable[[ProcessBuilder], Any], active_elements: str | None = None,
               completion_condition: str | None = None, cancel_remaining: bool = True, sequential: bool = False,
               **fields: Any) -> Cursor:
        """An ad-hoc sub-process: ``body`` adds its activities with ``add(...)`` (no start or end events; flows
        between them as usual). On entry it runs the elements ``active_elements`` names (an expression giving a
        list of their ids), else every one without incoming flow; all at once, or one after another
        (``sequential``); it completes when ``completion_condition`` holds after an inner activity completed
        (cancelling the rest unless ``cancel_remaining=False``), else when nothing inside runs any more."""
        inner = self.builder.nested(id)
        body(inner)
        self.builder._gateway_defaults.update(inner._gateway_defaults)
        return self.then(n.AdHocSubProcess(
            id=id, nodes=inner._final_nodes(), flows=inner._flows, active_elements=active_elements,
            completion_condition=completion_condition, cancel_remaining=cancel_remaining,
            ordering="sequential" if sequential else "parallel", **fields))

    # --- gateways ------------------------------------------------------------------------------

    def exclusive(self, id: str, **fields: Any) -> Cursor:
        return self.then(n.ExclusiveGateway(id=id, **fields))

    def inclusive(self, id: str, **fields: Any) -> Cursor:
        return self.then(n.InclusiveGateway(id=id, **fields))

    def parallel(self, id: str, **fields: Any) -> Cursor:
        return self.then(n.ParallelGateway(id=id, **fields))

    def race(self, id: str, **fields: Any) -> Cursor:
        """An event-based gateway: follow with ``.branch().timer(...)`` and ``.branch().receive(...)``."""
        return self.then(n.EventBasedGateway(id=id, **fields))

    # --- events --------------------------------------------------------------------------------

    def timer(self, id: str, timer: Any, **fields: Any) -> Cursor:
        """Wait: a duration ('P7D'), a date, or a cycle ('0 9 * * *')."""
        return self.then(n.TimerCatchEvent(id=id, timer=timer, **fields))

    def wait_until(self, id: str, condition: str, **fields: Any) -> Cursor:
        """A conditional catch event: wait until ``condition`` holds (checked whenever variables change)."""
        return self.then(n.ConditionalCatchEvent(id=id, condition=condition, **fields))

    def receive(self, id: str, message: str, correlation_key: str | None = None, **fields: Any) -> Cursor:
        return self.then(n.MessageCatchEvent(id=id, message=message, correlation_key=correlation_key, **fields))

    def send(self, id: str, message: str, payload: Iterable[str] = (), **fields: Any) -> Cursor:
        return self.then(n.MessageThrowEvent(id=id, message=message, payload=list(payload), **fields))

    def throw(self, id: str, **fields: Any) -> Cursor:
        """A none intermediate throw event (a milestone): the token passes straight through."""
        return self.then(n.IntermediateThrowEvent(id=id, **fields))

    def link(self, id: str, link: str, **fields: Any) -> Cursor:
        """A link throw event: the path continues at ``ProcessBuilder.link_catch(..., link)`` of the same scope."""
        return self.then(n.LinkThrowEvent(id=id, link=link, **fields))

    def wait_signal(self, id: str, signal: str, **fields: Any) -> Cursor:
        """A signal catch event: wait until ``signal`` is broadcast (by any instance, or ``Engine.signal``)."""
        return self.then(n.SignalCatchEvent(id=id, signal=signal, **fields))

    def signal(self, id: str, signal: str, payload: Iterable[str] = (), **fields: Any) -> Cursor:
        """A signal throw event: broadcast ``signal`` with the named variables, then go on."""
        return self.then(n.SignalThrowEvent(id=id, signal=signal, payload=list(payload), **fields))

    def signal_end(self, id: str, signal: str, payload: Iterable[str] = (), **fields: Any) -> Cursor:
        """A signal end event: broadcast ``signal`` with the named variables and end this path."""
        return self.then(n.SignalEndEvent(id=id, signal=signal, payload=list(payload), **fields))

    def escalate(self, id: str, escalation_code: str, **fields: Any) -> Cursor:
        """An escalation throw event: escalate ``escalation_code`` to the enclosing scopes, then go on."""
        return self.then(n.EscalationThrowEvent(id=id, escalation_code=escalation_code, **fields))

    def escalation_end(self, id: str, escalation_code: str, **fields: Any) -> Cursor:
        """An escalation end event: escalate ``escalation_code`` and end this path."""
        return self.then(n.EscalationEndEvent(id=id, escalation_code=escalation_code, **fields))

    def compensate(self, id: str, activity: str | None = None, **fields: Any) -> Cursor:
        return self.then(n.CompensationThrowEvent(id=id, activity=activity, **fields))

    def end(self, id: str | None = None, **fields: Any) -> Cursor:
        return self.then(n.EndEvent(id=id or self.builder.new_id("end"), **fields))

    def terminate(self, id: str | None = None, **fields: Any) -> Cursor:
        return self.then(n.TerminateEndEvent(id=id or self.builder.new_id("terminate"), **fields))

    def cancel(self, id: str | None = None, **fields: Any) -> Cursor:
        """A cancel end event: cancels the transaction it is in (its cancel boundary event takes over)."""
        return self.then(n.CancelEndEvent(id=id or self.builder.new_id("cancel"), **fields))

    def fail(self, error_code: str, id: str | None = None, **fields: Any) -> Cursor:
        """An error end event throwing ``error_code``."""
        return self.then(n.ErrorEndEvent(id=id or self.builder.new_id("error"), error_code=error_code, **fields))

    # --- boundary events on the activity under the cursor ----------------------------------

    def on_timer(self, timer: Any, id: str | None = None, interrupting: bool = True, **fields: Any) -> Cursor:
        return self._boundary(n.TimerBoundaryEvent, id, timer=timer, interrupting=interrupting, **fields)

    def on_error(self, error_code: str | None = None, id: str | None = None, **fields: Any) -> Cursor:
        return self._boundary(n.ErrorBoundaryEvent, id, error_code=error_code, **fields)

    def on_cancel(self, id: str | None = None, **fields: Any) -> Cursor:
        """A cancel boundary event on a transaction: where it goes on once a cancel end event cancelled it and its
        compensation ran."""
        return self._boundary(n.CancelBoundaryEvent, id, **fields)

    def on_message(self, message: str, id: str | None = None, interrupting: bool = True, **fields: Any) -> Cursor:
        return self._boundary(n.MessageBoundaryEvent, id, message=message, interrupting=interrupting, **fields)

    def on_signal(self, signal: str, id: str | None = None, interrupting: bool = True, **fields: Any) -> Cursor:
        return self._boundary(n.SignalBoundaryEvent, id, signal=signal, interrupting=interrupting, **fields)

    def on_condition(self, condition: str, id: str | None = None, interrupting: bool = True, **fields: Any
                     ) -> Cursor:
        """A conditional boundary event: fires when ``condition`` becomes true while the activity runs."""
        return self._boundary(n.ConditionalBoundaryEvent, id, condition=condition, interrupting=interrupting,
                              **fields)

    def on_escalation(self, escalation_code: str | None = None, id: str | None = None, interrupting: bool = True,
                      **fields: Any) -> Cursor:
        """An escalation boundary event on a sub-process: catches ``escalation_code`` (None: every code)."""
        return self._boundary(n.EscalationBoundaryEvent, id, escalation_code=escalation_code,
                              interrupting=interrupting, **fields)

    def _boundary(self, cls: type[Node], id: str | None, **fields: Any) -> Cursor:
        node = cls(id=id or self.builder.new_id(f"{self.node_id}_{cls.model_fields['kind'].default}"),
                   attached_to=self.node_id, **fields)
        self.builder.add(node)
        return Cursor(self.builder, node.id)


class ProcessBuilder:
    """Collects nodes and flows and builds a validated :class:`ProcessDefinition`."""

    def __init__(self, id: str, name: str | None = None, version: int = 1,
                 variables: Mapping[str, Any] | Iterable[VariableDecl] | None = None,
                 description: str | None = None, **metadata: Any) -> None:
        self.id = id
        self.name = name
        self.version = version
        self.description = description
        self.metadata = metadata
        self.variables = _variables(variables)
        self._nodes: dict[str, Node] = {}
        self._flows: list[SequenceFlow] = []
        self._gateway_defaults: dict[str, str] = {}
        self._counter = itertools.count(2)
        self._scope: str | None = None  # the sub-process this builder builds the inside of (``nested``)
        self._taken: set[str] = set()  # every node id of the whole tree, shared with the nested builders

    def nested(self, id: str) -> ProcessBuilder:
        """A builder for the inside of sub-process ``id``: it shares this builder's ids, so a default id
        (``start()``, ``end()``...) that one scope already uses is prefixed by the sub-process's id in the other
        (``trip_start``), and what is already unique keeps its plain id."""
        inner = ProcessBuilder(id)
        inner._scope, inner._taken = id, self._taken
        return inner

    def new_id(self, base: str) -> str:
        """A free node id for a default: ``base``, else (inside a sub-process) ``<sub-process>_<base>``, else
        ``base`` with a number."""
        def free(candidate: str) -> bool:
            return candidate not in self._nodes and candidate not in self._taken

        if free(base):
            return base
        if self._scope is not None and base not in self._nodes and free(scoped := f"{self._scope}_{base}"):
            return scoped  # another scope has it: this one's own repeats stay numbered (end, end_2)
        while True:
            candidate = f"{base}_{next(self._counter)}"
            if free(candidate):
                return candidate

    def add(self, node: Node) -> Cursor:
        """Add a node without connecting it."""
        if node.id in self._nodes:
            raise DefinitionError(Problem(node.id, "a node with this id exists already; ids must be unique"))
        self._nodes[node.id] = node
        self._taken.add(node.id)
        return Cursor(self, node.id)

    def at(self, node_id: str) -> Cursor:
        if node_id not in self._nodes:
            raise DefinitionError(Problem(node_id, "no such node in this builder"))
        return Cursor(self, node_id)

    def start(self, id: str | None = None, **fields: Any) -> Cursor:
        """A none start event: ``start``, or inside a sub-process ``<sub-process>_start`` if that is taken."""
        return self.add(n.StartEvent(id=id or self.new_id("start"), **fields))

    def timer_start(self, id: str, timer: Any, **fields: Any) -> Cursor:
        return self.add(n.TimerStartEvent(id=id, timer=timer, **fields))

    def message_start(self, id: str, message: str, **fields: Any) -> Cursor:
        return self.add(n.MessageStartEvent(id=id, message=message, **fields))

    def event_sub_process(self, id: str, body: Callable[[ProcessBuilder], Any], **fields: Any) -> Cursor:
        """An event sub-process in this scope (no flows in or out): ``body`` gets a builder for its inside, which
        begins with one start event with a trigger (``timer_start``, ``message_start``, ``signal_start``,
        ``error_start``, ``escalation_start``, ``conditional_start``; ``interrupting=False`` runs it beside the
        scope)."""
        inner = self.nested(id)
        body(inner)
        self._gateway_defaults.update(inner._gateway_defaults)
        return self.add(n.SubProcess(id=id, nodes=inner._final_nodes(), flows=inner._flows, triggered_by_event=True,
                                     **fields))

    def error_start(self, id: str, error_code: str | None = None, **fields: Any) -> Cursor:
        """An event sub-process's error start event: catches ``error_code`` (None: every error) in its scope."""
        return self.add(n.ErrorStartEvent(id=id, error_code=error_code, **fields))

    def escalation_start(self, id: str, escalation_code: str | None = None, interrupting: bool = True,
                         **fields: Any) -> Cursor:
        """An event sub-process's escalation start event (None: every escalation)."""
        return self.add(n.EscalationStartEvent(id=id, escalation_code=escalation_code, interrupting=interrupting,
                                               **fields))

    def conditional_start(self, id: str, condition: str, interrupting: bool = True, **fields: Any) -> Cursor:
        """An event sub-process's conditional start event: when ``condition`` becomes true while its scope runs."""
        return self.add(n.ConditionalStartEvent(id=id, condition=condition, interrupting=interrupting, **fields))

    def signal_start(self, id: str, signal: str, **fields: Any) -> Cursor:
        """A signal start event: every broadcast of ``signal`` starts an instance."""
        return self.add(n.SignalStartEvent(id=id, signal=signal, **fields))

    def link_catch(self, id: str, link: str, **fields: Any) -> Cursor:
        """A link catch event: where the link throw events named ``link`` continue (it has no incoming flow)."""
        return self.add(n.LinkCatchEvent(id=id, link=link, **fields))

    def flow(self, source: str, target: str, condition: str | None = None, default: bool = False,
             name: str | None = None, id: str | None = None) -> SequenceFlow:
        flow_id = id or self._flow_id(source, target)
        flow = SequenceFlow(id=flow_id, source=source, target=target, condition=condition, name=name)
        self._flows.append(flow)
        if default:
            self._gateway_defaults[source] = flow_id
        return flow

    def join(self, id: str, *branches: Cursor, kind: str = "parallel_gateway", **fields: Any) -> Cursor:
        """A gateway that the given branches all flow into (parallel by default; kind='exclusive_gateway'
        merges alternatives, kind='inclusive_gateway' joins an inclusive split)."""
        self.add(n.NODE_CLASSES[kind](id=id, **fields))
        for branch in branches:
            branch.to(id)
        return Cursor(self, id)

    def merge(self, id: str, *branches: Cursor, **fields: Any) -> Cursor:
        """An exclusive merge of alternative paths."""
        return self.join(id, *branches, kind="exclusive_gateway", **fields)

    def build(self, validate: bool = True) -> ProcessDefinition:
        """The definition; with ``validate`` every structural/soundness error is raised together."""
        try:
            definition = ProcessDefinition(
                id=self.id, name=self.name, version=self.version, description=self.description,
                variables=self.variables, nodes=self._final_nodes(), flows=self._flows, metadata=self.metadata,
            )
        except ValidationError as exc:
            raise DefinitionError(str(exc)) from None
        if validate:
            from engine.validate import errors_only

            problems = errors_only(definition)
            if problems:
                raise DefinitionError(problems, source=self.id)
        return definition

    def _final_nodes(self) -> list[Node]:
        out = []
        for node in self._nodes.values():
            if node.id in self._gateway_defaults:
                node = node.model_copy(update={"default": self._gateway_defaults[node.id]})
            out.append(node)
        return out

    def _flow_id(self, source: str, target: str) -> str:
        base = f"{source}__{target}".replace("?", "").replace(" ", "_")
        existing = {f.id for f in self._flows}
        if base not in existing:
            return base
        for i in itertools.count(2):
            if f"{base}_{i}" not in existing:
                return f"{base}_{i}"
        raise AssertionError("unreachable")


def for_each(collection: str, element: str | None = None, *, sequential: bool = False, into: str | None = None,
             output: str | None = None, until: str | None = None) -> n.MultiInstance:
    """A multi-instance over a list: ``multi_instance=for_each("channels", "channel", into="drafts",
    output="draft")`` runs the activity once per channel (``sequential``: one after another), each seeing its
    item as ``channel``, and collects each instance's ``draft`` into ``drafts``; ``until`` is the completion
    condition (e.g. ``"nrOfCompletedInstances >= 2"``)."""
    return n.MultiInstance(collection=collection, element_variable=element, sequential=sequential,
                           output_collection=into, output_element=output, completion_condition=until)


def times(cardinality: str | int, *, sequential: bool = False, until: str | None = None) -> n.MultiInstance:
    """A multi-instance run ``cardinality`` times (a number, or an expression such as ``"reviewers"``)."""
    return n.MultiInstance(cardinality=str(cardinality), sequential=sequential, completion_condition=until)


def repeat(while_: str | None = None, *, test_before: bool = False, maximum: int | None = None) -> n.StandardLoop:
    """A standard loop: run again while ``while_`` holds (evaluated after each run, or before each with
    ``test_before``), at most ``maximum`` times."""
    return n.StandardLoop(condition=while_, test_before=test_before, maximum=maximum)


def _variables(variables: Mapping[str, Any] | Iterable[VariableDecl] | None) -> list[VariableDecl]:
    if variables is None:
        return []
    if isinstance(variables, Mapping):
        out = []
        for name, spec in variables.items():
            if isinstance(spec, VariableDecl):
                out.append(spec)
            elif isinstance(spec, Mapping):
                out.append(VariableDecl(name=name, **spec))
            else:
                out.append(VariableDecl(name=name, type=spec))
        return out
    return list(variables)
