"""Cost Explorer's filter Expression, validated once into a typed tree and evaluated against a
usage record's facts (its dimension values and tags).

An Expression holds exactly one of And, Or, Not, Dimensions, Tags, CostCategories (AWS
rejects mixes). A leaf matches when its key's value satisfies any of its Values under its
MatchOptions: EQUALS by default, or STARTS_WITH / ENDS_WITH / CONTAINS; CASE_SENSITIVE by
default, CASE_INSENSITIVE on request; ABSENT (tags, cost categories) matches records without
the key. A tag Value of "" also matches an untagged record, the way GroupBy writes it (`key$`).
Nothing here defines cost categories, so a CostCategories leaf matches only through ABSENT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tideserve.cost.attribution import DIMENSIONS, Facts
from tideserve.errors import ValidationError

_MEMBERS: Final = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories")
_MATCHES: Final = ("EQUALS", "STARTS_WITH", "ENDS_WITH", "CONTAINS")
_CASES: Final = ("CASE_SENSITIVE", "CASE_INSENSITIVE")
MAX_DEPTH: Final = 10


@dataclass(frozen=True)
class Leaf:
    kind: str  # "Dimensions" | "Tags" | "CostCategories"
    key: str
    values: tuple[str, ...]
    match: str  # one of _MATCHES
    case_sensitive: bool
    absent: bool  # ABSENT given: a record without the key matches


@dataclass(frozen=True)
class Combine:
    op: str  # "And" | "Or"
    parts: tuple[Expression, ...]


@dataclass(frozen=True)
class Negate:
    part: Expression


Expression = Leaf | Combine | Negate


def parse(expr: Any, path: str = "Filter", depth: int = 0) -> Expression:
    if not isinstance(expr, Mapping):
        raise ValidationError(f"{path} must be an Expression object.")
    if depth > MAX_DEPTH:
        raise ValidationError(f"{path} nests deeper than {MAX_DEPTH} levels.")
    given = [m for m in _MEMBERS if expr.get(m) is not None]
    if len(given) != 1:
        raise ValidationError(
            f"Expression at {path} must have exactly one of {', '.join(_MEMBERS)}; "
            f"it has {', '.join(given) or 'none'}."
        )
    member = given[0]
    inner = expr[member]
    if member == "Not":
        return Negate(parse(inner, f"{path}.Not", depth + 1))
    if member in ("And", "Or"):
        if not isinstance(inner, list) or len(inner) < 2:
            raise ValidationError(f"{path}.{member} must list at least two Expressions.")
        return Combine(member, tuple(
            parse(e, f"{path}.{member}[{i}]", depth + 1) for i, e in enumerate(inner)
        ))
    return _leaf(member, inner, f"{path}.{member}")


def _leaf(kind: str, body: Any, path: str) -> Leaf:
    if not isinstance(body, Mapping) or not body.get("Key"):
        raise ValidationError(f"{path}.Key is required.")
    key = str(body["Key"])
    if kind == "Dimensions" and key not in DIMENSIONS:
        raise ValidationError(
            f"Dimension {key} at {path}.Key is not supported by tideserve; "
            f"supported: {', '.join(DIMENSIONS)}."
        )
    values = tuple(str(v) for v in body.get("Values") or ())
    options = [str(o) for o in body.get("MatchOptions") or ()]
    known = (*_MATCHES, *_CASES, "ABSENT")
    for option in options:
        if option not in known:
            raise ValidationError(
                f"MatchOption {option} at {path}.MatchOptions is not supported; "
                f"supported: {', '.join(known)}."
            )
    absent = "ABSENT" in options
    if absent and kind == "Dimensions":
        raise ValidationError(f"ABSENT at {path}.MatchOptions applies to tags only.")
    matches = [o for o in options if o in _MATCHES] or ["EQUALS"]
    if len(matches) > 1:
        raise ValidationError(f"{path}.MatchOptions may name one of {', '.join(_MATCHES)}.")
    if not values and not absent:
        raise ValidationError(f"{path}.Values needs at least one value (or MatchOptions ABSENT).")
    return Leaf(kind, key, values, matches[0], "CASE_INSENSITIVE" not in options, absent)


def matches(expr: Expression, facts: Facts) -> bool:
    if isinstance(expr, Negate):
        return not matches(expr.part, facts)
    if isinstance(expr, Combine):
        results = (matches(p, facts) for p in expr.parts)
        return all(results) if expr.op == "And" else any(results)
    return _leaf_matches(expr, facts)


def _leaf_matches(leaf: Leaf, facts: Facts) -> bool:
    source: Mapping[str, str] = {}
    if leaf.kind == "Dimensions":
        source = facts.dimensions
    elif leaf.kind == "Tags":
        source = facts.tags
    value = source.get(leaf.key)
    if value is None:
        return leaf.absent or (leaf.kind == "Tags" and "" in leaf.values)
    return any(_compare(leaf, value, wanted) for wanted in leaf.values)


def _compare(leaf: Leaf, value: str, wanted: str) -> bool:
    if not leaf.case_sensitive:
        value, wanted = value.casefold(), wanted.casefold()
    if leaf.match == "STARTS_WITH":
        return value.startswith(wanted)
    if leaf.match == "ENDS_WITH":
        return value.endswith(wanted)
    if leaf.match == "CONTAINS":
        return wanted in value
    return value == wanted
