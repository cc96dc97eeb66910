"""The token-flow rules: one pure function of (definition, state, event, now) -> effects.

No database, no clock, no threads. The engine drives it with rows and a real (or virtual) clock,
the simulator with SimPy's clock, so a simulation predicts what the engine will do.

Rules in brief (BPMN 2.0 token semantics, with the choices a user of Camunda would expect):
- A token arriving at an activity starts its work (``StartWork``) and arms the activity's boundary
  timers/messages and a user task's SLA timer; ``WorkDone`` writes outputs and moves on.
- A failed agent call is retried per the task's RetryPolicy (a durable timer is the backoff). When
  attempts run out, or at once for a business error (``WorkFailed(business=True)``), the error goes to
  a matching error boundary event on the activity, then on enclosing sub-processes; technical errors
  nothing catches become an ``Incident`` (the token waits for ``RetryIncident``); an uncaught error
  end event fails the instance.
- Exclusive gateways take the first flow (in definition order) whose condition holds, else the
  default; inclusive gateways take all that hold, else the default. No flow at all is an incident at
  the gateway (fix the variables, then retry it).
- Parallel joins wait for a token on every incoming flow; inclusive joins wait until no other token
  in the same scope can still reach them.
- An event-based gateway races its catch events; the first wins, the others are cancelled.
- Interrupting boundary events cancel the activity (and everything inside a sub-process);
  non-interrupting ones start an extra token and stay armed while the activity runs (BPMN 2.0 §10.5.4: a
  non-interrupting boundary event may fire any number of times; Camunda 7/8 alike): a message or signal
  boundary subscribes again for the next message or broadcast, a cycle timer re-arms for its next
  repetition, a duration or date timer fires once, a conditional one fires again once its condition was
  false in between.
- A compensation throw runs the handlers of completed activities in its scope (or one named
  activity), newest first, one at a time, then continues.
- A terminate end cancels every token of its scope; the instance (or sub-process) completes.
- Transactions (BPMN 2.0 §10.3.5 "Transaction"; §10.4.3 "Cancel" end and intermediate events): a token reaching
  a cancel end event cancels the transaction it sits in. Every other token inside is cancelled (work, waits,
  inner sub-processes), then the handlers of the activities that completed inside this run of the transaction
  are run, newest first, one at a time, by the compensation machinery (an inner sub-process that was still
  running did not complete, so what completed inside it is not compensated, as for an interrupted scope); then
  the token leaves by the transaction's cancel boundary event (always interrupting; validation requires exactly
  one, and refuses a cancel end event outside a transaction and a cancel boundary event on anything else). The
  token waits at the cancel boundary event while the handlers run; a handler that fails is an incident there,
  and retrying it goes on with the rest. A looped transaction is left as a whole: the run that was cancelled is
  compensated, its other runs are cancelled and not compensated. An error thrown inside a transaction is caught
  as in any sub-process, with no compensation (BPMN's "hazard"), and a transaction that completes is left by its
  outgoing flows; what completed inside it can be compensated later like any completed sub-process's work.
- A script task runs its script (assignments of safe expressions, ``engine.model.scripts``) at once, within
  the step, sets the variables it assigns and completes (BPMN 2.0 §10.3.3: "when the Script Task is ready to
  start, the engine will execute the script; when the script is completed, the Script Task will also
  complete"). A script that fails assigns nothing and is an incident at the task (retry it after fixing
  the variables).
- A conditional intermediate catch event passes at once when its condition holds on arrival; else the token
  waits and the condition is evaluated again at the end of every step that changed a variable of the
  instance, until it holds (BPMN 2.0 §10.5.4: the event is triggered when the condition becomes true). A
  condition that cannot be evaluated is an incident at the event.
- A none intermediate throw event passes the token straight on (BPMN 2.0 §10.5.4: an intermediate event
  without a trigger marks a state reached). A link throw event moves its token to the link catch event of
  the same name in the same scope, which passes it on; together they act as one sequence flow (BPMN 2.0
  §10.5.6). A link with no catch (refused by validation) is an incident at the throw.
- A multi-instance activity (BPMN 2.0 §10.2.8 "Multi-Instance", §13.2.7 "Loop Activity" execution semantics)
  runs its instances on a body token: ``cardinality`` instances or one per item of ``collection``, all at once
  or (``sequential``) one after another. Each instance is a token of its own whose local variables are
  ``loopCounter`` (from 0, as Camunda 7) and the element; ``nrOfInstances``, ``nrOfCompletedInstances`` and
  ``nrOfActiveInstances`` are the body's. When an instance completes, its ``output_element`` is stored at its
  index, the counters move, and ``completion_condition`` is evaluated (seeing the instance's variables and the
  counters): when it holds, the instances still running are cancelled and the activity completes (§13.2.7:
  "the completionCondition ... when true, cancels all remaining instances"). With no instances left (or
  none at all: an empty collection) the output collection is set and the token leaves. Boundary events
  belong to the body: an interrupting one, and an error thrown by any instance, cancel every instance.
- A standard loop (BPMN 2.0 §13.2.7 "Loop Activity": ``loopCondition``, ``testBefore``, ``loopMaximum``) runs
  the activity again while its condition holds, at most ``maximum`` times. The condition is evaluated between
  runs with ``loopCounter`` = the number of runs done, and before the first run only with ``test_before``.
- Signals (BPMN 2.0 §10.5.2-4, "Signal"): a signal throw or end event broadcasts its signal, with the named
  variables as payload. Unlike a message it has no receiver and no correlation: the shell delivers it to
  every signal catch, signal boundary event and signal event sub-process waiting for that name at the
  moment it is broadcast, in every instance, and starts every deployed definition with a signal start event
  of that name; a signal nobody waits for is gone (it is not buffered). The payload's fields become variables
  of each receiver. A throw event passes on at once (it does not wait for the receivers).
- Escalations (BPMN 2.0 §10.5.6, "Escalation"; codes matched as error codes are, §10.5.3): an escalation throw
  or end event escalates its code to the enclosing scopes, innermost first: an escalation event sub-process in
  the scope, then an escalation boundary event on the scope's sub-process, whose code equals the thrown one
  (a catch without a code catches every escalation). An interrupting catch cancels that scope, as an error
  does; a non-interrupting one starts a token at the boundary event (or the event sub-process) and the
  throwing token goes on (a throw event) or ends (an end event). An escalation nothing catches is recorded
  (``Escalated``) and changes nothing: it is not an error. In a called process, the shell then throws it at
  the calling call activity (``WorkEscalated``; BPMN 2.0 §10.5.6: an escalation not caught in the called process
  propagates to the call activity, as an error does): the call activity's escalation boundary events first,
  then on out as from a throw there. An interrupting catch cancels the call activity (and so the child); a
  non-interrupting one lets both go on. Uncaught there too, it is recorded at the call activity.
- Event sub-processes (BPMN 2.0 §10.3.5): when a scope starts (the process, or a sub-process's activation), each
  event sub-process in it whose start waits (timer, message, signal, conditional) gets a listener token holding
  that wait; error and escalation starts are looked for by a throw, innermost scope first and before the
  boundary events of the scope's own activity. An interrupting start cancels everything else in the scope and
  the listener becomes the event sub-process's scope token; the scope ends when it does. A non-interrupting
  start runs a new token beside the scope, and the listener waits again (a timer cycle re-arms; a duration or
  date fires once). A scope whose only tokens left are listeners is done: they are disarmed. An error or
  escalation thrown inside an event sub-process goes to the scope around the one it sits in.
- Conditional boundary events and conditional event sub-process starts (BPMN 2.0 §10.5.4) fire when their
  condition becomes true: evaluated when armed and at the end of every step that changed a variable; a
  non-interrupting one fires again only after its condition was false in between. A condition that cannot be
  evaluated is reported once as an incident at the event and counts as not holding; retrying that incident
  (after fixing the variables) evaluates it again at once: it fires if it holds, is reported again if it fails.
- A timer whose value is an expression (``${delay}``, ``#{cronExpression}``: BPMN 2.0 §10.5.2 gives timeDuration,
  timeDate and timeCycle as Expressions) is evaluated against its token's variables when it is armed, and again
  at each repetition of a cycle (Camunda 7 evaluates it when it creates the timer job). A value that cannot be
  evaluated, or is no valid duration, date or cycle, is an incident naming the timer and the value: at a timer
  catch (or an event gateway racing one) the token waits, and retrying arms it again; a boundary timer or an
  event sub-process's timer start is left unarmed while its activity or scope runs on, and retrying the
  incident arms it then.
- A receive task waits for its message like a message catch event, but is an activity: boundary events attach
  to it. A script task whose script fails throws the error code "script": an error boundary event (or error
  event sub-process) catches it, else it is an incident.
- A call activity (BPMN 2.0 §10.3.4 "Call Activity") is work like a task's: ``StartWork`` of kind
  ``call_activity`` names the called process and carries the input mapping's values; the shell starts the child
  and answers ``WorkDone`` with the child's variables when it completes (the output mapping sets the caller's)
  or ``WorkFailed(business=True)`` with the code of an error end event the child did not catch, so error
  boundary events, retries of incidents and multi-instance apply unchanged; ``WorkEscalated`` with the code of
  an escalation the child did not catch (see Escalations); cancelling the work cancels the child.
- Implicit start and end (BPMN 2.0 §10.5.2 "if there is no Start Event, all Flow Nodes with no incoming Sequence
  Flow are instantiated when the (sub-)process starts"; §10.5.3 and §13.3.4: a path ends at a node without
  outgoing flow, and a (sub-)process completes when no token is left in it). A sub-process without start events
  starts a token on each inner node without incoming flow (not boundary events, event sub-processes,
  compensation handlers or link catch events: something else starts those), all at once; an empty one completes
  as soon as it is entered. A process without start events starts the same way. (Camunda 7 and 8 refuse both at
  deploy; SpiffWorkflow and jBPM run them.)
- An ad-hoc sub-process (BPMN 2.0 §10.3.6, run as Camunda 8.7+ runs ``adHocSubProcess``): on entry, the inner
  elements named by ``active_elements`` (a list of element ids; Zeebe's ``activeElementsCollection``) are
  activated, each once per mention, or without it every inner node without incoming flow (the implicit start,
  as jBPM's autostart). An id that is not an inner element, or a value that is not a list of ids, is an
  incident at the sub-process (retrying evaluates it again). Inner sequence flows are followed as usual and a
  path ends where no flow leads on. ``ordering`` "sequential" runs the activated elements one at a time, in
  the listed (else model) order: the next starts when no inner token is left. After each inner activity
  completes, ``completion_condition`` is evaluated (with that activity's variables): when it holds, no further
  element is activated, and with ``cancel_remaining`` (the default) the inner tokens still running are
  cancelled and the sub-process completes at once (the completing activity does not follow its flows); without,
  it completes when its last inner token ends. With no condition it completes when no inner token is left. A
  condition that cannot be evaluated is an incident at the sub-process and counts as not holding. Nothing
  activated (an empty list) completes it at once: unlike Zeebe, there is no API to activate elements later.
- Results for work that is no longer wanted (stale work ids, interrupted tasks) are ignored, so a
  shell may deliver events at least once.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.errors import ExpressionError, TimerSpecError, WaooawError
from engine.model import expressions
from engine.model.definition import ProcessDefinition
from engine.model.nodes import (
    CATCH_KINDS,
    START_KINDS,
    AdHocSubProcess,
    BoundaryEvent,
    CallActivity,
    CompensationThrowEvent,
    ErrorEndEvent,
    MessageBoundaryEvent,
    MessageCatchEvent,
    MessageThrowEvent,
    Node,
    SequenceFlow,
    ServiceTask,
    SignalBoundaryEvent,
    SignalCatchEvent,
    SubProcess,
    TimerBoundaryEvent,
    TimerCatchEvent,
    TimerStartEvent,
    UserTask,
)
from engine.model.timers import Timer, parse_duration
from engine.semantics import effects as fx
from engine.semantics import events as ev
from engine.semantics.state import (
    COMPENSATING,
    CONDITION,
    INCIDENT,
    JOIN,
    LISTEN,
    MESSAGE,
    MULTI,
    RACE,
    RETRY,
    SCOPE,
    SIGNAL,
    TIMER,
    WORK,
    CompensationEntry,
    InstanceState,
    Token,
)

CONDITIONAL_KINDS = frozenset({"conditional_catch", "boundary_conditional", "conditional_start"})
#: Event sub-process starts that wait for something while their scope runs (a listener token holds the wait);
#: error and escalation starts wait for nothing: a throw looks for them.
LISTEN_KINDS = frozenset({"timer_start", "message_start", "signal_start", "conditional_start"})
SLA = "@sla"
RETRY_WAIT = "@retry"
WORK_KINDS = frozenset({"service_task", "user_task", "task", "call_activity"})
_SERVICE, _CALL, _USER, _OTHER = "service", "call", "user", "other"  # what an activity's StartWork carries
#: Nodes a token passes straight through (a plain task is work: the simulator samples its duration).
PASS_KINDS = frozenset({"start", "timer_start", "message_start", "signal_start", "intermediate_throw", "link_catch",
                        "error_start", "escalation_start", "conditional_start"})


class Calendar(Protocol):
    """Business time: ``add(start, delta)`` counts only working time (see the calendars module)."""

    def add(self, start: datetime, delta: timedelta) -> datetime: ...


Chooser = Callable[[Node, list[SequenceFlow], InstanceState], "list[SequenceFlow] | None"]
"""Picks the outgoing flows of an exclusive/inclusive split instead of its conditions (the simulator's
branch probabilities); returning None falls back to the conditions."""


class SemanticsError(WaooawError):
    """The core was driven wrongly (an unknown start node, a missing calendar)."""


Now = datetime | Callable[[], datetime]
"""The time of a step: a datetime, or a function that gives it (called once, when a rule first needs the time:
most steps arm no timer, and the simulator then need not turn its clock into a datetime; issue 19)."""


_new_step = object.__new__
_dict_set = dict.__setitem__
_dict_pop = dict.pop


class _Step:
    """The scratch space of one step: the state being changed, the time, the effects so far. ``queue`` holds the
    arrivals to make, in order (a list that ``_drain`` reads through, not a deque: cheaper to make, issue 19)."""

    __slots__ = ("_now", "changed", "effects", "queue", "state")

    def __init__(self, state: InstanceState, now: Now) -> None:
        self.state = state
        self._now = now
        self.effects: list[fx.Effect] = []
        self.queue: list[tuple[Token, str, str | None]] = []
        self.changed = False  # a variable changed in this step (conditional events are evaluated again)

    @property
    def now(self) -> datetime:
        now = self._now
        if not isinstance(now, datetime):
            now = self._now = now()
        return now


class Semantics:
    """The rules compiled for one definition. Build once per deployed version, reuse for every step."""

    def __init__(self, definition: ProcessDefinition, calendars: Mapping[str, Calendar] | None = None,
                 choose: Chooser | None = None) -> None:
        self.definition = definition
        self.calendars = dict(calendars or {})
        self.choose = choose
        index = definition.index
        self._nodes = index.nodes
        # Per-step lookups are cached here: the simulator calls step() hundreds of thousands of times.
        self._boundaries = {nid: list(bs) for nid, bs in index.boundaries.items()}
        self._has_inclusive = any(n.kind == "inclusive_gateway" for n in index.nodes.values())
        self._has_conditional = any(n.kind in CONDITIONAL_KINDS for n in index.nodes.values())
        # Event sub-processes by the scope they sit in (None: the process), and the start event of each.
        self._esps: dict[str | None, list[SubProcess]] = {}
        self._esp_start: dict[str, Node] = {}
        for nid, n in index.nodes.items():
            if isinstance(n, SubProcess) and n.triggered_by_event:
                self._esps.setdefault(index.scope_of.get(nid), []).append(n)
                starts = [c for c in n.nodes if c.kind in START_KINDS]
                if starts:
                    self._esp_start[nid] = starts[0]
        self._has_listeners = any(self._esp_start.get(e.id) is not None and self._esp_start[e.id].kind in LISTEN_KINDS
                                  for esps in self._esps.values() for e in esps)
        self._plain_start_id: str | None = None
        self._defaults = {v.name: v.default for v in definition.variables if v.default is not None}
        self._start_ids = frozenset(nid for nid, n in index.nodes.items() if n.kind in START_KINDS)
        self._outgoing = index.outgoing
        self._incoming_ids = {nid: [f.id for f in flows] for nid, flows in index.incoming.items()}
        self._scope_path: dict[str, tuple[str, ...]] = {}
        for node_id in index.nodes:
            path: list[str] = []
            scope = index.scope_of.get(node_id)
            while scope is not None:
                path.append(scope)
                scope = index.scope_of.get(scope)
            self._scope_path[node_id] = tuple(reversed(path))
        self._upstream: dict[str, frozenset[str]] = {}
        self._link_targets = definition.link_targets()
        # Where a token entering each (sub-)process starts: its plain start events, else (none at all) the nodes
        # without incoming flow (the implicit start); and the ad-hoc sub-processes, with the inner elements
        # their ``active_elements`` may name (not boundary events, event sub-processes, start events or handlers).
        self._entries: dict[str | None, list[str]] = {}
        self._ad_hoc: dict[str, AdHocSubProcess] = {
            nid: n for nid, n in index.nodes.items() if isinstance(n, AdHocSubProcess)}
        self._ad_hoc_elements = {
            nid: frozenset(c.id for c in n.nodes if not isinstance(c, BoundaryEvent) and c.kind not in START_KINDS
                           and not getattr(c, "triggered_by_event", False)
                           and not getattr(c, "for_compensation", False))
            for nid, n in self._ad_hoc.items()}
        self._looped = {nid: n for nid, n in index.nodes.items()
                        if getattr(n, "multi_instance", None) is not None or getattr(n, "loop", None) is not None}
        # Compiled once per definition, so a token's arrival costs one lookup, not a walk through every kind:
        # what a token arriving at each node does (by the node's kind; a loop's own entry first), and the
        # outgoing flows of nodes a token leaves by every flow (no condition, no default flow to weigh).
        by_kind: dict[str, Callable[[_Step, Token, Any], None]] = {
            **dict.fromkeys(WORK_KINDS, self._start_work), **dict.fromkeys(PASS_KINDS, self._leave),
            "end": self._remove, "terminate_end": self._terminate, "error_end": self._error_end,
            **dict.fromkeys(("exclusive_gateway", "inclusive_gateway", "parallel_gateway"), self._gateway),
            "event_gateway": self._race, "sub_process": self._enter_sub_process, "link_throw": self._link,
            "ad_hoc_sub_process": self._enter_ad_hoc,
            "script_task": self._script, "escalation_throw": self._escalate, "escalation_end": self._escalate,
            "compensation_throw": self._compensate, "cancel_end": self._cancel_transaction}
        self._enter: dict[str, Callable[[_Step, Token, Any], None]] = {
            nid: self._enter_looped if nid in self._looped else by_kind.get(n.kind, self._enter_other)
            for nid, n in index.nodes.items()}
        self._enter_kind = by_kind
        self._plain_out: dict[str, list[SequenceFlow]] = {
            nid: list(flows) for nid, flows in index.outgoing.items()
            if all(f.condition is None for f in flows) and getattr(index.nodes.get(nid), "default", None) is None}
        # The one plain outgoing flow of a node that has only one, as (target, flow id): a flow's attributes too
        # are pydantic's.
        self._plain_one = {nid: (flows[0].target, flows[0].id) for nid, flows in self._plain_out.items()
                           if len(flows) == 1}
        # What starting and finishing an activity reads of its node, read once here: a node's attributes are
        # pydantic's (each read goes through its __getattr__ hook) and its classes are ABCs (isinstance is dear).
        self._work: dict[str, tuple[str, str, str | None, list[str] | None, bool]] = {}
        for nid, n in index.nodes.items():
            if isinstance(n, ServiceTask):
                self._work[nid] = (_SERVICE, n.kind, n.agent, n.input_variables, False)
            elif isinstance(n, CallActivity):
                self._work[nid] = (_CALL, n.kind, n.called_element, None, False)
            elif isinstance(n, UserTask):
                self._work[nid] = (_USER, n.kind, None, None, bool(n.sla))
            else:
                self._work[nid] = (_OTHER, n.kind, None, None, False)
        self._calls = frozenset(nid for nid, n in index.nodes.items() if isinstance(n, CallActivity))
        self._compensated = frozenset(nid for nid, n in index.nodes.items()
                                      if n.is_activity and getattr(n, "compensation", None))

    # --- public API ----------------------------------------------------------------------------

    def start(self, variables: Mapping[str, Any] | None, now: Now, start_node: str | None = None,
              actor: str | None = None) -> tuple[InstanceState, list[fx.Effect]]:
        """A new instance: declared defaults, the given variables, one token on the start event (a process without
        start events: one token on each node without incoming flow, the implicit start). ``now``: a datetime, or a
        function giving it (called at most once, when a rule needs the time)."""
        if start_node is None and not self._start_ids:
            node_ids = self._entry_nodes(None)
        else:
            node_ids = [start_node or self._plain_start_id or self._plain_start()]
            if node_ids[0] not in self._start_ids:
                raise SemanticsError(f"{node_ids[0]!r} is not a start event of {self.definition.id!r}")
        state = InstanceState()
        step = _new_step(_Step)  # _Step(state, now), its __init__ inlined (issue 19)
        step.state = state
        step._now = now
        step.effects = []
        step.queue = []
        step.changed = False
        initial = {**self._defaults, **variables} if variables else self._defaults
        if initial:
            self._set_vars(step, node_ids[0] if node_ids else None, initial, actor)
        for node_id in node_ids:
            state.seq = seq = state.seq + 1  # state.next_id("t"), inlined
            token = Token(f"t{seq}", node_id, "")
            _dict_set(state.tokens, token.id, token)  # a new process-level token: dict's own (see Tokens)
            state.touched.add(token.id)
            step.queue.append((token, node_id, None))
        if self._has_listeners:
            self._arm_listeners(step, None, None)
        self._drain(step)
        return state, step.effects

    def step(self, state: InstanceState, event: ev.Event, now: Now) -> list[fx.Effect]:
        """Apply one event to ``state`` (changed in place) and return what the world must do. ``now``: a datetime,
        or a function giving it (called at most once, when a rule needs the time)."""
        if state.status != "running":
            return []
        step = _new_step(_Step)  # _Step(state, now), its __init__ inlined (issue 19)
        step.state = state
        step._now = now
        step.effects = []
        step.queue = []
        step.changed = False
        match event:
            case ev.WorkDone():
                self._on_work_done(step, event)
            case ev.WorkFailed():
                self._on_work_failed(step, event)
            case ev.WorkEscalated():
                self._on_work_escalated(step, event)
            case ev.TimerFired():
                self._on_wait_fired(step, event.timer_id, None, event.due)
            case ev.MessageReceived() | ev.SignalReceived():
                self._on_wait_fired(step, event.subscription_id, event.payload)
            case ev.RetryIncident():
                self._on_retry_incident(step, event)
            case ev.StepFailed():
                self._on_step_failed(step, event)
            case ev.SetVariables():
                self._set_vars(step, None, event.values, event.actor)
            case ev.Cancel():
                self._end_instance(step, "cancelled", event.reason)
            case _:
                raise SemanticsError(f"unknown event {event!r}")
        self._drain(step)
        return step.effects

    def timer_starts(self) -> list[Node]:
        """Timer start events the shell must schedule (each tick starts an instance)."""
        return [n for n in self.definition.start_nodes() if n.kind == "timer_start"]

    def message_starts(self) -> dict[str, str]:
        """Message name -> start node id, for messages that start instances."""
        return {n.message: n.id for n in self.definition.start_nodes() if n.kind == "message_start"}  # type: ignore[attr-defined]

    def conditional_starts(self, variables: Mapping[str, Any]) -> list[str]:
        """The top-level conditional start events whose condition holds for ``variables`` (with the declared
        defaults), in model order; a condition that cannot be evaluated does not hold (BPMN 2.0 §10.5.2)."""
        values = {**self._defaults, **variables}
        held = []
        for node in self.definition.start_nodes():
            if node.kind == "conditional_start":  # type: ignore[attr-defined]
                try:
                    if expressions.evaluate(node.condition, values):  # type: ignore[attr-defined]
                        held.append(node.id)
                except ExpressionError:
                    continue
        return held

    def signal_starts(self) -> dict[str, str]:
        """Signal name -> start node id, for signals that start instances (BPMN 2.0 §10.5.2)."""
        return {n.signal: n.id for n in self.definition.start_nodes() if n.kind == "signal_start"}  # type: ignore[attr-defined]

    def due(self, timer: Timer, now: datetime, fired: int = 0) -> datetime | None:
        """When a timer that starts waiting at ``now`` fires (business time through its calendar)."""
        if fired:
            return timer.next_due(now, fired)
        if timer.duration and timer.calendar:
            return self._calendar(timer.calendar).add(now, parse_duration(timer.duration))
        return timer.first_due(now)

    # --- event handlers --------------------------------------------------------------------

    def _on_work_done(self, step: _Step, event: ev.WorkDone) -> None:
        token = step.state.tokens.get(event.token_id)
        if token is None:
            return  # stale: the work was interrupted or already done
        step.state.touched.add(token.id)
        if token.status == COMPENSATING:
            handler = self._nodes.get(step.state.compensable[token.pending[0]].handler)
            if event.outputs and isinstance(handler, UserTask) and handler.for_compensation:
                self._set_vars(step, handler.id, dict(event.outputs), event.actor)  # the handler task's form
            entry = step.state.compensable[token.pending.pop(0)]
            entry.done = True
            step.effects.append(fx.Compensation(token.id, entry.node, str(entry.handler), token.work_id or "",
                                                "completed"))
            self._next_compensation(step, token)
            return
        if token.status != WORK:
            return
        node = self._nodes[token.node]
        if token.node in self._calls:  # the child's variables, through the output mapping
            assert isinstance(node, CallActivity)
            try:
                outputs = mapped(node.outputs, event.outputs)
            except ExpressionError as exc:
                self._incident(step, token, f"output mapping of {node.id!r} failed: {exc}")
                return
            self._set_vars(step, node.id, outputs, event.actor, token)
        elif event.outputs:
            outputs = dict(event.outputs)
            if isinstance(node, ServiceTask) and node.output_variables:
                outputs = _only(outputs, node.output_variables)
            self._set_vars(step, node.id, outputs, event.actor, token)
        self._finish_activity(step, token, node)

    def _on_work_failed(self, step: _Step, event: ev.WorkFailed) -> None:
        token = step.state.tokens.get(event.token_id)
        if token is None or token.status not in (WORK, COMPENSATING):
            return
        step.state.touched.add(token.id)
        if token.status == COMPENSATING:
            entry = step.state.compensable[token.pending[0]]
            step.effects.append(fx.Compensation(token.id, entry.node, str(entry.handler), token.work_id or "",
                                                "failed"))
            self._incident(step, token, f"compensation of {entry.node!r} failed: {event.error}")
            return
        node = self._nodes[token.node]
        if not event.business and isinstance(node, ServiceTask) and token.attempt < node.retry.attempts:
            delay = node.retry.delay(token.attempt)
            token.status = RETRY
            token.error = event.error
            self._arm_timer(step, token, RETRY_WAIT, step.now + delay, "retry")
            return
        code = event.error_code or ("error" if event.business else "technical")
        caught = self._throw_error(step, token, code, event.error, technical=not event.business)
        if not caught:  # only business errors can be uncaught: technical ones become incidents
            self._end_instance(step, "failed", f"error {code!r} from {node.id!r} not caught: {event.error}", code)

    def _on_work_escalated(self, step: _Step, event: ev.WorkEscalated) -> None:
        """A called process escalated and caught nothing: thrown at the call activity (module docstring)."""
        token = step.state.tokens.get(event.token_id)
        if token is None or token.status != WORK:
            return  # stale: the call activity was interrupted or is done
        code = event.escalation_code
        if not self._route_escalation(step, token, code, own_boundaries=True):
            step.effects.append(fx.Escalated(token.id, token.node, code))

    def _on_retry_incident(self, step: _Step, event: ev.RetryIncident) -> None:
        token = step.state.tokens.get(event.token_id)
        if token is not None and event.node_id is not None and event.node_id != token.node:
            self._retry_wait(step, token, event.node_id)
            return
        if token is None or token.status != INCIDENT:
            return
        step.state.touched.add(token.id)
        token.error = None
        node = self._nodes[token.node]
        if node.id in self._looped and not self._is_instance(step.state, token):
            if token.loop is None:
                token.status = ""  # the body's collection or cardinality failed: evaluate it again
                step.queue.append((token, node.id, token.via))
            else:  # a loop or completion condition failed: evaluate it again
                token.status = MULTI
                self._loop_resume(step, token, node)
        elif token.pending and (isinstance(node, CompensationThrowEvent) or node.kind == "boundary_cancel"):
            token.status = COMPENSATING
            self._next_compensation(step, token)
        elif node.kind in WORK_KINDS:
            if node.kind == "call_activity":
                token.work_id = step.state.next_id("w")  # a new child: the failed one keeps its own id
            self._start_work(step, token, node, attempt=1, arm=False)
        else:
            token.status = ""
            step.queue.append((token, node.id, token.via))

    def _retry_wait(self, step: _Step, token: Token, node_id: str) -> None:
        """Retry an incident of an event that waits beside ``token``: a boundary event on its activity, or the
        start of the event sub-process it listens for. A conditional one is evaluated again (at the end of this
        step, so a failure is reported again); a timer whose expression failed is armed again. Stale (the token
        left the activity, the wait is armed) does nothing."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        for wait_id, target in token.waits.items():
            if target == node_id:
                if node.kind in CONDITIONAL_KINDS:  # evaluated again at the end of this step
                    if token.fired.get(wait_id) == -1:  # it failed: fires if it holds now, reported if it fails
                        step.state.touched.add(token.id)
                        token.fired[wait_id] = 0
                    step.changed = True  # (one that held when last evaluated does not fire twice)
                return  # armed: nothing to do
        if token.status == LISTEN:
            if self._esp_start.get(token.node) is node:
                self._arm_listener(step, token, node)
        elif isinstance(node, BoundaryEvent) and node.attached_to == token.node and token.status != "":
            self._arm_boundary(step, token, node)

    def _on_step_failed(self, step: _Step, event: ev.StepFailed) -> None:
        token = step.state.tokens.get(event.ref) or self._token_waiting(step.state, event.ref)
        if token is None:
            return  # stale: nothing waits for what failed (the shell records the failure without a token)
        step.state.touched.add(token.id)
        token.waits.pop(event.ref, None)  # a timer whose step failed does not fire again by itself
        self._incident(step, token, event.error)

    def _on_wait_fired(self, step: _Step, wait_id: str, payload: dict[str, Any] | None,
                       due: datetime | None = None) -> None:
        token = self._token_waiting(step.state, wait_id)
        if token is None:
            return  # stale: cancelled or already fired
        step.state.touched.add(token.id)
        target = token.waits.pop(wait_id)
        if target == RETRY_WAIT:
            self._start_work(step, token, self._nodes[token.node], attempt=token.attempt + 1, arm=False)
        elif target == SLA:
            self._sla_breached(step, token)
        elif token.status == LISTEN:
            self._listener_fired(step, token, wait_id, target, payload, due)
        elif token.status in (TIMER, MESSAGE, SIGNAL) and target == token.node:  # (a receive task's boundaries: below)
            node = self._nodes[token.node]
            if payload:
                self._message_vars(step, node, payload, token)
            if node.kind == "receive_task":
                self._finish_activity(step, token, node)
                return
            self._cancel_waits(step, token)
            self._leave(step, token, node)
        elif token.status == RACE:
            self._cancel_waits(step, token)
            catch = self._nodes[target]
            token.node, token.status = catch.id, ""
            step.effects.append(fx.Entered(token.id, catch.id))
            if payload:
                self._message_vars(step, catch, payload, token)
            self._leave(step, token, catch)
        else:
            boundary = self._nodes[target]
            assert isinstance(boundary, BoundaryEvent)
            if payload:
                self._message_vars(step, boundary, payload, token)
            if boundary.interrupting:
                self._abandon(step, token)
                self._interrupt(step, token)
                self._move_to_boundary(step, token, boundary)
            else:
                if isinstance(boundary, TimerBoundaryEvent) and boundary.timer.kind == "cycle":
                    fired = token.fired.pop(wait_id, 0) + 1
                    timer = self._resolve(step, token, boundary, boundary.timer)
                    if isinstance(timer, str):
                        step.effects.append(fx.Incident(token.id, boundary.id, timer))
                    else:
                        nxt = self.due(timer, min(due or step.now, step.now), fired)
                        if nxt is not None:
                            new_id = self._arm_timer(step, token, boundary.id, nxt, "boundary")
                            token.fired[new_id] = fired
                elif isinstance(boundary, SignalBoundaryEvent):  # a broadcast may come again while it runs
                    self._arm_signal(step, token, boundary, boundary.id)
                elif isinstance(boundary, MessageBoundaryEvent):  # so may another message (BPMN 2.0 §10.5.4)
                    self._arm_message(step, token, boundary, boundary.id)
                elif boundary.kind == "boundary_conditional":  # again once the condition was false in between
                    token.fired.pop(wait_id, None)
                    self._arm_condition(step, token, boundary.id, held=True)
                extra = Token(id=step.state.next_id("t"), node=boundary.id, status="", parent=token.parent)
                step.state.tokens[extra.id] = extra
                step.state.touched.add(extra.id)
                step.effects.append(fx.Entered(extra.id, boundary.id))
                self._leave(step, extra, boundary)

    # --- arriving at nodes -----------------------------------------------------------------

    def _drain(self, step: _Step) -> None:
        state = step.state
        queue, tokens, touched, effects = step.queue, state.tokens, state.touched, step.effects
        enter, nodes = self._enter, self._nodes
        i = 0
        while True:
            while i < len(queue):
                token, node_id, via = queue[i]
                i += 1
                if token.id in tokens and state.status == "running":  # the token arrives at node_id
                    touched.add(token.id)
                    token.node, token.via, token.status = node_id, via, ""
                    state.steps += 1
                    effects.append(fx.Entered(token.id, node_id))
                    enter[node_id](step, token, nodes[node_id])
            if state.status != "running":
                break
            if self._has_conditional and step.changed:
                step.changed = False
                if self._fire_conditions(step):
                    continue
            if not self._has_inclusive or not self._fire_inclusive_joins(step):
                break
        if self._has_listeners and state.status == "running" and state.tokens \
                and all(t.status == LISTEN and t.parent is None for t in state.tokens.values()):
            for listener in list(state.tokens.values()):  # the process is done: its event sub-processes disarm
                self._cancel_waits(step, listener)
            state.tokens.clear()
        if not state.tokens and state.status == "running":
            state.status = "completed"
            step.effects.append(fx.InstanceEnded("completed"))

    def _enter_looped(self, step: _Step, token: Token, node: Node) -> None:
        """A multi-instance or loop activity: a token from outside becomes its body; an instance does the work."""
        if self._is_instance(step.state, token):
            self._enter_kind.get(node.kind, self._enter_other)(step, token, node)
        else:
            self._enter_loop(step, token, node)

    def _enter_other(self, step: _Step, token: Token, node: Node) -> None:
        """Arriving at the kinds without a handler of their own in ``_enter`` (waits and throws)."""
        kind = node.kind
        if kind == "receive_task":
            token.status = MESSAGE
            token.work_id = step.state.next_id("w")
            self._arm_boundaries(step, token, node)
            self._arm_message(step, token, node, node.id)
        elif kind == "timer_catch":
            assert isinstance(node, TimerCatchEvent)
            timer = self._resolve(step, token, node, node.timer)
            if isinstance(timer, str):
                self._incident(step, token, timer)
                return
            token.status = TIMER
            due = self.due(timer, step.now)
            if due is None:
                self._leave(step, token, node)
            else:
                self._arm_timer(step, token, node.id, due, "catch")
        elif kind == "message_catch":
            assert isinstance(node, MessageCatchEvent)
            token.status = MESSAGE
            self._arm_message(step, token, node, node.id)
        elif kind == "message_throw":
            assert isinstance(node, MessageThrowEvent)
            variables = self._scope_vars(step.state, token)
            payload = {name: variables.get(name) for name in node.payload}
            if node.payload_expression is not None:
                try:
                    value = expressions.evaluate(node.payload_expression, variables)
                except ExpressionError as exc:
                    self._incident(step, token, f"payload of {node.id!r} failed: {exc}")
                    return
                payload.update(value if isinstance(value, dict) else {WHOLE: value})
            step.effects.append(fx.SendMessage(
                node.message, self._correlation(node.correlation_key, variables), payload, node.id))
            self._leave(step, token, node)
        elif kind == "signal_catch":
            token.status = SIGNAL
            self._arm_signal(step, token, node, node.id)
        elif kind == "signal_throw" or kind == "signal_end":
            variables = self._scope_vars(step.state, token)
            step.effects.append(fx.BroadcastSignal(
                node.signal, {name: variables.get(name) for name in node.payload}, node.id))  # type: ignore[attr-defined]
            if kind == "signal_end":
                self._remove(step, token)
            else:
                self._leave(step, token, node)
        elif kind == "conditional_catch":
            if self._condition_holds(step, token, node):
                self._leave(step, token, node)
            elif token.status != INCIDENT:
                token.status = CONDITION
        else:  # boundary events are entered through their activity, never by a flow
            self._incident(step, token, f"a token cannot enter a {kind} node by a sequence flow")

    def _condition_holds(self, step: _Step, token: Token, node: Node) -> bool:
        try:
            return bool(expressions.evaluate(node.condition,  # type: ignore[attr-defined]
                                             self._scope_vars(step.state, token)))
        except ExpressionError as exc:
            self._incident(step, token, f"condition of {node.id!r} failed: {exc}")
            return False

    def _fire_conditions(self, step: _Step) -> bool:
        """Tokens waiting at conditional catch events whose condition now holds go on; conditional boundary events
        and conditional event sub-process starts whose condition became true fire (a wait remembers in
        ``token.fired`` whether its condition held when last evaluated). True if anything fired."""
        fired = False
        for token in [t for t in step.state.tokens.values() if t.status == CONDITION or t.waits]:
            if token.id not in step.state.tokens:
                continue  # removed by what fired before it
            if token.status == CONDITION:
                node = self._nodes[token.node]
                if self._condition_holds(step, token, node):
                    token.status = ""
                    self._leave(step, token, node)
                    fired = True
                continue
            for wait_id, target in list(token.waits.items()):
                node = self._nodes.get(target)
                if node is None or node.kind not in CONDITIONAL_KINDS or wait_id not in token.waits:
                    continue
                try:
                    holds = bool(expressions.evaluate(node.condition,  # type: ignore[attr-defined]
                                                      self._scope_vars(step.state, token)))
                except ExpressionError as exc:
                    if token.fired.get(wait_id) != -1:  # reported once, then treated as not holding
                        token.fired[wait_id] = -1
                        step.state.touched.add(token.id)
                        step.effects.append(fx.Incident(token.id, node.id, f"condition of {node.id!r} failed: {exc}"))
                    continue
                if holds and token.fired.get(wait_id, 0) != 1:
                    token.fired[wait_id] = 1
                    step.state.touched.add(token.id)
                    self._on_wait_fired(step, wait_id, None)
                    fired = True
                    break  # the token may have moved: its other waits are looked at in the next round
                if not holds and token.fired.get(wait_id) != 0:
                    token.fired[wait_id] = 0
                    step.state.touched.add(token.id)
        return fired

    # --- event sub-processes (BPMN 2.0 §10.3.5) ------------------------------------------------

    def _arm_listeners(self, step: _Step, scope: Token | None, scope_id: str | None) -> None:
        """A scope (the process, or a sub-process's token) starts: the event sub-processes in it whose start
        event waits (timer, message, signal, condition) get a listener token holding that wait."""
        for esp in self._esps.get(scope_id, ()):
            start = self._esp_start.get(esp.id)
            if start is None or start.kind not in LISTEN_KINDS:
                continue
            listener = Token(id=step.state.next_id("t"), node=esp.id, status=LISTEN,
                             parent=scope.id if scope is not None else None)
            step.state.tokens[listener.id] = listener
            step.state.touched.add(listener.id)
            self._arm_listener(step, listener, start)

    def _arm_listener(self, step: _Step, listener: Token, start: Node, fired: int = 0) -> bool:
        """Arm a listener's wait; False when there is nothing (more) to wait for (a timer that fired)."""
        if isinstance(start, TimerStartEvent):
            if fired and start.timer.kind != "cycle":
                return False
            timer = self._resolve(step, listener, start, start.timer)
            if isinstance(timer, str):  # the listener stays, unarmed: a retry of the incident arms it
                step.state.touched.add(listener.id)
                step.effects.append(fx.Incident(listener.id, start.id, timer))
                return True
            due = self.due(timer, step.now, fired) if fired else self.due(timer, step.now)
            if due is None:
                return False
            wait_id = self._arm_timer(step, listener, start.id, due, "event_sub_process")
            if start.timer.kind == "cycle":
                listener.fired[wait_id] = fired
        elif start.kind == "message_start":
            self._arm_message(step, listener, start, start.id)
        elif start.kind == "signal_start":
            self._arm_signal(step, listener, start, start.id)
        elif start.kind == "conditional_start":
            self._arm_condition(step, listener, start.id, held=bool(fired))
        return True

    def _arm_condition(self, step: _Step, token: Token, target: str, held: bool = False) -> None:
        """A conditional boundary event or event sub-process start: a wait with no job, evaluated at the end of
        this step (so a condition true on arrival fires at once) and of every step that changes a variable."""
        wait_id = f"{token.id}.{target}.{step.state.next_id('')}"
        step.state.touched.add(token.id)
        token.waits[wait_id] = target
        token.fired[wait_id] = 1 if held else 0
        step.changed = True

    def _listener_fired(self, step: _Step, listener: Token, wait_id: str, target: str,
                        payload: dict[str, Any] | None, due: datetime | None) -> None:
        step.state.touched.add(listener.id)
        esp = self._nodes[listener.node]
        start = self._nodes[target]
        if payload:
            self._message_vars(step, start, payload, listener)
        if getattr(start, "interrupting", True):
            listener.fired.pop(wait_id, None)
            self._start_esp(step, esp, start, listener.parent, listener)
            return
        previous = listener.fired.pop(wait_id, 0)
        if not self._arm_listener(step, listener, start, fired=max(previous, 0) + 1):
            step.state.tokens.pop(listener.id, None)  # a timer that fired once: nothing more to wait for
        self._start_esp(step, esp, start, listener.parent, None)

    def _start_esp(self, step: _Step, esp: Node, start: Node, parent: str | None, token: Token | None) -> None:
        """Start an event sub-process in the scope ``parent`` (a token id; None: the process). Interrupting (the
        start's ``interrupting``): everything else in that scope is cancelled first, and ``token`` (the
        listener) becomes the event sub-process's scope token; else a new token runs beside the scope."""
        state = step.state
        if getattr(start, "interrupting", True):
            for other in [t for t in state.tokens.in_scope(parent) if t is not token]:
                self._abandon(step, other)
                self._interrupt(step, other)
                state.tokens.pop(other.id, None)
        if token is None:
            token = Token(id=state.next_id("t"), node=esp.id, status="", parent=parent)
            state.tokens[token.id] = token
        state.touched.add(token.id)
        self._cancel_waits(step, token)
        token.node, token.status, token.work_id = esp.id, SCOPE, state.next_id("w")
        step.effects.append(fx.Entered(token.id, esp.id))
        child = Token(id=state.next_id("t"), node=start.id, status="", parent=token.id)
        state.tokens[child.id] = child
        state.touched.add(child.id)
        step.queue.append((child, start.id, None))
        if self._has_listeners:
            self._arm_listeners(step, token, esp.id)

    def _catch_in_esp(self, step: _Step, token: Token, kind: str, code: str) -> bool:
        """An error or escalation thrown by ``token`` (or ended in its scope): an event sub-process of the scope
        ``token`` runs in, with an ``error_start``/``escalation_start`` for ``code`` (an exact code before a
        catch-all), starts. An event sub-process does not catch what its own body throws (that goes on to the
        scope around it). True if one caught it."""
        node = self._nodes.get(token.node)
        if isinstance(node, SubProcess) and node.triggered_by_event:
            return False
        scope_id = self.definition.index.scope_of.get(token.node)
        candidates = [(e, self._esp_start.get(e.id)) for e in self._esps.get(scope_id, ())]
        matching = [(e, s) for e, s in candidates if s is not None and s.kind == kind
                    and getattr(s, f"{kind.split('_')[0]}_code", None) in (None, code)]
        if not matching:
            return False
        exact = [(e, s) for e, s in matching if getattr(s, f"{kind.split('_')[0]}_code", None) == code]
        esp, start = (exact or matching)[0]
        parent = token.parent
        while parent is not None and step.state.tokens[parent].node != scope_id:
            parent = step.state.tokens[parent].parent  # a loop body between: the scope is further out
        name = "error_code" if kind == "error_start" else "escalation_code"
        self._set_vars(step, start.id, {name: code}, None)
        self._start_esp(step, esp, start, parent, None)
        return True

    def _script(self, step: _Step, token: Token, node: Node) -> None:
        """Run a script task's assignments; a failing line is an incident and assigns nothing."""
        from engine.model.scripts import parse_script

        try:
            values = parse_script(node.script).run(self._scope_vars(step.state, token))  # type: ignore[attr-defined]
        except ExpressionError as exc:  # an error boundary or error event sub-process may catch it (code "script")
            self._throw_error(step, token, "script", f"script of {node.id!r} failed: {exc}", technical=True)
            return
        self._set_vars(step, node.id, values, None, token)
        self._finish_activity(step, token, node)

    def _link(self, step: _Step, token: Token, node: Node) -> None:
        """A link throw: the token goes on at the matching link catch event, as along a sequence flow."""
        target = self._link_targets.get(node.id)
        if target is None:
            self._incident(step, token, f"link throw event {node.id!r} has no link catch event named "
                                        f"{getattr(node, 'link', '')!r} in its scope")
            return
        step.queue.append((token, target, None))

    def _leave(self, step: _Step, token: Token, node: Node) -> None:
        """Follow the outgoing flows of a node that is done (conditions on non-gateway flows are honoured). An
        activity's ``default`` flow is taken when none of its conditional flows holds (BPMN 2.0 §10.3.1)."""
        node_id = node.id
        one = self._plain_one.get(node_id)
        if one is not None:  # _follow, for the common case: one flow, nothing to evaluate
            step.state.touched.add(token.id)
            token.status = ""
            step.queue.append((token, one[0], one[1]))
            return
        plain = self._plain_out.get(node_id)
        if plain is not None:  # every flow, nothing to evaluate
            self._follow(step, token, plain)
            return
        chosen = []
        default = getattr(node, "default", None) if node.is_activity else None
        held = False
        for flow in self._outgoing.get(node_id, []):
            if flow.id == default:
                continue
            if flow.condition is None:
                chosen.append(flow)
            elif self._holds(step, token, flow):
                chosen.append(flow)
                held = True
            if token.status == INCIDENT:
                return
        if default is not None and not held:
            chosen += _with_id(self._outgoing.get(node_id, []), default)
        self._follow(step, token, chosen)

    def _follow(self, step: _Step, token: Token, flows: list[SequenceFlow]) -> None:
        step.state.touched.add(token.id)
        if not flows:
            self._remove(step, token)
            return
        token.status = ""
        step.queue.append((token, flows[0].target, flows[0].id))
        for flow in flows[1:]:
            extra = Token(id=step.state.next_id("t"), node=token.node, status="", parent=token.parent)
            step.state.tokens[extra.id] = extra
            step.state.touched.add(extra.id)
            step.queue.append((extra, flow.target, flow.id))

    def _holds(self, step: _Step, token: Token, flow: SequenceFlow) -> bool:
        try:
            return bool(expressions.evaluate(flow.condition or "True", self._scope_vars(step.state, token)))
        except ExpressionError as exc:
            self._incident(step, token, f"condition of flow {flow.id!r} failed: {exc}")
            return False

    # --- gateways ----------------------------------------------------------------------------

    def _gateway(self, step: _Step, token: Token, node: Node) -> None:
        incoming = self._incoming_ids.get(node.id, [])
        if len(incoming) > 1 and node.kind != "exclusive_gateway":
            token.status = JOIN
            if node.kind == "parallel_gateway":
                self._try_parallel_join(step, token, node, incoming)
            return  # inclusive joins are checked when the step's queue is empty
        self._split(step, token, node)

    def _split(self, step: _Step, token: Token, node: Node) -> None:
        flows = self._outgoing.get(node.id, [])
        if node.kind == "parallel_gateway" or (len(flows) <= 1 and not getattr(node, "default", None)):
            self._follow(step, token, list(flows))
            return
        default = getattr(node, "default", None)
        if self.choose is not None:
            picked = self.choose(node, list(flows), step.state)
            if picked is not None:
                if not picked:
                    self._incident(step, token, f"gateway {node.id!r}: no outgoing flow was chosen")
                    return
                self._follow(step, token, list(picked))
                return
        chosen: list[SequenceFlow] = []
        for flow in flows:
            if flow.id == default:
                continue
            holds = flow.condition is None or self._holds(step, token, flow)
            if token.status == INCIDENT:
                return
            if holds:
                chosen.append(flow)
                if node.kind == "exclusive_gateway":
                    break
        if not chosen and default:
            chosen = _with_id(flows, default)
        if not chosen:
            reason = "no outgoing condition holds and there is no default flow"
            self._incident(step, token, f"gateway {node.id!r}: {reason}")
            return
        self._follow(step, token, chosen)

    def _try_parallel_join(self, step: _Step, token: Token, node: Node, incoming: list[str]) -> None:
        waiting = [t for t in step.state.tokens.values()
                   if t.status == JOIN and t.node == node.id and t.parent == token.parent]
        by_flow: dict[str | None, Token] = {}
        for t in waiting:
            by_flow.setdefault(t.via, t)
        if all(flow_id in by_flow for flow_id in incoming):
            consumed = [by_flow[f] for f in incoming]
            survivor = consumed[0]
            for t in consumed[1:]:
                del step.state.tokens[t.id]
            self._split(step, survivor, node)

    def _fire_inclusive_joins(self, step: _Step) -> bool:
        """Fire every inclusive join that no other token can still reach. True if one fired."""
        state = step.state
        fired = False
        groups: dict[tuple[str, str | None], list[Token]] = {}
        for t in state.tokens.values():
            if t.status == JOIN and self._nodes[t.node].kind == "inclusive_gateway":
                groups.setdefault((t.node, t.parent), []).append(t)
        for (join_id, parent), waiting in groups.items():
            upstream = self._upstream_of(join_id)
            blocked = any(t.parent == parent and t.node != join_id and t.node in upstream
                          for t in state.tokens.values())
            if blocked:
                continue
            survivor = waiting[0]
            for t in waiting[1:]:
                del state.tokens[t.id]
            self._split(step, survivor, self._nodes[join_id])
            fired = True
        return fired

    def _upstream_of(self, node_id: str) -> frozenset[str]:
        """Nodes (in the same scope) from which a token can still reach ``node_id``."""
        if node_id not in self._upstream:
            index = self.definition.index
            preds: dict[str, list[str]] = {}
            for flow in index.flows.values():
                preds.setdefault(flow.target, []).append(flow.source)
            for activity, boundaries in index.boundaries.items():
                for b in boundaries:
                    preds.setdefault(b.id, []).append(activity)
            for throw, catch in self._link_targets.items():
                if catch is not None:
                    preds.setdefault(catch, []).append(throw)
            seen: set[str] = set()
            todo = list(preds.get(node_id, []))
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                todo.extend(preds.get(current, []))
            self._upstream[node_id] = frozenset(seen)
        return self._upstream[node_id]

    def _race(self, step: _Step, token: Token, node: Node) -> None:
        step.state.touched.add(token.id)
        token.status = RACE
        for flow in self._outgoing.get(node.id, []):
            target = self._nodes[flow.target]
            if isinstance(target, TimerCatchEvent):
                timer = self._resolve(step, token, target, target.timer)
                if isinstance(timer, str):  # the race is run again, whole, when the incident is retried
                    self._cancel_waits(step, token)
                    self._incident(step, token, timer)
                    return
                due = self.due(timer, step.now) or step.now
                self._arm_timer(step, token, target.id, due, "race")
            elif isinstance(target, MessageCatchEvent):
                self._arm_message(step, token, target, target.id)
            elif isinstance(target, SignalCatchEvent):
                self._arm_signal(step, token, target, target.id)
            else:
                self._cancel_waits(step, token)
                self._incident(step, token, f"event gateway {node.id!r} leads to {target.id!r}, "
                                            f"which is not a timer, message or signal catch event")
                return

    # --- activities --------------------------------------------------------------------------

    def _start_work(self, step: _Step, token: Token, node: Node, attempt: int = 1, arm: bool = True) -> None:
        """Start an activity's work (``attempt`` 1 and ``arm``: a token arrived; its boundary events arm)."""
        state = step.state
        state.touched.add(token.id)
        token.status = WORK
        token.attempt = attempt
        node_id = node.id
        mode, kind, handler, names, sla = self._work[node_id]
        if arm:
            state.seq = seq = state.seq + 1  # state.next_id("w"), inlined
            token.work_id = f"w{seq}"
            if self._boundaries.get(node_id):
                self._arm_boundaries(step, token, node)
        variables = state.variables if token.locals is None and token.parent is None and token.loop is None \
            else self._scope_vars(state, token)  # outside loops and sub-processes: the process variables
        due: datetime | None = None
        if mode is _SERVICE:
            inputs = dict(zip(names, map(variables.get, names), strict=True)) if names else dict(variables)
        elif mode is _CALL:
            try:
                inputs = mapped(node.inputs, variables)  # type: ignore[attr-defined]
            except ExpressionError as exc:
                self._incident(step, token, f"input mapping of {node_id!r} failed: {exc}")
                return
        elif mode is _USER:
            inputs = dict(variables)
            if sla and arm:
                assert isinstance(node, UserTask)
                due = self._sla_due(node, step.now)
                self._arm_timer(step, token, SLA, due, "sla")
        else:
            inputs = {}
        step.effects.append(fx.StartWork(token.id, node_id, kind, token.work_id or "", attempt, inputs, handler, due))

    def _sla_due(self, node: UserTask, now: datetime) -> datetime:
        delta = parse_duration(node.sla or "PT0S")
        if node.sla_calendar:
            return self._calendar(node.sla_calendar).add(now, delta)
        return now + delta

    def _sla_breached(self, step: _Step, token: Token) -> None:
        step.state.touched.add(token.id)
        node = self._nodes[token.node]
        action = getattr(node, "on_timeout", None)
        step.effects.append(fx.SlaBreached(token.id, node.id, token.work_id or "", action))
        if action is not None and action.action == "complete" and token.status == WORK:
            self._set_vars(step, node.id, dict(action.values), "sla", token)
            self._finish_activity(step, token, node)

    def _finish_activity(self, step: _Step, token: Token, node: Node) -> None:
        step.state.touched.add(token.id)
        if token.waits or token.fired:
            self._cancel_waits(step, token)
        node_id = node.id
        if node_id in self._compensated:
            inputs_names = getattr(node, "input_variables", None) or []
            output_names = getattr(node, "output_variables", None) or []
            variables = step.state.variables
            names = [*inputs_names, *output_names]
            snapshot = dict(zip(names, map(variables.get, names), strict=True)) or dict(variables)
            scope_tokens: list[str] = []  # the activations (work ids) of the enclosing sub-processes
            parent = step.state.tokens.get(token.parent) if token.parent else None
            while parent is not None:
                if parent.work_id:
                    scope_tokens.append(parent.work_id)
                parent = step.state.tokens.get(parent.parent) if parent.parent else None
            step.state.compensable.append(CompensationEntry(
                node=node.id, handler=node.compensation, scope=self._scope_path[node.id], inputs=snapshot,  # type: ignore[attr-defined]
                scope_tokens=tuple(scope_tokens)))
        token.work_id = None
        if node_id in self._looped and self._is_instance(step.state, token):
            self._loop_instance_done(step, token, node)
            return
        if self._ad_hoc and token.parent is not None and self._ad_hoc_completed(step, token, node):
            return
        self._leave(step, token, node)

    def _enter_sub_process(self, step: _Step, token: Token, node: Node) -> None:
        step.state.touched.add(token.id)
        token.status = SCOPE
        token.work_id = step.state.next_id("w")
        self._arm_boundaries(step, token, node)
        starts = self._entry_nodes(node.id)
        if not starts:
            if self.definition.start_nodes(node.id):
                self._incident(step, token, f"sub-process {node.id!r} has no plain start event")
            else:  # empty: nothing to run, done at once (BPMN 2.0 §13.3.4: no token is left in it)
                self._finish_activity(step, token, node)
            return
        for start in starts:
            self._start_inner(step, token, start)
        if self._has_listeners:
            self._arm_listeners(step, token, node.id)

    def _entry_nodes(self, scope_id: str | None) -> list[str]:
        """Where a token entering the process (None) or a sub-process starts: its plain start events, else, when it
        has no start event at all, every node without incoming flow (``ProcessDefinition.implicit_starts``)."""
        found = self._entries.get(scope_id)
        if found is None:
            starts = self.definition.start_nodes(scope_id)
            found = [n.id for n in starts if n.kind == "start"] if starts else \
                [n.id for n in self.definition.implicit_starts(scope_id)]
            self._entries[scope_id] = found
        return found

    def _start_inner(self, step: _Step, scope: Token, node_id: str) -> None:
        child = Token(id=step.state.next_id("t"), node=node_id, status="", parent=scope.id)
        step.state.tokens[child.id] = child
        step.state.touched.add(child.id)
        step.queue.append((child, node_id, None))

    # --- ad-hoc sub-processes (BPMN 2.0 §10.3.6, as Camunda 8 runs them) ------------------------------

    def _enter_ad_hoc(self, step: _Step, token: Token, node: Node) -> None:
        """A token reached an ad-hoc sub-process: activate its elements (the rule is in the module docstring)."""
        assert isinstance(node, AdHocSubProcess)
        step.state.touched.add(token.id)
        if node.active_elements is None:
            chosen = self._entry_nodes(node.id)
        else:
            try:
                value = expressions.evaluate(node.active_elements, self._scope_vars(step.state, token))
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise ExpressionError(f"gives {value!r}, not a list of element ids")
            except ExpressionError as exc:
                self._incident(step, token, f"active elements of ad-hoc sub-process {node.id!r} failed: {exc}")
                return
            allowed = self._ad_hoc_elements[node.id]
            unknown = [v for v in value if v not in allowed]
            if unknown:
                self._incident(step, token, f"active elements of ad-hoc sub-process {node.id!r} name "
                                            f"{unknown!r}, which are not its inner elements {sorted(allowed)!r}")
                return
            chosen = list(value)
        token.status = SCOPE
        token.work_id = step.state.next_id("w")
        self._arm_boundaries(step, token, node)
        if not chosen:  # nothing activated: no inner token is left, so it is done
            self._finish_activity(step, token, node)
            return
        if node.ordering == "sequential":
            token.loop = {"ad_hoc": list(chosen[1:])}  # activated one after another: the ones still to run
            chosen = chosen[:1]
        for node_id in chosen:
            self._start_inner(step, token, node_id)
        if self._has_listeners:
            self._arm_listeners(step, token, node.id)

    def _ad_hoc_completed(self, step: _Step, token: Token, node: Node) -> bool:
        """An activity directly inside an ad-hoc sub-process completed: evaluate the sub-process's completion
        condition. When it holds with ``cancel_remaining`` the sub-process completes at once (its other inner
        tokens cancelled) and True is returned (``token`` is gone); without, no further element is activated and
        it completes when its last inner token ends. A condition that cannot be evaluated is an incident at the
        sub-process and counts as not holding (evaluated again at the next completion)."""
        scope = step.state.tokens.get(token.parent)  # type: ignore[arg-type]
        adhoc = self._ad_hoc.get(scope.node) if scope is not None and scope.status == SCOPE else None
        if adhoc is None or adhoc.completion_condition is None or scope is None:
            return False
        try:
            holds = bool(expressions.evaluate(adhoc.completion_condition, self._scope_vars(step.state, token)))
        except ExpressionError as exc:
            step.effects.append(fx.Incident(scope.id, adhoc.id, f"completion condition of {adhoc.id!r} failed: {exc}"))
            return False
        if not holds:
            return False
        step.state.touched.add(scope.id)
        scope.loop = None  # no further element is activated
        if not adhoc.cancel_remaining:
            return False
        self._cancel_waits(step, token)
        step.state.tokens.pop(token.id, None)
        for other in step.state.tokens.in_scope(scope.id):
            self._interrupt(step, other)
            step.state.tokens.pop(other.id, None)
        self._finish_activity(step, scope, adhoc)
        return True

    def _ad_hoc_next(self, step: _Step, scope: Token) -> bool:
        """An ad-hoc sub-process has no inner token left: start its next element when it runs them one after
        another (True), else it is done (False)."""
        waiting = scope.loop.get("ad_hoc") if scope.loop else None
        step.state.touched.add(scope.id)
        if not waiting:
            scope.loop = None
            return False
        self._start_inner(step, scope, waiting.pop(0))
        return True

    def _arm_boundaries(self, step: _Step, token: Token, node: Node) -> None:
        if node.id in self._looped and self._is_instance(step.state, token):
            return  # a loop instance: the boundary events belong to the body (armed once, on it)
        for boundary in self._boundaries.get(node.id, ()):
            self._arm_boundary(step, token, boundary)

    def _arm_boundary(self, step: _Step, token: Token, boundary: BoundaryEvent) -> None:
        if isinstance(boundary, TimerBoundaryEvent):
            timer = self._resolve(step, token, boundary, boundary.timer)
            if isinstance(timer, str):  # the activity runs on without it; a retry of the incident arms it
                step.state.touched.add(token.id)
                step.effects.append(fx.Incident(token.id, boundary.id, timer))
                return
            due = self.due(timer, step.now)
            if due is not None:
                wait_id = self._arm_timer(step, token, boundary.id, due, "boundary")
                if timer.kind == "cycle":
                    token.fired[wait_id] = 0
        elif isinstance(boundary, MessageBoundaryEvent):
            self._arm_message(step, token, boundary, boundary.id)
        elif isinstance(boundary, SignalBoundaryEvent):
            self._arm_signal(step, token, boundary, boundary.id)
        elif boundary.kind == "boundary_conditional":
            self._arm_condition(step, token, boundary.id)

    def _move_to_boundary(self, step: _Step, token: Token, boundary: BoundaryEvent) -> None:
        step.state.touched.add(token.id)
        token.node, token.status, token.work_id, token.loop = boundary.id, "", None, None
        step.effects.append(fx.Entered(token.id, boundary.id))
        self._leave(step, token, boundary)

    # --- multi-instance and standard loops (BPMN 2.0 §10.2.8, §13.2.7) ------------------------------

    def _enter_loop(self, step: _Step, body: Token, node: Node) -> None:
        """A token reached a multi-instance or loop activity: it becomes the body and starts the instances."""
        mi = getattr(node, "multi_instance", None)
        variables = self._scope_vars(step.state, body)
        items: list[Any] | None = None
        if mi is not None:
            try:
                if mi.collection is not None:
                    value = expressions.evaluate(mi.collection, variables)
                    if not isinstance(value, list | tuple):
                        raise ExpressionError(f"gives {type(value).__name__}, not a list")
                    items = list(value)
                    count = len(items)
                else:
                    value = expressions.evaluate(mi.cardinality, variables)
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                        raise ExpressionError(f"gives {value!r}, not a whole number >= 0")
                    count = value
            except ExpressionError as exc:
                what = "collection" if mi.collection is not None else "cardinality"
                self._incident(step, body, f"multi-instance {what} of {node.id!r} failed: {exc}")
                return
            loop: dict[str, Any] = {"n": count, "done": 0, "active": 0, "next": 0}
            if mi.output_collection:
                loop["out"] = [None] * count
            if mi.sequential and items is not None:
                loop["items"] = items
        else:
            loop = {"done": 0, "active": 0, "next": 0}
        body.status = MULTI
        body.work_id = step.state.next_id("w")
        body.loop = loop
        self._arm_boundaries(step, body, node)
        if mi is None:
            if self._loop_again(step, body, node, first=True):
                self._loop_instance(step, body, node, 0)
            elif body.status == MULTI:
                self._loop_complete(step, body, node)
        elif loop["n"] == 0:
            self._loop_complete(step, body, node)
        elif mi.sequential:
            self._loop_instance(step, body, node, 0, items[0] if items is not None else None)
        else:
            for index in range(loop["n"]):
                self._loop_instance(step, body, node, index, items[index] if items is not None else None)

    def _loop_instance(self, step: _Step, body: Token, node: Node, index: int, item: Any = None) -> None:
        """Start instance ``index``: a token of its own under the body, with its local variables."""
        step.state.touched.add(body.id)
        mi = getattr(node, "multi_instance", None)
        local: dict[str, Any] = {"loopCounter": index}
        if mi is not None:
            if mi.element_variable:
                local[mi.element_variable] = item
            if mi.output_element and mi.output_element.isidentifier() and mi.output_element not in local:
                local[mi.output_element] = None  # what the instance writes there stays its own (Zeebe's rule)
        instance = Token(id=step.state.next_id("t"), node=node.id, status="", parent=body.id, locals=local)
        step.state.tokens[instance.id] = instance
        step.state.touched.add(instance.id)
        loop = body.loop
        assert loop is not None
        loop["active"] += 1
        loop["next"] = index + 1
        step.queue.append((instance, node.id, None))

    def _loop_instance_done(self, step: _Step, instance: Token, node: Node) -> None:
        """An instance completed: keep its output, move the counters, then the next instance or the end."""
        step.state.touched.add(instance.id)
        state = step.state
        body = state.tokens[instance.parent]  # type: ignore[index]
        state.touched.add(body.id)
        loop = body.loop
        assert loop is not None
        mi = getattr(node, "multi_instance", None)
        index = (instance.locals or {}).get("loopCounter", 0)
        if mi is not None and mi.output_element:
            try:
                scope = self._scope_vars(state, instance)
                name = mi.output_element  # a variable's name (the common case) is read without the evaluator
                loop["out"][index] = scope.get(name) if name.isidentifier() and name not in expressions.CONSTANTS \
                    else expressions.evaluate(name, scope)
            except ExpressionError as exc:
                self._incident(step, instance, f"output element of {node.id!r} failed: {exc}")
                return
        self._cancel_waits(step, instance)
        del state.tokens[instance.id]
        step.effects.append(fx.Left(instance.id, node.id))
        loop["done"] += 1
        loop["active"] -= 1
        if mi is None:
            if self._loop_again(step, body, node, first=False):
                self._loop_instance(step, body, node, loop["next"])
            elif body.status == MULTI:
                self._loop_complete(step, body, node)
            return
        if mi.completion_condition is not None:
            scope = ChainMap(instance.locals or {}, self._scope_vars(state, body))
            try:
                done = bool(expressions.evaluate(mi.completion_condition, scope))
            except ExpressionError as exc:
                self._incident(step, body, f"completion condition of {node.id!r} failed: {exc}")
                return
            if done:
                for other in state.tokens.in_scope(body.id):
                    self._interrupt(step, other)
                    state.tokens.pop(other.id, None)
                self._loop_complete(step, body, node)
                return
        if mi.sequential and loop["next"] < loop["n"]:
            items = loop.get("items")
            self._loop_instance(step, body, node, loop["next"], items[loop["next"]] if items is not None else None)
        elif loop["active"] == 0:
            self._loop_complete(step, body, node)

    def _loop_resume(self, step: _Step, body: Token, node: Node) -> None:
        """After a retried incident at the body: the next run or instance, or the end."""
        step.state.touched.add(body.id)
        loop = body.loop
        assert loop is not None
        mi = getattr(node, "multi_instance", None)
        if mi is None:
            if self._loop_again(step, body, node, first=loop["next"] == 0):
                self._loop_instance(step, body, node, loop["next"])
            elif body.status == MULTI:
                self._loop_complete(step, body, node)
            return
        if mi.completion_condition is not None and loop["done"]:
            try:
                variables = ChainMap({"loopCounter": loop["next"] - 1}, self._scope_vars(step.state, body))
                if expressions.evaluate(mi.completion_condition, variables):
                    for other in step.state.tokens.in_scope(body.id):
                        self._interrupt(step, other)
                        step.state.tokens.pop(other.id, None)
                    self._loop_complete(step, body, node)
                    return
            except ExpressionError as exc:
                self._incident(step, body, f"completion condition of {node.id!r} failed: {exc}")
                return
        if mi.sequential and loop["active"] == 0 and loop["next"] < loop["n"]:
            items = loop.get("items")
            self._loop_instance(step, body, node, loop["next"], items[loop["next"]] if items is not None else None)
        elif loop["active"] == 0:
            self._loop_complete(step, body, node)

    def _loop_again(self, step: _Step, body: Token, node: Node, first: bool) -> bool:
        """A standard loop: whether to run once more (``maximum``, then the condition with ``loopCounter`` =
        runs done; before the first run only with ``test_before``). A failing condition is an incident."""
        spec = node.loop  # type: ignore[attr-defined]
        runs = body.loop["next"]  # type: ignore[index]
        if spec.maximum is not None and runs >= spec.maximum:
            return False
        if spec.condition is None or (first and not spec.test_before):
            return True
        try:
            return bool(expressions.evaluate(spec.condition,
                                             ChainMap({"loopCounter": runs}, self._scope_vars(step.state, body))))
        except ExpressionError as exc:
            self._incident(step, body, f"loop condition of {node.id!r} failed: {exc}")
            return False

    def _loop_complete(self, step: _Step, body: Token, node: Node) -> None:
        """All instances are done (or the completion condition held): set the output collection, move on."""
        step.state.touched.add(body.id)
        mi = getattr(node, "multi_instance", None)
        loop = body.loop or {}
        self._cancel_waits(step, body)
        body.loop, body.work_id, body.status = None, None, ""
        if mi is not None and mi.output_collection:
            self._set_vars(step, node.id, {mi.output_collection: loop.get("out", [])}, None, body)
        if self._ad_hoc and body.parent is not None and self._ad_hoc_completed(step, body, node):
            return
        self._leave(step, body, node)

    def _is_instance(self, state: InstanceState, token: Token) -> bool:
        """Whether ``token`` is one instance of a multi-instance or loop activity (its parent is the body)."""
        if token.parent is None:
            return False
        body = state.tokens.get(token.parent)
        return body is not None and body.loop is not None and body.node == token.node

    def _local_scopes(self, state: InstanceState, token: Token) -> list[Token]:
        """The tokens of the token's scopes that hold local variables, innermost first (none outside loops)."""
        scopes = []
        current: Token | None = token
        while current is not None:
            if current.locals is not None:
                scopes.append(current)
            current = state.tokens.get(current.parent) if current.parent else None
        return scopes

    def _scope_vars(self, state: InstanceState, token: Token) -> Mapping[str, Any]:
        """The variables a token sees: its scopes' local variables (and a multi-instance body's counters)
        over the process variables. Outside loops, the process variables themselves (no copy)."""
        if token.locals is None and token.parent is None and token.loop is None:
            return state.variables
        layers: list[Mapping[str, Any]] = []
        current: Token | None = token
        while current is not None:
            if current.locals is not None:
                layers.append(current.locals)
            loop = current.loop
            if loop is not None and "n" in loop:
                layers.append({"nrOfInstances": loop["n"], "nrOfCompletedInstances": loop["done"],
                               "nrOfActiveInstances": loop["active"]})
            current = state.tokens.get(current.parent) if current.parent else None
        return ChainMap(*layers, state.variables) if layers else state.variables

    # --- errors, incidents, compensation ------------------------------------------------------

    def _throw_error(self, step: _Step, token: Token, code: str, message: str, technical: bool) -> bool:
        """Route an error to the nearest matching error boundary; False if nothing catches it."""
        current: Token | None = token
        while current is not None:
            instance = current.node in self._looped and self._is_instance(step.state, current)
            for boundary in () if instance else self._boundaries.get(current.node, ()):
                if boundary.kind == "boundary_error" and getattr(boundary, "error_code", None) in (None, code):
                    self._set_vars(step, boundary.id, {"error_code": code, "error_message": message}, None)
                    self._abandon(step, current)
                    self._interrupt(step, current)
                    self._move_to_boundary(step, current, boundary)
                    return True
            if self._esps and self._catch_in_esp(step, current, "error_start", code):
                self._set_vars(step, None, {"error_message": message}, None)
                return True
            current = step.state.tokens.get(current.parent) if current.parent else None
        if technical:
            self._incident(step, token, message)
            return True
        return False

    def _escalate(self, step: _Step, token: Token, node: Node) -> None:
        """An escalation throw or end event (the rule is in the module docstring)."""
        code: str = node.escalation_code  # type: ignore[attr-defined]
        if not self._route_escalation(step, token, code, own_boundaries=False):
            step.effects.append(fx.Escalated(token.id, node.id, code))
        if token.id not in step.state.tokens:
            return  # an interrupting catch cancelled the scope it was thrown in
        if node.kind == "escalation_end":  # type: ignore[attr-defined]
            self._remove(step, token)
        else:
            self._leave(step, token, node)

    def _route_escalation(self, step: _Step, thrower: Token, code: str, own_boundaries: bool) -> bool:
        """Escalate ``code`` from ``thrower`` to the enclosing scopes, innermost first: the escalation boundary
        events of ``thrower``'s own activity (``own_boundaries``: a call activity whose child escalated), an
        escalation event sub-process of the scope it runs in, the boundary events of that scope's sub-process,
        and so on out. True if something caught it (an interrupting catch cancelled its scope)."""
        current: Token | None = thrower
        own = own_boundaries
        while current is not None:
            instance = own and current.node in self._looped and self._is_instance(step.state, current)
            for boundary in self._boundaries.get(current.node, ()) if own and not instance else ():
                if boundary.kind == "boundary_escalation" and getattr(boundary, "escalation_code", None) in (None,
                                                                                                              code):
                    self._set_vars(step, boundary.id, {"escalation_code": code}, None)
                    if boundary.interrupting:
                        self._abandon(step, current)
                        self._interrupt(step, current)
                        self._move_to_boundary(step, current, boundary)
                    else:
                        extra = Token(id=step.state.next_id("t"), node=boundary.id, status="", parent=current.parent)
                        step.state.tokens[extra.id] = extra
                        step.state.touched.add(extra.id)
                        step.effects.append(fx.Entered(extra.id, boundary.id))
                        self._leave(step, extra, boundary)
                    return True
            if self._esps and self._catch_in_esp(step, current, "escalation_start", code):
                return True
            current = step.state.tokens.get(current.parent) if current.parent else None
            own = True
        return False

    def _error_end(self, step: _Step, token: Token, node: ErrorEndEvent) -> None:
        scope = step.state.tokens.get(token.parent) if token.parent else None
        del step.state.tokens[token.id]
        if self._esps and self._catch_in_esp(step, token, "error_start", node.error_code):
            self._set_vars(step, node.id, {"error_message": f"error end {node.id!r}"}, None)
            return
        if scope is None or not self._throw_error(step, scope, node.error_code, f"error end {node.id!r}", False):
            self._end_instance(step, "failed", f"error {node.error_code!r} thrown by {node.id!r} was not caught",
                               node.error_code)

    def _incident(self, step: _Step, token: Token, error: str) -> None:
        step.state.touched.add(token.id)
        token.status = INCIDENT
        token.error = error
        step.effects.append(fx.Incident(token.id, token.node, error))

    def _compensate(self, step: _Step, token: Token, node: CompensationThrowEvent) -> None:
        step.state.touched.add(token.id)
        path = self._scope_path[node.id]
        entries = step.state.compensable
        if node.activity:
            chosen = [i for i, e in enumerate(entries) if not e.done and e.node == node.activity]
        else:
            chosen = [i for i, e in enumerate(entries) if not e.done and e.scope[:len(path)] == path]
        token.pending = list(reversed(chosen))
        token.status = COMPENSATING
        self._next_compensation(step, token)

    def _cancel_transaction(self, step: _Step, token: Token, node: Node) -> None:
        """A cancel end event: cancel the transaction it sits in (the rule is in the module docstring)."""
        state = step.state
        state.tokens.pop(token.id, None)
        activation = state.tokens.get(token.parent) if token.parent else None  # the transaction's run
        owner = activation  # the token its boundary events belong to: a looped transaction's body
        if activation is not None and activation.node in self._looped and self._is_instance(state, activation):
            owner = state.tokens.get(activation.parent) if activation.parent else None
        transaction = self._nodes.get(owner.node) if owner is not None else None
        if activation is None or owner is None or not (isinstance(transaction, SubProcess) and transaction.transaction):
            self._end_instance(step, "failed", f"cancel end event {node.id!r} is not inside a transaction")
            return
        state.touched.add(owner.id)
        self._abandon_inner(step, activation)  # an unfinished inner sub-process's completions are not compensated
        chosen = [i for i, e in enumerate(state.compensable) if not e.done and activation.work_id in e.scope_tokens]
        if owner is not activation:
            self._abandon(step, owner)  # the other runs of a looped transaction are not compensated later either
        self._interrupt(step, owner)
        boundary = next((b for b in self._boundaries.get(owner.node, ()) if b.kind == "boundary_cancel"), None)
        if boundary is None:  # refused by validation; a definition that skipped it stops here
            owner.status = ""
            self._incident(step, owner, f"transaction {owner.node!r} was cancelled by {node.id!r} but has no cancel "
                                        "boundary event to leave by")
            return
        owner.node, owner.status, owner.loop = boundary.id, COMPENSATING, None
        step.effects.append(fx.Entered(owner.id, boundary.id))
        owner.pending = list(reversed(chosen))
        self._next_compensation(step, owner)

    def _abandon_inner(self, step: _Step, scope: Token) -> None:
        """``_abandon`` every sub-process or loop body running inside ``scope`` (at any depth)."""
        for child in step.state.tokens.in_scope(scope.id):
            if child.status in (SCOPE, MULTI):
                self._abandon(step, child)
                self._abandon_inner(step, child)

    def _next_compensation(self, step: _Step, token: Token) -> None:
        step.state.touched.add(token.id)
        if not token.pending:
            token.status = ""
            self._leave(step, token, self._nodes[token.node])
            return
        entry = step.state.compensable[token.pending[0]]
        token.work_id = step.state.next_id("w")
        step.effects.append(fx.Compensation(token.id, entry.node, str(entry.handler), token.work_id))
        handler = self._nodes.get(entry.handler)
        if handler is not None and getattr(handler, "for_compensation", False):
            # A handler activity (BPMN isForCompensation): any kind; a user task opens a human task and the
            # compensation waits for it; a service task calls its agent; a plain task passes at once.
            if isinstance(handler, ServiceTask):
                step.effects.append(fx.StartWork(token.id, handler.id, "compensation", token.work_id, 1,
                                                 dict(entry.inputs), handler.agent))
            else:
                kind = handler.kind if handler.kind in WORK_KINDS else "task"  # type: ignore[attr-defined]
                step.effects.append(fx.StartWork(token.id, handler.id, kind, token.work_id, 1,
                                                 dict(step.state.variables) if kind == "user_task" else {}))
            return
        step.effects.append(fx.StartWork(token.id, entry.node, "compensation", token.work_id, 1,
                                         dict(entry.inputs), entry.handler))

    # --- waits ---------------------------------------------------------------------------------

    def _resolve(self, step: _Step, token: Token, node: Node, timer: Timer) -> Timer | str:
        """``node``'s timer with its expression evaluated against ``token``'s variables (``Timer.resolve``), or
        the incident's text naming the timer and the value when that fails."""
        if timer.expression is None:
            return timer
        try:
            return timer.resolve(self._scope_vars(step.state, token))
        except TimerSpecError as exc:
            return f"timer of {node.id!r}: {exc}"

    def _arm_timer(self, step: _Step, token: Token, target: str, due: datetime, purpose: str) -> str:
        step.state.touched.add(token.id)
        wait_id = f"{token.id}.{target}.{step.state.next_id('')}"
        token.waits[wait_id] = target
        step.effects.append(fx.ScheduleTimer(wait_id, due, token.id, token.node, purpose))
        return wait_id

    def _arm_message(self, step: _Step, token: Token, node: Any, target: str) -> None:
        step.state.touched.add(token.id)
        wait_id = f"{token.id}.{target}.{step.state.next_id('')}"
        token.waits[wait_id] = target
        correlation = self._correlation(node.correlation_key, self._scope_vars(step.state, token))
        step.effects.append(fx.Subscribe(wait_id, node.message, correlation, token.id, node.id))

    def _arm_signal(self, step: _Step, token: Token, node: Any, target: str) -> None:
        wait_id = f"{token.id}.{target}.{step.state.next_id('')}"
        step.state.touched.add(token.id)
        token.waits[wait_id] = target
        step.effects.append(fx.Subscribe(wait_id, node.signal, None, token.id, node.id, kind="signal"))

    def _correlation(self, key: str | None, variables: dict[str, Any]) -> Any:
        if key is None:
            return None
        try:
            return expressions.evaluate(key, variables)
        except ExpressionError:
            return None

    def _message_vars(self, step: _Step, node: Node, payload: dict[str, Any], token: Token | None = None) -> None:
        self._set_vars(step, node.id, message_variables(node, payload), None, token)

    def _cancel_waits(self, step: _Step, token: Token) -> None:
        if not token.waits and not token.fired:
            return
        step.state.touched.add(token.id)
        for wait_id, target in token.waits.items():
            node = self._nodes.get(target)
            if target in (SLA, RETRY_WAIT) or isinstance(node, TimerCatchEvent | TimerBoundaryEvent | TimerStartEvent):
                step.effects.append(fx.CancelTimer(wait_id))
            elif node is not None and node.kind in CONDITIONAL_KINDS:
                continue  # evaluated by the core: nothing outside to cancel
            else:
                step.effects.append(fx.Unsubscribe(wait_id))
        token.waits.clear()
        token.fired.clear()

    @staticmethod
    def _token_waiting(state: InstanceState, wait_id: str) -> Token | None:
        owner = wait_id.split(".", 1)[0]
        token = state.tokens.get(owner)
        if token is not None and wait_id in token.waits:
            return token
        return None

    # --- removing tokens -----------------------------------------------------------------------

    def _interrupt(self, step: _Step, token: Token) -> None:
        """Cancel what a token is doing: its work, its waits, and (a sub-process) all its inner tokens."""
        step.state.touched.add(token.id)
        if token.status in (WORK, COMPENSATING) and token.work_id:  # a handler's human task closes too
            step.effects.append(fx.CancelWork(token.id, token.node, token.work_id))
        self._cancel_waits(step, token)
        if token.status == SCOPE or token.loop is not None:
            for child in step.state.tokens.in_scope(token.id):
                self._interrupt(step, child)
                step.state.tokens.pop(child.id, None)
        token.work_id = None
        token.loop = None

    @staticmethod
    def _abandon(step: _Step, token: Token) -> None:
        """A sub-process token was interrupted (a boundary event, an error): it did not complete, so what
        completed inside it is not compensated (BPMN 2.0 §10.7.1 "compensation ... of a completed activity";
        Camunda 7 and 8: handlers of activities in an unfinished scope are not invoked). Marked done, not
        removed: running compensations hold indexes into the list."""
        if token.status not in (SCOPE, MULTI) or not token.work_id:
            return
        for entry in step.state.compensable:
            if token.work_id in entry.scope_tokens:
                entry.done = True

    def _remove(self, step: _Step, token: Token, node: Node | None = None) -> None:
        """The token is gone (an end event, no flow to follow); its scope completes when nothing is left in it."""
        if token.waits or token.fired:
            self._cancel_waits(step, token)
        tokens = step.state.tokens
        if token.parent is None:
            _dict_pop(tokens, token.id, None)  # a process-level token: dict's own (see Tokens)
            return
        tokens.pop(token.id, None)
        if self._has_listeners:  # a scope whose only tokens left are its event sub-processes' listeners is done
            inside = tokens.in_scope(token.parent)
            if any(t.status != LISTEN for t in inside):
                return
            for listener in inside:
                self._cancel_waits(step, listener)
                tokens.pop(listener.id, None)
        elif tokens.any_in_scope(token.parent):
            return
        scope = tokens.get(token.parent)
        if scope is not None:
            if scope.node in self._ad_hoc and self._ad_hoc_next(step, scope):
                return
            self._finish_activity(step, scope, self._nodes[scope.node])

    def _terminate(self, step: _Step, token: Token, node: Node | None = None) -> None:
        if token.parent is None:
            for other in list(step.state.tokens.values()):
                if other.id != token.id:
                    self._interrupt(step, other)
            step.state.tokens.clear()
            step.state.status = "completed"
            step.effects.append(fx.InstanceEnded("completed"))
            return
        scope = step.state.tokens[token.parent]
        self._interrupt(step, scope)
        self._finish_activity(step, scope, self._nodes[scope.node])

    def _end_instance(self, step: _Step, status: str, error: str | None, code: str | None = None) -> None:
        for token in list(step.state.tokens.values()):
            self._interrupt(step, token)
        step.state.tokens.clear()
        step.state.status = status
        step.effects.append(fx.InstanceEnded(status, error, code))

    # --- variables -----------------------------------------------------------------------------

    def _set_vars(self, step: _Step, node_id: str | None, values: Mapping[str, Any], actor: str | None,
                  token: Token | None = None) -> None:
        """Set variables: a name that is local to the token's scope (a loop instance's element, loopCounter or
        output element) is set there; every other name is a process variable (recorded, as Camunda's
        ``setVariable`` creates an unknown variable at the process instance)."""
        if token is not None and (token.locals is not None or token.parent is not None):
            scopes = self._local_scopes(step.state, token)
            if scopes:
                rest = {}
                for name, value in values.items():
                    owner = _owner(scopes, name)
                    if owner is None:
                        rest[name] = value
                    elif owner.locals[name] != value:  # type: ignore[index]
                        owner.locals[name] = value  # type: ignore[index]
                        step.state.touched.add(owner.id)
                        step.changed = True
                values = rest
        variables = step.state.variables
        changes = []
        for name, value in values.items():
            old = variables.get(name)
            if name not in variables or old != value:
                changes.append((name, old, value))
                variables[name] = value
        if changes:
            step.changed = True
            step.effects.append(fx.VariablesChanged(node_id, tuple(changes), actor))

    # --- helpers -------------------------------------------------------------------------------

    def _plain_start(self) -> str:
        starts = self.definition.start_nodes()
        plain = [n.id for n in starts if n.kind == "start"]
        if plain:
            self._plain_start_id = plain[0]
            return plain[0]
        raise SemanticsError(
            f"{self.definition.id!r} has no plain start event; start it at one of "
            f"{[n.id for n in starts]} (start_node=...)")

    def _calendar(self, name: str) -> Calendar:
        try:
            return self.calendars[name]
        except KeyError:
            raise SemanticsError(f"calendar {name!r} is not known; pass calendars={{{name!r}: ...}}") from None


