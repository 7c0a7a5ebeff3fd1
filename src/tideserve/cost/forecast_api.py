"""Cost Explorer's GetCostForecast from the ledger's history (spec §13.1), with the model in
spend.py: one ForecastResultsByTime entry per DAILY or MONTHLY period of the window, each with
its PredictionIntervalLevel bounds (default level 80, as the console), Total = Σ MeanValue.

A window that starts inside the current day forecasts only what is left of it (incurred spend
is not forecast). Filters are Cost Explorer Expressions (ce_filter), matched per usage record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tideserve.clock import Clock
from tideserve.cost import ce_filter
from tideserve.cost.attribution import Attributor, TagsFor
from tideserve.cost.billing import Interval, periods
from tideserve.cost.explorer import amount, parse_query
from tideserve.cost.ledger import Ledger, Usage
from tideserve.cost.spend import SECONDS_PER_DAY, DailyModel, daily_model
from tideserve.errors import ValidationError

COST_METRICS: Final = ("AMORTIZED_COST", "BLENDED_COST", "NET_AMORTIZED_COST",
                       "NET_UNBLENDED_COST", "UNBLENDED_COST")
DEFAULT_LEVEL: Final = 80
HORIZON_DAYS: Final = {"DAILY": 92, "MONTHLY": 549}  # 3 and 18 months ahead (botocore 1.44.8)


class CostForecasts:
    def __init__(self, ledger: Ledger, tags_for: TagsFor, clock: Clock) -> None:
        self.ledger, self.tags_for, self.clock = ledger, tags_for, clock

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetCostForecast": self.get_cost_forecast}

    def get_cost_forecast(self, params: Mapping[str, Any]) -> dict[str, Any]:
        metric = params.get("Metric")
        if metric not in COST_METRICS:
            raise ValidationError(f"Value '{metric}' at 'metric' failed to satisfy constraint: "
                                  f"Member must satisfy enum value set: [{', '.join(COST_METRICS)}]"
                                  )
        granularity = params.get("Granularity")
        if granularity not in ("DAILY", "MONTHLY"):
            raise ValidationError(f"Granularity {granularity} is not supported: forecast DAILY "
                                  "or MONTHLY.")
        level = int(params.get("PredictionIntervalLevel") or DEFAULT_LEVEL)
        if not 51 <= level <= 99:
            raise ValidationError("PredictionIntervalLevel must be between 51 and 99.")
        query = parse_query({"TimePeriod": params.get("TimePeriod"), "Granularity": granularity,
                             "Metrics": ["UnblendedCost"], "Filter": params.get("Filter")})
        now = self.clock.now()
        today = now - now % SECONDS_PER_DAY
        if query.window.start < today:
            raise ValidationError("Start date must be equal to or later than the current date "
                                  f"({datetime.fromtimestamp(today, UTC):%Y-%m-%d}).")
        if query.window.end > today + HORIZON_DAYS[granularity] * SECONDS_PER_DAY:
            raise ValidationError(f"A {granularity} forecast reaches at most "
                                  f"{HORIZON_DAYS[granularity]} days ahead.")
        model = self._model(query.filter, now)
        if model is None:
            raise ValidationError("Insufficient amount of historical data.",
                                  code="DataUnavailableException")
        results, total = [], 0.0
        for window in periods(query.window, granularity):
            left = Interval(max(window.start, now), window.end)
            days = max(0.0, left.end - left.start) / SECONDS_PER_DAY
            f = model.forecast(days, level)
            total += f.mean
            results.append({"TimePeriod": {"Start": _day(window.start), "End": _day(window.end)},
                            "MeanValue": amount(f.mean),
                            "PredictionIntervalLowerBound": amount(f.lower),
                            "PredictionIntervalUpperBound": amount(f.upper)})
        return {"Total": {"Amount": amount(total), "Unit": "USD"},
                "ForecastResultsByTime": results}

    def _model(self, filter_: ce_filter.Expression | None, now: float) -> DailyModel | None:
        if filter_ is None:
            return daily_model(self.ledger, self.tags_for, now)
        # A CE Expression filter: reuse the ledger filter hook through a tag-less wrapper.
        return daily_model(_Filtered(self.ledger, self.tags_for, filter_), self.tags_for, now)


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


class _Filtered(Ledger):
    """The ledger seen through a Cost Explorer filter expression."""

    def __init__(self, inner: Ledger, tags_for: TagsFor, expression: ce_filter.Expression):
        super().__init__(inner.engine, inner.catalog, inner.clock)
        self._tags_for, self._expression = tags_for, expression

    def usage(self, start: float, end: float) -> list[Usage]:
        attributor = Attributor(self._tags_for)
        return [u for u in super().usage(start, end)
                if ce_filter.matches(self._expression, attributor.facts(u))]
