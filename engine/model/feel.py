"""The common subset of FEEL (DMN 1.3 §10, the expression language Camunda 8 writes), read as conditions.

FEEL is a second condition language beside ours (``engine.model.expressions``): a FEEL text is translated into
the same syntax tree our conditions parse to, so it is checked by the same rules and limits and evaluated by
the same bounded evaluator, in the engine and the simulator alike. Nothing is ``eval``-ed. The subset::

    Vacation Approval = "Approved"                  # '=' and '!=' compare; names may contain spaces
    amount >= 1000 and not(approved)                # and, or, not(...); < <= > >=; + - * / **
    riskLevel in ["red", "yellow"]                  # in a list, a range [1..5] / (1..5) / ]1..5[, or = a value
    x between 1 and 10
    some risk in riskLevels satisfies risk = "red"  # some / every ... in ... satisfies
    if result != null then result.riskLevel else ["green"]
    string length(name) > 3                         # count, string length, min, max, abs, lower/upper case,
                                                    # string, number

with strings in double quotes, numbers, ``true``/``false``/``null``, lists ``[a, b]``, paths ``a.b`` (a
context's entry: ``a["b"]``). A name is the longest run of words that are not keywords (``Vacation Approval`` is
the variable of that name, DMN 1.3 §10.3.1.2); anything else (temporal values, contexts, filters, function
definitions, ``for`` loops, ``instance of``) is refused with what is not in the subset. Zeebe marks a FEEL
expression with a leading ``=``, which ``expressions.parse`` drops before calling ``parse`` here.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass

from engine.errors import ExpressionError

KEYWORDS = {"and", "or", "in", "some", "every", "satisfies", "if", "then", "else", "between", "true", "false",
            "null", "for", "return", "instance", "of", "function"}
# FEEL built-in functions of the subset -> our SAFE_FUNCTIONS (DMN 1.3 §10.3.4)
FUNCTIONS = {"count": "len", "string length": "len", "min": "min", "max": "max", "abs": "abs",
             "lower case": "lower", "upper case": "upper", "string": "str", "number": "float"}
SUBSET = "comparisons, and/or/not(), arithmetic, lists, ranges, in, between, some/every, if/then/else, a.b"

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<number>\d+(?:\.\d+)?|\.\d+)
  | (?P<word>[A-Za-z_?][\w?]*)
  | (?P<op>\.\.|\*\*|!=|<=|>=|[=<>+\-*/(),.\[\]{}:])
""", re.VERBOSE)
_COMPARE = {"=": ast.Eq, "!=": ast.NotEq, "<": ast.Lt, "<=": ast.LtE, ">": ast.Gt, ">=": ast.GtE}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "string", "number", "name", "keyword", "op", "end"
    text: str
    column: int  # 1-based
    value: object = None


