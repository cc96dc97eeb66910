"""Typed process variables: the declared types, the check of a value against its type, and the JSON codec
that makes every type round-trip through the database, agents, forms, history, the simulator and files.

Declared types (``VariableDecl.type``) and the Python values they hold:

==========  =============================================  ======================================
type        Python value                                   text accepted (forms, YAML, BPMN, JSON)
==========  =============================================  ======================================
string      ``str``
integer     ``int`` (not ``bool``)
number      ``int`` or ``float`` (not ``bool``)
boolean     ``bool``
decimal     ``decimal.Decimal`` (also ``int``)            ``"12.50"``
datetime    ``datetime.datetime`` (aware or naive)        ISO 8601 ``"2026-02-01T17:00:00+00:00"``
date        ``datetime.date``                              ``"2026-02-01"``
time        ``datetime.time``                              ``"17:00:00"``
duration    ``datetime.timedelta``                         ISO 8601 ``"P1DT2H"``, ``"PT30M"``
object      ``dict`` (values of any type above)
array       ``list`` or ``tuple`` (items of any type above)
any         anything JSON can hold, plus the types above
==========  =============================================  ======================================

Storage (the codec). JSON has no date or decimal, so a value of those types is written as a tagged
object ``{"$type": "datetime", "value": "2026-02-01T17:00:00+00:00"}`` (``date``, ``time``, ``duration``
and ``decimal`` likewise), at any depth of lists and maps, and read back as the Python value: what an
agent, a form or ``Engine.instance(...).variables`` gets is what was given. The idea is SpiffWorkflow's
typed JSON encoding (sartography/spiff-arena#2757); the tag names are this project's. A stored map whose
keys are exactly ``$type`` and ``value`` with a known type name is read as that type (the one ambiguity).
Other objects JSON cannot hold (sets, bytes, arbitrary objects, NaN) are refused where values enter the engine
(``engine.runtime.plain``), never stored as their ``str()``.

Declared types are checked (``matches``) and text is converted (``coerce``) where values enter: ``Engine.
start``, ``set_variables``, task completion, message payloads, variable defaults in YAML/BPMN, and the
simulator's start variables. ``coerce`` raises ``ValueError`` naming the expected form.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

#: Every declared type, in the order the docs list them.
TYPES = ("string", "integer", "number", "boolean", "decimal", "datetime", "date", "time", "duration", "object",
         "array", "any")

_TAGS = ("datetime", "date", "time", "duration", "decimal")
_DURATION = re.compile(r"^(?P<sign>-)?P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
                       r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


# --- the codec ---------------------------------------------------------------------------------------


def format_duration(value: timedelta) -> str:
    """ISO 8601 text of a timedelta: ``P1DT2H30M``, ``PT0.5S``, ``-PT1H`` (days and seconds, exact)."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds, micro = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if micro:
        clock += f"{secs}.{micro:06d}".rstrip("0") + "S"
    elif secs:
        clock += f"{secs}S"
    if clock:
        text += "T" + clock
    return text if text not in ("P", "-P") else "PT0S"


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration text (weeks, days, hours, minutes, seconds) -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT", "-P"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. 'P1DT2H', 'PT30M')")
    parts = {k: float(v) for k, v in match.groupdict().items() if k != "sign" and v}
    value = timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                      minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    return -value if match.group("sign") else value


