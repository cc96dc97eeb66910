"""Node kinds of a process definition, each with its own validated fields.

Every node is a frozen pydantic model with a ``kind`` tag, so a definition loads from JSON/YAML
through one discriminated union and a typo in a kind or a field is reported with its place.
Handler fields (``agent``, ``compensation``, ``on_timeout``) accept a Python callable but store
its registered *name*, so definitions serialise and find their code again after a restart.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from engine.errors import ExpressionError, TimerSpecError
from engine.model import expressions
from engine.model.ids import ElementId, Name, VariableName, is_modeler_id, kind_words, words
from engine.model.timers import Timer, format_duration, parse_duration
from engine.registry import ref_of


def _handler_ref(value: Any) -> Any:
    try:
        return ref_of(value) if value is not None else value
    except TypeError as exc:  # as ValueError, so a bad value in a file is reported with its place
        raise ValueError(str(exc)) from None


HandlerRef = Annotated[str, BeforeValidator(_handler_ref)]


def _duration_text(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, str):
        try:
            parse_duration(value)
        except TimerSpecError as exc:
            raise ValueError(str(exc)) from None
    return value


Duration = Annotated[str, BeforeValidator(_duration_text)]


def _check_expression(value: str | None) -> str | None:
    if value is not None:
        try:
            expressions.parse(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
    return value


Expression = Annotated[str, BeforeValidator(_check_expression)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Node(Model):
    """Fields every node has."""

    id: ElementId = Field(min_length=1)
    name: str | None = None
    documentation: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)  # layout, lanes, vendor extensions

    @model_serializer(mode="wrap")
    def _kind_first(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Always write ``id`` and ``kind`` first, even when other defaults are left out."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        head = {"id": self.id, "kind": getattr(self, "kind", None)}
        return {**head, **{k: v for k, v in data.items() if k not in head}}

    @property
    def label(self) -> str:
        """What the app shows for the node: its name; else a user task's title; else its id in words
        (``issue_created`` -> "Issue created"), or its kind in words ("Exclusive gateway") when the id is one a
        modeler made up (``Gateway_09ddg4m``). The one rule for every page, the diagram and the BPMN export's
        generated labels (``engine.bpmn.labels``)."""
        if self.name:
            return self.name
        title = getattr(self, "title", None)
        if isinstance(title, str) and title.strip():
            return title
        if is_modeler_id(self.id):
            return kind_words(getattr(self, "kind", "node"))
        return words(self.id)

    # Classification used by validation, rendering and the token semantics.
    is_activity: ClassVar[bool] = False
    is_gateway: ClassVar[bool] = False
    is_event: ClassVar[bool] = False


# --- events -------------------------------------------------------------------------------------


class StartEvent(Node):
    """A plain start: the instance begins when someone starts it."""

    kind: Literal["start"] = "start"
    is_event = True


class TimerStartEvent(Node):
    """Starts a new instance at a date or on every tick of a cycle (e.g. a daily 9am report). Inside an event
    sub-process it may also be a duration, counted from when its enclosing scope starts (validation refuses a
    duration anywhere else: it would have nothing to count from)."""

    kind: Literal["timer_start"] = "timer_start"
    timer: Timer
    interrupting: bool = True  # inside an event sub-process: does it cancel the rest of the scope?
    is_event = True


class MessageStartEvent(Node):
    """Starts a new instance when a message with this name arrives."""

    kind: Literal["message_start"] = "message_start"
    message: Name = Field(min_length=1)
    result_variable: VariableName | None = None  # the whole payload goes here
    correlation_key: Expression | None = None  # inside an event sub-process: which instance's message it is
    interrupting: bool = True  # inside an event sub-process: does it cancel the rest of the scope?
    is_event = True


class ErrorStartEvent(Node):
    """Starts an event sub-process when an error with ``error_code`` (None: any error) is thrown in its
    enclosing scope; it always interrupts the scope (BPMN 2.0 §10.3.5, Event Sub-Process)."""

    kind: Literal["error_start"] = "error_start"
    error_code: Name | None = None
    is_event = True


class EscalationStartEvent(Node):
    """Starts an event sub-process when an escalation with ``escalation_code`` (None: any) is thrown in its
    enclosing scope, interrupting the scope or not (BPMN 2.0 §10.3.5)."""

    kind: Literal["escalation_start"] = "escalation_start"
    escalation_code: Name | None = None
    interrupting: bool = True
    is_event = True


class ConditionalStartEvent(Node):
    """Starts an event sub-process when ``condition`` becomes true while its enclosing scope runs (evaluated
    when the scope starts and at the end of every step that changed a variable; BPMN 2.0 §10.5.2). At the top
    of a process it starts an instance when ``Engine.evaluate_conditions(variables)`` finds it true for them
    (Camunda 7's condition evaluation)."""

    kind: Literal["conditional_start"] = "conditional_start"
    condition: Expression
    interrupting: bool = True
    is_event = True


class SignalStartEvent(Node):
    """Starts a new instance whenever the signal of this name is broadcast (BPMN 2.0 §10.5.2, Signal start
    event): every deployed definition (latest version) with a matching signal start starts one."""

    kind: Literal["signal_start"] = "signal_start"
    signal: Name = Field(min_length=1)
    interrupting: bool = True  # inside an event sub-process: does it cancel the rest of the scope?
    is_event = True


class EndEvent(Node):
    """Consumes a token; the instance ends when no token is left."""

    kind: Literal["end"] = "end"
    is_event = True


class CancelEndEvent(Node):
    """Cancels the transaction it sits in, undoing what completed there. Every other token inside is cancelled,
    the completed activities inside are compensated, newest first, and the transaction is left through its cancel
    boundary event (BPMN 2.0 §10.4.3, Cancel end event; allowed only directly inside a transaction)."""

    kind: Literal["cancel_end"] = "cancel_end"
    is_event = True


class TerminateEndEvent(Node):
    """Ends the whole instance (or sub-process) at once, cancelling every other token."""

    kind: Literal["terminate_end"] = "terminate_end"
    is_event = True


class ErrorEndEvent(Node):
    """Throws a business error, caught by an error boundary event of an enclosing activity."""

    kind: Literal["error_end"] = "error_end"
    error_code: Name = Field(min_length=1)
    is_event = True


class SignalEndEvent(Node):
    """Broadcasts a signal, carrying the named variables, and ends its token (BPMN 2.0 §10.5.3)."""

    kind: Literal["signal_end"] = "signal_end"
    signal: Name = Field(min_length=1)
    payload: list[str] = Field(default_factory=list)
    is_event = True


class EscalationEndEvent(Node):
    """Throws an escalation with ``escalation_code`` and ends its token (BPMN 2.0 §10.5.3): an escalation
    boundary event of an enclosing sub-process (or an escalation event sub-process) catches it; unlike an
    error, an escalation nothing catches is recorded and the instance goes on."""

    kind: Literal["escalation_end"] = "escalation_end"
    escalation_code: Name = Field(min_length=1)
    is_event = True


class TimerCatchEvent(Node):
    """Waits: a duration (``P7D``), until a date, or until the next tick of a cycle."""

    kind: Literal["timer_catch"] = "timer_catch"
    timer: Timer
    is_event = True




class MessageCatchEvent(Node):
    """Waits for a message by name; ``correlation_key`` (an expression over variables) picks the instance."""

    kind: Literal["message_catch"] = "message_catch"
    message: Name = Field(min_length=1)
    correlation_key: Expression | None = None
    outputs: list[str] | None = None  # payload fields copied into variables (None: all)
    result_variable: VariableName | None = None  # the whole payload goes here
    is_event = True


class ConditionalCatchEvent(Node):
    """Waits until ``condition`` (an expression over variables) holds: at once if it holds on arrival, else
    when a change of variables makes it true (BPMN 2.0 §10.5.4, Conditional intermediate event)."""

    kind: Literal["conditional_catch"] = "conditional_catch"
    condition: Expression
    is_event = True


class SignalCatchEvent(Node):
    """Waits for a signal by name. A signal is broadcast: every waiting catch receives it, there is no
    correlation key and a signal nobody waits for is gone (BPMN 2.0 §10.5.4, unlike a message). The payload's
    fields become variables."""

    kind: Literal["signal_catch"] = "signal_catch"
    signal: Name = Field(min_length=1)
    is_event = True


class SignalThrowEvent(Node):
    """Broadcasts a signal carrying the named variables to every waiting signal catch, signal boundary event,
    signal event sub-process and signal start event, then passes on (BPMN 2.0 §10.5.4)."""

    kind: Literal["signal_throw"] = "signal_throw"
    signal: Name = Field(min_length=1)
    payload: list[str] = Field(default_factory=list)
    is_event = True


class EscalationThrowEvent(Node):
    """Throws an escalation with ``escalation_code`` to the enclosing scopes and passes on (BPMN 2.0 §10.5.4):
    a matching escalation boundary event or escalation event sub-process catches it; a non-interrupting one
    lets this token go on, an interrupting one cancels the scope it is thrown in."""

    kind: Literal["escalation_throw"] = "escalation_throw"
    escalation_code: Name = Field(min_length=1)
    is_event = True


class MessageThrowEvent(Node):
    """Sends a message (on the bus) carrying the named variables, or the value of ``payload_expression``
    (SpiffWorkflow's message payload): a map's keys are the payload's fields, any other value is delivered
    whole (a receiver's ``result_variable`` gets it)."""

    kind: Literal["message_throw"] = "message_throw"
    message: Name = Field(min_length=1)
    correlation_key: Expression | None = None
    payload: list[str] = Field(default_factory=list)
    payload_expression: Expression | None = None
    is_event = True


class CompensationThrowEvent(Node):
    """Undoes completed work: runs the compensation handlers of completed activities, newest first.
    ``activity`` names one activity to compensate; None compensates the whole enclosing scope."""

    kind: Literal["compensation_throw"] = "compensation_throw"
    activity: str | None = None
    is_event = True


class IntermediateThrowEvent(Node):
    """A none intermediate throw event: marks that a state was reached (a milestone); the token passes
    straight through (BPMN 2.0 §10.5.4, an intermediate event without a trigger)."""

    kind: Literal["intermediate_throw"] = "intermediate_throw"
    is_event = True


class LinkThrowEvent(Node):
    """Jumps to the link catch event of the same ``link`` name in the same (sub-)process: a link pair is a
    sequence flow drawn as two events (BPMN 2.0 §10.5.6, "Link" intermediate events). It has no outgoing flow."""

    kind: Literal["link_throw"] = "link_throw"
    link: str = Field(min_length=1)
    is_event = True


class LinkCatchEvent(Node):
    """Where the link throw events of the same ``link`` name continue; it has no incoming flow (BPMN 2.0 §10.5.6)."""

    kind: Literal["link_catch"] = "link_catch"
    link: str = Field(min_length=1)
    is_event = True


class BoundaryEvent(Node):
    attached_to: str = Field(min_length=1)
    interrupting: bool = True
    is_event = True


class TimerBoundaryEvent(BoundaryEvent):
    """A deadline on an activity: interrupting cancels the activity; non-interrupting also starts the
    timer path (a cycle repeats it, e.g. an hourly reminder until the task is done)."""

    kind: Literal["boundary_timer"] = "boundary_timer"
    timer: Timer


class ErrorBoundaryEvent(BoundaryEvent):
    """Catches an error thrown by the activity (an agent failure with this code, or an error end)."""

    kind: Literal["boundary_error"] = "boundary_error"
    error_code: Name | None = None  # None catches every error

    @field_validator("interrupting")
    @classmethod
    def _always_interrupting(cls, value: bool) -> bool:
        if not value:
            raise ValueError("an error boundary event always interrupts its activity")
        return value


class CancelBoundaryEvent(BoundaryEvent):
    """Where a cancelled transaction goes on, once its compensation ran. It fires after a cancel end event inside
    the transaction cancelled it (BPMN 2.0 §10.4.3, Cancel intermediate event); only on a transaction, always
    interrupting."""

    kind: Literal["boundary_cancel"] = "boundary_cancel"

    @field_validator("interrupting")
    @classmethod
    def _always_interrupting(cls, value: bool) -> bool:
        if not value:
            raise ValueError("a cancel boundary event always interrupts its transaction")
        return value


class MessageBoundaryEvent(BoundaryEvent):
    """A message arriving while the activity runs."""

    kind: Literal["boundary_message"] = "boundary_message"
    message: Name = Field(min_length=1)
    correlation_key: Expression | None = None
    result_variable: VariableName | None = None  # the whole payload goes here


class SignalBoundaryEvent(BoundaryEvent):
    """A broadcast signal arriving while the activity runs (interrupting or not)."""

    kind: Literal["boundary_signal"] = "boundary_signal"
    signal: Name = Field(min_length=1)


class ConditionalBoundaryEvent(BoundaryEvent):
    """Fires when ``condition`` becomes true while the activity runs: evaluated when the activity starts and at
    the end of every step that changed a variable (BPMN 2.0 §10.5.4, Conditional); interrupting or not (a
    non-interrupting one fires again only after the condition was false in between)."""

    kind: Literal["boundary_conditional"] = "boundary_conditional"
    condition: Expression


class EscalationBoundaryEvent(BoundaryEvent):
    """Catches an escalation thrown inside the sub-process it is attached to (BPMN 2.0 §10.5.6): with
    ``escalation_code`` only that code, without it every escalation. Interrupting or not."""

    kind: Literal["boundary_escalation"] = "boundary_escalation"
    escalation_code: Name | None = None


# --- gateways -----------------------------------------------------------------------------------


class Gateway(Node):
    is_gateway = True


class ExclusiveGateway(Gateway):
    """XOR: the first outgoing flow whose condition holds, else the default flow."""

    kind: Literal["exclusive_gateway"] = "exclusive_gateway"
    default: str | None = None  # id of the default outgoing flow


class InclusiveGateway(Gateway):
    """OR: every outgoing flow whose condition holds (else the default); the join waits for those."""

    kind: Literal["inclusive_gateway"] = "inclusive_gateway"
    default: str | None = None


class ParallelGateway(Gateway):
    """AND: a split starts every outgoing path; a join waits for every incoming one."""

    kind: Literal["parallel_gateway"] = "parallel_gateway"


class EventBasedGateway(Gateway):
    """A race: the first of the following catch events (timer or message) wins, the others are cancelled."""

    kind: Literal["event_gateway"] = "event_gateway"


# --- activities ---------------------------------------------------------------------------------


class RetryPolicy(Model):
    """How a failing agent call is retried: ``attempts`` in all, waiting backoff * multiplier^n between."""

    attempts: int = Field(default=3, ge=1, le=100)
    backoff: Duration = "PT1S"
    multiplier: float = Field(default=2.0, ge=1.0)
    max_backoff: Duration = "PT10M"

    def delay(self, failed_attempts: int) -> timedelta:
        """The wait before the next attempt after ``failed_attempts`` failures (1 for the first)."""
        cap = parse_duration(self.max_backoff)
        try:  # in float seconds: backoff * multiplier ** n overflows a timedelta long before it reaches the cap
            seconds = parse_duration(self.backoff).total_seconds() * self.multiplier ** max(failed_attempts - 1, 0)
        except OverflowError:
            return cap
        return cap if seconds >= cap.total_seconds() else timedelta(seconds=seconds)


LOOP_VARIABLES = ("loopCounter", "nrOfInstances", "nrOfCompletedInstances", "nrOfActiveInstances")
"""The variables a multi-instance or loop activity defines for its instances (BPMN 2.0 §10.2.8 and
§13.2.7; Camunda's names): ``loopCounter`` is the instance's index, counted from 0 (Camunda 7)."""

# VariableName (identifier, max_id_length) and Name (message, signal, error, escalation: printable, max_key_length)
# are engine.model.ids' rules.


class MultiInstance(Model):
    """BPMN ``multiInstanceLoopCharacteristics``: the activity runs once per item (or ``cardinality`` times),
    all at once (parallel) or one after another (``sequential``).

    - ``cardinality``: an expression giving the number of instances (BPMN ``loopCardinality``), or
    - ``collection``: an expression giving a list (BPMN ``loopDataInputRef``, Camunda's ``camunda:collection``,
      Zeebe's ``inputCollection``); each instance gets one item in ``element_variable`` (``inputDataItem``).
    - ``output_collection``: the variable that receives, when all instances are done, the list of each
      instance's ``output_element`` (an expression evaluated in the instance when it completes; BPMN
      ``loopDataOutputRef`` / ``outputDataItem``, Zeebe's ``outputCollection`` / ``outputElement``), in item order.
    - ``completion_condition``: checked each time an instance completes; when it holds, the remaining instances
      are cancelled and the activity completes (BPMN ``completionCondition``).

    Each instance sees ``loopCounter`` (0, 1, ...) and its element as its own (local) variables;
    ``nrOfInstances``, ``nrOfCompletedInstances`` and ``nrOfActiveInstances`` are the activity's.
    """

    sequential: bool = False
    cardinality: Expression | None = None
    collection: Expression | None = None
    element_variable: VariableName | None = None
    output_collection: VariableName | None = None
    output_element: Expression | None = None
    completion_condition: Expression | None = None

    @model_validator(mode="after")
    def _input(self) -> MultiInstance:
        if (self.cardinality is None) == (self.collection is None):
            raise ValueError("a multi-instance activity needs either a cardinality or a collection (not both)")
        if self.element_variable and self.collection is None:
            raise ValueError("element_variable takes the items of a collection: give the collection")
        if self.element_variable in LOOP_VARIABLES:
            raise ValueError(f"element_variable {self.element_variable!r} is a name the loop itself defines")
        if (self.output_collection is None) != (self.output_element is None):
            raise ValueError("output_collection and output_element go together: the element is what each "
                             "instance adds to the collection")
        return self


class StandardLoop(Model):
    """BPMN ``standardLoopCharacteristics``: the activity runs again while ``condition`` holds (a do-while,
    or a while loop with ``test_before``), at most ``maximum`` times (BPMN 2.0 §10.2.8, ``loopCondition``,
    ``testBefore``, ``loopMaximum``). Each run sees ``loopCounter`` (0, 1, ...)."""

    condition: Expression | None = None
    test_before: bool = False
    maximum: int | None = Field(default=None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _bounded(self) -> StandardLoop:
        if self.condition is None and self.maximum is None:
            raise ValueError("a standard loop needs a condition or a maximum (else it never ends)")
        return self


class Activity(Node):
    """Work that takes time; boundary events attach here and compensation undoes it. ``multi_instance`` or
    ``loop`` (never both: BPMN has one ``loopCharacteristics``) runs it more than once. ``default`` names the
    outgoing flow taken when none of its conditional outgoing flows holds (BPMN 2.0 §10.3.1, Activity
    ``default``)."""

    compensation: HandlerRef | None = None  # a registered handler, or the id of a for_compensation activity
    for_compensation: bool = False  # BPMN isForCompensation: runs only as another activity's compensation
    multi_instance: MultiInstance | None = None
    loop: StandardLoop | None = None
    default: str | None = None  # id of the default outgoing flow (beside conditional flows out of the activity)
    is_activity = True

    @model_validator(mode="after")
    def _one_loop(self) -> Activity:
        if self.multi_instance is not None and self.loop is not None:
            raise ValueError("an activity has one loop characteristic: multi_instance or loop, not both")
        return self


class Task(Activity):
    """A plain (manual or undefined) task: no code runs; in a simulation it only takes time."""

    kind: Literal["task"] = "task"


class ServiceTask(Activity):
    """Work done by a Python agent: inputs are read from variables, outputs written back.

    ``agent`` names an in-process agent; ``topic`` (e.g. ``agent.wowvision.task.validate``) publishes the
    work on the message bus for an external worker instead (Camunda's external tasks, Zeebe's job workers).
    With both, the topic is used when the engine has a bus configured, else the agent runs in-process.
    """

    kind: Literal["service_task"] = "service_task"
    agent: HandlerRef | None = None
    topic: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][\w.:\-]*$")
    input_variables: list[str] = Field(default_factory=list)
    output_variables: list[str] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _agent_or_topic(self) -> ServiceTask:
        if not self.agent and not self.topic:
            raise ValueError("needs an agent (in-process) or a topic (external workers on the bus)")
        return self


FieldType = Literal["string", "text", "integer", "number", "boolean", "date", "enum", "datetime", "time", "duration",
                    "decimal"]


class FormField(Model):
    """One field of a human task's form."""

    name: VariableName
    type: FieldType = "string"
    label: str | None = None
    required: bool = False
    choices: list[str] | None = None
    default: Any = None
    variable: VariableName | None = None  # the variable it sets (default: name)

    @model_validator(mode="after")
    def _choices(self) -> FormField:
        if self.type == "enum" and not self.choices:
            raise ValueError(f"form field {self.name!r} is an enum and needs choices")
        return self


class OnTimeout(Model):
    """What happens when a human task's SLA passes."""

    action: Literal["escalate", "reassign", "complete", "notify", "handler"]
    assignee: str | None = None  # escalate / reassign target
    values: dict[str, Any] = Field(default_factory=dict)  # complete: the default outcome
    message: Name | None = None  # notify: the message name
    handler: HandlerRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        """A callable runs as a handler; 'escalate:cto', 'reassign:ops', 'notify:sla.breached' are short forms."""
        if isinstance(data, OnTimeout):
            return data
        if callable(data):
            return {"action": "handler", "handler": ref_of(data)}
        if isinstance(data, str):
            action, sep, arg = data.partition(":")
            if sep and action in ("escalate", "reassign"):
                return {"action": action, "assignee": arg}
            if sep and action == "notify":
                return {"action": "notify", "message": arg}
            return {"action": "handler", "handler": data}
        return data

    @model_validator(mode="after")
    def _needs(self) -> OnTimeout:
        need = {"escalate": "assignee", "reassign": "assignee", "notify": "message", "handler": "handler"}
        field = need.get(self.action)
        if field and not getattr(self, field):
            raise ValueError(f"on_timeout action {self.action!r} needs {field!r}")
        return self


def escalate(to: str) -> OnTimeout:
    """SLA passed: reassign the task to ``to`` and mark it escalated."""
    return OnTimeout(action="escalate", assignee=to)


def reassign(to: str) -> OnTimeout:
    return OnTimeout(action="reassign", assignee=to)


def complete_with(**values: Any) -> OnTimeout:
    """SLA passed: complete the task with these form values."""
    return OnTimeout(action="complete", values=values)


def notify(message: str) -> OnTimeout:
    return OnTimeout(action="notify", message=message)


class UserTask(Activity):
    """Work done by a person: appears in an inbox, completed with a form, due within an SLA.

    ``requires_claim``: a member of a candidate group must claim the task before completing it (Camunda's
    Tasklist asks the same of a group task); otherwise completing an unclaimed group task claims it."""

    kind: Literal["user_task"] = "user_task"
    title: str | None = None
    assignee: str | None = None
    candidate_groups: list[str] = Field(default_factory=list)
    requires_claim: bool = False
    form: list[FormField] = Field(default_factory=list)
    sla: Duration | None = None
    sla_calendar: str | None = None  # count the SLA in this calendar's working time
    on_timeout: OnTimeout | None = None

    @model_validator(mode="before")
    @classmethod
    def _sla_hours(cls, data: Any) -> Any:
        """``sla_hours=4`` (the design review's shape) is the same as ``sla='PT4H'``."""
        if isinstance(data, dict) and "sla_hours" in data:
            data = dict(data)
            hours = data.pop("sla_hours")
            if data.get("sla") is not None:
                raise ValueError("give either sla or sla_hours, not both")
            if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
                raise ValueError(f"sla_hours must be a positive number, got {hours!r}")
            data["sla"] = format_duration(timedelta(hours=hours))
        return data

    @model_validator(mode="after")
    def _fields(self) -> UserTask:
        names = [f.name for f in self.form]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"form fields repeated: {', '.join(duplicated)}")
        return self

    @property
    def sla_delta(self) -> timedelta | None:
        return parse_duration(self.sla) if self.sla else None


