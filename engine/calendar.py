"""Business calendars: working days, working hours and holidays in a time zone.

One model for both shells: the engine counts business-time timers and SLAs with ``add`` ("4
business hours from Friday 16:00 is Monday 12:00"), the simulator lets people work only inside
``periods``. Arithmetic walks the local calendar day by day and converts each working interval to
UTC through ``zoneinfo``, so a DST day's 09:00-17:00 is still 8 hours and nothing is counted twice.
No library did this with time zones and intra-day breaks together (businesstimedelta is unmaintained
and zone-naive; workalendar knows holidays, not hours), so this is small interval arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import DefinitionError, Problem
from engine.model.timers import ZoneName, aware, zone

DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
END_OF_DAY = time(0, 0)  # as an interval end: midnight at the end of the day ("24:00")
MAX_DAYS = 366 * 20  # a calendar with no working time at all must not loop forever


def _parse_time(text: str) -> time:
    text = text.strip()
    if text in ("24:00", "24:00:00"):
        return END_OF_DAY
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day such as '09:00'") from None


class Calendar(BaseModel):
    """When people (or business-time timers) work."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "24x7"
    timezone: ZoneName = "UTC"
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    hours: list[tuple[time, time]] = Field(default_factory=lambda: [(time(9), time(17))])
    holidays: list[date] = Field(default_factory=list)

    @field_validator("working_days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        """Accept 'Mon-Fri', 'mon,wed', ['mon', 'tue'] or [0, 1]."""
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
        days: list[int] = []
        for item in items:
            if isinstance(item, int):
                days.append(item)
                continue
            text = str(item).strip().lower()
            if "-" in text:
                first, last = (DAY_NAMES.index(p[:3]) if p[:3] in DAY_NAMES else -1 for p in text.split("-", 1))
                if first < 0 or last < 0:
                    raise ValueError(f"{item!r} is not a day range such as 'Mon-Fri'")
                days.extend(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
            elif text[:3] in DAY_NAMES:
                days.append(DAY_NAMES.index(text[:3]))
            else:
                raise ValueError(f"{item!r} is not a weekday (mon..sun or 0..6)")
        if any(d < 0 or d > 6 for d in days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return sorted(set(days))

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        """Accept '09:00-17:00', ['09:00-12:00', '13:00-17:00'] or [(time, time)]."""
        items = [value] if isinstance(value, str) else list(value)
        out = []
        for item in items:
            if isinstance(item, str):
                start, sep, end = item.partition("-")
                if not sep:
                    raise ValueError(f"{item!r} is not a range of hours such as '09:00-17:00'")
                out.append((_parse_time(start), _parse_time(end)))
            else:
                start, end = item
                out.append((_parse_time(start) if isinstance(start, str) else start,
                            _parse_time(end) if isinstance(end, str) else end))
        return out

    @model_validator(mode="after")
    def _check_hours(self) -> Calendar:
        previous_end = time(0)
        for start, end in sorted(self.hours):
            if end != END_OF_DAY and end <= start:
                raise ValueError(f"working hours {start:%H:%M}-{end:%H:%M} end before they start")
            if start < previous_end:
                raise ValueError("working hours overlap")
            previous_end = end if end != END_OF_DAY else time.max
        return self

    # --- queries -------------------------------------------------------------------------------

    @property
    def always(self) -> bool:
        """24x7: every moment is working time (fast path: plain arithmetic)."""
        return (len(self.working_days) == 7 and not self.holidays
                and self.hours == [(time(0), END_OF_DAY)])

    def day_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of one local date, in UTC."""
        if day.weekday() not in self.working_days or day in self.holidays:
            return []
        tz = zone(self.timezone)
        out = []
        for start, end in sorted(self.hours):
            a = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
            b_day = day + timedelta(days=1) if end == END_OF_DAY else day
            b = datetime.combine(b_day, end, tzinfo=tz).astimezone(UTC)
            if b > a:
                out.append((a, b))
        return out

    def periods(self, start: datetime, end: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) overlapping [start, end), clipped to it; endless when end is None."""
        start = aware(start).astimezone(UTC)
        stop = aware(end).astimezone(UTC) if end is not None else None
        if self.always:
            yield start, stop if stop is not None else datetime.max.replace(tzinfo=UTC)
            return
        day = start.astimezone(zone(self.timezone)).date() - timedelta(days=1)
        empty_days = 0
        while True:
            intervals = self.day_periods(day)
            empty_days = 0 if intervals else empty_days + 1
            if empty_days > MAX_DAYS:
                return
            for a, b in intervals:
                if stop is not None and a >= stop:
                    return
                if b <= start:
                    continue
                yield max(a, start), min(b, stop) if stop is not None else b
            day += timedelta(days=1)

    def is_working(self, moment: datetime) -> bool:
        moment = aware(moment)
        if self.always:
            return True
        local = moment.astimezone(zone(self.timezone)).date()
        return any(a <= moment < b for d in (local - timedelta(days=1), local) for a, b in self.day_periods(d))

    def next_working(self, moment: datetime) -> datetime:
        """``moment`` itself when it is working time, else the start of the next working period."""
        moment = aware(moment)
        for a, _ in self.periods(moment):
            return a
        raise ValueError(f"calendar {self.name!r} has no working time after {moment.isoformat()}")

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The moment ``delta`` of working time after ``start`` (UTC)."""
        start = aware(start).astimezone(UTC)
        if delta <= timedelta(0):
            return start
        if self.always:
            return start + delta
        remaining = delta
        for a, b in self.periods(start):
            if a + remaining <= b:
                return a + remaining
            remaining -= b - a
        raise ValueError(f"calendar {self.name!r} has no working time after {start.isoformat()}")

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (zero when end <= start)."""
        start, end = aware(start), aware(end)
        if end <= start:
            return timedelta(0)
        if self.always:
            return end - start
        return sum((b - a for a, b in self.periods(start, end)), timedelta(0))


ALWAYS = Calendar(name="24x7", working_days=list(range(7)), hours=[(time(0), END_OF_DAY)])


def load_calendars(data: Mapping[str, Any] | list[Any] | None) -> dict[str, Calendar]:
    """Calendars from plain data: ``{name: {timezone, working_days, hours, holidays}}`` or a list with names."""
    if not data:
        return {}
    items = ([{"name": name, **(spec or {})} for name, spec in data.items()] if isinstance(data, Mapping)
             else list(data))
    out: dict[str, Calendar] = {}
    problems: list[Problem] = []
    for i, spec in enumerate(items):
        label = spec.get("name", f"calendars[{i}]") if isinstance(spec, Mapping) else f"calendars[{i}]"
        try:
            calendar = Calendar.model_validate(spec)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or "calendar"
                problems.append(Problem(f"calendar {label!r}", f"field {field!r}: {err['msg']}"))
            continue
        out[calendar.name] = calendar
    if problems:
        raise DefinitionError(problems)
    return out
