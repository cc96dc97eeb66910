"""Every resource limit of the project, in one place: named, documented and configurable.

A small input must never cost a lot of memory or CPU, so whatever a user (or a file, an upload, a
variable) can make the project allocate or compute is bounded here. Each limit has a name; the error
that enforces it names it and says how to change it.

Change a limit with an environment variable ``WAOOAW_<NAME>`` (upper case) set before the process
starts, e.g. ``WAOOAW_MAX_FILE_BYTES=50000000 waooaw import big.bpmn``, or in code (tests, notebooks,
an app's settings) with ``limits.configure(max_file_bytes=50_000_000)`` or, for a block,
``with limits.override(expression_seconds=1.0): ...``. Durations are ISO-8601 texts (``PT1S``).

| name | default | what it bounds |
|---|---|---|
{table}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from engine.errors import ConfigError, EngineError, WaooawError


def _limit(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Limits:
    """The limits in force (``LIMITS``); read them as ``limits.current().max_file_bytes``."""

    max_file_bytes: int = _limit(10_000_000, "size of a design, scenario or BPMN document loaded (a file or an "
                                              "upload), checked before it is parsed (bytes)")
    max_yaml_nodes: int = _limit(
        200_000, "YAML nodes of one document after aliases are expanded (a 'billion laughs' stops here)")
    max_nesting_depth: int = _limit(
        64, "nesting of lists and mappings in a YAML/JSON document or a variable's value; a definition validates "
            "only if its saved form is within it (about 30 levels of sub-processes), so what validates saves and "
            "loads back")
    max_nodes: int = _limit(20_000, "nodes and flows of one definition, sub-processes included")
    max_expression_length: int = _limit(10_000, "characters of one expression (condition, correlation key)")
    max_expression_nodes: int = _limit(2_000, "syntax-tree nodes of one expression")
    max_int_digits: int = _limit(
        1_000, "decimal digits of an integer an expression may write or produce (about 3,300 bits)")
    max_string_length: int = _limit(100_000, "characters of a string an expression may produce")
    max_collection_length: int = _limit(10_000, "items of a list, tuple, set or dict an expression builds")
    expression_seconds: float = _limit(
        0.5, "CPU time one evaluation of an expression may take (seconds of this thread's CPU, so a busy machine "
        "does not fail a trivial condition)")
    max_variable_bytes: int = _limit(1_000_000, "JSON size of one process variable's value (bytes)")
    max_id_length: int = _limit(
        255, "characters of an id in a definition (the definition's own, its elements') and of a variable name; "
             "the alphabet is fixed: ids are XML names (NCName), variable names identifiers")
    max_key_length: int = _limit(
        255, "characters of a business key, message correlation key, user or group name, and of a message, signal, "
             "error or escalation name in a definition (printable text: no control characters)")
    min_timer_cycle: str = _limit(
        "PT1S", "shortest interval of a repeating timer (cycle): a 1 ms reminder commits 1,000 steps a second")
    max_timer_duration: str = _limit(
        "P36500D", "longest duration anywhere (timer, SLA, retry delay, timeout, scenario horizon): about 100 "
                   "years; beyond year 9999 dates overflow")

    @property
    def min_cycle(self) -> timedelta:
        from engine.model.timers import parse_duration

        return parse_duration(self.min_timer_cycle)

    @property
    def max_duration(self) -> timedelta:
        from engine.model.timers import parse_duration

        return parse_duration(self.max_timer_duration)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """Defaults, overridden by ``WAOOAW_<NAME>`` variables; a malformed value is a ``ConfigError``."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _convert(f.name, type(f.default), raw)
        return cls(**values)


def env_name(name: str) -> str:
    """The environment variable that sets limit ``name``."""
    return f"WAOOAW_{name.upper()}"


class LimitExceeded(WaooawError):
    """An input or a computation went beyond one of the limits in ``engine.limits``."""

    def __init__(self, name: str, message: str) -> None:
        self.limit = name
        value = getattr(current(), name)
        super().__init__(f"{message} (limit {name} = {value}; set {env_name(name)} to change it)")


def _convert(name: str, kind: type, raw: str) -> Any:
    try:
        value = kind(raw.replace("_", "")) if kind in (int, float) else raw.strip()
    except ValueError:
        raise ConfigError(f"{env_name(name)}={raw!r} is not a {kind.__name__}") from None
    if kind in (int, float) and value <= 0:
        raise ConfigError(f"{env_name(name)}={raw!r} must be positive")
    return value


_current: Limits | None = None


def current() -> Limits:
    """The limits in force (from the environment the first time)."""
    global _current
    if _current is None:
        _current = Limits.from_env()
    return _current


def configure(**changes: Any) -> Limits:
    """Change limits for this process (an app's settings, a notebook); returns the new set."""
    global _current
    unknown = set(changes) - {f.name for f in fields(Limits)}
    if unknown:
        raise ConfigError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(names())}")
    _current = dataclasses.replace(current(), **changes)
    _cleared()
    return _current


@contextmanager
def override(**changes: Any) -> Iterator[Limits]:
    """``with override(max_file_bytes=100): ...``: limits for a block (tests), restored afterwards."""
    global _current
    before = current()
    try:
        yield configure(**changes)
    finally:
        _current = before
        _cleared()


def _cleared() -> None:
    """Caches that depend on limits (compiled expressions) are emptied when the limits change."""
    from engine.model import expressions

    expressions.clear_cache()


def names() -> list[str]:
    return [f.name for f in fields(Limits)]


def table() -> str:
    """The limits as a Markdown table (README, ``waooaw`` docs)."""
    rows = [f"| `{f.name}` (`{env_name(f.name)}`) | {f.default} | {f.metadata['doc']} |" for f in fields(Limits)]
    return "\n".join(rows)


def check_file_size(size: int, what: str) -> None:
    """Refuse a file or upload larger than ``max_file_bytes`` before reading it."""
    if size > current().max_file_bytes:
        raise LimitExceeded("max_file_bytes", f"{what} is {size:,} bytes")


def check_key(value: Any, what: str) -> str:
    """A business key, correlation key, user or group name: a non-empty string of at most ``max_key_length``
    characters with no control characters (NUL, newline, ...). The same rule on SQLite and PostgreSQL."""
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidName(f"{what} is empty")
    if len(value) > current().max_key_length:
        raise LimitExceeded("max_key_length", f"{what} has {len(value):,} characters")
    bad = next((c for c in value if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise InvalidName(f"{what} contains the control character {bad!r} (keys and names are printable text)")
    return value


class InvalidName(EngineError):
    """A business key, correlation key or a user or group name that is empty, too long or not printable text."""


__doc__ = (__doc__ or "").replace("{table}", table())  # the table from the fields: they cannot drift apart
