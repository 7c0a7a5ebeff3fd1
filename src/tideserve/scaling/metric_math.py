"""The metric math a predictive policy's customized load metric may use, pure: arithmetic over
the other queries' ids and numbers (`m1 + m2`, `(a + b) / 2`, `m1 * 60`), per bin.

CloudWatch's full metric math (SEARCH, FILL, functions) is not evaluated; such an expression is
reported as unsupported and the policy falls back to its reactive partners. Bins missing from
any series the expression reads are missing from the result, as in CloudWatch, where an
operation with a missing operand yields no value; division by zero drops the bin too.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

Series = Mapping[float, float]
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}

_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load, ast.USub,
            ast.UAdd, *_OPS)


class UnsupportedExpression(ValueError):
    """The expression uses more than arithmetic over ids and numbers."""


def referenced_ids(expression: str) -> set[str]:
    """The query ids an arithmetic expression reads; UnsupportedExpression otherwise."""
    tree = _parse(expression)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def evaluate(expression: str, series: Mapping[str, Series]) -> dict[float, float]:
    """The expression per bin over the bins every series it reads has."""
    tree = _parse(expression)
    ids = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if not ids:
        raise UnsupportedExpression(f"{expression!r} reads no metric")
    missing = ids - set(series)
    if missing:
        raise UnsupportedExpression(f"{expression!r} reads unknown ids {sorted(missing)}")
    bins = set.intersection(*(set(series[i]) for i in ids))
    out = {}
    for b in sorted(bins):
        try:
            out[b] = _value(tree.body, {i: series[i][b] for i in ids})
        except ZeroDivisionError:
            continue
    return out


def _parse(expression: str) -> ast.Expression:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise UnsupportedExpression(f"{expression!r} is not arithmetic") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise UnsupportedExpression(
                f"{expression!r}: only + - * / over query ids and numbers are evaluated")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise UnsupportedExpression(f"{expression!r}: {node.value!r} is not a number")
    return tree


def _value(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.BinOp):
        return _OPS[type(node.op)](_value(node.left, values), _value(node.right, values))
    if isinstance(node, ast.UnaryOp):
        v = _value(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name):
        return values[node.id]
    assert isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    return float(node.value)
