"""Conditions over process variables: evaluated safely, never with eval, and checked before they run."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.errors import ExpressionError
from engine.model import expressions
from engine.model.expressions import SAFE_FUNCTIONS, check, evaluate, normalise, parse, variable_names


@pytest.mark.parametrize(("source", "variables", "expected"), [
    ("score >= 70 and not churned", {"score": 80, "churned": False}, True),
    ("score >= 70 and not churned", {"score": 50, "churned": False}, False),
    ("amount * 1.2 > limit", {"amount": 100, "limit": 110}, True),
    ("'urgent' in tags", {"tags": ["urgent", "bug"]}, True),
    ("len(items) > 0 and items[0] == 'a'", {"items": ["a"]}, True),
    ("customer['tier'] == 'gold'", {"customer": {"tier": "gold"}}, True),
    ("customer.tier == 'gold'", {"customer": {"tier": "gold"}}, True),  # dict keys read as attributes
    ("lower(name) == 'ann'", {"name": "ANN"}, True),
    ("max(a, b) - min(a, b)", {"a": 3, "b": 10}, 7),
    ("'big' if n > 10 else 'small'", {"n": 11}, "big"),
    ("[x * 2 for x in xs if x > 1]", {"xs": [1, 2, 3]}, [4, 6]),
    ("true and not false and null is None", {}, True),
    ("missing is None", {}, True),  # an unset variable reads as None
])
def test_evaluation(source: str, variables: dict[str, Any], expected: Any) -> None:
    assert evaluate(source, variables) == expected


@pytest.mark.parametrize(("source", "variables", "expected"), [
    ("${a > 1}", {"a": 2}, True),
    ("#{a > 1}", {"a": 0}, False),
    ("  ${ approved }  ", {"approved": True}, True),
    ("a > 1 && b", {"a": 2, "b": True}, True),
    ("a > 1 || b", {"a": 0, "b": False}, False),
    ("${ok && name == 'R&&D'}", {"ok": True, "name": "R&&D"}, True),  # only operators are rewritten, not text
    ("name == \"a||b\"", {"name": "a||b"}, True),
])
def test_bpmn_wrappers_and_js_operators_are_read_as_python(source: str, variables: dict[str, Any],
                                                          expected: Any) -> None:
    """Conditions imported from other engines (``${a > 1}``, ``&&``, ``||``) are normalised, not refused."""
    assert evaluate(source, variables) == expected
    assert check(source) is None


def test_normalise_keeps_string_literals() -> None:
    assert normalise("${a && b}") == "a  and  b"
    assert normalise("x == 'p&&q' || y") == "x == 'p&&q'  or  y"
    assert normalise(r"x == 'it\'s && y'") == r"x == 'it\'s && y'"


@pytest.mark.parametrize(("source", "reason"), [
    ("__import__('os')", "calls something other than"),
    ("__import__('os').system('echo hi')", "calls something other than"),
    ("open('/etc/passwd')", "calls something other than"),
    ("eval('1 + 1')", "calls something other than"),
    ("getattr(x, '__class__')", "calls something other than"),
    ("name.upper()", "calls something other than"),
    ("'{0.__class__}'.format(x)", "calls something other than"),
    ("x.__class__", "private attribute '__class__'"),
    ("().__class__.__bases__[0]", "private attribute"),
    ("().__class__.__bases__[0].__subclasses__()", "calls something other than"),
    ("x._secret", "private attribute '_secret'"),
    ("lambda: 1", "Lambda"),
    ("(y := 1)", "NamedExpr"),
    ("import os", "does not parse"),
    ("a >", "does not parse"),
    ("x = = 1", "does not parse"),
    ("", "expression is empty"),
    ("${}", "expression is empty"),
])
def test_unsafe_or_broken_expressions_are_refused_before_running(source: str, reason: str) -> None:
    problem = check(source)
    assert problem is not None and reason in problem
    with pytest.raises(ExpressionError, match=re.escape(reason)):
        evaluate(source, {"x": 1, "name": "a"})


@pytest.mark.parametrize(("source", "variables", "reason"), [
    ("9 ** 9 ** 9", {}, "max_int_digits"),  # refused before it runs (literals folded)
    ("n ** n ** n", {"n": 9}, "9 ** 387420489"),
    ("'a' * 10 ** 9", {}, "max_string_length"),
    ("n > 3", {}, "TypeError"),  # None > 3
    ("1 / n", {"n": 0}, "ZeroDivisionError"),
    ("d['missing']", {"d": {}}, "failed"),
])
def test_runtime_failures_raise_expression_errors(source: str, variables: dict[str, Any], reason: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(reason)):
        evaluate(source, variables)


def test_evaluation_cannot_widen_what_is_allowed() -> None:
    """simpleeval adds dict/list/set/tuple to the functions it is given; ours must stay as declared."""
    before = dict(SAFE_FUNCTIONS)
    evaluate("len(xs)", {"xs": [1]})
    assert before == SAFE_FUNCTIONS
    expressions.parse.cache_clear()
    assert check("list(xs)") is not None


def test_variable_names_are_what_validation_checks() -> None:
    names = variable_names("score >= 70 and not churned and len(items) > max(a, 1) and true and "
                           "[i for i in xs] and customer['tier']")
    assert names == {"score", "churned", "items", "a", "xs", "customer"}  # no functions, constants, loop vars
    assert variable_names("${x && y}") == {"x", "y"}


def test_parse_is_cached_and_returns_an_ast() -> None:
    assert parse("a + 1") is parse("a + 1")
    assert type(parse("a + 1").body).__name__ == "BinOp"


def test_the_evaluation_time_limit_counts_cpu_time_not_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``expression_seconds`` bounds the CPU an evaluation spends: a long evaluation under a 0 s limit is stopped
    and named, but a machine that pauses the process (the wall clock jumps an hour between two steps) does not
    fail a trivial condition, which would turn into an incident or change a seeded simulation."""
    from engine import limits
    from engine.model.expressions import ExpressionLimitExceeded

    with limits.override(expression_seconds=0.0), pytest.raises(ExpressionLimitExceeded, match="expression_seconds"):
        evaluate("len([a for a in s if a == 'x']) > 0", {"s": "x" * 2_000})
    clock = iter(range(0, 10**9, 3600))
    monkeypatch.setattr("time.perf_counter", lambda: float(next(clock)))
    monkeypatch.setattr("time.monotonic", lambda: float(next(clock)))
    assert evaluate("amount > 100 and region == 'EU'", {"amount": 150, "region": "EU"}) is True
