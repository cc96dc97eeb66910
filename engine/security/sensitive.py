"""Sensitive variables: declared ``sensitive: true`` in a definition's ``variables``, masked wherever a
value is shown (instance views, the variable history, the app, exported event logs, error messages)
unless the viewer may see them (rule ``variables.sensitive.read``: operator or admin; the system
principal sees everything). Error messages never show them, whoever reads.

The engine stores the real value (agents and conditions need it); masking happens on the way out, so
every place that shows values calls one of these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.security.principal import Principal
from engine.security.rules import allowed

if TYPE_CHECKING:
    import pandas as pd

    from engine.model.definition import ProcessDefinition, VariableDecl

MASK = "••••••"


def sensitive_names(definition: ProcessDefinition | None) -> frozenset[str]:
    """The names of a definition's sensitive variables."""
    if definition is None:
        return frozenset()
    return frozenset(v.name for v in definition.variables if getattr(v, "sensitive", False))


def may_see(principal: Principal | None) -> bool:
    return isinstance(principal, Principal) and allowed(principal, "variables.sensitive.read")


def shown(decl: VariableDecl | None, value: Any) -> str:
    """A value as an error message may print it: ``repr``, or the mask for a sensitive variable."""
    return MASK if decl is not None and getattr(decl, "sensitive", False) else repr(value)


def mask_values(definition: ProcessDefinition | None, values: Mapping[str, Any],
                principal: Principal | None) -> dict[str, Any]:
    """``values`` with each sensitive variable's value replaced by ``MASK`` unless ``principal`` may see it."""
    hidden = sensitive_names(definition)
    if not hidden or may_see(principal):
        return dict(values)
    return {k: (MASK if k in hidden and v is not None else v) for k, v in values.items()}


def mask_history(definition: ProcessDefinition | None, history: pd.DataFrame,
                 principal: Principal | None, name: str = "name",
                 columns: tuple[str, ...] = ("old_value", "new_value")) -> pd.DataFrame:
    """A variable-history frame (one row per change, the variable's name in ``name``) with the values of
    sensitive variables masked unless ``principal`` may see them."""
    hidden = sensitive_names(definition)
    if not hidden or may_see(principal) or history.empty:
        return history
    out = history.copy()
    rows = out[name].isin(hidden)
    for column in columns:
        if column in out.columns:
            out[column] = out[column].astype(object)
            out.loc[rows & out[column].notna(), column] = MASK
    return out


def mask_problems(definition: ProcessDefinition | None, values: Mapping[str, Any], problems: list[str]) -> list[str]:
    """Error messages about ``values`` with every sensitive value's text replaced by ``MASK`` (whoever reads
    them: messages end up in logs and on screens)."""
    hidden = [(repr(values[n]), str(values[n])) for n in sensitive_names(definition)
              if n in values and values[n] is not None]
    out = []
    for problem in problems:
        for shown_repr, shown_str in hidden:
            problem = problem.replace(shown_repr, MASK)
            if len(shown_str) >= 4:
                problem = problem.replace(shown_str, MASK)
        out.append(problem)
    return out


def mask_nested(value: Any, hidden: frozenset[str]) -> Any:
    """``value`` (JSON-like: dicts, lists, scalars) with the value of every key in ``hidden`` replaced by
    ``MASK``, at any depth (form values, task outcomes, audit details, instance state)."""
    if isinstance(value, dict):
        return {k: (MASK if k in hidden and v is not None else mask_nested(v, hidden)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_nested(v, hidden) for v in value]
    return value


def _masked_text(text: str, hidden: frozenset[str]) -> str:
    """JSON text with hidden keys masked; other text as it is."""
    import json

    if not text or text[0] not in "{[" or not any(f'"{name}"' in text for name in hidden):
        return text
    try:
        return json.dumps(mask_nested(json.loads(text), hidden), separators=(",", ":"), default=str)
    except ValueError:
        return text


VALUE_COLUMNS = ("value", "old_value", "new_value")


def mask_record(definition: ProcessDefinition | None, record: Mapping[str, Any],
                principal: Principal | None) -> dict[str, Any]:
    """An archive record (``{"instance": {...}, "rows": {table: [row, ...]}}``, ``engine.runtime.retention``)
    with sensitive values masked unless ``principal`` may see them: a variable row's value columns when its
    ``name`` is sensitive, and every hidden key inside JSON text (instance state, form values, audit details,
    payloads)."""
    hidden = sensitive_names(definition)
    if not hidden or may_see(principal):
        return dict(record)

    def row(r: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: (_masked_text(v, hidden) if isinstance(v, str) else mask_nested(v, hidden)) for k, v in r.items()}
        if out.get("name") in hidden:
            out.update({c: MASK for c in VALUE_COLUMNS if out.get(c) is not None})
        return out

    return {**record, "instance": row(record.get("instance") or {}),
            "rows": {table: [row(r) for r in rows] for table, rows in (record.get("rows") or {}).items()}}
