"""Input validation against botocore shapes, worded as AWS words it, before any handler runs.

    1 validation error detected: Value 'bad name!' at 'endpointName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

Paths are the AWS member names with the first letter lowered, list elements of structures as
`productionVariants.1.member.variantName` (1-based). As AWS does, a list of scalars is reported
once at the list (`Member must satisfy constraint: [Member must satisfy enum value set: ...]`)
and a map once per side (`Map keys must satisfy constraint: [...]`). Members marked sensitive
are reported without their value. Unknown members never get here (decoding drops them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.model import Shape

from tideserve.api.javaregex import UnsupportedPattern, compile_java
from tideserve.api.shapes import lower_camel
from tideserve.errors import ValidationError

log = logging.getLogger(__name__)
_SCALARS = {"string", "integer", "long", "float", "double", "boolean", "timestamp", "blob"}


@dataclass(frozen=True)
class Violation:
    path: str  # 'productionVariants.1.member.variantName'
    value: str | None  # as AWS prints it, quotes included ("'x'", "null"); None: not shown
    constraint: str  # 'Member must not be null'
    missing_member: str | None = None  # the AWS member name, when a required one is absent

    def __str__(self) -> str:
        shown = "" if self.value is None else f" {self.value}"
        return f"Value{shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


class ShapeValidationError(ValidationError):
    """The input broke the model's constraints. The wire adapter picks the code per service
    (`ValidationException`; CloudWatch's query-compatible `ValidationError`/`MissingParameter`)."""

    def __init__(self, violations: list[Violation]) -> None:
        count = len(violations)
        noun = "validation error" if count == 1 else "validation errors"
        text = f"{count} {noun} detected: " + "; ".join(str(v) for v in violations)
        super().__init__(text)
        self.violations = violations


def check(shape: Shape | None, value: dict[str, Any]) -> None:
    """Raise ShapeValidationError listing every violation in `value` (a decoded input)."""
    if shape is None:
        return
    violations = list(_structure(shape, value, ""))
    if violations:
        raise ShapeValidationError(violations)


def violations_of(shape: Shape, value: dict[str, Any]) -> list[Violation]:
    return list(_structure(shape, value, ""))


def _structure(shape: Shape, value: dict[str, Any], path: str) -> Iterator[Violation]:
    if shape.is_document_type:
        return
    required = shape.required_members
    for name, member in shape.members.items():
        member_path = f"{path}.{lower_camel(name)}" if path else lower_camel(name)
        item = value.get(name)
        if item is None:
            if name in required:
                yield Violation(member_path, "null", "Member must not be null", name)
            continue
        yield from _value(member, item, member_path)


def _value(shape: Shape, value: Any, path: str) -> Iterator[Violation]:
    kind = shape.type_name
    if kind == "structure":
        yield from _structure(shape, value, path)
    elif kind == "list":
        yield from _list(shape, value, path)
    elif kind == "map":
        yield from _map(shape, value, path)
    else:
        shown = _shown(shape, value)
        for constraint in scalar_constraints(shape, value):
            yield Violation(path, shown, constraint)


def _list(shape: Shape, value: list[Any], path: str) -> Iterator[Violation]:
    shown = _shown(shape, value)
    for constraint in _size_constraints(shape, len(value)):
        yield Violation(path, shown, constraint)
    member = shape.member
    if member.type_name in _SCALARS:
        failed = _distinct(c for item in value for c in scalar_constraints(member, item))
        if failed:
            yield Violation(path, shown, f"Member must satisfy constraint: [{', '.join(failed)}]")
        return
    for index, item in enumerate(value, 1):
        yield from _value(member, item, f"{path}.{index}.member")


def _map(shape: Shape, value: dict[Any, Any], path: str) -> Iterator[Violation]:
    shown = _shown(shape, value)
    for constraint in _size_constraints(shape, len(value)):
        yield Violation(path, shown, constraint)
    bad_keys = _distinct(c for key in value for c in scalar_constraints(shape.key, key))
    if bad_keys:
        yield Violation(path, shown, f"Map keys must satisfy constraint: [{', '.join(bad_keys)}]")
    if shape.value.type_name in _SCALARS:
        bad = _distinct(c for item in value.values() for c in scalar_constraints(shape.value, item))
        if bad:
            yield Violation(path, shown, f"Map value must satisfy constraint: [{', '.join(bad)}]")
        return
    for key, item in value.items():
        yield from _value(shape.value, item, f"{path}.{key}")


def scalar_constraints(shape: Shape, value: Any) -> list[str]:
    """The constraint messages `value` breaks, in AWS's words (empty when it is fine)."""
    kind = shape.type_name
    meta = shape.metadata
    failed: list[str] = []
    if kind == "string":
        pattern = meta.get("pattern")
        if pattern is not None and not _matches(pattern, value) and not _local_uri(shape, value):
            failed.append(f"Member must satisfy regular expression pattern: {pattern}")
        enum = meta.get("enum")
        if enum and value not in enum:
            failed.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        failed.extend(_size_constraints(shape, len(value)))
    elif kind == "blob":
        failed.extend(_size_constraints(shape, len(value)))
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            failed.append(f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            failed.append(f"Member must have value less than or equal to {meta['max']}")
    return failed


def _size_constraints(shape: Shape, size: int) -> list[str]:
    meta = shape.metadata
    failed = []
    if "min" in meta and size < meta["min"]:
        failed.append(f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        failed.append(f"Member must have length less than or equal to {meta['max']}")
    return failed


# tideserve serves models from this machine too: where AWS takes an S3 URI for model data, a
# file:// URL or an absolute path is accepted as well.
_LOCAL_URI_SHAPES = frozenset({"Url", "S3Uri", "S3ModelUri"})


def _local_uri(shape: Shape, value: str) -> bool:
    return shape.name in _LOCAL_URI_SHAPES and (
        value.startswith("file://") or value.startswith("/")
    )


def _matches(pattern: str, value: str) -> bool:
    try:
        return compile_java(pattern).fullmatch(value) is not None
    except UnsupportedPattern:
        log.warning("not enforcing a pattern Python cannot express: %r", pattern)
        return True


def _distinct(items: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _shown(shape: Shape, value: Any) -> str | None:
    if _sensitive(shape):
        return None
    return f"'{_java_text(value)}'"


def _sensitive(shape: Shape) -> bool:
    """A sensitive shape, or a list or map that holds sensitive values, is never echoed."""
    parts = [shape]
    if shape.type_name == "list":
        parts.append(shape.member)
    elif shape.type_name == "map":
        parts += [shape.key, shape.value]
    return any(part.metadata.get("sensitive") for part in parts)


def _java_text(value: Any) -> str:
    """Roughly Java's toString, which is what AWS's messages print."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_text(k)}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)