class ScriptTask(Activity):
    """Computes variables: ``script`` is assignments of safe expressions (``total = price * quantity``), one a
    line, run by the evaluator and limits of conditions (``engine.model.scripts``); anything else is refused
    when the definition loads. ``script_format`` keeps the language a BPMN file named (e.g. 'groovy')."""

    kind: Literal["script_task"] = "script_task"
    script: str = Field(min_length=1)
    script_format: str | None = None

    @field_validator("script")
    @classmethod
    def _safe_script(cls, script: str) -> str:
        from engine.model.scripts import check_script

        reason = check_script(script)
        if reason is not None:
            raise ValueError(f"script refused: {reason}")
        return script


class CallActivity(Activity):
    """Calls another deployed process by name (BPMN ``callActivity`` ``calledElement``) and waits for it to end.

    ``binding`` chooses the version (Camunda 7's ``calledElementBinding``): ``latest`` deployed when the call
    happens, a fixed ``version``, or ``deployment``: the newest version deployed no later than the caller's own
    version was. ``inputs`` maps the child's start variables from expressions over the caller's variables
    (``{"amount": "total * 2"}``; None: every variable is passed, Camunda's ``<camunda:in variables="all"/>``);
    ``outputs`` maps the caller's variables from expressions over the child's variables when it completes
    (None: every variable of the child comes back). An error end event the child does not catch is thrown at the
    call activity with its code (its error boundary events catch it), and so is an escalation it does not catch
    (its escalation boundary events: an interrupting one cancels the child, a non-interrupting one lets both go
    on); cancelling the caller cancels the child. The simulator runs the called design inline, as part of the
    case, when it is given (``simulate(..., called=...)``; the CLI and the Simulator page pass the designs of
    the same set), else the call activity is work of its task duration, with a warning."""

    kind: Literal["call_activity"] = "call_activity"
    called_element: str = Field(min_length=1, max_length=200)
    binding: Literal["latest", "deployment", "version"] = "latest"
    version: int | None = Field(default=None, ge=1)
    inputs: dict[VariableName, Expression] | None = None
    outputs: dict[VariableName, Expression] | None = None

    @model_validator(mode="after")
    def _version(self) -> CallActivity:
        if (self.binding == "version") != (self.version is not None):
            raise ValueError("binding 'version' and version go together (binding='version', version=3)")
        return self


