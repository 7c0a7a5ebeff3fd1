"""StepScalingPolicyConfiguration → StepRequest (partial: an update changes what it gives;
put_policy merges it with the stored configuration and checks the steps)."""

from __future__ import annotations

from dataclasses import dataclass

from tideserve.autoscaling.fields import (
    Request,
    constraint,
    enum_value,
    optional_int,
    optional_number,
)
from tideserve.errors import ValidationError
from tideserve.scaling.model import StepAdjustment

_STEP = "stepScalingPolicyConfiguration"
ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")
AGGREGATIONS = ("Average", "Minimum", "Maximum")


@dataclass(frozen=True)
class StepRequest:
    adjustment_type: str | None = None
    step_adjustments: tuple[StepAdjustment, ...] | None = None
    min_adjustment_magnitude: int | None = None
    cooldown: int | None = None
    metric_aggregation_type: str | None = None


def step_request(raw: Request) -> StepRequest:
    adjustment = raw.get("AdjustmentType")
    if adjustment is not None:
        enum_value(adjustment, ADJUSTMENT_TYPES, f"{_STEP}.adjustmentType")
    aggregation = raw.get("MetricAggregationType")
    if aggregation is not None:
        enum_value(aggregation, AGGREGATIONS, f"{_STEP}.metricAggregationType")
    steps_raw = raw.get("StepAdjustments")
    steps = None if steps_raw is None else tuple(_step(s, i) for i, s in enumerate(steps_raw))
    magnitude = optional_int(raw, "MinAdjustmentMagnitude", 1,
                             f"{_STEP}.MinAdjustmentMagnitude")
    cooldown = optional_int(raw, "Cooldown", 0, f"{_STEP}.Cooldown")
    return StepRequest(adjustment, steps, magnitude, cooldown, aggregation)


def _step(raw: object, index: int) -> StepAdjustment:
    path = f"{_STEP}.stepAdjustments.{index + 1}"
    if not isinstance(raw, dict):
        raise constraint(raw, path, "Member must be a StepAdjustment")
    adjustment = optional_int(raw, "ScalingAdjustment", path=f"{path}.scalingAdjustment")
    if adjustment is None:
        raise ValidationError(f"ScalingAdjustment is required in step adjustment {index + 1}")
    return StepAdjustment(
        scaling_adjustment=adjustment,
        lower_bound=optional_number(raw, "MetricIntervalLowerBound",
                                    f"{path}.metricIntervalLowerBound"),
        upper_bound=optional_number(raw, "MetricIntervalUpperBound",
                                    f"{path}.metricIntervalUpperBound"),
    )
