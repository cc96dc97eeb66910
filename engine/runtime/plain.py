"""Values the engine stores as they are: JSON's types, and nothing it would have to turn into a string.

Process variables, agent outputs, form values and message payloads are stored as JSON. A value JSON cannot
hold exactly (a set, bytes, an arbitrary object, a float NaN or infinity, a dict with non-text keys) used to be
stored as its ``str()`` form, so a set came back as the text ``"{1, 2}"``; it is now refused before anything is
written, naming the variable and the part of the value at fault. Dates, times, durations and decimals are the
typed variable codec's (``engine.model.values``), which stores them exactly. A value whose JSON is longer than
``max_variable_bytes`` or nested deeper than ``max_nesting_depth`` (``engine.limits``) is refused too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.errors import WaooawError
from engine.limits import check_key, current

_CODEC_TYPES = (dt.datetime, dt.date, dt.time, dt.timedelta, Decimal)  # engine.model.values stores these


def value_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as a variable (None when it can)."""
    limits = current()
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, where, depth = stack.pop()
        at = f" at {where}" if where else ""
        if depth > limits.max_nesting_depth:
            return f"is nested deeper than {limits.max_nesting_depth} levels{at} (limit max_nesting_depth)"
        if item is None or isinstance(item, (bool, str, *_CODEC_TYPES)):
            continue
        if isinstance(item, int):
            if item.bit_length() > 64 * 1024:
                return f"holds an integer of {item.bit_length():,} bits{at}"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"holds {item}{at}, which JSON cannot represent"
            continue
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return f"has a key {key!r} that is not text{at} (JSON object keys are text)"
                stack.append((sub, f"{where}[{key!r}]", depth + 1))
            continue
        if isinstance(item, list | tuple):
            stack.extend((sub, f"{where}[{i}]", depth + 1) for i, sub in enumerate(item))
            continue
        kind = type(item).__name__
        hint = " (use a list)" if isinstance(item, set | frozenset) else " (use text, e.g. base64)" \
            if isinstance(item, bytes | bytearray) else ""
        return f"is a {kind}{at}, which is not JSON-representable{hint}"
    if _surely_small(value, limits.max_variable_bytes):  # no JSON text needed to know it fits
        return None
    size = len(json.dumps(value, default=str))
    if size > limits.max_variable_bytes:
        return (f"is {size:,} bytes as JSON, more than {limits.max_variable_bytes:,} (limit max_variable_bytes; set "
                "WAOOAW_MAX_VARIABLE_BYTES to change it)")
    return None


def _surely_small(value: Any, limit: int) -> bool:
    """A scalar whose JSON text cannot exceed ``limit`` bytes (a float, an integer of at most 1,024 bits, a flag,
    none, or text short enough that even escaping every character stays within it: 12 bytes for one outside the
    BMP, a \\uXXXX surrogate pair): the size check needs no serialisation."""
    if value is None or isinstance(value, float) or (isinstance(value, int) and value.bit_length() <= 1024):
        return limit >= 330  # a float's repr is at most 24 characters, such an integer's at most 310
    return isinstance(value, str) and 12 * len(value) + 2 <= limit


def values_problems(values: Mapping[str, Any]) -> list[str]:
    """One problem per variable that cannot be stored, naming it."""
    problems = []
    for name, value in values.items():
        try:
            check_key(name, f"variable name {str(name)[:40]!r}")
        except WaooawError as exc:  # NUL and other control characters: PostgreSQL refuses them in text
            problems.append(str(exc))
            continue
        reason = value_problem(value)
        if reason is not None:
            problems.append(f"{name!r} {reason}")
    return problems
