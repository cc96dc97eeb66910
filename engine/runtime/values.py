"""The typed variable codec, where the runtime looks for it; it lives in :mod:`engine.model.values` so the
designer and the simulator use it without importing the engine (SQLAlchemy)."""

from engine.model.values import (
    TYPES,
    coerce,
    coerce_all,
    dumps,
    format_duration,
    from_json,
    loads,
    matches,
    parse_duration,
    to_json,
)

__all__ = ["TYPES", "coerce", "coerce_all", "dumps", "format_duration", "from_json", "loads", "matches",
           "parse_duration", "to_json"]