class SubProcess(Activity):
    """An embedded scope: its own start, nodes and flows; a compensation and error scope.

    ``triggered_by_event``: an event sub-process (BPMN 2.0 §10.3.5). It has no flows in or out and one start
    event (timer, message, signal, conditional, error or escalation) that starts it while the scope it sits in
    (the process or a sub-process) runs: an interrupting start cancels the rest of that scope, which ends when
    the event sub-process ends; a non-interrupting one runs beside it (as often as its event happens).

    ``transaction``: a transaction sub-process (BPMN 2.0 §10.3.5, Transaction). A cancel end event inside it
    cancels it: its other tokens are cancelled, its completed activities compensated (newest first), and it is
    left through its cancel boundary event. An error inside it is caught as in any sub-process, with no
    compensation (BPMN's "hazard")."""

    kind: Literal["sub_process"] = "sub_process"
    nodes: list[AnyNode] = Field(default_factory=list)
    flows: list[SequenceFlow] = Field(default_factory=list)
    triggered_by_event: bool = False
    transaction: bool = False

    @model_validator(mode="after")
    def _one_variant(self) -> SubProcess:
        if self.triggered_by_event and self.transaction:
            raise ValueError("a sub-process is an event sub-process or a transaction, not both")
        return self


class AdHocSubProcess(SubProcess):
    """Runs the activities inside it in no fixed order, as many as it activates, until it is complete (BPMN 2.0
    §10.3.6 ``adHocSubProcess``, run as Camunda 8 runs it). On entry the inner elements named by
    ``active_elements`` (an expression giving a list of inner element ids, Zeebe's ``activeElementsCollection``)
    are activated, or, without it, every inner element without incoming sequence flow; inner sequence flows are
    followed as usual. ``ordering`` "sequential" runs the activated elements one after another (in the listed,
    else the model's order), "parallel" all at once. After each inner activity completes,
    ``completion_condition`` is evaluated: when it holds the sub-process completes, cancelling the inner work
    still running (``cancel_remaining``, the default) or waiting for it; without a condition it completes when
    no inner token is left."""

    kind: Literal["ad_hoc_sub_process"] = "ad_hoc_sub_process"  # type: ignore[assignment]
    active_elements: Expression | None = None
    completion_condition: Expression | None = None
    cancel_remaining: bool = True
    ordering: Literal["parallel", "sequential"] = "parallel"

    @model_validator(mode="after")
    def _not_an_event_sub_process(self) -> AdHocSubProcess:
        if self.triggered_by_event or self.transaction:
            raise ValueError("an ad-hoc sub-process cannot be an event sub-process (triggered_by_event) or a "
                             "transaction")
        return self


