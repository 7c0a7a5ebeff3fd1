"""Filtering, sorting and pagination shared by the List* operations."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ListQuery:
    """The List* operations' common members, parsed once: NameContains, CreationTime and
    LastModifiedTime Before/After (epoch seconds), StatusEquals, SortBy, SortOrder,
    NextToken (as the offset it encodes) and MaxResults."""

    name_contains: str | None = None
    creation_time_before: float | None = None
    creation_time_after: float | None = None
    last_modified_time_before: float | None = None
    last_modified_time_after: float | None = None
    status_equals: str | None = None
    sort_by: str = "CreationTime"  # AWS's default order: CreationTime, Descending
    sort_order: str = "Descending"
    offset: int = 0
    max_results: int | None = None

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> ListQuery:
        return cls(
            name_contains=p.get("NameContains") or None,
            creation_time_before=epoch(p.get("CreationTimeBefore")),
            creation_time_after=epoch(p.get("CreationTimeAfter")),
            last_modified_time_before=epoch(p.get("LastModifiedTimeBefore")),
            last_modified_time_after=epoch(p.get("LastModifiedTimeAfter")),
            status_equals=p.get("StatusEquals") or None,
            sort_by=p.get("SortBy") or "CreationTime",
            sort_order=p.get("SortOrder") or "Descending",
            offset=decode_token(p.get("NextToken")),
            max_results=int(p["MaxResults"]) if p.get("MaxResults") else None,
        )

    def page(self, items: Sequence[T], default_max: int = 10) -> tuple[list[T], str | None]:
        """One page of `items` and the NextToken of the next, if any."""
        size = self.max_results or default_max
        chunk = list(items[self.offset : self.offset + size])
        more = self.offset + size < len(items)
        return chunk, encode_token(self.offset + size) if more else None

    def response(self, key: str, items: Sequence[T], view: Callable[[T], Any],
                 default_max: int = 10) -> dict[str, Any]:
        """A List* answer: one page of `items` under `key`, each shown by `view`, and the
        NextToken of the next page, if any."""
        chunk, token = self.page(items, default_max)
        out: dict[str, Any] = {key: [view(item) for item in chunk]}
        if token:
            out["NextToken"] = token
        return out


def page(
    items: Sequence[T], params: Mapping[str, Any], default_max: int = 10
) -> tuple[list[T], str | None]:
    return ListQuery.parse(params).page(items, default_max)


def epoch(value: datetime | float | int | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def filter_and_sort(
    items: list[T],
    query: ListQuery,
    *,
    name: Callable[[T], str],
    created: Callable[[T], float],
    modified: Callable[[T], float] | None = None,
    status: Callable[[T], str] | None = None,
) -> list[T]:
    out = items
    if query.name_contains:
        needle = query.name_contains.lower()
        out = [i for i in out if needle in name(i).lower()]
    for bound, fn, before in (
        (query.creation_time_before, created, True),
        (query.creation_time_after, created, False),
        (query.last_modified_time_before, modified, True),
        (query.last_modified_time_after, modified, False),
    ):
        if bound is not None and fn is not None:
            out = [i for i in out if (fn(i) < bound if before else fn(i) > bound)]
    if query.status_equals and status is not None:
        out = [i for i in out if status(i) == query.status_equals]
    key_fn: Callable[[T], Any] = {
        "Name": lambda i: name(i).lower(),
        "CreationTime": created,
        "Status": status or name,
    }.get(query.sort_by, created)
    return sorted(out, key=key_fn, reverse=query.sort_order == "Descending")
