"""Scheduled-action expressions: at(...), rate(...), cron(...) with a Timezone, bounded by
StartTime/EndTime, and the times they fire.

Schedules run on wall-clock (calendar) time and are never compressed by the live server's
time scale: `cron(0 18 ? * MON-FRI *)` means 18:00 local, whatever the metric period is.

Decisions where AWS is silent (UNCONFIRMED):
- rate(): fires at StartTime and every interval after it; with no StartTime the first firing
  is one interval after the action was created (firing at creation would surprise).
- a local time that does not exist (spring-forward gap) fires at the same wall-clock reading
  in the pre-transition offset (02:30 EST → 03:30 EDT); a repeated local time (fall-back)
  fires once, at its first occurrence.
- several missed occurrences in one check window fire once (AWS does not replay).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tideserve.errors import ValidationError
from tideserve.scaling.cron import Cron, parse_cron
from tideserve.scaling.model import ScheduledAction

_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400,
               "days": 86400}
_AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+)\s+([a-z]+)\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
# How far ahead next_fire_time looks for a cron match before giving up (e.g. cron for 2199).
_SEARCH_DAYS = 366 * 5


@dataclass(frozen=True)
class Schedule:
    kind: str  # "at" | "rate" | "cron"
    at: datetime | None = None  # naive local time for at()
    rate_seconds: int | None = None
    cron: Cron | None = None


@lru_cache(maxsize=1024)
def parse_schedule(expression: str) -> Schedule:
    """Parse an AAS schedule expression or raise ValidationError naming what is wrong."""
    expr = expression.strip()
    if m := _AT.match(expr):
        y, mo, d, h, mi, s = (int(g) for g in m.groups())
        try:
            return Schedule("at", at=datetime(y, mo, d, h, mi, s))
        except ValueError as e:
            raise ValidationError(f"Invalid at expression {expression!r}: {e}") from None
    if m := _RATE.match(expr):
        value, unit = int(m.group(1)), m.group(2)
        if value <= 0 or unit not in _RATE_UNITS:
            raise ValidationError(
                f"Invalid rate expression {expression!r}: expected rate(<positive integer> "
                "minute|minutes|hour|hours|day|days)"
            )
        return Schedule("rate", rate_seconds=value * _RATE_UNITS[unit])
    if m := _CRON.match(expr):
        return Schedule("cron", cron=parse_cron(m.group(1)))
    raise ValidationError(
        f"Invalid schedule expression {expression!r}: expected at(yyyy-mm-ddThh:mm:ss), "
        "rate(value unit) or cron(fields)"
    )


@lru_cache(maxsize=256)
def parse_timezone(name: str | None) -> ZoneInfo:
    if name is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"Timezone {name!r} is not a valid time zone (expected an IANA name such as "
            "America/New_York or Etc/GMT+9)"
        ) from None


def next_fire_time(action: ScheduledAction, after: float) -> float | None:
    """The first time (epoch seconds) strictly after `after` at which `action` fires, within
    its StartTime/EndTime, or None if it never fires again."""
    schedule = parse_schedule(action.schedule)
    tz = parse_timezone(action.timezone)
    # StartTime itself may fire: search from just below it (the next float down).
    start = action.start_time
    lower = after if start is None else max(after, math.nextafter(start, -math.inf))
    if schedule.kind == "at":
        assert schedule.at is not None
        t = schedule.at.replace(tzinfo=tz).timestamp()
        found: float | None = t if t > lower else None
    elif schedule.kind == "rate":
        found = _next_rate(action, schedule, lower)
    else:
        assert schedule.cron is not None
        found = _next_cron(schedule.cron, tz, lower)
    if found is None or (action.end_time is not None and found > action.end_time):
        return None
    return found


def _next_rate(action: ScheduledAction, schedule: Schedule, after: float) -> float:
    assert schedule.rate_seconds is not None
    step = schedule.rate_seconds
    if action.start_time is not None:
        anchor, first_k = action.start_time, 0
    else:
        anchor, first_k = action.creation_time, 1
    k = max(first_k, int((after - anchor) // step) + 1)
    while anchor + k * step <= after:  # float guard
        k += 1
    return anchor + k * step


def _next_cron(cron: Cron, tz: ZoneInfo, after: float) -> float | None:
    day = datetime.fromtimestamp(after, tz).date() - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        if cron.years is not None and day.year not in cron.years:
            later = [y for y in cron.years if y > day.year]
            if not later:
                return None
            day = date(min(later), 1, 1)
            continue
        if cron.matches_day(day):
            times = [t for t in _instants(day, cron, tz) if t > after]
            if times:
                return min(times)
        day += timedelta(days=1)
    return None


def _instants(day: date, cron: Cron, tz: ZoneInfo) -> Iterable[float]:
    for hour in cron.hours:
        for minute in cron.minutes:
            local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            yield local.timestamp()


def due_scheduled_actions(
    actions: Sequence[ScheduledAction], last_checked: float, now: float
) -> list[ScheduledAction]:
    """The actions with a fire time in (last_checked, now], each once, ordered by that fire
    time (ties by name) — the order AAS guarantees within one scalable target."""
    due: list[tuple[float, str, ScheduledAction]] = []
    for action in actions:
        t = next_fire_time(action, last_checked)
        if t is not None and t <= now:
            due.append((t, action.name, action))
    due.sort(key=lambda item: (item[0], item[1]))
    return [a for _, _, a in due]


def to_datetime(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)
