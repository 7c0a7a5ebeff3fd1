"""Forecasts for predictive scaling, pure: a policy's load history in, a Forecast out.

The forecasting model sits behind a small port (`ForecastModel`), so this package stays pure:
tideserve.forecasting implements it with statsmodels' Holt-Winters; `SeasonalNaive` here is
the fallback with one day of history (and without statsmodels).

AWS's rules, compressed by time_scale: no forecast before 24 h of history; up to 14 days of
history are used; forecasts reach 48 h ahead and are remade every hour. Beyond AWS, the
forecast is made per metric period (a bin of one AWS minute) rather than per hour, so a
rise inside the hour is seen when it comes, not averaged into the hour.

Capacity per bin holds the scaling metric at TargetValue: the load metric is the total per
period (e.g. Invocations Sum per minute) and the scaling metric the per-unit average (e.g.
InvocationsPerInstance), so capacity = ceil(load / TargetValue). Worked: 1,230 invocations
forecast in a minute at TargetValue 500 → ceil(2.46) = 3 instances.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tideserve.scaling import metric_math
from tideserve.scaling.model import ScalingPolicy
from tideserve.scaling.predictive_model import (
    ExpressionQuery,
    Forecast,
    MetricStatQuery,
    PredictiveMetricSpec,
)

DAY, HOUR = 86400.0, 3600.0  # AWS seconds
MIN_HISTORY = 1 * DAY
MAX_HISTORY = 14 * DAY
HORIZON = 2 * DAY
REFRESH = 1 * HOUR
# A back-test error above this (sum of |error| over the sum of the load, on the last day of
# history forecast from the days before it) means the load is not predictable enough to set
# capacity on: the policy falls back to the reactive policies (tideserve's threshold; AWS
# does not publish one).
MAX_ERROR = 0.5

# (query, start, end, step) -> {bin start: the query's statistic}, bins without data absent.
ReadStat = Callable[[MetricStatQuery, float, float, float], Mapping[float, float]]


class ForecastModel(Protocol):
    name: str

    def predict(self, history: Sequence[float], season: int, horizon: int) -> Sequence[float]:
        """`horizon` values after `history` (one value per bin, oldest first), whose seasonal
        cycle is `season` bins long (a day)."""
        ...


class SeasonalNaive:
    """Tomorrow repeats today: each bin's forecast is the same bin a season earlier."""

    name = "seasonal-naive"

    def predict(self, history: Sequence[float], season: int, horizon: int) -> Sequence[float]:
        last = list(history[-season:])
        return [last[i % season] for i in range(horizon)]


def load_series(spec: PredictiveMetricSpec, read: ReadStat, start: float, end: float,
                step: float) -> tuple[dict[float, float], str]:
    """The load metric per bin over [start, end) and, if it cannot be read, why not. Every
    MetricStat query is read; expressions are evaluated (scaling.metric_math) once the ids
    they read are known, so one may build on another."""
    query = spec.load_query
    if isinstance(query, MetricStatQuery):
        return dict(read(query, start, end, step)), ""
    known: dict[str, Mapping[float, float]] = {
        q.id: read(q, start, end, step) for q in spec.load if isinstance(q, MetricStatQuery)}
    pending = [q for q in spec.load if isinstance(q, ExpressionQuery)]
    try:
        while pending:
            ready = [q for q in pending if metric_math.referenced_ids(q.expression) <= set(known)]
            if not ready:
                return {}, f"metric math ({query.expression!r}) reads ids no query defines"
            for q in ready:
                known[q.id] = metric_math.evaluate(q.expression, known)
                pending.remove(q)
    except metric_math.UnsupportedExpression as exc:
        return {}, f"metric math not evaluated for forecasts: {exc}"
    return dict(known[query.id]), ""


