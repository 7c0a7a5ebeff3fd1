"""Billing math, pure: hourly rates by purchase option, per-second cost of an instance's
lifetime clipped to a window, and the UTC periods (hour, day, month) that reports split into.

Every time here is seconds since the Unix epoch; every window is half-open, [start, end), as
Cost Explorer's TimePeriod is (Start inclusive, End exclusive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tideserve.cost.catalog import InstanceType
from tideserve.errors import ValidationError

SECONDS_PER_HOUR: Final = 3600.0

ON_DEMAND: Final = "OnDemand"
SAVINGS_PLAN: Final = "SavingsPlan"
SPOT: Final = "Spot"
PURCHASE_OPTIONS: Final = (ON_DEMAND, SAVINGS_PLAN, SPOT)

GRANULARITIES: Final = ("HOURLY", "DAILY", "MONTHLY")


@dataclass(frozen=True)
class Interval:
    """[start, end) in epoch seconds."""

    start: float
    end: float


def hourly_rate(instance_type: InstanceType, purchase_option: str = ON_DEMAND) -> float:
    """USD per hour for one instance of `instance_type` bought as `purchase_option`.

    ml.m5.large at $0.115/h on demand: SavingsPlan at rate 0.72 -> $0.0828/h; Spot with a 0.7
    discount -> $0.0345/h (SageMaker hosting has no spot market; the option is for users who
    price their own spot-backed hardware, see data/instance_types.csv)."""
    on_demand = instance_type.on_demand_hourly_usd
    if purchase_option == ON_DEMAND:
        return on_demand
    if purchase_option == SAVINGS_PLAN:
        return on_demand * instance_type.savings_plan_rate
    if purchase_option == SPOT:
        return on_demand * (1.0 - instance_type.spot_discount)
    raise ValidationError(
        f"Value '{purchase_option}' at 'purchaseOption' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(PURCHASE_OPTIONS)}]"
    )


def billed_seconds(interval: Interval, window: Interval) -> float:
    """Seconds of `interval` billed inside `window`.

    Billing is per second: an instance is billed for every whole wall-clock second it exists
    in, wholly or partly (start rounded down, end rounded up), with no minimum. Rounding the
    lifetime (not each piece) keeps the pieces of a lifetime split across windows summing to
    the whole: windows here always start on whole seconds."""
    start = math.floor(interval.start)
    end = math.ceil(interval.end)
    return max(0.0, min(end, window.end) - max(start, window.start))


def cost_of(interval: Interval, rate_per_hour: float, window: Interval) -> float:
    """USD for `interval` of one instance at `rate_per_hour`, counting only what lies in
    `window`.

    Worked example: an ml.m5.large ($0.115/h) requested at 23:59:30.4 UTC and stopped at
    00:10:00 the next day is billed 23:59:30 -> 00:10:00, 630 s in all. Asked for the first
    day, it costs 30 s x 0.115 / 3600 = $0.000958; for the second, 600 s -> $0.019167; the
    two add up to the whole lifetime, 630 s -> $0.020125."""
    return usd_for_seconds(billed_seconds(interval, window), rate_per_hour)


def usd_for_seconds(instance_seconds: float, rate_per_hour: float) -> float:
    """USD for billed instance-seconds at an hourly rate: the one conversion the ledger and
    the simulator both price with."""
    return instance_seconds * rate_per_hour / SECONDS_PER_HOUR


def periods(window: Interval, granularity: str) -> list[Interval]:
    """`window` cut at UTC hour, day or month boundaries; the first and last periods are
    clipped to the window (as Cost Explorer answers a TimePeriod starting mid-month)."""
    if granularity not in GRANULARITIES:
        raise ValidationError(
            f"Value '{granularity}' at 'granularity' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(GRANULARITIES)}]"
        )
    out: list[Interval] = []
    start = window.start
    while start < window.end:
        end = min(_next_boundary(start, granularity), window.end)
        out.append(Interval(start, end))
        start = end
    return out


def _next_boundary(t: float, granularity: str) -> float:
    if granularity == "HOURLY":
        return (math.floor(t / SECONDS_PER_HOUR) + 1) * SECONDS_PER_HOUR
    if granularity == "DAILY":
        return (math.floor(t / 86400.0) + 1) * 86400.0
    moment = datetime.fromtimestamp(t, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()
