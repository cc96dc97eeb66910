"""YAML that remembers where things are: the data, and the line of every key and list item, so an
error in a definition or a scenario file can name its line."""

from __future__ import annotations

from typing import Any

import yaml

from engine.errors import Problem

Path_ = tuple[str | int, ...]


def parse_yaml(text: str) -> tuple[Any, dict[Path_, int]]:
    """The document (parsed once) and ``{path: line}``; raises ``yaml.YAMLError`` on bad YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is not None:
        _collect(node, (), lines)
    return data, lines


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
