"""Safe conditions over process variables.

Gateways and correlation keys hold expressions such as ``score >= 70 and not churned``.
They are parsed once with Python's ``ast`` (so the names they use can be checked against the
declared variables) and evaluated by ``simpleeval``: no attribute access to dunders, no imports,
no calls but a short list of pure functions. Never ``eval``.

A variable name may contain spaces (``Service Level == 'Premium'``: consecutive words that are not keywords are
one name, as in FEEL). A text that is not ours is read as FEEL's common subset (``engine.model.feel``, DMN 1.3
§10: ``Vacation Approval = "Approved"``, ``some risk in riskLevels satisfies risk = "red"``), translated into the
same syntax tree, so the same checks, limits and evaluator apply; a leading ``=`` (Zeebe's mark) says FEEL.
"""

from __future__ import annotations

import ast
import keyword
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes, InvalidExpression

from engine.errors import ExpressionError
from engine.limits import LimitExceeded, Limits, current

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
    """Parse an expression, raising ExpressionError with the reason (cached: parse once, run often).

    Besides the safety rules it refuses, before anything runs, what cannot be computed within the limits of
    ``engine.limits``: a source longer than ``max_expression_length``, more than ``max_expression_nodes``
    syntax nodes, integer literals beyond ``max_int_digits``, string literals beyond ``max_string_length``,
    and powers or shifts of literals whose result would be beyond ``max_int_digits``
    (``3999999**3999999`` is refused here, not after a minute of CPU)."""
    limits = current()
    if len(source) > limits.max_expression_length:
        raise ExpressionLimitExceeded("max_expression_length", f"expression has {len(source):,} characters")
    text = normalise(source)
    if not text:
        raise ExpressionError("expression is empty")
    tree = _syntax_tree(text)
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > limits.max_expression_nodes:
            raise ExpressionLimitExceeded("max_expression_nodes", f"expression {_short(text)} is too large")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"uses a private attribute {node.attr!r}: {text!r}")
        if isinstance(node, ast.Lambda | ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
            raise ExpressionError(f"uses {type(node).__name__}, which is not allowed: {text!r}")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in SAFE_FUNCTIONS
        ):
            raise ExpressionError(
                f"calls something other than {', '.join(sorted(SAFE_FUNCTIONS))}: {_short(text)}"
            )
        _check_static(node, text, limits)
    return tree


def _syntax_tree(text: str) -> ast.Expression:
    """Ours (Python's expression syntax), else ours with names containing spaces, else FEEL (``engine.model.feel``;
    a leading ``=``, Zeebe's mark of a FEEL expression, says FEEL at once)."""
    if text.startswith("="):
        return _feel(text[1:])
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        reason = "a number has more than 4,300 digits" if "integer string conversion" in exc.msg else exc.msg
        ours = f"does not parse: {reason} at column {exc.offset}: {_short(text)}"
    except (ValueError, MemoryError, RecursionError) as exc:  # e.g. a 5,000-digit literal, 1,000 nested brackets
        reason = "a number has more than 4,300 digits" if "integer string conversion" in str(exc) else str(exc)
        raise ExpressionError(f"does not parse: {reason}: {_short(text)}") from None
    spaced = _with_spaced_names(text)
    if spaced is not None:
        return spaced
    try:
        return _feel(text)
    except ExpressionError as exc:
        raise ExpressionError(f"{ours}; nor as FEEL: {exc}") from None


def _feel(text: str) -> ast.Expression:
    from engine.model import feel

    try:
        return feel.parse(text)
    except RecursionError:
        raise ExpressionError(f"FEEL: nested too deeply: {_short(text)}") from None


_STRING_OR_WORDS = re.compile(r"""(?P<text>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")"""
                              r"|(?<![\w.])[A-Za-z_]\w*(?:[ \t]+[A-Za-z_]\w*)+(?![\w(])")
_PLACEHOLDER = "_waooaw_spaced_name_"
# JUEL's word operators (Camunda 7, Activiti) and FEEL's keywords are never part of a name: '${not empty orders}'
# is not a variable called 'empty orders', 'some risk in risks satisfies ...' is FEEL
_EL_WORDS = {"empty", "eq", "ne", "lt", "gt", "le", "ge", "div", "mod", "instanceof", "not", "and", "or", "some",
             "every", "satisfies", "then", "between", "instance", "of", "return", "function", "true", "false"}


