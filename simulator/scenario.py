"""What a simulation assumes about the world around a design: arrivals, durations, people, agents.

A scenario is declared in Python or in a YAML/JSON file next to the design
(``designs/pr_review.scenario.yaml``); every field is validated and an error names the field and its
line. :meth:`Scenario.check` then compares it with the design (unknown task ids, flows that are not
outgoing flows of the gateway, probabilities that do not add up, pools and calendars that are not
declared) so a typo is found before a run, not after an hour of simulated nonsense.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.errors import DefinitionError, Problem, TimerSpecError
from engine.limits import LimitExceeded, check_file_size
from engine.model.definition import ProcessDefinition
from engine.model.nodes import UserTask
from engine.model.timers import ZoneName, format_duration, parse_datetime, parse_duration
from engine.semantics.messages import DEFAULT_MESSAGE_TTL
from engine.yaml_lines import Path_, line_of, parse_json, parse_yaml, yaml_problem
from simulator.distributions import Distribution, DistributionError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PER = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}


class ScenarioError(DefinitionError):
    """A scenario that cannot be used: every problem with its field (and line, from a file)."""


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        try:
            return timedelta(seconds=value)
        except OverflowError:  # beyond timedelta's 999,999,999 days
            raise ValueError(f"a duration of {value} seconds is too long") from None
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except TimerSpecError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"expected an ISO-8601 duration such as 'P30D' or a number of seconds, got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration)]


def _distribution(values: bool) -> Any:
    def check(value: Any) -> Distribution:
        try:
            return Distribution(value, values=values)
        except DistributionError as exc:
            raise ValueError(str(exc)) from None

    return check


Dist = Annotated[Distribution, BeforeValidator(_distribution(False)), PlainSerializer(lambda d: d.to_data())]
ValueDist = Annotated[Distribution, BeforeValidator(_distribution(True)), PlainSerializer(lambda d: d.to_data())]


def _moment(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except TimerSpecError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"expected an ISO-8601 date-time such as '2026-01-05T09:00:00+01:00', got {value!r}")


Moment = Annotated[datetime, BeforeValidator(_moment)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Poisson(Model):
    """``rate`` arrivals per ``per`` (exponential inter-arrival times)."""

    rate: float = Field(gt=0)
    per: Literal["second", "minute", "hour", "day", "week"] = "hour"

    @property
    def mean_interarrival(self) -> float:
        return PER[self.per] / self.rate


class Profile(Model):
    """A weekly/daily profile: a Poisson process whose rate depends on the weekday and the hour.

    ``weekdays`` gives the arrivals per day (missing days: none); ``hours`` spreads a day's arrivals
    over local hours by relative weight (missing: evenly over 24 hours). Example: 40 leads a day on
    weekdays, during office hours: ``{weekdays: {mon: 40, ..., fri: 40}, hours: {"09:00-17:00": 1}}``.
    """

    weekdays: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], float]
    hours: dict[str, float] | None = None
    timezone: ZoneName = "UTC"

    @field_validator("weekdays")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()) or not any(v > 0 for v in value.values()):
            raise ValueError("weekday rates must be >= 0 and at least one > 0")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return value
        for span, weight in value.items():
            _hour_span(span)
            if weight < 0:
                raise ValueError(f"hour weight for {span!r} must be >= 0")
        if not any(w > 0 for w in value.values()):
            raise ValueError("at least one hour weight must be > 0")
        return value

    def hourly_rates(self) -> list[float]:
        """Arrivals per second for each of the 168 local hours of a week (Monday 00:00 first)."""
        weights = [0.0] * 24
        if self.hours is None:
            weights = [1.0] * 24
        else:
            for span, weight in self.hours.items():
                first, last = _hour_span(span)
                for h in range(first, last):
                    weights[h] += weight
        total = sum(weights)
        rates: list[float] = []
        for day in DAYS:
            per_day = self.weekdays.get(day, 0.0)  # type: ignore[call-overload]
            rates.extend(per_day * w / total / 3600.0 for w in weights)
        return rates


def _hour_span(span: str) -> tuple[int, int]:
    """``"09:00-17:00"`` or ``"9-17"`` -> (9, 17): whole local hours."""
    try:
        a, b = span.split("-")
        first, last = (int(part.strip().split(":")[0]) for part in (a, b))
        minutes = [part.strip().split(":")[1] for part in (a, b) if ":" in part]
    except (ValueError, IndexError):
        raise ValueError(f"hour span {span!r} must look like '09:00-17:00'") from None
    if any(m not in ("00", "0") for m in minutes) or not 0 <= first < last <= 24:
        raise ValueError(f"hour span {span!r} must cover whole hours within 00:00-24:00")
    return first, last


class Arrivals(Model):
    """How cases arrive: exactly one of poisson, interval, interarrival, profile, timestamps."""

    poisson: Poisson | None = None
    interval: Duration | None = None
    interarrival: Dist | None = None
    profile: Profile | None = None
    timestamps: list[Moment] | None = None
    file: str | None = None  # a CSV of replayed arrival times (first column, or `column`)
    column: str | None = None
    limit: int | None = Field(default=None, ge=1)  # stop after this many cases
    start_node: str | None = None  # a message or timer start event to start at

    @model_validator(mode="after")
    def _one(self) -> Arrivals:
        given = [k for k in ("poisson", "interval", "interarrival", "profile", "timestamps", "file")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of poisson, interval, interarrival, profile, timestamps, file"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.interval is not None and self.interval.total_seconds() <= 0:
            raise ValueError("interval must be > 0")
        return self

    @property
    def kind(self) -> str:
        for k in ("poisson", "interval", "interarrival", "profile", "timestamps", "file"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated")  # pragma: no cover


class Pool(Model):
    """People of one role: ``size`` of them, working when their calendar says (None: always)."""

    size: int = Field(ge=1)
    calendar: str | None = None
    cost_per_hour: float | None = Field(default=None, ge=0)


class Agent(Model):
    """An agent's capacity: how many calls it serves at once (None: unlimited)."""

    capacity: int | None = Field(default=None, ge=1)


