"""CloudTrail's LookupEvents over the trail (awsJson 1.1; shapes from botocore's model).

At most one LookupAttribute (InvalidLookupAttributesException otherwise); StartTime/EndTime
inclusive, defaulting to the last 90 days (InvalidTimeRangeException when start > end);
MaxResults 1-50, default 50; newest first; NextToken is valid only with the same other
parameters (InvalidNextTokenException). `CloudTrailEvent` is the whole record as a JSON
string, `ReadOnly` the string "true"/"false", as CloudTrail answers. Events appear at once
(AWS takes minutes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tideserve.audit.trail import RETENTION_SECONDS, Filter, StoredEvent, Trail
from tideserve.clock import Clock
from tideserve.errors import ValidationError

DEFAULT_MAX_RESULTS = 50
_COLUMNS = {"EventId": "event_id", "EventName": "event_name", "Username": "username",
            "EventSource": "event_source", "AccessKeyId": "access_key_id",
            "ReadOnly": "read_only"}
_RESOURCE_KEYS = ("ResourceType", "ResourceName")


class CloudTrailLookup:
    def __init__(self, trail: Trail, clock: Clock) -> None:
        self.trail = trail
        self.clock = clock

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"LookupEvents": self.lookup_events}

    def lookup_events(self, params: dict[str, Any]) -> dict[str, Any]:
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise ValidationError("You cannot specify more than one lookup attribute.",
                                  code="InvalidLookupAttributesException")
        now = self.clock.now()
        start = _epoch(params.get("StartTime"), now - RETENTION_SECONDS)
        end = _epoch(params.get("EndTime"), now)
        if start > end:
            raise ValidationError("Start time must be before end time.",
                                  code="InvalidTimeRangeException")
        limit = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
        if not 1 <= limit <= DEFAULT_MAX_RESULTS:
            raise ValidationError("MaxResults must be between 1 and 50.",
                                  code="InvalidMaxResultsException")
        if params.get("EventCategory") == "insight":
            return {"Events": []}  # tideserve makes no Insights events
        digest = _digest(params)
        before = _token_seq(params.get("NextToken"), digest)
        filters, resource_type, resource_name = _filters(attributes)
        found = self.trail.lookup(filters, start, end, before, limit + 1, resource_type,
                                  resource_name)
        out: dict[str, Any] = {"Events": [_event(e) for e in found[:limit]]}
        if len(found) > limit:
            out["NextToken"] = _token(found[limit - 1].seq, digest)
        return out


def _epoch(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _filters(attributes: list[dict[str, Any]]) -> tuple[list[Filter], str | None, str | None]:
    if not attributes:
        return [], None, None
    key, value = attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
    if key == "ResourceType":
        return [], value, None
    if key == "ResourceName":
        return [], None, value
    if key not in _COLUMNS:
        raise ValidationError(f"Invalid attribute key: {key}",
                              code="InvalidLookupAttributesException")
    if key == "ReadOnly" and value not in ("true", "false"):
        raise ValidationError("ReadOnly must be true or false.",
                              code="InvalidLookupAttributesException")
    return [Filter(_COLUMNS[key], value)], None, None


def _event(e: StoredEvent) -> dict[str, Any]:
    event: dict[str, Any] = {
        "EventId": e.event_id, "EventName": e.event_name,
        "ReadOnly": "true" if e.read_only else "false",
        "EventTime": datetime.fromtimestamp(e.event_time, tz=UTC),
        "EventSource": e.event_source,
        "Resources": [{"ResourceType": kind, "ResourceName": name} for kind, name in e.resources],
        "CloudTrailEvent": e.record,
    }
    if e.access_key_id:
        event["AccessKeyId"] = e.access_key_id
    if e.username:
        event["Username"] = e.username
    return event


def _digest(params: dict[str, Any]) -> str:
    rest = {k: v for k, v in params.items() if k not in ("NextToken", "MaxResults")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _token(seq: int, digest: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"seq": seq, "q": digest}).encode()).decode()


def _token_seq(token: str | None, digest: str) -> int | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        seq, query = int(data["seq"]), data["q"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValidationError("Invalid NextToken.", code="InvalidNextTokenException") from exc
    if query != digest:
        raise ValidationError("The NextToken was issued for other parameters.",
                              code="InvalidNextTokenException")
    return seq