def build_forecast(
    policy: ScalingPolicy,
    spec: PredictiveMetricSpec,
    history: Mapping[float, float],
    now: float,
    step: float,
    time_scale: float,
    model: ForecastModel,
    known_error: float | None = None,
) -> Forecast:
    """The forecast made at `now` from `history` ({bin start: load}); bins without data count
    as no load (a metric of invocations has no datapoint in a minute without any).
    `known_error`: a back-test error measured earlier today, reused instead of testing again."""
    end = math.floor(now / step) * step  # the bins before this one are closed
    empty = Forecast(policy.arn, now, end, step)
    if not history:
        return _note(empty, "no load history")
    first = min(t for t in history if t < end) if any(t < end for t in history) else end
    values = [history.get(first + i * step, 0.0) for i in range(round((end - first) / step))]
    season = max(1, round(DAY * time_scale / step))
    have_hours = len(values) * step / time_scale / HOUR
    if len(values) < season:
        return _note(empty, f"{have_hours:.1f} h of history; a forecast needs 24 h")
    values = values[-round(MAX_HISTORY * time_scale / step):]
    horizon = round(HORIZON * time_scale / step)
    used: ForecastModel = model if len(values) >= 2 * season else SeasonalNaive()
    error = None
    if len(values) >= 2 * season:
        error = known_error if known_error is not None else _backtest(used, values, season)
    load = tuple(max(0.0, float(v)) for v in used.predict(values, season, horizon))
    per_bin_target = spec.target_value * (step / time_scale) / 60.0  # TargetValue per minute
    capacity = tuple(math.ceil(v / per_bin_target - 1e-9) for v in load)
    usable = error is None or error <= MAX_ERROR
    note = "" if usable else (f"back-test error {error:.2f} above {MAX_ERROR}: "
                              "reactive policies decide")
    return Forecast(policy.arn, now, end, step, load, capacity, used.name,
                    None if error is None else round(error, 4), note, usable)


def _backtest(model: ForecastModel, values: Sequence[float], season: int) -> float:
    """Forecast the last day from the days before it; the error relative to the load."""
    predicted = model.predict(values[:-season], season, season)
    actual = values[-season:]
    total = sum(abs(a) for a in actual)
    miss = sum(abs(p - a) for p, a in zip(predicted, actual, strict=True))
    return min(miss / total, 1e6) if total > 0 else (0.0 if miss == 0 else 1e6)


def _note(forecast: Forecast, note: str) -> Forecast:
    return Forecast(forecast.policy_arn, forecast.update_time, forecast.start, forecast.step,
                    note=note)


@dataclass
class Forecaster:
    """Keeps each predictive policy's forecast and remakes it once an hour (compressed) has
    passed, or when the policy changed. The live driver and the simulator each hold one and
    pass its forecasts to the tick, so both act on forecasts made the same way."""

    model: ForecastModel
    step: float  # the metric period: one forecast bin
    time_scale: float
    # Refreshes fall due at (compressed) hour boundaries plus this delay (the tick's
    # evaluation delay), so a driver ticking every second and the simulator, ticking at the
    # evaluation slots, remake a forecast at the same instant from the same history.
    delay: float = 0.0
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    _made_for: dict[str, ScalingPolicy] = field(default_factory=dict)
    _models: dict[str, ForecastModel] = field(default_factory=dict)  # one per policy
    _tested: dict[str, tuple[int, float]] = field(default_factory=dict)  # (day, error)

    def refresh(self, policies: Sequence[ScalingPolicy], read: ReadStat,
                now: float) -> list[Forecast]:
        """Remake the forecasts that are due; returns the ones remade."""
        remade = []
        live = {p.arn for p in policies if p.predictive is not None}
        for arn in [a for a in self.forecasts if a not in live]:
            for memo in (self.forecasts, self._made_for, self._models, self._tested):
                memo.pop(arn, None)
        for policy in policies:
            config = policy.predictive
            if config is None or not self._due(policy, now):
                continue
            spec = config.spec
            start = now - MAX_HISTORY * self.time_scale - self.step
            history, why = load_series(spec, read, start, now, self.step)
            if self._made_for.get(policy.arn) != policy:  # new or changed: start afresh
                self._models[policy.arn] = copy.deepcopy(self.model)
                self._tested.pop(policy.arn, None)
            day = math.floor((now - self.delay) / (DAY * self.time_scale))
            tested = self._tested.get(policy.arn)
            known = tested[1] if tested is not None and tested[0] == day else None
            forecast = build_forecast(policy, spec, history, now, self.step, self.time_scale,
                                      self._models[policy.arn], known)
            if why:
                forecast = _note(forecast, why)
            if forecast.error is not None:
                # The back-test is redone once a day: the last day's error moves slowly.
                self._tested[policy.arn] = (day, forecast.error)
            self.forecasts[policy.arn] = forecast
            self._made_for[policy.arn] = policy
            remade.append(forecast)
        return remade

    def _due(self, policy: ScalingPolicy, now: float) -> bool:
        old = self.forecasts.get(policy.arn)
        if old is None or self._made_for.get(policy.arn) != policy:
            return True
        hour = REFRESH * self.time_scale
        return (math.floor((now - self.delay) / hour)
                > math.floor((old.update_time - self.delay) / hour))
