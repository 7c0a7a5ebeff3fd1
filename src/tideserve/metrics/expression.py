"""Metric math, arithmetic subset: numbers, query ids, + - * / ^, unary minus, parentheses
(CW-UG using-metric-math). Enough for `m1 / 4` (CPU per core) or `(e1 + e2) * 100 / m3`.

Semantics carried over: between two series a missing timestamp on one side counts as 0;
division by zero (or any undefined result) drops that point. Functions (SUM, FILL, ...) are not
supported: `UnsupportedExpression` lets the caller answer StatusCode InternalError.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping

Series = dict[float, float]  # period start -> value
Value = float | Series

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
_OPS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "^": operator.pow,
}


class ExpressionError(ValueError):
    """The expression is malformed or names an unknown query."""


class UnsupportedExpression(ValueError):
    """Valid metric math we do not implement (functions, SEARCH, Insights SQL)."""


def evaluate(expression: str, series: Mapping[str, Series]) -> Series:
    """Evaluate against the named series; the result must be a series."""
    parser = _Parser(_tokens(expression), series)
    result = parser.expr()
    if parser.peek() is not None:
        raise ExpressionError(f"Unexpected {parser.peek()!r} in expression {expression!r}")
    if not isinstance(result, dict):
        raise ExpressionError("The final result of an expression must be a time series.")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for number, name, other in _TOKEN.findall(text):
        if number:
            out.append(("num", number))
        elif name:
            out.append(("id", name))
        elif other.strip():
            out.append(("op", other))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], series: Mapping[str, Series]) -> None:
        self._tokens = tokens
        self._pos = 0
        self._series = series

    def peek(self) -> str | None:
        return self._tokens[self._pos][1] if self._pos < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._pos >= len(self._tokens):
            raise ExpressionError("Unexpected end of expression")
        self._pos += 1
        return self._tokens[self._pos - 1]

    def expr(self) -> Value:
        left = self._term()
        while self.peek() in ("+", "-"):
            left = _apply(self._take()[1], left, self._term())
        return left

    def _term(self) -> Value:
        left = self._power()
        while self.peek() in ("*", "/"):
            left = _apply(self._take()[1], left, self._power())
        return left

    def _power(self) -> Value:
        base = self._unary()
        if self.peek() == "^":
            self._take()
            return _apply("^", base, self._power())  # right-associative
        return base

    def _unary(self) -> Value:
        if self.peek() == "-":
            self._take()
            return _apply("*", -1.0, self._unary())
        return self._atom()

    def _atom(self) -> Value:
        kind, text = self._take()
        if kind == "num":
            return float(text)
        if kind == "id":
            if self.peek() == "(":
                raise UnsupportedExpression(f"Metric math function {text} is not supported yet")
            if text not in self._series:
                raise ExpressionError(f"Unknown metric id {text!r} in expression")
            return dict(self._series[text])
        if text == "(":
            inner = self.expr()
            if self._take()[1] != ")":
                raise ExpressionError("Missing ')' in expression")
            return inner
        raise ExpressionError(f"Unexpected {text!r} in expression")


def _safe(op: str, a: float, b: float) -> float | None:
    try:
        v = _OPS[op](a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    return v if isinstance(v, float | int) and math.isfinite(v) else None


def _apply(op: str, a: Value, b: Value) -> Value:
    if not isinstance(a, dict) and not isinstance(b, dict):
        v = _safe(op, a, b)
        if v is None:
            raise ExpressionError(f"Undefined scalar result for {a} {op} {b}")
        return v
    stamps = set(a) if isinstance(a, dict) else set()
    stamps |= set(b) if isinstance(b, dict) else set()
    out: Series = {}
    for t in sorted(stamps):
        x = a.get(t, 0.0) if isinstance(a, dict) else a
        y = b.get(t, 0.0) if isinstance(b, dict) else b
        v = _safe(op, x, y)
        if v is not None:
            out[t] = float(v)
    return out
