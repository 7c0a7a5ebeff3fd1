"""Validation of CloudWatch request parameters at the edge (§5.4–5.7), raising ValidationError
with CloudWatch's query error codes. Field names in messages use the query protocol's spelling
(`MetricData.member.1.Value`), which is what AWS's own messages say whichever wire boto3 used.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tideserve.errors import ValidationError
from tideserve.metrics.model import Dimensions
from tideserve.metrics.names import STANDARD_UNITS

MISSING = "MissingParameter"
INVALID = "InvalidParameterValue"
COMBINATION = "InvalidParameterCombination"

HOUR = 3600.0
DAY = 86400.0
MAX_DATAPOINTS = 1440  # per GetMetricStatistics call
HIGH_RES_PERIODS = (1, 5, 10, 20, 30)
MAX_VALUE = 2.0**360  # PutMetricData: magnitudes outside [2^-360, 2^360] (except 0) rejected


def invalid(message: str) -> ValidationError:
    return ValidationError(message, code=INVALID)


def required(params: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    value = params.get(name)
    if value is None:
        raise ValidationError(f"The parameter {prefix}{name} is required.", code=MISSING)
    return value


def namespace(value: Any, field: str = "Namespace") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or value.startswith(":"):
        raise invalid(f"The value {value!r} for parameter {field} is invalid: 1 to 255 "
                      "characters, not starting with ':'.")
    return value


def metric_name(value: Any, field: str = "MetricName") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise invalid(f"The value {value!r} for parameter {field} is invalid: 1 to 255 "
                      "characters.")
    return value


def dimensions(value: Any, field: str = "Dimensions", *, limit: int = 30) -> Dimensions:
    """[{Name, Value}, ...] -> canonical Dimensions; unique names, CloudWatch's lengths."""
    items: Sequence[Mapping[str, Any]] = value or ()
    if len(items) > limit:
        raise invalid(f"The collection {field} must not have more than {limit} members.")
    pairs: dict[str, str] = {}
    for i, d in enumerate(items, 1):
        name = required(d, "Name", f"{field}.member.{i}.")
        val = required(d, "Value", f"{field}.member.{i}.")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise invalid(f"The value for parameter {field}.member.{i}.Name is invalid: "
                          "1 to 255 characters.")
        if not isinstance(val, str) or not 1 <= len(val) <= 1024:
            raise invalid(f"The value for parameter {field}.member.{i}.Value is invalid: "
                          "1 to 1024 characters.")
        if name in pairs:
            raise invalid(f"No Metric may specify the same dimension twice ({name!r}).")
        pairs[name] = val
    return tuple(sorted(pairs.items()))


def unit(value: Any, field: str = "Unit") -> str | None:
    if value is None:
        return None
    if value not in STANDARD_UNITS:
        raise invalid(f"The value {value!r} for parameter {field} is invalid: must be one of "
                      f"{', '.join(sorted(STANDARD_UNITS))}.")
    return str(value)


def epoch(value: Any, field: str) -> float:
    """A botocore timestamp (aware datetime; naive read as UTC) or epoch seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise invalid(f"The parameter {field} must be a timestamp.")


def time_range(params: Mapping[str, Any]) -> tuple[float, float]:
    start = epoch(required(params, "StartTime"), "StartTime")
    end = epoch(required(params, "EndTime"), "EndTime")
    if start >= end:
        raise invalid("The parameter StartTime must be less than the parameter EndTime.")
    return start, end


def period(value: Any, start: float, now: float, storage_period: float,
           field: str = "Period") -> int:
    """CloudWatch's period rules (§5.5): 1/5/10/20/30 or a multiple of 60 for recent data;
    multiples of 60, 300, 3600 once the start is over 3 h, 15 d, 63 d old. Additive: when the
    server stores sub-minute periods (a compressed development period such as 2 s), any
    multiple of it is also accepted for recent data."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"The parameter {field} must be a positive integer number of seconds.")
    age = now - start
    multiple = 3600 if age > 63 * DAY else 300 if age > 15 * DAY else 60 if age > 3 * HOUR else 0
    if multiple:
        if value % multiple:
            raise invalid(f"The parameter {field} must be a multiple of {multiple} for data "
                          "older than " + {60: "3 hours.", 300: "15 days.", 3600: "63 days."}[
                              multiple])
        return value
    sub_minute_ok = value in HIGH_RES_PERIODS or (
        storage_period < 60 and value % storage_period == 0
    )
    if value % 60 and not sub_minute_ok:
        raise invalid(f"The parameter {field} must be 1, 5, 10, 20, 30 or a multiple of 60.")
    return value


def round_start(start: float, period: int, now: float) -> float:
    """StartTime rounded down as CloudWatch does: to the period for sub-minute periods, else to
    the minute (<= 15 d old), 5 minutes (<= 63 d) or hour (older)."""
    age = now - start
    step = float(period) if period < 60 else 60.0 if age <= 15 * DAY else (
        300.0 if age <= 63 * DAY else 3600.0)
    return start - start % step


def datapoint_limit(start: float, end: float, period: int) -> None:
    n = math.ceil((end - start) / period)
    if n > MAX_DATAPOINTS:
        raise ValidationError(
            f"You have requested up to {n:,} datapoints, which exceeds the limit of "
            f"{MAX_DATAPOINTS:,}. You may reduce the datapoints requested by increasing Period, "
            "or decreasing the time range.",
            code=COMBINATION,
        )


def value(v: Any, field: str) -> float:
    """A PutMetricData number: finite, within +-2^360, not below 2^-360 in magnitude unless 0."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise invalid(f"The parameter {field} must be a number.")
    x = float(v)
    if not math.isfinite(x) or abs(x) > MAX_VALUE or (x != 0 and abs(x) < 1 / MAX_VALUE):
        raise invalid(f"The value {v!r} for parameter {field} is invalid: must be finite and "
                      "within -2^360 to 2^360 (NaN and Infinity are not supported).")
    return x


def one_of(params: Mapping[str, Any], names: Sequence[str], prefix: str = "") -> str:
    """Exactly one of `names` present; its name."""
    present = [n for n in names if params.get(n) is not None]
    if len(present) != 1:
        listed = ", ".join(prefix + n for n in names)
        raise ValidationError(
            f"Exactly one of the parameters {listed} must be specified"
            + (f" (got {', '.join(present)})." if present else "."),
            code=COMBINATION,
        )
    return present[0]


_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def query_id(v: Any, field: str) -> str:
    if not isinstance(v, str) or not _QUERY_ID.match(v) or len(v) > 255:
        raise invalid(f"The value {v!r} for parameter {field} is invalid: must start with a "
                      "lowercase letter and contain only letters, numbers and underscores.")
    return v


def page_token(offset: int) -> str:
    """An opaque NextToken for a list offset."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def page_offset(token: str | None, code: str = INVALID) -> int:
    """The offset in a NextToken from page_token; 0 for none."""
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValidationError(f"Invalid NextToken {token!r}.", code=code)
    return offset
