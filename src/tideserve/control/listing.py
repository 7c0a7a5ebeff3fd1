"""Filtering, sorting and pagination shared by the List* operations."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from tideserve.errors import ValidationError

T = TypeVar("T")


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"Invalid pagination token '{token}'.") from None


def page(
    items: Sequence[T], params: dict[str, Any], default_max: int = 10
) -> tuple[list[T], str | None]:
    start = decode_token(params.get("NextToken"))
    size = int(params.get("MaxResults") or default_max)
    chunk = list(items[start : start + size])
    more = start + size < len(items)
    return chunk, encode_token(start + size) if more else None


def epoch(value: datetime | float | int | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def filter_and_sort(
    items: list[T],
    params: dict[str, Any],
    *,
    name: Callable[[T], str],
    created: Callable[[T], float],
    modified: Callable[[T], float] | None = None,
    status: Callable[[T], str] | None = None,
) -> list[T]:
    """NameContains, Creation/LastModifiedTime Before/After, StatusEquals, SortBy, SortOrder,
    with AWS's default order: CreationTime, Descending."""
    out = items
    if params.get("NameContains"):
        needle = params["NameContains"].lower()
        out = [i for i in out if needle in name(i).lower()]
    for key, fn, before in (
        ("CreationTimeBefore", created, True),
        ("CreationTimeAfter", created, False),
        ("LastModifiedTimeBefore", modified, True),
        ("LastModifiedTimeAfter", modified, False),
    ):
        bound = epoch(params.get(key))
        if bound is not None and fn is not None:
            out = [i for i in out if (fn(i) < bound if before else fn(i) > bound)]
    if params.get("StatusEquals") and status is not None:
        out = [i for i in out if status(i) == params["StatusEquals"]]
    sort_by = params.get("SortBy") or "CreationTime"
    key_fn: Callable[[T], Any] = {
        "Name": lambda i: name(i).lower(),
        "CreationTime": created,
        "Status": status or name,
    }.get(sort_by, created)
    descending = (params.get("SortOrder") or "Descending") == "Descending"
    return sorted(out, key=key_fn, reverse=descending)
