"""Predictive scaling's pure rules, on a fake clock (period 60 s, time_scale 1): the forecast,
the capacity it asks for, and how it combines with reactive decisions."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tideserve.autoscaling.validate_predictive import predictive_config
from tideserve.scaling import predictive
from tideserve.scaling.engine import Decision, TargetState
from tideserve.scaling.forecast import Forecaster, SeasonalNaive, build_forecast
from tideserve.scaling.model import (
    PREDICTIVE_SCALING,
    ScalableTarget,
    ScalingPolicy,
    TargetKey,
)
from tideserve.scaling.predictive_model import Forecast

KEY = TargetKey("sagemaker", "endpoint/ep/variant/AllTraffic",
                "sagemaker:variant:DesiredInstanceCount")
T0 = 1_700_000_040.0  # a minute boundary
DAY = 1440  # one-minute bins in a day


def policy(**config) -> ScalingPolicy:
    raw = {"MetricSpecifications": [{"TargetValue": 100.0, "PredefinedMetricPairSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}],
        "Mode": "ForecastAndScale", **config}
    return ScalingPolicy("forecast", "arn:policy/forecast", KEY, PREDICTIVE_SCALING,
                         predictive_config(raw, KEY), T0)


def target(lo: int = 1, hi: int = 10) -> ScalableTarget:
    return ScalableTarget(KEY, lo, hi, "role", T0, "arn:target")


def forecast(capacity: list[int], start: float = T0) -> Forecast:
    return Forecast("arn:policy/forecast", start, start, 60.0, tuple(100.0 * c for c in capacity),
                    tuple(capacity), "test", None, "", True)


def history(days: int, high_from: int = 600, high_to: int = 720) -> dict[float, float]:
    """Days of one-minute Invocations ending at T0: 1,230 a minute from high_from to high_to
    each day, 50 otherwise."""
    start = T0 - days * DAY * 60
    return {start + i * 60: 1230.0 if high_from <= i % DAY < high_to else 50.0
            for i in range(days * DAY)}


class TestForecast:
    def test_no_forecast_before_a_day_of_history(self):
        f = build_forecast(policy(), policy().predictive.spec, dict(list(history(1).items())[60:]),
                           T0, 60.0, 1.0, SeasonalNaive())
        assert not f.usable and f.capacity == ()
        assert f.note == "23.0 h of history; a forecast needs 24 h"

    def test_one_day_repeats_itself_and_capacity_rounds_up(self):
        f = build_forecast(policy(), policy().predictive.spec, history(1), T0, 60.0, 1.0,
                           SeasonalNaive())
        assert f.usable and f.model == "seasonal-naive" and f.error is None
        assert len(f.load) == 2 * DAY and f.start == T0  # 48 h ahead, one bin a minute
        # 1,230 invocations a minute at TargetValue 100 → ceil(12.3) = 13 instances
        assert f.capacity[600] == 13 and f.capacity[599] == 1 and f.capacity[DAY + 600] == 13

    def test_two_days_are_back_tested_with_the_model(self):
        f = build_forecast(policy(), policy().predictive.spec, history(2), T0, 60.0, 1.0,
                           SeasonalNaive())
        assert f.usable and f.error == 0.0

    def test_an_unpredictable_load_falls_back_to_reactive_scaling(self):
        noisy = history(2)
        for t in list(noisy)[DAY:]:  # the second day is nothing like the first
            noisy[t] = 0.0 if noisy[t] > 100 else 900.0
        f = build_forecast(policy(), policy().predictive.spec, noisy, T0, 60.0, 1.0,
                           SeasonalNaive())
        assert not f.usable and f.note.startswith("back-test error")
        state = TargetState(target(), desired=1)
        assert predictive.decide(state, policy(), f, 1, T0).desired is None

    def test_forecasts_are_remade_every_hour(self):
        forecaster = Forecaster(SeasonalNaive(), 60.0, 1.0)
        reads = []

        def read(q, start, end, step):
            reads.append(end)
            return history(1)

        p = policy()
        assert len(forecaster.refresh([p], read, T0)) == 1
        assert forecaster.refresh([p], read, T0 + 1000) == []  # same clock hour
        assert len(forecaster.refresh([p], read, math.ceil(T0 / 3600) * 3600)) == 1
        assert forecaster.refresh([], read, T0 + 7200) == [] and forecaster.forecasts == {}


class TestCapacity:
    def test_the_buffer_brings_the_capacity_forward(self):
        f = forecast([1] * 5 + [6] * 5)
        config = policy(SchedulingBufferTime=300).predictive
        assert predictive.forecast_capacity(config, f, target(), T0) == 6  # bin 5 is 300 s away
        assert predictive.forecast_capacity(config, f, target(), T0 - 60) == 1
        config = policy(SchedulingBufferTime=0).predictive
        assert predictive.forecast_capacity(config, f, target(), T0 + 240) == 1

    @pytest.mark.parametrize("behavior, buffer, expected", [
        ("HonorMaxCapacity", None, 40),
        ("IncreaseMaxCapacity", None, 50),
        ("IncreaseMaxCapacity", 10, 50),  # the max becomes 55; the forecast asks for 50
    ])
    def test_max_capacity_breach(self, behavior, buffer, expected):
        extra = {"MaxCapacityBreachBehavior": behavior}
        if buffer is not None:
            extra["MaxCapacityBuffer"] = buffer
        config = policy(**extra).predictive
        assert predictive.forecast_capacity(config, forecast([50]), target(1, 40), T0) == expected

    def test_min_capacity_holds(self):
        config = policy().predictive
        assert predictive.forecast_capacity(config, forecast([0]), target(2, 10), T0) == 2


class TestDecide:
    def test_scales_out_to_the_forecast_and_says_so(self):
        d = predictive.decide(TargetState(target(), desired=1), policy(), forecast([4]), 1, T0)
        assert d.desired == 4
        assert d.activity.cause == "predictive scaling policy forecast forecasted capacity 4"
        assert d.activity.description == "Setting desired instance count to 4."

    def test_never_scales_in(self):
        d = predictive.decide(TargetState(target(), desired=6), policy(), forecast([4]), 6, T0)
        assert d.desired is None and d.activity is None

    def test_forecast_only_never_scales(self):
        p = policy(Mode="ForecastOnly")
        d = predictive.decide(TargetState(target(), desired=1), p, forecast([4]), 1, T0)
        assert d.desired is None and d.reason == "policy forecast forecasts only"

    def test_no_forecast_leaves_it_to_the_reactive_policies(self):
        d = predictive.decide(TargetState(target(), desired=1), policy(), None, 1, T0)
        assert d.desired is None and d.reason == "policy forecast: no forecast yet"


class TestWithReactivePolicies:
    def scale_in(self, before: TargetState, to: int) -> Decision:
        from tideserve.scaling import activities as acts
        from tideserve.scaling.engine import begin
        activity = acts.start_activity(KEY, to, "monitor alarm low", T0, "arn:tt")
        return Decision(begin(before, activity, "in", before.desired or 0, 300), to, activity,
                        f"scale in to {to}")

    def test_a_scale_in_stops_at_the_forecast(self):
        before = TargetState(target(), desired=10)
        d = predictive.hold_scale_in(before, self.scale_in(before, 4), 6, 10, T0)
        assert d.desired == 6 and d.activity.desired == 6
        assert d.state.in_flight.activity_id == d.activity.activity_id

    def test_a_scale_in_below_a_forecast_at_or_above_current_does_not_happen(self):
        before = TargetState(target(), desired=6)
        d = predictive.hold_scale_in(before, self.scale_in(before, 4), 6, 6, T0)
        assert d.desired is None and d.state == before

    def test_a_scale_in_above_the_forecast_is_untouched(self):
        before = TargetState(target(), desired=10)
        d = self.scale_in(before, 8)
        assert predictive.hold_scale_in(before, d, 6, 10, T0) is d

    def test_the_floor_is_the_highest_scaling_forecast(self):
        p1, p2 = policy(), replace(policy(Mode="ForecastOnly"), arn="arn:2")
        forecasts = {p1.arn: forecast([3]), "arn:2": forecast([9])}
        assert predictive.floor_for((p1, p2), forecasts, target(), T0, 1.0) == 3


class TestMetricMath:
    def spec(self, *queries):
        from tideserve.scaling.predictive_model import PredictiveMetricSpec
        return PredictiveMetricSpec(100.0, tuple(queries), "{}")

    def test_a_load_summed_over_two_variants(self):
        from tideserve.scaling.forecast import load_series
        from tideserve.scaling.predictive_model import ExpressionQuery, MetricStatQuery
        a = MetricStatQuery("a", "AWS/SageMaker", "Invocations", "Sum", return_data=False)
        b = MetricStatQuery("b", "AWS/SageMaker", "Invocations", "Sum", return_data=False)
        total = ExpressionQuery("total", "(a + b) * 2")
        data = {"a": {0.0: 1.0, 60.0: 2.0}, "b": {0.0: 10.0}}

        def read(q, start, end, step):
            return data[q.id]

        assert load_series(self.spec(a, b, total), read, 0, 120, 60) == ({0.0: 22.0}, "")

    def test_other_metric_math_is_reported_not_evaluated(self):
        from tideserve.scaling.forecast import load_series
        from tideserve.scaling.predictive_model import ExpressionQuery
        search = ExpressionQuery("s", "SUM(SEARCH('{AWS/SageMaker} Invocations', 'Sum'))")
        series, why = load_series(self.spec(search), lambda *a: {}, 0, 120, 60)
        assert series == {} and why.startswith("metric math not evaluated for forecasts")
