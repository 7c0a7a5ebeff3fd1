"""Step scaling: which step a breach falls in, and the capacity it asks for.

Source: Application Auto Scaling user guide, "Step scaling policies". The worked example there
(threshold 50, capacity 10) is reproduced in tests/scaling/test_step.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tideserve.errors import ValidationError
from tideserve.scaling.model import StepAdjustment, StepScalingConfig

MAX_STEPS = 20


def find_step(steps: Sequence[StepAdjustment], diff: float) -> StepAdjustment | None:
    """The step whose interval holds `diff` = metric − threshold.

    At or above the threshold the lower bound is inclusive and the upper exclusive; below it
    the other way round — so a diff of exactly 0 belongs to the step whose lower bound is 0,
    and a diff of exactly −10 to the step (−20, −10]."""
    for step in steps:
        lo = -math.inf if step.lower_bound is None else step.lower_bound
        hi = math.inf if step.upper_bound is None else step.upper_bound
        inside = lo <= diff < hi if diff >= 0 else lo < diff <= hi
        if inside:
            return step
    return None


def percent_delta(capacity: int, percent: int, min_magnitude: int | None) -> int:
    """PercentChangeInCapacity rounded as AWS documents: toward zero, but never to zero.

    12.7 → 12, 0.67 → 1, −0.58 → −1, −6.67 → −6. Then MinAdjustmentMagnitude raises a smaller
    change: 25 % of 4 = 1, raised to 2 with MinAdjustmentMagnitude 2."""
    raw = capacity * percent / 100
    if raw > 1:
        delta = math.floor(raw)
    elif raw > 0:
        delta = 1
    elif raw == 0:
        delta = 0
    elif raw > -1:
        delta = -1
    else:
        delta = math.ceil(raw)
    if min_magnitude and delta != 0 and abs(delta) < min_magnitude:
        delta = min_magnitude if percent > 0 else -min_magnitude
    return delta


def step_proposal(config: StepScalingConfig, capacity: int, diff: float) -> int | None:
    """The new capacity (before clamping to Min/Max) the policy asks for, or None when no step
    holds `diff`."""
    step = find_step(config.step_adjustments, diff)
    if step is None:
        return None
    adj = step.scaling_adjustment
    if config.adjustment_type == "ExactCapacity":
        return adj
    if config.adjustment_type == "ChangeInCapacity":
        return capacity + adj
    return capacity + percent_delta(capacity, adj, config.min_adjustment_magnitude)


def check_steps(steps: Sequence[StepAdjustment], adjustment_type: str) -> None:
    """Raise ValidationError unless the steps tile their range without overlap or gap and obey
    the null-bound rules of the user guide."""
    if not steps:
        raise ValidationError("StepAdjustments must contain at least one step adjustment")
    if len(steps) > MAX_STEPS:
        raise ValidationError(f"StepAdjustments may contain at most {MAX_STEPS} steps")
    for s in steps:
        _check_one(s, adjustment_type)
    _check_null_bounds(steps)
    _check_tiling(steps)


def _check_one(step: StepAdjustment, adjustment_type: str) -> None:
    lo, hi = step.lower_bound, step.upper_bound
    if lo is None and hi is None:
        raise ValidationError(
            "A step adjustment may not have both MetricIntervalLowerBound and "
            "MetricIntervalUpperBound null"
        )
    if lo is not None and hi is not None and not hi > lo:
        raise ValidationError(
            f"MetricIntervalUpperBound ({hi}) must be greater than "
            f"MetricIntervalLowerBound ({lo})"
        )
    if adjustment_type == "ExactCapacity" and step.scaling_adjustment < 0:
        raise ValidationError(
            f"ScalingAdjustment ({step.scaling_adjustment}) must be non-negative for "
            "AdjustmentType ExactCapacity"
        )


def _check_null_bounds(steps: Sequence[StepAdjustment]) -> None:
    null_lower = sum(1 for s in steps if s.lower_bound is None)
    null_upper = sum(1 for s in steps if s.upper_bound is None)
    if null_lower > 1:
        raise ValidationError("Only one step adjustment may have a null MetricIntervalLowerBound")
    if null_upper > 1:
        raise ValidationError("Only one step adjustment may have a null MetricIntervalUpperBound")
    if any(s.lower_bound is not None and s.lower_bound < 0 for s in steps) and not null_lower:
        raise ValidationError(
            "A step adjustment with a negative MetricIntervalLowerBound requires a step "
            "adjustment with a null MetricIntervalLowerBound"
        )
    if any(s.upper_bound is not None and s.upper_bound > 0 for s in steps) and not null_upper:
        raise ValidationError(
            "A step adjustment with a positive MetricIntervalUpperBound requires a step "
            "adjustment with a null MetricIntervalUpperBound"
        )


def _check_tiling(steps: Sequence[StepAdjustment]) -> None:
    """Sorted by lower bound, each step must start exactly where the previous one ends."""
    ordered = sorted(steps, key=lambda s: -math.inf if s.lower_bound is None else s.lower_bound)
    for prev, nxt in zip(ordered, ordered[1:], strict=False):
        end = math.inf if prev.upper_bound is None else prev.upper_bound
        start = -math.inf if nxt.lower_bound is None else nxt.lower_bound
        if start < end:
            raise ValidationError(
                f"Step adjustments overlap: [{_fmt(prev)}] and [{_fmt(nxt)}]"
            )
        if start > end:
            raise ValidationError(
                f"Step adjustments leave a gap between {end} and {start}: "
                f"[{_fmt(prev)}] and [{_fmt(nxt)}]"
            )


def _fmt(step: StepAdjustment) -> str:
    return f"{step.lower_bound}, {step.upper_bound}"
