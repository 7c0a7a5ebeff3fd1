"""Predictive scaling as typed, frozen values: a PredictiveScalingPolicyConfiguration in AWS's
shape (botocore application-autoscaling) and the forecast the engine acts on.

Units: SchedulingBufferTime is AWS seconds (the engine compresses it with time_scale);
MaxCapacityBuffer a percentage of the forecast capacity; a forecast's `start` and `step` are
seconds on the driver's clock (compressed time live, simulated time in the simulator), one bin
per metric period (an AWS minute) — finer than AWS's hourly forecast, see scaling/forecast.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FORECAST_ONLY = "ForecastOnly"
FORECAST_AND_SCALE = "ForecastAndScale"
HONOR_MAX = "HonorMaxCapacity"
INCREASE_MAX = "IncreaseMaxCapacity"
DEFAULT_BUFFER_TIME = 300  # seconds, AWS's default SchedulingBufferTime


@dataclass(frozen=True)
class MetricStatQuery:
    """One MetricDataQuery with a MetricStat: a stored metric's statistic per period."""

    id: str
    namespace: str
    metric_name: str
    stat: str  # Sum for load metrics, Average for scaling metrics (as AWS recommends)
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str | None = None
    return_data: bool = True
    label: str | None = None


@dataclass(frozen=True)
class ExpressionQuery:
    """One MetricDataQuery with metric math over the other queries' ids."""

    id: str
    expression: str
    return_data: bool = True
    label: str | None = None


MetricQuery = MetricStatQuery | ExpressionQuery


@dataclass(frozen=True)
class PredictiveMetricSpec:
    """One MetricSpecification: the load metric the forecast is made of (a predefined type is
    resolved into its queries at validation) and the TargetValue of the scaling metric."""

    target_value: float  # the scaling metric per unit of capacity, e.g. invocations per minute
    load: tuple[MetricQuery, ...]
    echo: str  # the MetricSpecification as given (JSON), returned by the Describe/forecast

    @property
    def load_query(self) -> MetricQuery:
        """The one query that returns data (validation guarantees exactly one)."""
        return next(q for q in self.load if q.return_data)


@dataclass(frozen=True)
class PredictiveConfig:
    metric_specifications: tuple[PredictiveMetricSpec, ...]
    mode: str = FORECAST_ONLY
    scheduling_buffer_time: int = DEFAULT_BUFFER_TIME  # AWS seconds
    max_capacity_breach_behavior: str = HONOR_MAX
    max_capacity_buffer: int | None = None  # percent of the forecast, IncreaseMaxCapacity only

    @property
    def spec(self) -> PredictiveMetricSpec:
        return self.metric_specifications[0]


@dataclass(frozen=True)
class Forecast:
    """One policy's load and capacity forecast, made at `update_time` from the history before
    it. `note` says why it is not `usable` (too little history, too large a back-test error):
    the policy then sets no capacity and the reactive policies alone decide."""

    policy_arn: str
    update_time: float
    start: float  # start of the first forecast bin
    step: float  # bin width, seconds on the driver's clock
    load: tuple[float, ...] = ()  # the load metric per bin
    capacity: tuple[int, ...] = ()  # capacity needed per bin to hold the TargetValue
    model: str = "none"  # which forecaster made it
    error: float | None = None  # back-test error on the last day: sum |e| / sum |actual|
    note: str = ""
    usable: bool = False

    def capacity_between(self, t0: float, t1: float) -> int | None:
        """The most capacity any bin overlapping [t0, t1] needs; None outside the forecast."""
        if not self.capacity or self.step <= 0:
            return None
        first = max(0, math.floor((t0 - self.start) / self.step))
        last = min(len(self.capacity) - 1, math.floor((t1 - self.start) / self.step))
        if last < first or t1 < self.start:
            return None
        return max(self.capacity[first:last + 1])
