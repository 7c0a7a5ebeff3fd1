"""Step scaling, read like spec §1.4 and §8 item 6."""

from __future__ import annotations

import pytest

from tests.scaling.builders import T0, Endpoint, fire, make_target, step_policy, user_alarm
from tideserve.errors import ValidationError
from tideserve.scaling.engine import TargetState
from tideserve.scaling.model import StepAdjustment
from tideserve.scaling.step import find_step, percent_delta

# AWS's worked example: threshold 50; out [0,10) 0 %, [10,20) +10 %, [20,∞) +30 %;
# in (−10,0] 0, (−20,−10] −10 %, (−∞,−20] −30 %.
AWS_STEPS_OUT = [
    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 0},
    {"MetricIntervalLowerBound": 10, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 10},
    {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 30},
]
AWS_STEPS_IN = [
    {"MetricIntervalLowerBound": -10, "MetricIntervalUpperBound": 0, "ScalingAdjustment": 0},
    {"MetricIntervalLowerBound": -20, "MetricIntervalUpperBound": -10, "ScalingAdjustment": -10},
    {"MetricIntervalUpperBound": -20, "ScalingAdjustment": -30},
]


@pytest.mark.parametrize(
    "case, diff, expected",
    [
        ("exactly at the threshold: the step whose lower bound is 0", 0.0, 0),
        ("just under the first upper bound", 9.99, 0),
        ("above the threshold the lower bound is inclusive", 10.0, 10),
        ("… at every step", 20.0, 30),
        ("just below the threshold", -0.01, 0),
        ("below the threshold the upper bound is inclusive: −10 ∈ (−20, −10]", -10.0, -10),
        ("… and the lower exclusive", -19.99, -10),
        ("−20 ∈ (−∞, −20]", -20.0, -30),
    ],
)
def test_step_boundaries_flip_inclusivity_at_the_threshold(
    case: str, diff: float, expected: int
) -> None:
    steps = AWS_STEPS_OUT if diff >= 0 else AWS_STEPS_IN
    config = step_policy(steps, adjustment="PercentChangeInCapacity").step
    assert config is not None
    step = find_step(config.step_adjustments, diff)
    assert step is not None and step.scaling_adjustment == expected, case


def test_aws_worked_example_capacity_10_then_60_70_40_30() -> None:
    out = step_policy(AWS_STEPS_OUT, name="out", adjustment="PercentChangeInCapacity",
                      Cooldown=0)
    inn = step_policy(AWS_STEPS_IN, name="in", adjustment="PercentChangeInCapacity",
                      Cooldown=0)
    high = user_alarm(50, "high")
    low = user_alarm(50, "low", op="LessThanThreshold")
    ep = Endpoint(TargetState(make_target(max_capacity=100)), capacity=10)
    assert ep.tick(T0, fire(out, 60, alarm=high)).desired == 11  # +10 % of 10 = 1
    assert ep.tick(T0 + 60, fire(out, 70, alarm=high)).desired == 14  # +30 % of 11 = 3.3 → 3
    assert ep.tick(T0 + 120, fire(inn, 40, alarm=low)).desired == 13  # −10 % of 14 = −1.4 → −1
    assert ep.tick(T0 + 180, fire(inn, 30, alarm=low)).desired == 10  # −30 % of 13 = −3.9 → −3


@pytest.mark.parametrize(
    "case, capacity, percent, magnitude, delta",
    [
        ("above 1 rounds down: 12.7 → 12", 127, 10, None, 12),
        ("between 0 and 1 becomes 1: 0.67 → 1", 67, 1, None, 1),
        ("between −1 and 0 becomes −1: −0.58 → −1", 58, -1, None, -1),
        ("below −1 rounds up: −6.67 → −6", 667, -1, None, -6),
        ("MinAdjustmentMagnitude raises 25 % of 4 = 1 to 2", 4, 25, 2, 2),
        ("MinAdjustmentMagnitude applies to scale-in too", 4, -25, 2, -2),
        ("a large enough change is left alone", 40, 25, 2, 10),
    ],
)
def test_percent_change_rounding(case: str, capacity: int, percent: int,
                                 magnitude: int | None, delta: int) -> None:
    assert percent_delta(capacity, percent, magnitude) == delta, case


