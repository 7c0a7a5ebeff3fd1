"""ListObjectsV2 paging as a pure function of the sorted keys and the request.

Continuation tokens are opaque to clients; ours is the last item returned, tagged with its
kind, so the next page resumes strictly after it: after a key, at the next key; after a common
prefix `photos/`, past every key that prefix grouped. Example with keys a/1, a/2, b, prefix "",
delimiter "/", MaxKeys 1: page 1 is CommonPrefixes [a/] (token P:a/), page 2 is [b].
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from tideserve.errors import ValidationError

MAX_KEYS = 1000


@dataclass(frozen=True)
class ListRequest:
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = MAX_KEYS  # values above 1000 mean 1000, as in S3
    start_after: str = ""
    continuation_token: str | None = None


@dataclass(frozen=True)
class ListPage:
    keys: tuple[str, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_continuation_token: str | None


def list_page(sorted_keys: Iterable[str], request: ListRequest) -> ListPage:
    after_kind, after = _resume_point(request)
    after_bytes = after.encode("utf-8", "surrogatepass")
    limit = min(max(request.max_keys, 0), MAX_KEYS)
    keys: list[str] = []
    prefixes: list[str] = []
    last: tuple[str, str] | None = None
    truncated = False
    for key in sorted_keys:
        if not key.startswith(request.prefix):
            continue
        if after and (
            key.encode("utf-8", "surrogatepass") <= after_bytes
            or (after_kind == "P" and key.startswith(after))
        ):
            continue
        item = _group(key, request.prefix, request.delimiter)
        if last is not None and item == last:
            continue  # another key of the common prefix just returned
        if len(keys) + len(prefixes) >= limit:
            truncated = limit > 0
            break
        (prefixes if item[0] == "P" else keys).append(item[1])
        last = item
    token = _encode_token(last) if truncated and last is not None else None
    return ListPage(tuple(keys), tuple(prefixes), truncated, token)


def _group(key: str, prefix: str, delimiter: str) -> tuple[str, str]:
    if delimiter:
        rest = key[len(prefix) :]
        cut = rest.find(delimiter)
        if cut >= 0:
            return ("P", prefix + rest[: cut + len(delimiter)])
    return ("K", key)


def _resume_point(request: ListRequest) -> tuple[str, str]:
    if request.continuation_token is None:
        return ("K", request.start_after)
    kind, after = _decode_token(request.continuation_token)
    start = request.start_after.encode("utf-8", "surrogatepass")
    if start > after.encode("utf-8", "surrogatepass"):
        return ("K", request.start_after)
    return (kind, after)


def _encode_token(item: tuple[str, str]) -> str:
    raw = f"{item[0]}:{item[1]}".encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeDecodeError):
        raw = ""
    kind, sep, after = raw.partition(":")
    if not sep or kind not in ("K", "P"):
        raise ValidationError(
            "The continuation token provided is incorrect.", code="InvalidArgument"
        )
    return kind, after