def tokens(text: str) -> list[Token]:
    """Split a FEEL text; consecutive words that are not keywords join into one name (``Vacation Approval``)."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"FEEL: unexpected {text[pos]!r} at column {pos + 1}")
        kind = match.lastgroup or ""
        word = match.group(0)
        if kind == "string":
            out.append(Token("string", word, pos + 1, _unescape(word[1:-1], pos + 1)))
        elif kind == "number":
            out.append(Token("number", word, pos + 1, float(word) if "." in word else int(word)))
        elif kind == "word":
            if word in KEYWORDS or word == "not":
                out.append(Token("keyword", word, pos + 1))
            elif out and out[-1].kind == "name" and text[pos - 1].isspace():
                last = out[-1]
                out[-1] = Token("name", f"{last.text} {word}", last.column)  # a name with spaces
            elif keyword.iskeyword(word):  # 'import os', 'lambda x': code, not a name
                raise ExpressionError(f"FEEL: {word!r} at column {pos + 1} is a Python keyword: this is code, not an "
                                      "expression")
            else:
                out.append(Token("name", word, pos + 1))
        elif kind == "op":
            out.append(Token("op", word, pos + 1))
        pos = match.end()
    out.append(Token("end", "", len(text) + 1))
    return out


def _unescape(body: str, column: int) -> str:
    result: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            result.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            result.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif nxt in _ESCAPES:
            result.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ExpressionError(f"FEEL: unknown escape '\\{nxt}' in the string at column {column}")
    return "".join(result)


def parse(text: str) -> ast.Expression:
    """A FEEL text as our conditions' syntax tree (``ast.Expression``); ``ExpressionError`` with the column and
    what is not in the subset otherwise."""
    if not text.strip():
        raise ExpressionError("FEEL: the expression is empty")
    parser = _Parser(tokens(text))
    body = parser.expression()
    parser.expect_end()
    return ast.Expression(body=body)


class _Parser:
    """Recursive descent over DMN 1.3's grammar (§10.3.1.2), the subset in the module docstring."""

    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.pos = 0

    # --- helpers -------------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.pos]

    def take(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (text is None or tok.text == text)

    def accept(self, kind: str, text: str) -> bool:
        if self.at(kind, text):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.accept(kind, text):
            raise self.error(f"expected {text!r}")

    def error(self, what: str) -> ExpressionError:
        tok = self.tok
        found = "the end" if tok.kind == "end" else repr(tok.text)
        return ExpressionError(f"FEEL: {what}, found {found} at column {tok.column}")

    def expect_end(self) -> None:
        if not self.at("end"):
            raise self.error("expected the end of the expression")

    # --- grammar -------------------------------------------------------------------------------

    def expression(self) -> ast.expr:
        if self.accept("keyword", "if"):
            test = self.expression()
            self.expect("keyword", "then")
            body = self.expression()
            self.expect("keyword", "else")
            return ast.IfExp(test=test, body=body, orelse=self.expression())
        if self.at("keyword", "some") or self.at("keyword", "every"):
            return self.quantified()
        for word in ("for", "function"):
            if self.at("keyword", word):
                raise self.error(f"'{word}' expressions are not in the FEEL subset ({SUBSET})")
        return self.disjunction()

    def quantified(self) -> ast.expr:
        """``some x in xs satisfies p`` -> ``len([1 for x in xs if p]) > 0``; ``every`` -> ``... if not p]) == 0``
        (DMN 1.3 §10.3.2.10: every is true for an empty list, some false)."""
        some = self.take().text == "some"
        generators: list[ast.comprehension] = []
        while True:
            if not self.at("name"):
                raise self.error("expected a name after some/every")
            name = self.take().text
            self.expect("keyword", "in")
            source = self.disjunction()
            generators.append(ast.comprehension(target=ast.Name(id=name, ctx=ast.Store()), iter=source, ifs=[],
                                                is_async=0))
            if not self.accept("op", ","):
                break
        self.expect("keyword", "satisfies")
        test = self.expression()
        generators[-1].ifs = [test if some else ast.UnaryOp(op=ast.Not(), operand=test)]
        count = ast.Call(func=ast.Name(id="len", ctx=ast.Load()),
                         args=[ast.ListComp(elt=ast.Constant(value=1), generators=generators)], keywords=[])
        return ast.Compare(left=count, ops=[ast.Gt() if some else ast.Eq()], comparators=[ast.Constant(value=0)])

    def disjunction(self) -> ast.expr:
        values = [self.conjunction()]
        while self.accept("keyword", "or"):
            values.append(self.conjunction())
        return values[0] if len(values) == 1 else ast.BoolOp(op=ast.Or(), values=values)

    def conjunction(self) -> ast.expr:
        values = [self.comparison()]
        while self.accept("keyword", "and"):
            values.append(self.comparison())
        return values[0] if len(values) == 1 else ast.BoolOp(op=ast.And(), values=values)

    def comparison(self) -> ast.expr:
        left = self.additive()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE:
            self.take()
            return ast.Compare(left=left, ops=[_COMPARE[tok.text]()], comparators=[self.additive()])
        if self.accept("keyword", "between"):
            low = self.additive()
            self.expect("keyword", "and")
            high = self.additive()
            return ast.Compare(left=low, ops=[ast.LtE(), ast.LtE()], comparators=[left, high])
        if self.accept("keyword", "in"):
            return self.membership(left)
        if self.at("keyword", "instance"):
            raise self.error(f"'instance of' is not in the FEEL subset ({SUBSET})")
        return left

    def membership(self, left: ast.expr) -> ast.expr:
        """``x in [1..5]`` (a range, ``(``/``]`` open ends), ``x in [a, b]`` (one of), ``x in y`` (equal to y,
        or an element of the list y)."""
        start = self.pos
        if self.at("op", "(") or self.at("op", "[") or self.at("op", "]"):
            opener = self.take().text
            low = self.additive()
            if self.accept("op", ".."):
                high = self.additive()
                if not (self.at("op", "]") or self.at("op", ")") or self.at("op", "[")):
                    raise self.error("expected ']' or ')' closing the range")
                closer = self.take().text
                low_op = ast.LtE() if opener == "[" else ast.Lt()
                high_op = ast.LtE() if closer == "]" else ast.Lt()
                return ast.Compare(left=low, ops=[low_op, high_op], comparators=[left, high])
            self.pos = start
        right = self.additive()
        if isinstance(right, ast.List):
            return ast.Compare(left=left, ops=[ast.In()], comparators=[right])
        return ast.Compare(left=left, ops=[ast.Eq()], comparators=[right])

    def additive(self) -> ast.expr:
        node = self.multiplicative()
        while self.at("op", "+") or self.at("op", "-"):
            op = ast.Add() if self.take().text == "+" else ast.Sub()
            node = ast.BinOp(left=node, op=op, right=self.multiplicative())
        return node

    def multiplicative(self) -> ast.expr:
        node = self.power()
        while self.at("op", "*") or self.at("op", "/"):
            op = ast.Mult() if self.take().text == "*" else ast.Div()
            node = ast.BinOp(left=node, op=op, right=self.power())
        return node

    def power(self) -> ast.expr:
        node = self.unary()
        if self.accept("op", "**"):
            return ast.BinOp(left=node, op=ast.Pow(), right=self.power())
        return node

    def unary(self) -> ast.expr:
        if self.accept("op", "-"):
            return ast.UnaryOp(op=ast.USub(), operand=self.unary())
        return self.postfix()

    def postfix(self) -> ast.expr:
        node = self.primary()
        while True:
            if self.accept("op", "."):
                if not self.at("name"):
                    raise self.error("expected a name after '.'")
                node = ast.Subscript(value=node, slice=ast.Constant(value=self.take().text), ctx=ast.Load())
            elif self.at("op", "["):
                raise self.error(f"filters and indexes (a[...]) are not in the FEEL subset ({SUBSET})")
            else:
                return node

    def primary(self) -> ast.expr:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.take()
            return ast.Constant(value=tok.value)
        if tok.kind == "keyword" and tok.text in ("true", "false", "null"):
            self.take()
            return ast.Constant(value={"true": True, "false": False, "null": None}[tok.text])
        if tok.kind == "keyword" and tok.text == "not":
            self.take()
            self.expect("op", "(")
            operand = self.expression()
            self.expect("op", ")")
            return ast.UnaryOp(op=ast.Not(), operand=operand)
        if self.accept("op", "("):
            inner = self.expression()
            self.expect("op", ")")
            return inner
        if self.accept("op", "["):
            items: list[ast.expr] = []
            if not self.at("op", "]"):
                items.append(self.expression())
                while self.accept("op", ","):
                    items.append(self.expression())
            self.expect("op", "]")
            return ast.List(elts=items, ctx=ast.Load())
        if tok.kind == "name":
            self.take()
            if self.at("op", "("):
                return self.call(tok)
            return ast.Name(id=tok.text, ctx=ast.Load())
        if tok.kind == "op" and tok.text == "{":
            raise self.error(f"contexts ({{...}}) are not in the FEEL subset ({SUBSET})")
        raise self.error("expected a value")

    def call(self, tok: Token) -> ast.expr:
        target = FUNCTIONS.get(tok.text)
        if target is None:
            raise ExpressionError(f"FEEL: the function {tok.text!r} at column {tok.column} is not in the subset "
                                  f"(functions: {', '.join(sorted(FUNCTIONS))})")
        self.expect("op", "(")
        args: list[ast.expr] = []
        if not self.at("op", ")"):
            args.append(self.expression())
            while self.accept("op", ","):
                args.append(self.expression())
        self.expect("op", ")")
        return ast.Call(func=ast.Name(id=target, ctx=ast.Load()), args=args, keywords=[])
