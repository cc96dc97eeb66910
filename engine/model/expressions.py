"""Safe conditions over process variables.

Gateways and correlation keys hold expressions such as ``score >= 70 and not churned``.
They are parsed once with Python's ``ast`` (so the names they use can be checked against the
declared variables) and evaluated by ``simpleeval``: no attribute access to dunders, no imports,
no calls but a short list of pure functions. Never ``eval``.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from engine.errors import ExpressionError

SAFE_FUNCTIONS: dict[str, Any] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
}
CONSTANTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}

_WRAPPED = re.compile(r"^\s*[$#]\{(?P<body>.*)\}\s*$", re.DOTALL)
# ``&&``/``||`` outside string literals (a quoted 'R&&D' stays as written)
_JS_OPERATORS = re.compile(r"""(?P<text>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")|&&|\|\|""")
_JS_WORDS = {"&&": " and ", "||": " or "}


@lru_cache(maxsize=4096)
def normalise(source: str) -> str:
    """Strip the ``${...}`` wrapper BPMN tools put around expressions and outer white space."""
    match = _WRAPPED.match(source)
    body = match.group("body") if match else source
    body = _JS_OPERATORS.sub(lambda m: m.group("text") or _JS_WORDS[m.group(0)], body)
    return body.strip()


@lru_cache(maxsize=4096)
def parse(source: str) -> ast.Expression:
    """Parse an expression, raising ExpressionError with the reason (cached: parse once, run often)."""
    text = normalise(source)
    if not text:
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg} at column {exc.offset}: {text!r}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"uses a private attribute {node.attr!r}: {text!r}")
        if isinstance(node, ast.Lambda | ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
            raise ExpressionError(f"uses {type(node).__name__}, which is not allowed: {text!r}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in SAFE_FUNCTIONS
        ):
            raise ExpressionError(
                f"calls something other than {', '.join(sorted(SAFE_FUNCTIONS))}: {text!r}"
            )
    return tree


def variable_names(source: str) -> set[str]:
    """The process variables an expression reads (functions and constants excluded)."""
    return set(_variable_names(source))


@lru_cache(maxsize=4096)
def _variable_names(source: str) -> frozenset[str]:
    """Cached like parse(): evaluate() needs the names on every call."""
    tree = parse(source)
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            for target in ast.walk(node.target):
                if isinstance(target, ast.Name):
                    bound.add(target.id)
    return frozenset(
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and node.id not in SAFE_FUNCTIONS
        and node.id not in CONSTANTS
        and node.id not in bound
    )


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    """Evaluate an expression against variables; a missing variable reads as None."""
    tree = parse(source)
    names = {name: variables.get(name) for name in _variable_names(source)}
    names.update(CONSTANTS)
    # a copy: simpleeval adds dict/list/set/tuple to the mapping it is given, which would widen what parse() allows
    evaluator = EvalWithCompoundTypes(functions=dict(SAFE_FUNCTIONS), names=names)
    try:
        return evaluator.eval(normalise(source), previously_parsed=tree.body)
    except InvalidExpression as exc:
        raise ExpressionError(f"{normalise(source)!r}: {exc}") from None
    except Exception as exc:  # a type error in user data, e.g. None > 3
        raise ExpressionError(f"{normalise(source)!r} failed: {type(exc).__name__}: {exc}") from None


def check(source: str) -> str | None:
    """Return None when the expression parses, else the reason (for validation reports)."""
    try:
        parse(source)
    except ExpressionError as exc:
        return str(exc)
    return None
