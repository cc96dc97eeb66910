"""Write an event log as XES (IEEE 1849-2016) or CSV; read an XES file's traces back (for tests and checks).

A small streaming writer on lxml (``etree.xmlfile``): one ``<trace>`` per case in order of first
appearance, its events in log order, each column an attribute typed from its values (``date``, ``int``,
``float``, ``boolean``, else ``string``); missing values are left out, as XES requires. The file declares the
concept, lifecycle, org and time extensions and the classifier ``concept:name`` + ``lifecycle:transition``.
pm4py (``pm4py.read_xes``), ProM and Disco read it. (pm4py itself is AGPL-licensed, so it is not a dependency.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lxml import etree

XES_NS = "http://www.xes-standard.org/"
EXTENSIONS = [  # name, prefix, uri
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
]
CASE = "case:concept:name"


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "string"


def _value(kind: str, value: Any) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "date":
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.isoformat(timespec="milliseconds")
    if kind == "boolean":
        return "true" if bool(value) else "false"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        return repr(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _qualified(tag: str) -> str:
    return f"{{{XES_NS}}}{tag}"


def _empty(xf: Any, tag: str, attrs: dict[str, str]) -> None:
    with xf.element(_qualified(tag), attrs):
        pass


def write_xes(log: pd.DataFrame, path: str | Path, name: str | None = None) -> Path:
    """Write ``log`` (one row per event, ``case:concept:name`` naming the trace) as an XES file; returns the path.

    Columns starting with ``case:`` become trace attributes (the prefix dropped), the others event attributes.
    Raises ``KeyError`` when ``case:concept:name`` is missing.
    """
    path = Path(path)
    if CASE not in log.columns:
        raise KeyError(f"an event log needs a {CASE!r} column")
    trace_cols = [c for c in log.columns if c.startswith("case:")]
    event_cols = [c for c in log.columns if not c.startswith("case:")]
    kinds = {c: _kind(log[c]) for c in log.columns}
    cases = log[CASE].astype(str).to_numpy()
    order = pd.unique(cases)
    positions = pd.Series(np.arange(len(log))).groupby(cases, sort=False).apply(list)
    columns = {c: log[c].to_numpy(dtype=object) if kinds[c] != "date" else list(log[c]) for c in log.columns}
    q = _qualified
    with etree.xmlfile(str(path), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(q("log"), {"xes.version": "1.0", "xes.features": "nested-attributes"},
                        nsmap={None: XES_NS}):
            for ext_name, prefix, uri in EXTENSIONS:
                _empty(xf, "extension", {"name": ext_name, "prefix": prefix, "uri": uri})
            _empty(xf, "classifier", {"name": "Activity", "keys": "concept:name"})
            _empty(xf, "classifier", {"name": "Activity and transition", "keys": "concept:name lifecycle:transition"})
            if name:
                _empty(xf, "string", {"key": "concept:name", "value": name})
            for case in order:
                rows = positions[case]
                with xf.element(q("trace")):
                    for c in trace_cols:
                        text = _value(kinds[c], columns[c][rows[0]])
                        if text is not None:
                            _empty(xf, kinds[c], {"key": c[len("case:"):], "value": text})
                    for i in rows:
                        with xf.element(q("event")):
                            for c in event_cols:
                                text = _value(kinds[c], columns[c][i])
                                if text is not None:
                                    _empty(xf, kinds[c], {"key": c, "value": text})
    return path


def write_csv(log: pd.DataFrame, path: str | Path) -> Path:
    """Write ``log`` as CSV with ISO-8601 timestamps (pm4py.format_dataframe, Disco and Celonis read it)."""
    path = Path(path)
    log.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z")
    return path


def read_xes_traces(path: str | Path) -> Iterator[tuple[dict[str, str], list[dict[str, str]]]]:
    """Each trace of an XES file as (trace attributes, [event attributes]) with values as written (strings)."""
    for _, trace in etree.iterparse(str(path), tag=f"{{{XES_NS}}}trace"):
        attrs = {a.get("key"): a.get("value") for a in trace if a.tag != f"{{{XES_NS}}}event"}
        events = [{a.get("key"): a.get("value") for a in e} for e in trace.iter(f"{{{XES_NS}}}event")]
        yield attrs, events
        trace.clear()