class ReceiveTask(Activity):
    """Waits for a message, like a message catch event, but is an activity: boundary events attach to it and
    it can be compensated (BPMN 2.0 §10.3.3, Receive Task)."""

    kind: Literal["receive_task"] = "receive_task"
    message: Name = Field(min_length=1)
    correlation_key: Expression | None = None
    outputs: list[str] | None = None
    result_variable: VariableName | None = None


class SequenceFlow(Model):
    """An arrow from one node to another, with an optional condition (on gateway splits)."""

    id: ElementId = Field(min_length=1)
    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    condition: Expression | None = None
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


AnyNode = Annotated[
    StartEvent
    | TimerStartEvent
    | MessageStartEvent
    | EndEvent
    | TerminateEndEvent
    | CancelEndEvent
    | ErrorEndEvent
    | TimerCatchEvent
    | MessageCatchEvent
    | ConditionalCatchEvent
    | MessageThrowEvent
    | SignalStartEvent
    | SignalEndEvent
    | SignalCatchEvent
    | SignalThrowEvent
    | SignalBoundaryEvent
    | EscalationEndEvent
    | EscalationThrowEvent
    | EscalationBoundaryEvent
    | ErrorStartEvent
    | EscalationStartEvent
    | ConditionalStartEvent
    | ConditionalBoundaryEvent
    | ReceiveTask
    | CompensationThrowEvent
    | IntermediateThrowEvent
    | LinkThrowEvent
    | LinkCatchEvent
    | TimerBoundaryEvent
    | ErrorBoundaryEvent
    | CancelBoundaryEvent
    | MessageBoundaryEvent
    | ExclusiveGateway
    | InclusiveGateway
    | ParallelGateway
    | EventBasedGateway
    | Task
    | ServiceTask
    | UserTask
    | ScriptTask
    | CallActivity
    | SubProcess
    | AdHocSubProcess,
    Field(discriminator="kind"),
]

