"""GetObject/HeadObject's Range and conditional headers, as pure functions of the headers and
the object's ETag, size and modification time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from tideserve.errors import ValidationError

NOT_MODIFIED = 304
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first byte, length) for a single `bytes=` range; None means the whole object.

    `bytes=0-9` is the first 10 bytes, `bytes=10-` everything from byte 10, `bytes=-10` the
    last 10. A range S3 cannot parse (or several ranges) is ignored, as S3 does; one that
    starts past the end is 416 InvalidRange.
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(0) == "bytes=-":
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        wanted = int(last)
        if wanted == 0 or size == 0:
            raise _unsatisfiable(header, size)
        start = max(0, size - wanted)
        return start, size - start
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(header, size)
    return start, end - start + 1


def _unsatisfiable(header: str | None, size: int) -> ValidationError:
    return ValidationError(
        f"The requested range is not satisfiable: {header} of an object of {size} bytes.",
        code="InvalidRange",
    )


def precondition_status(headers: Mapping[str, str], etag: str, modified: float) -> int | None:
    """None to serve the object, 304 for Not Modified; raise 412 PreconditionFailed.

    `headers` has lowercase names; `etag` is unquoted; `modified` is epoch seconds (compared
    at whole seconds, the resolution of HTTP dates)."""
    if_match = headers.get("if-match")
    if if_match is not None and not _etag_matches(if_match, etag):
        raise _failed("If-Match")
    since = _http_date(headers.get("if-unmodified-since"))
    if if_match is None and since is not None and int(modified) > since:
        raise _failed("If-Unmodified-Since")
    if_none = headers.get("if-none-match")
    if if_none is not None and _etag_matches(if_none, etag):
        return NOT_MODIFIED
    modified_since = _http_date(headers.get("if-modified-since"))
    if if_none is None and modified_since is not None and int(modified) <= modified_since:
        return NOT_MODIFIED
    return None


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in wanted or etag in wanted


def _http_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None  # S3 ignores a date it cannot read


def _failed(header: str) -> ValidationError:
    return ValidationError(
        f"At least one of the pre-conditions you specified did not hold ({header}).",
        code="PreconditionFailed",
    )