class BusinessError(Model):
    code: str = Field(min_length=1)
    probability: Probability


class TaskSpec(Model):
    """What happens at one activity (keyed by node id)."""

    duration: Dist | None = None
    pool: str | None = None  # user or plain tasks: which pool does the work (default: the assignee)
    failure: Probability = 0.0  # each attempt fails technically with this probability (then retries)
    error: BusinessError | None = None  # a business error (no retry; error boundary or failed case)
    outputs: dict[str, ValueDist] = Field(default_factory=dict)
    compensation: Dist | None = None  # how long undoing this activity takes


class MessageSpec(Model):
    """A message the world sends to a waiting case: with ``probability``, ``after`` the wait began."""

    after: Dist
    probability: Probability = 1.0
    payload: dict[str, ValueDist] = Field(default_factory=dict)


MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


class Scenario(Model):
    """Everything a run needs besides the design. Times: ISO-8601 durations or seconds."""

    name: str | None = None
    design: str | None = None
    start: Moment = MONDAY
    horizon: Duration
    drain: Duration = timedelta(0)  # keep running this long after arrivals stop
    warmup: Duration = timedelta(0)
    replications: int = Field(default=1, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0)
    arrivals: Arrivals
    calendars: dict[str, Any] = Field(default_factory=dict)
    pools: dict[str, Pool] = Field(default_factory=dict)
    agents: dict[str, Agent] = Field(default_factory=dict)
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    variables: dict[str, ValueDist] = Field(default_factory=dict)
    branches: dict[str, dict[str, Probability]] = Field(default_factory=dict)
    messages: dict[str, MessageSpec] = Field(default_factory=dict)
    # a message the design throws while no case waits is buffered this long (the engine's message_ttl)
    message_ttl: Duration = DEFAULT_MESSAGE_TTL

    _lines: dict[Path_, int] = PrivateAttr(default_factory=dict)
    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _window(self) -> Scenario:
        if self.horizon.total_seconds() <= 0:
            raise ValueError("horizon must be > 0")
        if self.warmup >= self.horizon + self.drain:
            raise ValueError("warmup must be shorter than horizon + drain")
        return self

    def __eq__(self, other: object) -> bool:
        """Equal content; where it was loaded from does not count."""
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @property
    def end(self) -> float:
        """Seconds from start at which a run stops."""
        return (self.horizon + self.drain).total_seconds()

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (validated), e.g. ``s.replace(replications=5)`` for a what-if."""
        data = self.model_dump(mode="python")
        data.update(changes)
        return Scenario.model_validate(data)

    def with_pool(self, name: str, size: int) -> Scenario:
        """``+1 engineering lead``: the same scenario with one pool resized."""
        pools = {k: v.model_dump() for k, v in self.pools.items()}
        pools.setdefault(name, {"size": size})["size"] = size
        return self.replace(pools=pools)

    # --- checking against a design -------------------------------------------------------------

    def check(self, definition: ProcessDefinition,
              called: Mapping[str, ProcessDefinition] | None = None) -> list[Problem]:
        """Problems of this scenario for ``definition``: errors make a run meaningless, warnings are
        assumptions the run makes (an unassigned user task gets unlimited people). ``called``: the designs its
        call activities run (by name); ``tasks`` and ``branches`` may name their activities and gateways too."""
        return _check(self, definition, called or {})

    def validate_for(self, definition: ProcessDefinition,
                     called: Mapping[str, ProcessDefinition] | None = None) -> list[Problem]:
        """Raise ScenarioError on errors; return the warnings."""
        problems = self.check(definition, called)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ScenarioError(errors, self._source)
        return [p for p in problems if p.severity == "warning"]

    def line_of(self, *path: str | int) -> int | None:
        return _line(self._lines, tuple(path))


# --- loading --------------------------------------------------------------------------------------


def from_dict(data: Any, source: str | None = None, lines: dict[Path_, int] | None = None) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"expected a mapping with horizon and arrivals, got {type(data).__name__}", source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_problems(exc, lines or {}), source) from None
    except OverflowError as exc:  # a number beyond float or timedelta, met inside a validator pydantic does not wrap
        raise ScenarioError(f"a number is too large to use ({exc})", source) from None
    scenario._lines = lines or {}
    scenario._source = source
    return scenario


def from_yaml(text: str, source: str | None = None) -> Scenario:
    try:
        data, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(yaml_problem(exc), source) from None
    return from_dict(data, source, lines)


def from_json(text: str, source: str | None = None) -> Scenario:
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(Problem("json", exc.msg, line=exc.lineno), source) from None
    except yaml.YAMLError as exc:  # beyond a limit of engine.limits
        raise ScenarioError(Problem("json", str(exc)), source) from None
    return from_dict(data, source)


def load(path: str | Path) -> Scenario:
    """A scenario file: ``.yaml``/``.yml`` or ``.json``."""
    path = Path(path)
    try:
        check_file_size(path.stat().st_size, str(path))
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except LimitExceeded as exc:
        raise ScenarioError(str(exc), str(path)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    scenario = from_json(text, str(path)) if path.suffix.lower() == ".json" else from_yaml(text, str(path))
    scenario._source = str(path)
    return scenario


def dump_yaml(scenario: Scenario) -> str:
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _line(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, else of the document (a scenario's problems always get a line)."""
    return line_of(lines, path) or lines.get(())