SubProcess.model_rebuild()
AdHocSubProcess.model_rebuild()

NODE_CLASSES: dict[str, type[Node]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        StartEvent, TimerStartEvent, MessageStartEvent, EndEvent, TerminateEndEvent, ErrorEndEvent, CancelEndEvent,
        TimerCatchEvent, MessageCatchEvent, ConditionalCatchEvent, MessageThrowEvent, CompensationThrowEvent,
        IntermediateThrowEvent, LinkThrowEvent, LinkCatchEvent, SignalStartEvent, SignalEndEvent, SignalCatchEvent,
        SignalThrowEvent, SignalBoundaryEvent, EscalationEndEvent, EscalationThrowEvent, EscalationBoundaryEvent,
        ErrorStartEvent, EscalationStartEvent, ConditionalStartEvent, ConditionalBoundaryEvent, ReceiveTask,
        TimerBoundaryEvent, ErrorBoundaryEvent, CancelBoundaryEvent, MessageBoundaryEvent, ExclusiveGateway,
        InclusiveGateway, ParallelGateway, EventBasedGateway, Task, ServiceTask, UserTask, ScriptTask, CallActivity,
        SubProcess, AdHocSubProcess,
    )
}
START_KINDS = frozenset({"start", "timer_start", "message_start", "signal_start", "error_start", "escalation_start",
                         "conditional_start"})
#: Start events that only an event sub-process may have (they start it from inside its enclosing scope).
EVENT_SUB_PROCESS_START_KINDS = frozenset({"error_start", "escalation_start", "conditional_start"})
END_KINDS = frozenset({"end", "terminate_end", "error_end", "signal_end", "escalation_end", "cancel_end"})
BOUNDARY_KINDS = frozenset({"boundary_timer", "boundary_error", "boundary_message", "boundary_signal",
                            "boundary_escalation", "boundary_conditional", "boundary_cancel"})
CATCH_KINDS = frozenset({"timer_catch", "message_catch", "signal_catch"})