def test_min_adjustment_magnitude_through_the_engine() -> None:
    policy = step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 25}],
                         adjustment="PercentChangeInCapacity", MinAdjustmentMagnitude=2)
    ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=4)
    assert ep.tick(T0, fire(policy, 60, alarm=user_alarm(50))).desired == 6


def test_exact_capacity_sets_the_value_and_is_clamped() -> None:
    policy = step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 12}],
                         adjustment="ExactCapacity")
    ep = Endpoint(TargetState(make_target(max_capacity=10)), capacity=3)
    assert ep.tick(T0, fire(policy, 60, alarm=user_alarm(50))).desired == 10


def test_step_cooldown_counts_the_earlier_increase() -> None:
    """AWS: +2 completed, the alarm fires again during the cooldown at the +3 step → +1 more."""
    policy = step_policy([
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 2},
        {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 3},
    ])
    alarm = user_alarm(50)
    ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=4)
    assert ep.tick(T0, fire(policy, 55, alarm=alarm)).desired == 6
    assert ep.tick(T0 + 60, fire(policy, 55, alarm=alarm)).desired is None  # same step: nothing
    assert ep.tick(T0 + 120, fire(policy, 65, alarm=alarm)).desired == 7  # 4 + 3, i.e. +1
    assert ep.tick(T0 + 421, fire(policy, 55, alarm=alarm)).desired == 9  # cooldown over: +2


def test_step_scale_in_is_blocked_by_its_cooldown() -> None:
    policy = step_policy([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}],
                         Cooldown=120)
    alarm = user_alarm(50, op="LessThanThreshold")
    ep = Endpoint(TargetState(make_target()), capacity=5)
    assert ep.tick(T0, fire(policy, 10, alarm=alarm)).desired == 4
    assert ep.tick(T0 + 60, fire(policy, 10, alarm=alarm)).desired is None
    assert ep.tick(T0 + 121, fire(policy, 10, alarm=alarm)).desired == 3


def test_no_matching_step_does_nothing() -> None:
    policy = step_policy([{"MetricIntervalLowerBound": 10, "ScalingAdjustment": 1}],
                         name="gap-below")
    d = Endpoint(TargetState(make_target()), 3).tick(T0, fire(policy, 55, alarm=user_alarm(50)))
    assert d.desired is None and d.activity is None


def test_metric_aggregation_type_over_the_evaluated_points() -> None:
    steps = [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 20,
              "ScalingAdjustment": 1},
             {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 5}]
    pts = (55.0, 65.0, 75.0)
    for aggregation, expected in (("Average", 4), ("Maximum", 8), ("Minimum", 4)):
        policy = step_policy(steps, name=aggregation, MetricAggregationType=aggregation)
        ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=3)
        d = ep.tick(T0, fire(policy, 75, alarm=user_alarm(50), points=pts))
        assert d.desired == expected, aggregation


@pytest.mark.parametrize(
    "steps, message",
    [
        ([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
          {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}], "overlap"),
        ([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
          {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 2}], "gap"),
        ([{"ScalingAdjustment": 1}], "both"),
        ([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1},
          {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}], "null MetricIntervalUpper"),
        ([{"MetricIntervalLowerBound": -5, "MetricIntervalUpperBound": 0,
           "ScalingAdjustment": -1}], "negative MetricIntervalLowerBound"),
        ([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5,
           "ScalingAdjustment": 1}], "positive MetricIntervalUpperBound"),
        ([{"MetricIntervalLowerBound": 5, "MetricIntervalUpperBound": 5,
           "ScalingAdjustment": 1}], "greater than"),
        ([], "StepAdjustments"),
    ],
)
def test_invalid_steps_are_refused(steps: list[dict[str, float]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        step_policy(steps)


def test_exact_capacity_must_be_non_negative_and_magnitude_needs_percent() -> None:
    with pytest.raises(ValidationError, match="non-negative"):
        step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": -1}],
                    adjustment="ExactCapacity")
    with pytest.raises(ValidationError, match="MinAdjustmentMagnitude"):
        step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
                    MinAdjustmentMagnitude=2)


def test_find_step_on_unsorted_steps() -> None:
    steps = (StepAdjustment(3, 10, None), StepAdjustment(1, 0, 10))
    found = find_step(steps, 10)
    assert found is not None and found.scaling_adjustment == 3