def _with_spaced_names(text: str) -> ast.Expression | None:
    """``Service Level == 'Premium'``: consecutive words that are not keywords are one variable name, with its
    spaces (as in FEEL, DMN 1.3 §10.3.1.2). None when the text does not parse that way either."""
    names: list[str] = []

    def join(match: re.Match[str]) -> str:
        if match.group("text"):
            return match.group(0)
        out: list[str] = []
        run: list[str] = []
        for word in [*match.group(0).split(), ""]:
            if word and not keyword.iskeyword(word) and word not in CONSTANTS and word not in SAFE_FUNCTIONS \
                    and word not in _EL_WORDS:
                run.append(word)
                continue
            if len(run) > 1:
                names.append(" ".join(run))
                out.append(f"{_PLACEHOLDER}{len(names) - 1}")
            else:
                out.extend(run)
            run = []
            if word:
                out.append(word)
        return " ".join(out)

    rewritten = _STRING_OR_WORDS.sub(join, text)
    if not names:
        return None
    try:
        tree = ast.parse(rewritten, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id.startswith(_PLACEHOLDER):
            node.id = names[int(node.id.removeprefix(_PLACEHOLDER))]
    return tree


@lru_cache(maxsize=4096)
def is_feel(source: str) -> bool:
    """Does the expression parse as FEEL (not as ours)? The BPMN export names its language then."""
    text = normalise(source)
    if text.startswith("="):
        return True
    try:
        ast.parse(text, mode="eval")
        return False
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return _with_spaced_names(text) is None


def _short(text: str) -> str:
    return repr(text) if len(text) <= 120 else repr(text[:100]) + f"... ({len(text):,} characters)"


def _int_literal(node: ast.AST) -> int | None:
    """The absolute value of an integer written with literals only (``10**10`` folded, when small), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _int_literal(node.operand)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return abs(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow | ast.Mult | ast.Add):
        left, right = _int_literal(node.left), _int_literal(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Pow):
            return left ** right if right * max(left.bit_length(), 1) <= 4096 else None
        return left * right if isinstance(node.op, ast.Mult) else left + right
    return None


def _check_static(node: ast.AST, text: str, limits: Limits) -> None:
    """Refuse literals and literal arithmetic that are beyond the limits (the rest is checked as it runs)."""
    bits = _max_bits(limits)
    if isinstance(node, ast.Constant):
        if type(node.value) is int and node.value.bit_length() > bits:
            raise ExpressionLimitExceeded("max_int_digits", f"a number in {_short(text)} has too many digits")
        if isinstance(node.value, str | bytes) and len(node.value) > limits.max_string_length:
            raise ExpressionLimitExceeded("max_string_length", f"a text in {_short(text)} is too long")
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow | ast.LShift):
        exponent = _int_literal(node.right)
        base = _int_literal(node.left)
        if exponent is None:
            return
        size = exponent if isinstance(node.op, ast.LShift) else exponent * max(1, (base or 2).bit_length() - 1)
        grows = base != 0 if isinstance(node.op, ast.LShift) else base is None or base > 1
        if grows and size > bits:
            raise ExpressionLimitExceeded("max_int_digits", f"{_short(text)} computes a number with too many digits")


def _max_bits(limits: Limits) -> int:
    return int(limits.max_int_digits * 3.33) + 1  # log2(10) bits per decimal digit


class ExpressionLimitExceeded(LimitExceeded, ExpressionError):
    """An expression that is, or would compute, something beyond a limit of ``engine.limits``."""


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


@dataclass(frozen=True, slots=True)
class Compiled:
    """An expression checked and parsed once: what ``evaluate`` runs (the simulator runs it millions of times)."""

    text: str
    body: ast.expr
    names: frozenset[str]

    def __call__(self, variables: Mapping[str, Any]) -> Any:
        """The value against ``variables`` (a missing variable reads as None); ``ExpressionError`` otherwise."""
        evaluator = _evaluator()
        names = {name: variables.get(name) for name in self.names}
        names.update(CONSTANTS)
        evaluator.names = names
        evaluator.start(current())
        try:
            return evaluator.eval(self.text, previously_parsed=self.body)
        except ExpressionError as exc:
            if isinstance(exc, LimitExceeded):
                raise
            raise ExpressionError(f"{_short(self.text)}: {exc}") from None
        except InvalidExpression as exc:
            raise ExpressionError(f"{_short(self.text)}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"{_short(self.text)} is nested too deeply to evaluate") from None
        except MemoryError:
            raise ExpressionError(f"{_short(self.text)} ran out of memory") from None
        except Exception as exc:  # a type error in user data, e.g. None > 3
            raise ExpressionError(f"{_short(self.text)} failed: {type(exc).__name__}: {_shortmsg(exc)}") from None


def _shortmsg(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Compiled:
    """Check, parse and prepare an expression once (cached); raises ExpressionError like ``parse``."""
    return Compiled(normalise(source), parse(source).body, _variable_names(source))


def evaluate(source: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate an expression against variables; a missing variable reads as None.

    Bounded by ``engine.limits``: integers beyond ``max_int_digits``, strings beyond ``max_string_length``,
    collections beyond ``max_collection_length`` and evaluations longer than ``expression_seconds`` raise
    ``ExpressionLimitExceeded`` (an ``ExpressionError``) naming the limit."""
    return compile_expression(source)(variables)


def clear_cache() -> None:
    """Forget parsed and compiled expressions (``engine.limits`` calls this when the limits change)."""
    for cached in (normalise, parse, _variable_names, compile_expression, is_feel):
        cached.cache_clear()


_CLOCK_EVERY = 64  # evaluation steps between two readings of the CPU clock (a step is microseconds)


class _BoundedEvaluator(EvalWithCompoundTypes):
    """simpleeval with the limits of ``engine.limits`` checked on every value it computes and a deadline."""

    def __init__(self) -> None:
        # a copy: simpleeval adds dict/list/set/tuple to the mapping it is given, which would widen what parse()
        # allows
        super().__init__(functions=dict(SAFE_FUNCTIONS), operators=self._operators())
        self._deadline = 0.0
        self._steps = 0
        self._bits = 0
        self._strings = 0
        self._items = 0
        self._seconds = 0.0

    def start(self, limits: Limits) -> None:
        self._seconds = limits.expression_seconds
        self._deadline = time.thread_time() + self._seconds
        self._steps = 0
        self._bits = _max_bits(limits)
        self._strings = limits.max_string_length
        self._items = limits.max_collection_length

    def _operators(self) -> dict[type, Any]:
        operators = dict(DEFAULT_OPERATORS)
        operators[ast.Pow] = self._power
        operators[ast.LShift] = self._lshift
        operators[ast.Mult] = self._mult
        return operators

    def _power(self, a: Any, b: Any) -> Any:
        if type(a) is int and type(b) is int and b > 0 and abs(a) > 1 and b * (abs(a).bit_length() - 1) > self._bits:
            raise ExpressionLimitExceeded("max_int_digits", f"{a} ** {b} has too many digits")
        return a ** b

    def _lshift(self, a: Any, b: Any) -> Any:
        if type(b) is int and b > self._bits:
            raise ExpressionLimitExceeded("max_int_digits", f"{a} << {b} has too many digits")
        return a << b

    def _mult(self, a: Any, b: Any) -> Any:
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, str | bytes | list | tuple) and type(n) is int and n * len(seq) > self._strings:
                raise ExpressionLimitExceeded("max_string_length", "repeating a text or list makes it too long")
        return a * b

    def _eval(self, node: ast.AST) -> Any:
        # CPU time of this thread, not the wall clock: a busy machine that pauses the process does not make a
        # trivial condition fail (nor a seeded simulation differ); read every _CLOCK_EVERY steps, as it costs
        self._steps += 1
        if not self._steps % _CLOCK_EVERY and time.thread_time() > self._deadline:
            raise ExpressionLimitExceeded("expression_seconds", "evaluation took too long")
        result = super()._eval(node)
        kind = type(result)
        if kind is int:
            if result.bit_length() > self._bits:
                raise ExpressionLimitExceeded("max_int_digits", "a number it computes has too many digits")
        elif kind is str or kind is bytes:
            if len(result) > self._strings:
                raise ExpressionLimitExceeded("max_string_length", "a text it computes is too long")
        elif kind in (list, tuple, dict, set) and len(result) > self._items:
            raise ExpressionLimitExceeded("max_collection_length", "a collection it builds is too long")
        return result


_local = threading.local()


def _evaluator() -> _BoundedEvaluator:
    """One evaluator per thread, reused (building one costs more than most evaluations)."""
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = _BoundedEvaluator()
    return evaluator


def check(source: str) -> str | None:
    """Return None when the expression parses, else the reason (for validation reports)."""
    try:
        parse(source)
    except ExpressionError as exc:
        return str(exc)
    return None