def _where(loc: Path_) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("constrained-str", "lax-or-strict"):
            continue
        else:
            out += ("." if out else "") + part
    return out or "scenario"


def _problems(exc: ValidationError, lines: dict[Path_, int]) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = str(error.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            parent = loc[:-1]
            known = _known_fields(parent)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            msg = f"unknown field {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        elif error.get("type") == "missing":
            msg = "is required"
        problems.append(Problem(_where(loc), msg, line=_line(lines, loc)))
    return problems


def _known_fields(parent: Path_) -> list[str]:
    model: Any = Scenario
    for part in parent:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            if model in (TaskSpec, Pool, Agent, MessageSpec):
                continue  # a dict key (task id, pool name)
            model = None
            continue
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        inner = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if inner is None:
            nested = [a for arg in args for a in getattr(arg, "__args__", ())]
            inner = next((a for a in nested if isinstance(a, type) and issubclass(a, BaseModel)), None)
        model = inner
    return list(model.model_fields) if model is not None else []


# --- checks against a definition --------------------------------------------------------------


def _check(s: Scenario, d: ProcessDefinition, called: Mapping[str, ProcessDefinition]) -> list[Problem]:
    problems: list[Problem] = []
    owner: dict[str, ProcessDefinition] = {}  # node id -> its design (the design's own ids first)
    for design in [*called.values(), d]:
        owner.update(dict.fromkeys(design.index.nodes, design))
    nodes = {nid: design.index.nodes[nid] for nid, design in owner.items()}

    def add(path: Path_, message: str, severity: str = "error") -> None:
        problems.append(Problem(_where(path), message, line=_line(s._lines, path), severity=severity))

    def hint(name: str, known: list[str]) -> str:
        close = difflib.get_close_matches(name, known, n=1)
        return f"; did you mean {close[0]!r}?" if close else ""

    activities = [n.id for n in nodes.values() if n.is_activity]
    for task_id, spec in s.tasks.items():
        node = nodes.get(task_id)
        if node is None or not node.is_activity:
            add(("tasks", task_id), f"{d.id!r} has no activity {task_id!r}{hint(task_id, activities)}")
            continue
        if spec.pool is not None and spec.pool not in s.pools:
            add(("tasks", task_id, "pool"), f"pool {spec.pool!r} is not declared under pools"
                                           f"{hint(spec.pool, list(s.pools))}")
        declared = getattr(node, "output_variables", None)
        for name in spec.outputs:
            if declared and name not in declared:
                add(("tasks", task_id, "outputs", name),
                    f"{task_id!r} declares outputs {declared}; {name!r} would be dropped by the engine")
        if spec.compensation is not None and not getattr(node, "compensation", None):
            add(("tasks", task_id, "compensation"), f"{task_id!r} has no compensation handler", "warning")

    for gw_id, probs in s.branches.items():
        node = nodes.get(gw_id)
        gateways = [n.id for n in nodes.values() if n.kind in ("exclusive_gateway", "inclusive_gateway")]
        if node is None or node.kind not in ("exclusive_gateway", "inclusive_gateway"):
            add(("branches", gw_id), f"{gw_id!r} is not an exclusive or inclusive gateway of {d.id!r}"
                                     f"{hint(gw_id, gateways)}")
            continue
        outgoing = [f.id for f in owner[gw_id].outgoing(gw_id)]
        targets = {f.target: f.id for f in owner[gw_id].outgoing(gw_id)}
        for flow_id in probs:
            if flow_id not in outgoing and flow_id not in targets:
                add(("branches", gw_id, flow_id), f"{flow_id!r} is not an outgoing flow of {gw_id!r} "
                                                  f"(flows: {outgoing}; their targets may be used too)")
        if node.kind == "exclusive_gateway" and not math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6):
            add(("branches", gw_id), f"probabilities of exclusive gateway {gw_id!r} must add up to 1, "
                                     f"got {sum(probs.values()):g}")

    for name, pool in s.pools.items():
        if pool.calendar is not None and pool.calendar not in s.calendars:
            add(("pools", name, "calendar"), f"calendar {pool.calendar!r} is not declared under calendars")

    needed: dict[str, str] = {}
    for node in nodes.values():
        cal = getattr(node, "sla_calendar", None)
        if cal:
            needed.setdefault(cal, node.id)
        timer = getattr(node, "timer", None)
        if timer is not None and timer.calendar:
            needed.setdefault(timer.calendar, node.id)
    for cal, node_id in needed.items():
        if cal not in s.calendars:
            add(("calendars",), f"calendar {cal!r} (used by {node_id!r}) is not declared under calendars")

    for node in nodes.values():
        if node.kind == "user_task":
            assert isinstance(node, UserTask)
            if pool_of(s, node) is None:
                add(("tasks", node.id), f"user task {node.id!r} has no pool (set tasks.{node.id}.pool or add a "
                                        f"pool named after its assignee/candidate group): it gets unlimited people",
                    "warning")
            action = node.on_timeout
            if action is not None and action.assignee and action.action in ("escalate", "reassign") \
                    and action.assignee not in s.pools:
                add(("pools",), f"{node.id!r} escalates to {action.assignee!r}, which is not a pool: "
                                f"escalated work stays where it is", "warning")
        if node.kind in ("user_task", "task", "service_task") and (
                node.id not in s.tasks or s.tasks[node.id].duration is None):
            severity = "warning" if node.kind == "user_task" else "info"
            if severity == "warning":
                add(("tasks", node.id), f"{node.kind} {node.id!r} has no duration: it takes no time", severity)
        if node.kind in ("signal_catch", "boundary_signal"):
            signal = node.signal  # type: ignore[attr-defined]
            thrown = any(getattr(n, "signal", None) == signal and n.kind in ("signal_throw", "signal_end")  # type: ignore[attr-defined]
                         for n in nodes.values())
            if signal not in s.messages and not thrown:
                add(("messages",), f"signal {signal!r} (awaited at {node.id!r}) is never broadcast by the design and "
                                   f"has no messages entry: it never arrives", "warning")
        if node.kind in ("message_catch", "boundary_message"):
            message = node.message  # type: ignore[attr-defined]
            thrown = any(getattr(n, "message", None) == message for n in nodes.values() if n.kind == "message_throw")
            if message not in s.messages and not thrown:
                add(("messages",), f"message {message!r} (awaited at {node.id!r}) has no messages entry: "
                                   f"it never arrives", "warning")
        rearms = node.kind in ("boundary_message", "boundary_signal") or (
            node.kind in ("message_start", "signal_start") and d.index.scope_of.get(node.id) is not None)
        if rearms and not node.interrupting:  # type: ignore[attr-defined]
            name = getattr(node, "message", None) or node.signal  # type: ignore[attr-defined]
            spec = s.messages.get(name)
            if spec is not None and spec.after.kind in ("fixed", "empirical") and max(spec.after.params) <= 0:
                what = "boundary event" if node.kind.startswith("boundary") else "event sub-process start"
                add(("messages", name, "after"),
                    f"{name!r} arrives 0 s after the wait begins, and the non-interrupting {what} {node.id!r} "
                    f"waits again as soon as it fires: it would fire without end at one instant; give after a "
                    f"time above 0")

    starts = {n.id: n.kind for n in d.start_nodes()}
    start = s.arrivals.start_node
    if start is not None and start not in starts:
        add(("arrivals", "start_node"), f"{start!r} is not a start event of {d.id!r} (starts: {sorted(starts)})")
    if start is None and starts and "start" not in starts.values():  # (no start event at all: the implicit start)
        add(("arrivals", "start_node"), f"{d.id!r} has no plain start event: name one of {sorted(starts)}")
    for name in s.variables:
        declared = [v.name for v in d.variables]
        if declared and name not in declared:
            add(("variables", name), f"{name!r} is not a declared variable of {d.id!r}{hint(name, declared)}",
                "warning")
    return problems


def pool_of(s: Scenario, node: Any) -> str | None:
    """The pool that does a user/plain task: the scenario's choice, else its assignee, else a candidate group."""
    spec = s.tasks.get(node.id)
    if spec is not None and spec.pool is not None:
        return spec.pool
    for name in (getattr(node, "assignee", None), *getattr(node, "candidate_groups", [])):
        if name and name in s.pools:
            return name
    return None
