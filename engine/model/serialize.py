"""JSON and YAML in and out, with errors that name the place: node id, field and line.

Loading goes through pydantic; its error locations (``nodes.3.service_task.retry.attempts``) are
turned into ``node 'validate' (nodes[3]) field retry.attempts``, and for YAML the line of that
place is found from the parser's marks. A typo in a node kind gets a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.errors import DefinitionError, Problem
from engine.limits import LimitExceeded, check_file_size, current
from engine.model.definition import ProcessDefinition
from engine.model.nodes import NODE_CLASSES
from engine.yaml_lines import Path_, check_depth, line_of, parse_json, parse_yaml, yaml_problem


def to_json(definition: ProcessDefinition, indent: int | None = 2) -> str:
    return json.dumps(definition.to_dict(), indent=indent, ensure_ascii=False)


def to_yaml(definition: ProcessDefinition) -> str:
    return yaml.safe_dump(definition.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def from_dict(data: Any, source: str | None = None, lines: dict[Path_, int] | None = None) -> ProcessDefinition:
    """Build a definition from plain data, or raise DefinitionError listing every problem."""
    if not isinstance(data, dict):
        raise DefinitionError(f"expected a mapping with id, nodes and flows, got {type(data).__name__}", source)
    try:
        check_depth(data, current().max_nesting_depth)  # the loaders' rule, before pydantic recurses
    except LimitExceeded as exc:
        raise DefinitionError(Problem("definition", str(exc)), source) from None
    try:
        return ProcessDefinition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_problems(exc, data, lines or {}), source) from None


def from_json(text: str, source: str | None = None) -> ProcessDefinition:
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(Problem("json", exc.msg, line=exc.lineno), source) from None
    except yaml.YAMLError as exc:  # beyond a limit of engine.limits
        raise DefinitionError(Problem("json", str(exc)), source) from None
    return from_dict(data, source)


def from_yaml(text: str, source: str | None = None) -> ProcessDefinition:
    try:
        data, lines = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(yaml_problem(exc), source) from None
    return from_dict(data, source, lines)


def load(path: str | Path) -> ProcessDefinition:
    """Load a definition file by its extension: .yaml/.yml, .json, or .bpmn/.xml (BPMN 2.0)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        check_file_size(path.stat().st_size, str(path))
        # BPMN as bytes: the XML declaration names its encoding (MIWG files are ISO-8859-1).
        raw = path.read_bytes()
        text = raw.decode("utf-8") if suffix not in (".bpmn", ".bpmn2", ".xml") else ""
    except OSError as exc:
        raise DefinitionError(f"cannot read {path}: {exc.strerror}") from None
    except LimitExceeded as exc:
        raise DefinitionError(str(exc), str(path)) from None
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if suffix in (".yaml", ".yml"):
        return from_yaml(text, str(path))
    if suffix == ".json":
        return from_json(text, str(path))
    if suffix in (".bpmn", ".bpmn2", ".xml"):
        from engine.bpmn import from_bpmn

        return from_bpmn(raw, source=str(path))
    raise DefinitionError(f"unknown file type {suffix!r}: use .yaml, .json or .bpmn", str(path))


def serialisation_problems(definition: ProcessDefinition) -> list[Problem]:
    """What validation and serialisation agree on (one rule): the definition turns into plain data, nested no
    deeper than ``max_nesting_depth`` (the depth the loaders accept, so what validates saves and loads back),
    with at most ``max_nodes`` nodes and flows. Binary or non-text metadata fails here, not in ``show``."""
    limits = current()
    count = sum(1 for _ in definition.all_nodes()) + len(definition.flows)
    if count > limits.max_nodes:
        return [Problem("definition", f"has {count:,} nodes and flows, more than {limits.max_nodes:,} "
                                      "(limit max_nodes; set WAOOAW_MAX_NODES to change it)")]
    try:
        data = definition.to_dict()
    except (ValueError, TypeError, RecursionError) as exc:  # bytes that are not text, an unserialisable object
        return [Problem("definition", f"cannot be saved as JSON or YAML: {' '.join(str(exc).split())[:300]}")]
    try:
        check_depth(data, limits.max_nesting_depth)
    except LimitExceeded as exc:
        return [Problem("definition", f"is nested too deeply to save and load back: {exc}")]
    try:  # loads back: the model's field rules hold also for a definition built without them (model_copy, ...)
        ProcessDefinition.model_validate(data)
    except ValidationError as exc:
        return _problems(exc, data, {})
    return []


def save(definition: ProcessDefinition, path: str | Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        path.write_text(to_yaml(definition), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(to_json(definition) + "\n", encoding="utf-8")
    elif suffix in (".bpmn", ".bpmn2", ".xml"):
        from engine.bpmn import to_bpmn

        path.write_text(to_bpmn(definition), encoding="utf-8")
    else:
        raise DefinitionError(f"unknown file type {suffix!r}: use .yaml, .json or .bpmn", str(path))
    return path


# --- error locations ----------------------------------------------------------------------------


def _problems(exc: ValidationError, data: dict[str, Any], lines: dict[Path_, int]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        data_path, where, field = _describe(loc, data)
        message = _message(error, field)
        key = (where, message)
        if key in seen:
            continue
        seen.add(key)
        problems.append(Problem(where, message, line=line_of(lines, data_path)))
    return problems


def _describe(loc: tuple[Any, ...], data: Any) -> tuple[Path_, str, str]:
    """Walk a pydantic location through the data: returns (data path, 'node X', 'field a.b')."""
    data_path: list[str | int] = []
    where = "definition"
    field_parts: list[str] = []
    current: Any = data
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(current, dict) and part in current:
            data_path.append(part)
            current = current[part]
            if isinstance(current, list) and i + 1 < len(loc) and isinstance(loc[i + 1], int):
                idx = loc[i + 1]
                data_path.append(idx)
                current = current[idx] if idx < len(current) else None
                if isinstance(current, dict) and part in ("nodes", "flows", "variables", "form"):
                    ident = current.get("id") or current.get("name")
                    label = {"nodes": "node", "flows": "flow", "variables": "variable", "form": "form field"}[part]
                    where = f"{label} {ident!r}" if ident else f"{part}[{idx}]"
                    field_parts = []
                else:
                    field_parts.append(f"{part}[{idx}]")
                i += 2
                # pydantic puts the union tag (the node kind) next: skip it
                tag = current.get("kind") if isinstance(current, dict) else None
                if i < len(loc) and isinstance(loc[i], str) and loc[i] == tag:
                    i += 1
                continue
            field_parts.append(str(part))
        elif isinstance(part, str) and (part in NODE_CLASSES or part.startswith("function-")):
            pass  # union tag or validator name
        else:
            field_parts.append(str(part))
            current = None
        i += 1
    return tuple(data_path), where, ".".join(field_parts)


def _message(error: dict[str, Any], field: str) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "")
        close = difflib.get_close_matches(str(tag), list(NODE_CLASSES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown node kind {tag!r}{hint} (known: {', '.join(sorted(NODE_CLASSES))})"
    if kind == "union_tag_not_found":
        return f"has no 'kind' (one of: {', '.join(sorted(NODE_CLASSES))})"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "missing":
        return f"field {field!r} is required"
    return f"field {field!r}: {msg}" if field else msg
