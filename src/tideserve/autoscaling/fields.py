"""Small checks shared by the request validators, with AWS's model-constraint wording."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tideserve.errors import ValidationError

Request = Mapping[str, Any]


def constraint(value: object, path: str, rule: str) -> ValidationError:
    """AWS's wording for a violated model constraint."""
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
        f"constraint: {rule}"
    )


def member_path(name: str) -> str:
    """AWS names the member camel-cased in these messages: MinCapacity → minCapacity."""
    return ".".join(part[:1].lower() + part[1:] for part in name.split("."))


def optional_int(request: Request, name: str, minimum: int | None = None,
                 path: str | None = None) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    where = member_path(path or name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise constraint(value, where, "Member must be an integer")
    if minimum is not None and value < minimum:
        raise constraint(value, where, f"Member must have value greater than or equal to {minimum}")
    return value


def optional_number(request: Request, name: str, path: str | None = None) -> float | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise constraint(value, member_path(path or name), "Member must be a finite number")
    return float(value)


def optional_str(request: Request, name: str, path: str | None = None) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise constraint(value, member_path(path or name), "Member must be a non-empty string")
    return value


def enum_value(value: object, allowed: tuple[str, ...] | list[str], path: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise constraint(value, member_path(path),
                         f"Member must satisfy enum value set: [{', '.join(allowed)}]")
    return value
