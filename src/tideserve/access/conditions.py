"""IAM Condition blocks: the operators tideserve evaluates, and their rules (IAM User Guide,
condition operators and multivalued context keys).

    operators are ANDed; keys under one operator are ANDed; a key's values are ORed — except
    for negated operators (StringNotEquals, ArnNotLike, NotIpAddress...), where the request
    value must match none of them
    a key absent from the request: false, except `...IfExists` (true) and `Null`
    (`"true"` iff absent); `ForAllValues:` is true for an absent key, `ForAnyValue:` false

Supported: String(Not)Equals(IgnoreCase), String(Not)Like, Numeric*, Date*, Bool,
(Not)IpAddress, Arn(Not)Equals/Like, Null, with IfExists and the two set qualifiers. Any other
operator is refused when the policy is stored, so no policy silently means less than it says.
Context keys are matched case-insensitively (stored lower-cased).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ContextValue = str | list[str]


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _compare(convert: Callable[[str], float], test: Callable[[float, float], bool]
             ) -> Callable[[str, str], bool]:
    def check(policy: str, value: str) -> bool:
        try:
            return test(convert(value), convert(policy))
        except (ValueError, TypeError):
            return False
    return check


def _in_network(policy: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False


# operator -> (matches(policy value, request value), negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (lambda p, v: p == v, False),
    "ArnNotEquals": (lambda p, v: p == v, True),
    "ArnLike": (_like, False),
    "ArnNotLike": (_like, True),
    "NumericEquals": (_compare(_number, lambda v, p: v == p), False),
    "NumericNotEquals": (_compare(_number, lambda v, p: v == p), True),
    "NumericLessThan": (_compare(_number, lambda v, p: v < p), False),
    "NumericLessThanEquals": (_compare(_number, lambda v, p: v <= p), False),
    "NumericGreaterThan": (_compare(_number, lambda v, p: v > p), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda v, p: v >= p), False),
    "DateEquals": (_compare(_date, lambda v, p: v == p), False),
    "DateNotEquals": (_compare(_date, lambda v, p: v == p), True),
    "DateLessThan": (_compare(_date, lambda v, p: v < p), False),
    "DateLessThanEquals": (_compare(_date, lambda v, p: v <= p), False),
    "DateGreaterThan": (_compare(_date, lambda v, p: v > p), False),
    "DateGreaterThanEquals": (_compare(_date, lambda v, p: v >= p), False),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
    "IpAddress": (_in_network, False),
    "NotIpAddress": (_in_network, True),
}


@dataclass(frozen=True)
class Condition:
    operator: str  # the base operator, e.g. StringEquals
    key: str  # lower-cased context key
    values: tuple[str, ...]
    if_exists: bool = False
    qualifier: str = ""  # "", "ForAnyValue", "ForAllValues"

    def holds(self, context: Mapping[str, ContextValue]) -> bool:
        present = context.get(self.key)
        if self.operator == "Null":
            return (present is None) == (self.values[0].lower() == "true")
        if present is None or present == []:
            return self.if_exists or self.qualifier == "ForAllValues"
        matches, negated = _OPERATORS[self.operator]
        requested = present if isinstance(present, list) else [present]

        def one(value: str) -> bool:
            hit = any(matches(p, value) for p in self.values)
            return not hit if negated else hit
        if self.qualifier == "ForAllValues":
            return all(one(v) for v in requested)
        return any(one(v) for v in requested)


def parse_conditions(raw: Any, malformed: Callable[[str], Exception]) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise malformed("Syntax errors in policy.")
    found: list[Condition] = []
    for name, block in raw.items():
        qualifier, _, operator = name.rpartition(":")
        if_exists = operator.endswith("IfExists") and operator != "IfExists"
        base = operator.removesuffix("IfExists") if if_exists else operator
        if qualifier not in ("", "ForAnyValue", "ForAllValues") or \
                (base not in _OPERATORS and base != "Null") or (if_exists and base == "Null"):
            raise malformed(f"Invalid Condition type : {name}.")
        if not isinstance(block, dict) or not block:
            raise malformed("Syntax errors in policy.")
        for key, value in block.items():
            found.append(Condition(base, key.lower(), _values(value, malformed), if_exists,
                                   qualifier))
    return tuple(found)


def _values(value: Any, malformed: Callable[[str], Exception]) -> tuple[str, ...]:
    values: Sequence[Any] = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str | int | float | bool) for v in values):
        raise malformed("Syntax errors in policy.")
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