WHOLE = "$value"
"""The payload field carrying a thrown value that is not a map (``payload_expression``)."""


# Helpers for what a comprehension inside a hot method would do: a comprehension that reads a local variable of
# its method makes that variable a cell, built at every call of the method, taken or not (issue 19).
def _only(values: dict[str, Any], names: Any) -> dict[str, Any]:
    """``values`` restricted to ``names``, in its own order."""
    return {k: v for k, v in values.items() if k in names}


def _with_id(flows: list[SequenceFlow], flow_id: str) -> list[SequenceFlow]:
    return [f for f in flows if f.id == flow_id]


def _owner(scopes: list[Token], name: str) -> Token | None:
    """The innermost of ``scopes`` whose local variables hold ``name``."""
    return next((t for t in scopes if name in t.locals), None)  # type: ignore[operator]


def message_variables(node: Node, payload: dict[str, Any]) -> dict[str, Any]:
    """The variables a received message sets at ``node``: with ``result_variable``, that one variable holds
    the payload (the thrown value itself when it was not a map: SpiffWorkflow's ``messageVariable``);
    without, each field its own variable (``outputs`` filters them) and a thrown non-map value goes to the
    variable named after the message when that is a valid name (SpiffWorkflow's rule), else ``payload``."""
    whole = payload.get(WHOLE, payload) if set(payload) == {WHOLE} else payload
    target = getattr(node, "result_variable", None)
    if target:
        return {target: whole}
    outputs = getattr(node, "outputs", None)
    values = {k: v for k, v in payload.items() if k != WHOLE and (outputs is None or k in outputs)}
    if WHOLE in payload:
        name = getattr(node, "message", "")
        values[name if name.isidentifier() else "payload"] = payload[WHOLE]
    return values


def mapped(mapping: Mapping[str, str] | None, variables: Mapping[str, Any]) -> dict[str, Any]:
    """A call activity's input or output mapping: target -> value of its expression over ``variables``; None
    passes every variable (raises ExpressionError naming the expression that failed)."""
    if mapping is None:
        return dict(variables)
    return {target: expressions.evaluate(source, variables) for target, source in mapping.items()}


def is_catch(node: Node) -> bool:
    return node.kind in CATCH_KINDS
