"""Script tasks' language: the safe expression language of conditions plus assignments.

A script is data, not a program: most scripts in real BPMN files only compute variables, so a script here is
a sequence of assignments, one statement a line (a statement may continue over lines inside brackets)::

    subtotal = price * quantity
    total = subtotal * (1 + vat)   # comments are allowed
    count += 1                     # augmented assignments: +=, -=, *=, /=, //=, %=

Each right-hand side is an expression of ``engine.model.expressions``: compiled once (``compile_expression``)
and evaluated by the same bounded evaluator and limits (``engine.limits``) as gateway conditions; later lines
see what earlier lines assigned.

A line that begins with ``def`` (Groovy) or ``var`` (JavaScript) declares a script-local variable
(``def i = 1;``, ``var rate = 0.2``): later lines of the same script read it (and may assign it again), but it is
not written to the process variables. A name is declared once, before any assignment of it. A trailing ``;``
is allowed on any line. Anything else (imports, calls of functions outside ``SAFE_FUNCTIONS``,
attribute or item assignment, loops, ``if`` statements, definitions) is refused with the line and the reason,
when the definition is loaded, never when it runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.errors import ExpressionError
from engine.limits import LimitExceeded
from engine.model import expressions

_NAME = re.compile(r"^[A-Za-z_]\w*$")
# ``def name = ...`` (Groovy) / ``var name = ...`` (JavaScript) at the start of a line: a script-local declaration.
_DECLARATION = re.compile(r"^(?P<indent>[ \t]*)(?:def|var)[ \t]+(?P<name>[A-Za-z_]\w*)(?=[ \t]*=(?!=))")
_AUGMENTED = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_REFUSED = {
    ast.Import: "imports a module", ast.ImportFrom: "imports a module", ast.FunctionDef: "defines a function",
    ast.AsyncFunctionDef: "defines a function", ast.ClassDef: "defines a class", ast.For: "is a loop",
    ast.While: "is a loop", ast.If: "is an if statement (use a conditional expression: 'a if c else b')",
    ast.With: "is a with statement", ast.Try: "is a try statement", ast.Delete: "deletes a variable",
    ast.Global: "declares a global", ast.Nonlocal: "declares a nonlocal", ast.Return: "returns",
    ast.Raise: "raises an exception (end the path with an error end event instead)",
}


@dataclass(frozen=True, slots=True)
class Assignment:
    """``target = expression`` on ``line`` (1-based, in the script)."""

    target: str
    expression: expressions.Compiled
    line: int
    local: bool = False  # a script-local (declared with def/var): not written to the process variables


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script: its assignments in order."""

    text: str
    assignments: tuple[Assignment, ...]

    def run(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The variables the script assigns (name -> value), each line seeing the lines before it.

        Raises ``ExpressionError`` naming the line when an expression fails (a type error in the data, a limit
        of ``engine.limits``); nothing is assigned then."""
        scope = dict(variables)
        assigned: dict[str, Any] = {}
        for step in self.assignments:
            try:
                value = step.expression(scope)
            except LimitExceeded as exc:  # keeps its type (the limit's name) and says where
                exc.args = (f"line {step.line} ({step.target} = ...): {exc}",)
                raise
            except ExpressionError as exc:
                raise ExpressionError(f"line {step.line} ({step.target} = ...): {exc}") from None
            scope[step.target] = value
            if not step.local:
                assigned[step.target] = value
        return assigned

    @property
    def targets(self) -> list[str]:
        """The process variables the script assigns, in first-assignment order (not its script-locals)."""
        return list(dict.fromkeys(a.target for a in self.assignments if not a.local))


@lru_cache(maxsize=1024)
def parse_script(text: str) -> Script:
    """Parse a script once (cached); ``ExpressionError`` with the line and the reason when it is refused."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the script is empty: write assignments such as 'total = price * quantity'")
    source = text.replace("\r\n", "\n").strip("\n")
    declared: dict[int, str] = {}  # line -> the script-local its declaration names
    lines = source.split("\n")
    for number, text_line in enumerate(lines, 1):
        match = _DECLARATION.match(text_line)
        if match:
            declared[number] = match.group("name")
            lines[number - 1] = match.group("indent") + text_line[match.start("name"):]
    source = "\n".join(lines)
    try:
        module = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        raise ExpressionError(f"line {exc.lineno}: does not parse: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise ExpressionError(f"does not parse: {exc}") from None
    result: list[Assignment] = []
    locals_: set[str] = set()
    for stmt in module.body:
        line = stmt.lineno
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1:
                raise ExpressionError(f"line {line}: chained assignment ('a = b = ...'): assign one variable a line")
            target, value = stmt.targets[0], stmt.value
            segment = ast.get_source_segment(source, value)
        elif isinstance(stmt, ast.AugAssign) and type(stmt.op) in _AUGMENTED:
            target, value = stmt.target, stmt.value
            inner = ast.get_source_segment(source, value)
            segment = f"{getattr(target, 'id', '?')} {_AUGMENTED[type(stmt.op)]} ({inner})"
        elif isinstance(stmt, ast.AnnAssign):
            raise ExpressionError(f"line {line}: type annotations are not part of the script language")
        elif isinstance(stmt, ast.Expr):
            raise ExpressionError(f"line {line}: {lines[line - 1].strip()!r} computes a value but assigns it to "
                                  "nothing: write 'name = expression'")
        else:
            reason = _REFUSED.get(type(stmt), f"is a {type(stmt).__name__} statement")
            raise ExpressionError(f"line {line} {reason}: a script is assignments of safe expressions only")
        if isinstance(target, ast.Tuple | ast.List):
            raise ExpressionError(f"line {line}: unpacking ('a, b = ...') is not supported: assign one variable a line")
        if not isinstance(target, ast.Name):
            raise ExpressionError(f"line {line}: only variables can be assigned, not attributes or items")
        if not _NAME.match(target.id) or target.id in expressions.CONSTANTS or target.id in expressions.SAFE_FUNCTIONS:
            raise ExpressionError(f"line {line}: {target.id!r} is a constant or function name and cannot be assigned")
        if declared.get(line) == target.id and not any(a.line == line for a in result):
            if target.id in locals_:
                raise ExpressionError(f"line {line}: {target.id!r} is declared twice: declare it once, then assign it")
            if any(a.target == target.id for a in result):
                raise ExpressionError(f"line {line}: {target.id!r} is declared after it was assigned as a process "
                                      "variable: declare it before its first assignment, or drop the declaration")
            locals_.add(target.id)
        segment = segment or ""
        if "\n" in segment:  # an expression continued over lines (inside brackets): one expression again
            segment = f"({segment})"
        try:
            compiled = expressions.compile_expression(segment)
        except ExpressionError as exc:
            raise ExpressionError(f"line {line} ({target.id} = ...): {exc}") from None
        result.append(Assignment(target.id, compiled, line, target.id in locals_))
    if not result:
        raise ExpressionError("the script is empty: write assignments such as 'total = price * quantity'")
    return Script(text, tuple(result))


def check_script(text: str) -> str | None:
    """None when the script is accepted, else the reason (for validation reports and the BPMN import)."""
    try:
        parse_script(text)
    except ExpressionError as exc:
        return str(exc)
    return None


def script_variables(text: str) -> set[str]:
    """The variables a script reads before assigning them (its inputs)."""
    script = parse_script(text)
    assigned: set[str] = set()
    reads: set[str] = set()
    for step in script.assignments:
        reads |= set(step.expression.names) - assigned
        assigned.add(step.target)
    return reads
