"""YAML that remembers where things are: the data, and the line of every key and list item, so an
error in a definition or a scenario file can name its line.

Bounded (``engine.limits``): a document longer than ``max_file_bytes``, with more than ``max_yaml_nodes``
nodes once its aliases are expanded (a "billion laughs" of nested aliases is a 700-byte file that expands to
trillions of nodes), nested deeper than ``max_nesting_depth`` (recursive aliases are infinitely deep), or
holding a value Python cannot build (a 5,000-digit integer, the 31st of February) is refused with a
``YamlLimitExceeded`` or a ``YAMLError`` that names the problem, before anything expands it.
"""

from __future__ import annotations

from typing import Any

import yaml

from engine.errors import Problem
from engine.limits import LimitExceeded, check_file_size, current

Path_ = tuple[str | int, ...]


class YamlLimitExceeded(LimitExceeded, yaml.YAMLError):
    """A YAML document beyond a limit of ``engine.limits`` (reported like any YAML error)."""


def parse_yaml(text: str) -> tuple[Any, dict[Path_, int]]:
    """The document (parsed once) and ``{path: line}``; raises ``yaml.YAMLError`` on bad YAML, and its subclass
    ``YamlLimitExceeded`` for a document beyond the limits (checked on the node graph, before construction)."""
    try:
        check_file_size(len(text), "the document")
    except LimitExceeded as exc:
        raise YamlLimitExceeded(exc.limit, str(exc).split(" (limit ")[0]) from None
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlLimitExceeded("max_nesting_depth", "the document is nested too deeply") from None
        if node is not None:
            _check_size(node)
        try:
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # int('9' * 5000), a bad date
            raise yaml.constructor.ConstructorError(None, None, f"a value cannot be read: {_short(exc)}") from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is not None:
        _collect(node, (), lines)
    return data, lines


def _short(exc: Exception) -> str:
    text = str(exc)
    if "integer string conversion" in text:  # Python's own guard against quadratic int parsing
        return "a number has more than 4,300 digits"
    return text if len(text) <= 200 else text[:200] + "..."


def _check_size(root: yaml.Node) -> None:
    """Count the nodes of the document as if its aliases were expanded, stopping at the limits: the work is
    bounded by ``max_yaml_nodes`` whatever the aliases would expand to."""
    limits = current()
    budget, depth_limit = limits.max_yaml_nodes, limits.max_nesting_depth
    count = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > budget:
            raise YamlLimitExceeded("max_yaml_nodes", "the document has too many nodes once its aliases are "
                                                      "expanded (nested aliases?)")
        if depth > depth_limit:
            mark = node.start_mark
            raise YamlLimitExceeded("max_nesting_depth", f"the document is nested too deeply at line {mark.line + 1}"
                                                         " (deep lists and mappings, or a recursive alias)")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def parse_json(text: str) -> Any:
    """A JSON document within the same limits as YAML (size, nesting, numbers); ``json.JSONDecodeError`` or
    ``YamlLimitExceeded`` otherwise."""
    import json

    try:
        check_file_size(len(text), "the document")
    except LimitExceeded as exc:
        raise YamlLimitExceeded(exc.limit, str(exc).split(" (limit ")[0]) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise YamlLimitExceeded("max_nesting_depth", "the document is nested too deeply") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # a number of more than 4,300 digits
        raise json.JSONDecodeError(f"a value cannot be read: {_short(exc)}", text, 0) from None
    check_depth(data, current().max_nesting_depth)
    return data


def check_depth(data: Any, limit: int) -> None:
    """Refuse plain data (dicts and lists) nested deeper than ``limit`` (``YamlLimitExceeded``, max_nesting_depth)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise YamlLimitExceeded("max_nesting_depth", "the document is nested too deeply")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def yaml_problem(exc: yaml.YAMLError) -> Problem:
    """A YAML syntax error as a problem with its line."""
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc)
    return Problem("yaml", str(reason), line=mark.line + 1 if mark is not None else None)


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one (None for the document itself)."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _collect(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _collect(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect(item, (*path, i), lines)
