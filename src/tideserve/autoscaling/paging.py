"""Opaque NextToken pagination for the Describe* operations (an offset, base64-wrapped)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tideserve.errors import ValidationError

T = TypeVar("T")
_PREFIX = "tideserve-page:"


def page(
    items: Sequence[T],
    params: Mapping[str, Any],
    *,
    size_field: str = "MaxResults",
    default_size: int = 50,
    invalid_code: str = "InvalidNextTokenException",
) -> tuple[list[T], str | None]:
    """One page of `items` and the token for the next, if any. A token this server did not
    issue is `invalid_code` (AAS: InvalidNextTokenException; CloudWatch: InvalidNextToken)."""
    start = _offset(params.get("NextToken"), invalid_code)
    size = int(params.get(size_field) or default_size)
    end = start + size
    return list(items[start:end]), _token(end) if end < len(items) else None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def _offset(token: object, code: str) -> int:
    if token is None or token == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        offset = int(text[len(_PREFIX):])
        if offset < 0:
            raise ValueError(text)
        return offset
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationError(f"Invalid NextToken: {token}", code=code) from None
