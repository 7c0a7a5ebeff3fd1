"""Spend under a filter over a window, and the forecast of spend to come: what AWS Budgets
and Cost Explorer's GetCostForecast read from the ledger.

Filters are the Budgets legacy `CostFilters` ({key: [values]}: values within a key OR-ed, keys
AND-ed, spec §12.2). Keys map to Cost Explorer dimensions; `TagKeyValue` values are
`user:<key>$<value>` (e.g. `user:team$ml`).

The forecast model (AWS's is undisclosed; spec §13.1's emulation): from the daily totals of
the last HISTORY_DAYS whole days, mean mu and standard deviation sigma; a window of d days is
forecast at mu x d with the interval mu x d +- z(level) x sigma x sqrt(d), floored at 0.
Fewer than MIN_HISTORY_DAYS of history -> DataUnavailableException. Worked: days of $2, $4,
$3 -> mu 3, sigma 1; 4 days ahead at 80 % (z 1.2816): 12 +- 2.563 -> [9.437, 14.563].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

from tideserve.cost.attribution import Attributor, Facts, TagsFor
from tideserve.cost.billing import SECONDS_PER_HOUR, Interval, billed_seconds, cost_of
from tideserve.cost.ledger import Ledger
from tideserve.cost.report import split
from tideserve.errors import ValidationError

SECONDS_PER_DAY: Final = 86_400.0
HISTORY_DAYS: Final = 60
MIN_HISTORY_DAYS: Final = 1  # tideserve's runs are short; AWS asks for more (UNCONFIRMED)

FILTER_KEYS: Final = {
    "Service": "SERVICE", "InstanceType": "INSTANCE_TYPE", "Region": "REGION",
    "UsageType": "USAGE_TYPE", "LinkedAccount": "LINKED_ACCOUNT",
    "PurchaseType": "PURCHASE_TYPE", "InstanceTypeFamily": "INSTANCE_TYPE_FAMILY",
    "RecordType": "RECORD_TYPE",
}
_SERVICE_ALIASES: Final = {"AmazonSageMaker": "Amazon SageMaker"}


def check_filters(filters: Mapping[str, Sequence[str]]) -> None:
    for key, values in filters.items():
        if key != "TagKeyValue" and key not in FILTER_KEYS:
            raise ValidationError(
                f"CostFilters key '{key}' is not supported; use TagKeyValue or one of "
                f"{', '.join(FILTER_KEYS)}.", code="InvalidParameterException")
        if not isinstance(values, list) or not values:
            raise ValidationError(f"CostFilters['{key}'] must be a non-empty list of values.",
                                  code="InvalidParameterException")
        if key == "TagKeyValue":
            for v in values:
                if not (isinstance(v, str) and v.startswith("user:") and "$" in v):
                    raise ValidationError(
                        f"CostFilters TagKeyValue '{v}' must read user:<TagKey>$<TagValue>.",
                        code="InvalidParameterException")


def matches(filters: Mapping[str, Sequence[str]], facts: Facts) -> bool:
    for key, values in filters.items():
        if key == "TagKeyValue":
            pairs = {tuple(v[5:].split("$", 1)) for v in values}
            if not any(facts.tags.get(k) == v for k, v in pairs):
                return False
        else:
            wanted = {_SERVICE_ALIASES.get(v, v) for v in values}
            if facts.dimensions.get(FILTER_KEYS[key]) not in wanted:
                return False
    return True


@dataclass(frozen=True)
class Spend:
    usd: float
    instance_hours: float


def spend(ledger: Ledger, tags_for: TagsFor, window: Interval, now: float,
          filters: Mapping[str, Sequence[str]] | None = None) -> Spend:
    """What ran in `window` (up to `now`) under `filters`: USD and instance-hours."""
    attributor = Attributor(tags_for)
    usd = hours = 0.0
    for u in ledger.usage(window.start, min(window.end, now)):
        if filters and not matches(filters, attributor.facts(u)):
            continue
        life = u.interval(now)
        usd += cost_of(life, u.rate_per_hour, window)
        hours += billed_seconds(life, window) / SECONDS_PER_HOUR
    return Spend(usd, hours)


@dataclass(frozen=True)
class Forecast:
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True)
class DailyModel:
    mu: float  # USD per day
    sigma: float  # USD per day

    def forecast(self, days: float, level: float) -> Forecast:
        z = NormalDist().inv_cdf(0.5 + level / 200.0)
        mean = self.mu * days
        half = z * self.sigma * math.sqrt(max(days, 0.0))
        return Forecast(mean, max(0.0, mean - half), mean + half)


def daily_model(ledger: Ledger, tags_for: TagsFor, now: float,
                filters: Mapping[str, Sequence[str]] | None = None) -> DailyModel | None:
    """mu and sigma of the daily spend over the whole days before today (at most
    HISTORY_DAYS, from the first day with spend), plus today's so far scaled to a full day
    when there is no whole day yet; None without any spend."""
    today = math.floor(now / SECONDS_PER_DAY) * SECONDS_PER_DAY
    first = today - HISTORY_DAYS * SECONDS_PER_DAY
    windows = [Interval(first + i * SECONDS_PER_DAY, first + (i + 1) * SECONDS_PER_DAY)
               for i in range(HISTORY_DAYS)]
    days = [0.0] * HISTORY_DAYS
    attributor = Attributor(tags_for)
    for piece in split(ledger.usage(first, today), windows, now):  # one query, not 60
        if not filters or matches(filters, attributor.facts(piece.usage)):
            days[piece.period] += piece.cost_usd
    while days and days[0] == 0.0:
        days.pop(0)
    if len(days) < MIN_HISTORY_DAYS:
        so_far = spend(ledger, tags_for, Interval(today, now), now, filters).usd
        elapsed = now - today
        if so_far <= 0 or elapsed <= 0:
            return None
        return DailyModel(so_far * SECONDS_PER_DAY / elapsed, 0.0)
    mu = sum(days) / len(days)
    sigma = math.sqrt(sum((d - mu) ** 2 for d in days) / len(days))
    return DailyModel(mu, sigma)