def _default(value: Any) -> Any:
    """``json.dumps(default=...)``: the tagged form of the types JSON lacks."""
    if isinstance(value, datetime):
        return {"$type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"$type": "date", "value": value.isoformat()}
    if isinstance(value, time):
        return {"$type": "time", "value": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$type": "duration", "value": format_duration(value)}
    if isinstance(value, Decimal):
        return {"$type": "decimal", "value": str(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def _hook(obj: dict[str, Any]) -> Any:
    """``json.loads(object_hook=...)``: a tagged object back to its value."""
    if len(obj) == 2 and "$type" in obj and "value" in obj and obj["$type"] in _TAGS:
        return _untag(obj["$type"], obj["value"])
    return obj


def _untag(kind: str, text: Any) -> Any:
    try:
        if kind == "datetime":
            return datetime.fromisoformat(text)
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "time":
            return time.fromisoformat(text)
        if kind == "duration":
            return parse_duration(text)
        return Decimal(text)
    except (TypeError, ValueError, InvalidOperation):
        return {"$type": kind, "value": text}  # not ours after all: keep the map as it was


def dumps(value: Any, sort_keys: bool = True) -> str:
    """JSON text of a value; dates, times, durations and decimals are tagged (see the module docstring)."""
    return json.dumps(value, default=_default, sort_keys=sort_keys)


def loads(text: str | bytes) -> Any:
    """The value ``dumps`` wrote (tagged objects become datetime, date, time, timedelta, Decimal)."""
    return json.loads(text, object_hook=_hook)


def to_json(value: Any) -> Any:
    """The JSON-safe form of a value (tagged objects), for APIs that take plain data (e.g. a message bus)."""
    return json.loads(dumps(value))


def from_json(data: Any) -> Any:
    """The inverse of :func:`to_json`: plain data with tagged objects -> typed values (typed values already
    in ``data`` stay as they are)."""
    return loads(dumps(data))


# --- declared types ------------------------------------------------------------------------------------


def matches(kind: str, value: Any) -> bool:
    """Does ``value`` fit the declared type ``kind``? ``None`` fits every type (a variable may be unset)."""
    if value is None or kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "decimal":
        return isinstance(value, Decimal | int) and not isinstance(value, bool)
    if kind == "datetime":
        return isinstance(value, datetime)
    if kind == "date":
        return isinstance(value, date) and not isinstance(value, datetime)
    if kind == "time":
        return isinstance(value, time)
    if kind == "duration":
        return isinstance(value, timedelta)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list | tuple)
    raise ValueError(f"unknown variable type {kind!r}; one of {', '.join(TYPES)}")


_EXPECTED = {
    "datetime": "an ISO 8601 date-time such as '2026-02-01T17:00:00+00:00'",
    "date": "an ISO 8601 date such as '2026-02-01'",
    "time": "an ISO 8601 time such as '17:00:00'",
    "duration": "an ISO 8601 duration such as 'P1DT2H' or 'PT30M'",
    "decimal": "a decimal number such as '12.50'",
}


def coerce(kind: str, value: Any) -> Any:
    """``value`` as the declared type: text of a datetime/date/time/duration/decimal is parsed, a float
    becomes a Decimal for ``decimal``, a date-time becomes its date for ``date``; a tagged map is decoded.
    Anything else is returned as is when it already fits. Raises ``ValueError`` naming the expected form."""
    if value is None or kind == "any":
        return from_json(value) if isinstance(value, dict | list) else value
    if isinstance(value, dict) and set(value) == {"$type", "value"}:
        value = _hook(value)
    if matches(kind, value):
        if kind in ("object", "array"):
            return from_json(value)
        return value
    try:
        if isinstance(value, str):
            text = value.strip()
            if kind == "datetime":
                return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            if kind == "date":
                return (datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text))
            if kind == "time":
                return time.fromisoformat(text)
            if kind == "duration":
                return parse_duration(text)
            if kind == "decimal":
                return Decimal(text)
        if kind == "decimal" and isinstance(value, float):
            return Decimal(str(value))
        if kind == "date" and isinstance(value, datetime):
            return value.date()
        if kind == "duration" and isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(seconds=value)
    except (ValueError, InvalidOperation):
        pass
    expected = _EXPECTED.get(kind, kind)
    raise ValueError(f"must be {expected}, got {type(value).__name__} {value!r}")


def coerce_all(types: dict[str, str], values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Coerce every value whose name has a declared type; returns (values, problems naming each variable)."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        kind = types.get(name)
        if kind is None:
            out[name] = value
            continue
        try:
            out[name] = coerce(kind, value)
        except ValueError as exc:
            problems.append(f"{name!r} {exc}")
            out[name] = value
    return out, problems


__all__ = ["TYPES", "coerce", "coerce_all", "dumps", "format_duration", "from_json", "loads", "matches",
           "parse_duration", "to_json"]
