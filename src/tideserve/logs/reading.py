"""GetLogEvents and FilterLogEvents: pages of events and the tokens that continue them.

Tokens name a position between events in (timestamp, id) order: `f/<56 digits>` reads on
after it, `b/<56 digits>` back from before it (AWS's own tokens look like this and are just as
opaque). GetLogEvents always returns both; at the end of a stream in the direction read it
returns the token it was given, which is how clients know to stop. FilterLogEvents returns a
`nextToken` only while there may be more, and scans at most SCAN_BUDGET events a call (a page
may then be short, even empty, with a token: AWS's pages behave the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tideserve.errors import ValidationError
from tideserve.logs import pattern as patterns
from tideserve.logs.store import LogEvent, LogStore, Position

MAX_PAGE_BYTES = 1_048_576
MAX_EVENTS = 10_000
SCAN_BUDGET = 200_000
EVENT_OVERHEAD_BYTES = 26
_FAR_FUTURE = 2**62  # past any timestamp, within SQLite's signed 64-bit integers


def bad_token() -> ValidationError:
    return ValidationError("The specified nextToken is invalid.",
                           code="InvalidParameterException")


def encode_token(direction: str, pos: Position) -> str:
    return f"{direction}/{pos.timestamp:020d}{pos.id:036d}"


def decode_token(token: str) -> tuple[str, Position]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or len(digits) != 56 or not digits.isdigit():
        raise bad_token()
    pos = Position(int(digits[:20]), int(digits[20:]))
    if pos.timestamp > _FAR_FUTURE or pos.id > _FAR_FUTURE:
        raise bad_token()
    return direction, pos


def _position(event: LogEvent) -> Position:
    return Position(event.timestamp, event.id)


def _take(events: Iterator[LogEvent], limit: int) -> list[LogEvent]:
    """At most `limit` events and about a megabyte of them, the first always."""
    page: list[LogEvent] = []
    size = 0
    for event in events:
        size += len(event.message) + EVENT_OVERHEAD_BYTES
        if page and size > MAX_PAGE_BYTES:
            break
        page.append(event)
        if len(page) >= limit:
            break
    return page


def get_events(store: LogStore, stream_id: int, params: dict[str, Any]) -> dict[str, Any]:
    start, end = params.get("startTime"), params.get("endTime")
    limit = params.get("limit") or MAX_EVENTS
    token = params.get("nextToken")
    if token:
        direction, pos = decode_token(token)
    elif params.get("startFromHead"):
        direction, pos = "f", Position(start or 0, 0)
    else:
        direction, pos = "b", Position(_FAR_FUTURE if end is None else end, 0)
    if direction == "f":
        page = _take(store.scan(stream_ids=[stream_id], start=start, end=end, after=pos), limit)
    else:
        page = _take(store.scan(stream_ids=[stream_id], start=start, end=end, before=pos,
                                descending=True), limit)
        page.reverse()
    if page:
        forward = encode_token("f", _position(page[-1]))
        backward = encode_token("b", _position(page[0]))
    else:
        forward = token if token and direction == "f" else encode_token("f", pos)
        backward = token if token and direction == "b" else encode_token("b", pos)
    return {
        "events": [{"timestamp": e.timestamp, "message": e.message,
                    "ingestionTime": e.ingestion_time} for e in page],
        "nextForwardToken": forward,
        "nextBackwardToken": backward,
    }


@dataclass(frozen=True)
class FilterScope:
    group_id: int
    stream_names: dict[int, str]  # every stream of the group: id -> name
    stream_ids: list[int] | None  # the streams asked for; None: all


def filter_events(store: LogStore, scope: FilterScope, params: dict[str, Any]) -> dict[str, Any]:
    matcher = patterns.parse(params.get("filterPattern"))
    limit = params.get("limit") or MAX_EVENTS
    start, end = params.get("startTime"), params.get("endTime")
    token = params.get("nextToken")
    descending = params.get("startFromHead") is False
    after = before = None
    if token:
        direction, pos = decode_token(token)
        descending = direction == "b"
        after, before = (None, pos) if descending else (pos, None)
    events = store.scan(group_id=scope.group_id, stream_ids=scope.stream_ids, start=start,
                        end=end, after=after, before=before, descending=descending,
                        contains=matcher.required)
    found: list[LogEvent] = []
    next_pos: Position | None = None
    size = 0
    for scanned, event in enumerate(events, start=1):
        if matcher.matches(event.message):
            found.append(event)
            size += len(event.message) + EVENT_OVERHEAD_BYTES
            if len(found) >= limit or size >= MAX_PAGE_BYTES:
                next_pos = _position(event)
                break
        if scanned >= SCAN_BUDGET:
            next_pos = _position(event)
            break
    result: dict[str, Any] = {
        "events": [{"logStreamName": scope.stream_names.get(e.stream_id, ""),
                    "timestamp": e.timestamp, "message": e.message,
                    "ingestionTime": e.ingestion_time, "eventId": str(e.id)} for e in found],
        "searchedLogStreams": [],
    }
    if next_pos is not None:
        result["nextToken"] = encode_token("b" if descending else "f", next_pos)
    return result
