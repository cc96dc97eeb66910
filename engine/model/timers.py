"""Timer specifications: a duration (``P7D``), a date (ISO-8601 with zone) or a cycle.

A cycle is either an ISO-8601 repeating interval (``R5/PT1H``, ``R/2026-01-05T09:00:00+01:00/P1D``)
or a cron expression (``0 9 * * *``) read in the timer's time zone, so a daily 9am stays 9am
across a DST change. Parsing uses ``isodate`` and ``croniter``; the due-time arithmetic here is
pure (it takes the "now" it is given) and is shared by the engine and the simulator.

A value may also be an expression, as Camunda and jBPM write them (``${cronExpression}``, ``#{delay}``):
the project's safe expression language (``engine.model.expressions``), checked to parse when the timer is
made and evaluated against the process variables when the timer is armed (:meth:`Timer.resolve`, BPMN 2.0
§10.5.2 "timeDuration ... of type Expression"; Camunda 7 evaluates it when the timer job is created). What it
gives is read as a written value would be, plus jBPM's durations (``5s``), Quartz cron and typed values
(a ``timedelta`` for a duration, a ``datetime`` for a date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from datetime import date as calendar_date
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import isodate
from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from engine.errors import TimerSpecError

_REPEAT = re.compile(r"^R(?P<count>\d*)/(?P<rest>.+)$")
_EXPRESSION = re.compile(r"^\s*[$#]\{.*\}\s*$", re.DOTALL)
_JBPM_DURATION = re.compile(
    r"^(?:(?P<d>\d+)d)?\s*(?:(?P<h>\d+)h)?\s*(?:(?P<m>\d+)m(?!s))?\s*(?:(?P<s>\d+)s)?\s*(?:(?P<ms>\d+)ms)?$")
FIELDS = ("duration", "date", "cycle")


def is_expression(text: str | None) -> bool:
    """Is a timer value an expression (``${...}`` or ``#{...}``) rather than a written value?"""
    return isinstance(text, str) and _EXPRESSION.match(text) is not None


def jbpm_duration(text: str) -> str | None:
    """jBPM's duration text (``2s``, ``500ms``, ``1d 2h``, ``1h30m``) as ISO-8601 (``PT2S``, ``PT0.5S``,
    ``P1DT2H``, ``PT1H30M``); None when the text is not one (an ISO-8601 text, a cron line, anything else).

    The units are jBPM's ``TimeUtils``: d(ays of 24 hours), h, m(inutes), s, ms, each at most once, in that order;
    a bare number is milliseconds."""
    if text.strip().isdigit():  # jBPM reads a bare number as milliseconds
        text = f"{text.strip()}ms"
    match = _JBPM_DURATION.match(text.strip())
    if not match or not any(match.groupdict().values()):
        return None
    days, hours, minutes, seconds, millis = (int(match.group(k) or 0) for k in ("d", "h", "m", "s", "ms"))
    seconds_total = seconds * 1000 + millis
    whole, rest = divmod(seconds_total, 1000)
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds_total:
        time += f"{whole}.{rest:03d}".rstrip("0").rstrip(".") + "S"
    iso = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return iso if iso != "P" else "PT0S"


def quartz_cron(text: str) -> str | None:
    """Quartz cron (Camunda 7, jBPM, Flowable: seconds first, ``?`` for 'any', an optional year) as the 5/6-field
    cron croniter reads (``0 0/5 * * * ?`` -> ``0/5 * * * *``); None when the text is not Quartz or numbers its
    weekdays (Quartz counts from 1 = Sunday: too easy to get wrong silently)."""
    fields = text.split()
    if len(fields) not in (6, 7) or ("?" not in fields and len(fields) != 7):
        return None
    seconds, minute, hour, day, month, weekday = fields[:6]
    if any(c.isdigit() for c in weekday):
        return None
    weekday = "*" if weekday == "?" else weekday
    day = "*" if day == "?" else day
    return " ".join([minute, hour, day, month, weekday] + ([] if seconds in ("0", "00") else [seconds]))


def parse_duration(text: str) -> timedelta:
    """ISO-8601 duration to timedelta; years and months are not fixed lengths, so they are refused, and so are
    durations longer than the limit ``max_timer_duration`` (``engine.limits``: beyond it dates overflow)."""
    if not isinstance(text, str) or not text.strip():
        raise TimerSpecError(f"duration must be an ISO-8601 text such as 'PT4H' or 'P7D', got {text!r}")
    value = _parse_duration(text)
    from engine.limits import current

    limit = current().max_timer_duration
    if text != limit and value > _parse_duration(limit):
        raise TimerSpecError(f"duration {text!r} is longer than {limit} (limit max_timer_duration; set "
                             "WAOOAW_MAX_TIMER_DURATION to change it)")
    return value


@lru_cache(maxsize=1024)
def _parse_duration(text: str) -> timedelta:
    """Cached: every timer and SLA armed by the engine or the simulator parses its duration again."""
    try:
        value = isodate.parse_duration(text.strip())
    except OverflowError:
        raise TimerSpecError(f"duration {text[:40]!r} is beyond any calendar") from None
    except (isodate.ISO8601Error, ValueError) as exc:
        raise TimerSpecError(
            f"{text!r} is not an ISO-8601 duration (examples: 'PT30M', 'PT4H', 'P7D'): {exc}"
        ) from None
    if isinstance(value, isodate.Duration):
        raise TimerSpecError(f"{text!r} uses years or months, whose length varies; use days (e.g. 'P30D')")
    if value < timedelta(0):
        raise TimerSpecError(f"duration {text!r} is negative")
    return value


def format_duration(value: timedelta) -> str:
    """timedelta to ISO-8601 (``PT4H``)."""
    return isodate.duration_isoformat(value)


def zone(name: str | None) -> ZoneInfo | timezone:
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimerSpecError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None


def parse_datetime(text: str, tz: str | None = None) -> datetime:
    """ISO-8601 date-time; a value without offset is read in ``tz`` (UTC by default)."""
    try:
        value = isodate.parse_datetime(text.strip())
    except (isodate.ISO8601Error, ValueError, AttributeError) as exc:
        example = "2026-12-01T09:00:00+01:00"
        raise TimerSpecError(f"{text!r} is not an ISO-8601 date-time (e.g. {example!r}): {exc}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz))
    return value


def is_cron(text: str) -> bool:
    return len(text.split()) in (5, 6) and not text.startswith("R")


def _second_pass(value: datetime) -> bool:
    """Is this local time the repeat of a wall time the clocks already showed (the hour after a DST end)?"""
    return value.fold == 1 and value.replace(fold=0).utcoffset() != value.utcoffset()


def aware(moment: datetime) -> datetime:
    """A moment with its zone: a naive one is read as UTC (what the database and the clocks use)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_zone(name: str) -> str:
    """A pydantic validator: the name must be a known IANA time zone."""
    try:
        zone(name)
    except TimerSpecError as exc:
        raise ValueError(str(exc)) from None
    return name


ZoneName = Annotated[str, AfterValidator(check_zone)]


class Timer(BaseModel):
    """When a timer event fires. Exactly one of ``duration``, ``date`` or ``cycle`` is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration: str | None = None
    date: str | None = None
    cycle: str | None = None
    timezone: str | None = None  # for cron cycles and dates without offset
    calendar: str | None = None  # a business calendar's name: the duration counts working time only

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        """Accept the short forms a person writes: 'P7D', 'R5/PT1H', '0 9 * * *', '2026-12-01T09:00Z'."""
        if isinstance(data, Timer):
            return data
        if isinstance(data, timedelta):
            return {"duration": format_duration(data)}
        if isinstance(data, datetime):
            return {"date": data.isoformat()}
        if isinstance(data, str):
            text = data.strip()
            if is_expression(text):
                raise ValueError(f"say which value the expression {text!r} gives: {{'duration': {text!r}}}, "
                                 "'date' or 'cycle'")
            if text.startswith("P"):
                return {"duration": text}
            if text.startswith("R") or is_cron(text):
                return {"cycle": text}
            return {"date": text}
        return data

    @model_validator(mode="after")
    def _check(self) -> Timer:
        given = [name for name in ("duration", "date", "cycle") if getattr(self, name)]
        if not given:
            raise ValueError("the timer is empty: give one of duration (e.g. 'PT5M'), date or cycle (e.g. 'R/PT1H')")
        if len(given) != 1:
            raise ValueError(f"a timer needs exactly one of duration, date or cycle; got {given}")
        try:  # as ValueError, so pydantic reports it with its place (node, field, line) like any other field
            zone(self.timezone)
            if self.expression is not None:
                from engine.model import expressions

                reason = expressions.check(self.expression)
                if reason is not None:
                    raise TimerSpecError(f"{self.kind} {self.expression!r} is an expression that {reason}")
            elif self.duration:
                parse_duration(self.duration)
            elif self.date:
                parse_datetime(self.date, self.timezone)
            else:
                self._parse_cycle()
        except TimerSpecError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def kind(self) -> Literal["duration", "date", "cycle"]:
        return "duration" if self.duration else "date" if self.date else "cycle"

    @property
    def expression(self) -> str | None:
        """The value's expression (``${delay}``), evaluated when the timer is armed; None for a written value."""
        value = getattr(self, self.kind)
        return value if is_expression(value) else None

    def resolve(self, variables: Mapping[str, Any]) -> Timer:
        """This timer with its expression evaluated against ``variables`` (itself when it has none).

        The value is read as written values are: a duration as ISO-8601 or a jBPM duration (``5s``) or a
        ``timedelta``; a date as ISO-8601 or a ``datetime``; a cycle as an ISO repeating interval, cron, Quartz
        cron or a jBPM duration (the period of an unbounded repetition). Raises ``TimerSpecError`` naming the
        expression and what it gave when it cannot be evaluated or gives no valid value."""
        expression = self.expression
        if expression is None:
            return self
        from engine.errors import ExpressionError
        from engine.model import expressions

        kind = self.kind
        try:
            value = expressions.evaluate(expression, variables)
        except ExpressionError as exc:
            raise TimerSpecError(f"{kind} {expression!r} cannot be evaluated: {exc}") from None
        text = _timer_value(kind, value)
        if value is None:
            unset = ", ".join(sorted(expressions.variable_names(expression))) or "what it reads"
            raise TimerSpecError(f"{kind} {expression!r} gave None: is {unset} set?")
        if text is None:
            example = {"duration": "an ISO-8601 duration such as 'PT5M'", "date": "an ISO-8601 date-time",
                       "cycle": "'R/PT1H' or cron such as '0 9 * * *'"}[kind]
            raise TimerSpecError(f"{kind} {expression!r} gave {_shown(value)}, not a {kind} ({example})")
        if is_expression(text):
            raise TimerSpecError(f"{kind} {expression!r} gave another expression, {text!r}; a value is needed")
        try:
            return Timer(**{kind: text}, timezone=self.timezone, calendar=self.calendar)
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            reason = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in errors()) if errors \
                else str(exc)
            raise TimerSpecError(f"{kind} {expression!r} gave {_shown(value)}: {reason}") from None

    def _parse_cycle(self) -> tuple[int | None, datetime | None, timedelta | None, str | None]:
        """(repetitions or None for unbounded, start, interval, cron)."""
        text = (self.cycle or "").strip()
        if is_cron(text):
            if not croniter.is_valid(text):
                raise TimerSpecError(f"{text!r} is not a valid cron expression (e.g. '0 9 * * *' for 9am daily)")
            return None, None, None, text
        match = _REPEAT.match(text)
        if not match:
            raise TimerSpecError(
                f"cycle {text!r} is neither an ISO repeating interval ('R5/PT1H') nor cron ('0 9 * * *')"
            )
        count = int(match.group("count")) if match.group("count") else None
        parts = match.group("rest").split("/")
        start: datetime | None = None
        interval: timedelta | None = None
        for part in parts:
            if part.startswith("P"):
                interval = parse_duration(part)
            else:
                start = parse_datetime(part, self.timezone)
        if interval is None or interval <= timedelta(0):
            raise TimerSpecError(f"cycle {text!r} needs a positive interval, e.g. 'R/PT1H'")
        from engine.limits import current

        shortest = current().min_timer_cycle
        if interval < parse_duration(shortest):
            raise TimerSpecError(f"cycle {text!r} repeats more often than every {shortest} (limit min_timer_cycle; "
                                 "set WAOOAW_MIN_TIMER_CYCLE to change it)")
        return count, start, interval, None

    @property
    def repetitions(self) -> int | None:
        """How many times a cycle fires (None: without end); 1 for duration and date timers."""
        if self.kind != "cycle":
            return 1
        self._written()
        return self._parse_cycle()[0]

    def _written(self) -> None:
        if self.expression is not None:
            raise TimerSpecError(f"{self.kind} {self.expression!r} is an expression: resolve() it against the "
                                 "variables first")

    def first_due(self, now: datetime) -> datetime | None:
        """When the timer first fires if it starts waiting at ``now`` (wall-clock; business time is
        applied by the caller's calendar). None when a date lies in the past is *not* used: a past
        date fires at once, as users of other engines expect. Due times are in UTC (a database column
        without an offset, SQLite's, keeps the right instant)."""
        self._written()
        now = aware(now)
        if self.duration:
            return now + parse_duration(self.duration)
        if self.date:
            return max(parse_datetime(self.date, self.timezone), now).astimezone(UTC)
        return self.next_due(now, fired=0)

    def next_due(self, after: datetime, fired: int) -> datetime | None:
        """For a cycle, the next due time strictly after ``after`` once it fired ``fired`` times."""
        self._written()
        after = aware(after)
        if self.kind != "cycle":
            return None
        count, start, interval, cron = self._parse_cycle()
        if count is not None and fired >= count:
            return None
        if cron:
            ticks = croniter(cron, after.astimezone(zone(self.timezone)))
            due: datetime = ticks.get_next(datetime)
            if _second_pass(due) and ticks.expanded[1] != ["*"]:
                # clocks went back and this wall time comes again: a fixed-hour job fires once, as cron does
                due = ticks.get_next(datetime)
            return due.astimezone(UTC)
        assert interval is not None
        if start is None:
            return after + interval
        if start > after:
            return start.astimezone(UTC)
        steps = int((after - start) / interval) + 1
        return (start + steps * interval).astimezone(UTC)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _timer_value(kind: str, value: Any) -> str | None:
    """An expression's value as the text of a ``kind`` timer; None when it is no such value."""
    if kind == "duration":
        if isinstance(value, timedelta):
            return format_duration(value)
        if isinstance(value, str) and value.strip():
            return jbpm_duration(value) or value.strip()
        return None
    if kind == "date":
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, calendar_date):
            return datetime.combine(value, datetime.min.time()).isoformat()
        return value.strip() if isinstance(value, str) and value.strip() else None
    if isinstance(value, timedelta):
        return f"R/{format_duration(value)}"
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    iso = jbpm_duration(text)
    return f"R/{iso}" if iso is not None else quartz_cron(text) or text
