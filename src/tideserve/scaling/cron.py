"""Six-field cron as Application Auto Scaling (EventBridge syntax) reads it:

    Minutes Hours Day-of-month Month Day-of-week Year
    0-59    0-23  1-31         1-12  1-7 (1=SUN) 1970-2199
            ,-*/  ,-*/?LW      JAN-DEC ,-*/  SUN-SAT ,-*?L#  ,-*/

Exactly one of Day-of-month and Day-of-week is `?`. A seven-field form with a leading Seconds
field is tolerated (its seconds are ignored: the effective resolution is one minute).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from tideserve.errors import ValidationError

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class DayOfMonth:
    days: frozenset[int] = frozenset()
    last: bool = False  # L: the last day of the month
    weekday_near: int | None = None  # nW: the weekday nearest day n (0 = LW: last weekday)


@dataclass(frozen=True)
class DayOfWeek:
    days: frozenset[int] = frozenset()  # 1 = Sunday … 7 = Saturday
    last_of: int | None = None  # dL: the last weekday d of the month
    nth: tuple[int, int] | None = None  # d#k: the k-th weekday d of the month


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int] | None  # None = every year
    dom: DayOfMonth | None  # None = `?`
    dow: DayOfWeek | None  # None = `?`

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.dom is not None:
            return _dom_matches(self.dom, day)
        assert self.dow is not None
        return _dow_matches(self.dow, day)


def parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) == 7:
        _parse_set(fields[0], 0, 59, "Seconds")
        fields = fields[1:]
    if len(fields) != 6:
        raise ValidationError(
            f"Invalid cron expression cron({body}): expected six fields "
            "(Minutes Hours Day-of-month Month Day-of-week Year)"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ValidationError(
            f"Invalid cron expression cron({body}): exactly one of Day-of-month and "
            "Day-of-week must be '?'"
        )
    return Cron(
        minutes=tuple(sorted(_parse_set(minute, 0, 59, "Minutes"))),
        hours=tuple(sorted(_parse_set(hour, 0, 23, "Hours"))),
        months=frozenset(_parse_set(month, 1, 12, "Month", _MONTHS)),
        years=None if year == "*" else frozenset(_parse_set(year, 1970, 2199, "Year")),
        dom=None if dom == "?" else _parse_dom(dom),
        dow=None if dow == "?" else _parse_dow(dow),
    )


def _parse_set(
    text: str, lo: int, hi: int, name: str, names: dict[str, int] | None = None
) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        out |= _parse_part(part, lo, hi, name, names or {})
    return out


def _parse_part(part: str, lo: int, hi: int, name: str, names: dict[str, int]) -> set[int]:
    base, slash, step_text = part.partition("/")
    step = _number(step_text, name) if slash else 1
    if step <= 0:
        raise ValidationError(f"Invalid cron {name} field {part!r}: step must be positive")
    if base == "*":
        start, end = lo, hi
    elif "-" in base:
        a, _, b = base.partition("-")
        start, end = _value(a, name, names), _value(b, name, names)
    else:
        start = _value(base, name, names)
        end = hi if slash else start
    if not (lo <= start <= hi and lo <= end <= hi) or start > end:
        raise ValidationError(
            f"Invalid cron {name} field {part!r}: values must lie in {lo}-{hi}"
        )
    return set(range(start, end + 1, step))


def _value(text: str, name: str, names: dict[str, int]) -> int:
    return names[text.upper()] if text.upper() in names else _number(text, name)


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise ValidationError(f"Invalid cron {name} field value {text!r}")
    return int(text)


def _parse_dom(text: str) -> DayOfMonth:
    if text == "L":
        return DayOfMonth(last=True)
    if text == "LW":
        return DayOfMonth(weekday_near=0)
    if m := re.fullmatch(r"(\d{1,2})W", text):
        day = int(m.group(1))
        if not 1 <= day <= 31:
            raise ValidationError(f"Invalid cron Day-of-month field {text!r}")
        return DayOfMonth(weekday_near=day)
    return DayOfMonth(days=frozenset(_parse_set(text, 1, 31, "Day-of-month")))


def _parse_dow(text: str) -> DayOfWeek:
    if text == "L":
        return DayOfWeek(days=frozenset({7}))
    if m := re.fullmatch(r"([A-Za-z]{3}|\d)L", text):
        return DayOfWeek(last_of=_weekday(m.group(1), text))
    if m := re.fullmatch(r"([A-Za-z]{3}|\d)#([1-5])", text):
        return DayOfWeek(nth=(_weekday(m.group(1), text), int(m.group(2))))
    return DayOfWeek(days=frozenset(_parse_set(text, 1, 7, "Day-of-week", _DAYS)))


def _weekday(text: str, field: str) -> int:
    value = _value(text, "Day-of-week", _DAYS)
    if not 1 <= value <= 7:
        raise ValidationError(f"Invalid cron Day-of-week field {field!r}")
    return value


def aws_weekday(day: date) -> int:
    """1 = Sunday … 7 = Saturday (Python's Monday = 0)."""
    return (day.weekday() + 1) % 7 + 1


def _dom_matches(dom: DayOfMonth, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if dom.last:
        return day.day == last
    if dom.weekday_near is not None:
        return day.day == _nearest_weekday(day.year, day.month, dom.weekday_near or last, last)
    return day.day in dom.days


def _nearest_weekday(year: int, month: int, wanted: int, last: int) -> int:
    """The weekday (Mon–Fri) nearest day `wanted`, never crossing into another month."""
    wanted = min(wanted, last)
    weekday = date(year, month, wanted).weekday()
    if weekday == 5:  # Saturday → Friday, or Monday when the 1st is a Saturday
        return wanted - 1 if wanted > 1 else wanted + 2
    if weekday == 6:  # Sunday → Monday, or Friday when it is the month's last day
        return wanted + 1 if wanted < last else wanted - 2
    return wanted


def _dow_matches(dow: DayOfWeek, day: date) -> bool:
    weekday = aws_weekday(day)
    if dow.last_of is not None:
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday == dow.last_of and day.day + 7 > last
    if dow.nth is not None:
        wanted, k = dow.nth
        return weekday == wanted and (day.day - 1) // 7 + 1 == k
    return weekday in dow.days
