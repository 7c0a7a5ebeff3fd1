"""One policy's answer to one alarm action: a capacity to move to, or a reason not to.

The steps follow spec §1.5 in order, each a named function: the raw proposal (target tracking
or step), suspension, DisableScaleIn and the scale-in consensus of target-tracking policies,
cooldowns, then the Min/Max clamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tideserve.scaling.model import NotScaledReason, ScalingPolicy
from tideserve.scaling.step import step_proposal
from tideserve.scaling.target_tracking import tracking_proposal

if TYPE_CHECKING:
    from tideserve.scaling.engine import Firing, TargetContext, TargetState

Direction = Literal["out", "in"]


@dataclass(frozen=True)
class Proposal:
    firing: Firing
    capacity: int  # already within [Min, Max]
    direction: Direction
    base: int  # capacity the proposal was computed from (the cooldown base when escalating)
    cooldown: int  # seconds, as AWS states it, to start when the activity completes
    reason: str


@dataclass(frozen=True)
class Skip:
    firing: Firing
    reason: str
    not_scaled: NotScaledReason | None = None  # recorded as a not-scaled activity when set


def propose(state: TargetState, firing: Firing, ctx: TargetContext, now: float) -> Proposal | Skip:
    evaluation, alarm = firing.evaluation, firing.alarm
    if evaluation.state.value != "ALARM":
        return Skip(firing, f"alarm {alarm.name} is {evaluation.state.value}, not ALARM")
    value = evaluation.latest_value
    if value is None:
        return Skip(firing, f"alarm {alarm.name} has no datapoint to act on")
    if firing.policy.step is not None:
        value = step_metric(firing, value)
    current = ctx.current_capacity
    wanted = raw_proposal(firing, value, current)
    if wanted is None:
        return Skip(firing, f"no step adjustment covers {value} - {alarm.threshold}")
    if wanted == current:
        reason = NotScaledReason("AlreadyAtDesiredCapacity", current_capacity=current)
        return Skip(firing, f"policy {firing.policy.name} proposes the current {current}", reason)
    direction: Direction = "out" if wanted > current else "in"
    return _gate(state, firing, ctx, now, wanted, direction, value)


def step_metric(firing: Firing, latest: float) -> float:
    """The value a step policy compares with the alarm threshold: the policy's
    MetricAggregationType (Average when unset) over the real datapoints the alarm just
    evaluated (which datapoints AWS uses is UNCONFIRMED; this is the spec's choice). For the
    usual 1-of-1 alarm it is simply the latest datapoint."""
    assert firing.policy.step is not None
    values = [v for _, v in firing.evaluation.evaluated if v is not None]
    if not values:
        return latest
    kind = firing.policy.step.metric_aggregation_type or "Average"
    if kind == "Minimum":
        return min(values)
    if kind == "Maximum":
        return max(values)
    return sum(values) / len(values)


def raw_proposal(firing: Firing, value: float, capacity: int) -> int | None:
    """What the policy asks for from `capacity`, before any gate."""
    policy = firing.policy
    tracking, step = policy.tracking, policy.step
    if tracking is not None:
        return tracking_proposal(tracking, capacity, value, _is_high_alarm(firing))
    assert step is not None
    return step_proposal(step, capacity, value - firing.alarm.threshold)


def _is_high_alarm(firing: Firing) -> bool:
    high = firing.policy.alarm("high")
    if high is not None and high.name == firing.alarm.name:
        return True
    low = firing.policy.alarm("low")
    if low is not None and low.name == firing.alarm.name:
        return False
    return firing.alarm.comparison_operator.startswith("Greater")


def _gate(
    state: TargetState,
    firing: Firing,
    ctx: TargetContext,
    now: float,
    wanted: int,
    direction: Direction,
    value: float,
) -> Proposal | Skip:
    suspended = state.target.suspended
    if direction == "out" and suspended.dynamic_scaling_out_suspended:
        return Skip(firing, "dynamic scale-out is suspended")
    if direction == "in" and suspended.dynamic_scaling_in_suspended:
        return Skip(firing, "dynamic scale-in is suspended")
    base = ctx.current_capacity
    if direction == "in":
        gated = _scale_in_gates(state, firing, ctx, now, wanted)
    else:
        gated, base = _scale_out_cooldown(state, firing, ctx, now, wanted, value)
    if isinstance(gated, Skip):
        return gated
    return _clamp(state, firing, ctx.current_capacity, gated, direction, base)


def _scale_in_gates(
    state: TargetState, firing: Firing, ctx: TargetContext, now: float, wanted: int
) -> int | Skip:
    policy = firing.policy
    if policy.tracking is not None:
        if policy.tracking.disable_scale_in:
            return Skip(firing, f"policy {policy.name} has DisableScaleIn")
        agreed = _consensus(state, firing, ctx, now, wanted)
        if isinstance(agreed, Skip):
            return agreed
        wanted = agreed
        if wanted >= ctx.current_capacity:
            return Skip(firing, "target-tracking policies together propose no scale-in")
    until = state.cooldown(policy.arn).scale_in_until
    if until is not None and now < until:
        return Skip(firing, f"policy {policy.name} is in its scale-in cooldown until {until}")
    return wanted


def _consensus(
    state: TargetState, firing: Firing, ctx: TargetContext, now: float, wanted: int
) -> int | Skip:
    """Scale-in by target tracking needs every other target-tracking policy with scale-in
    enabled to be ready too (AlarmLow in ALARM, out of scale-in cooldown); the largest of
    their proposals wins, so the least capacity is removed (spec §1.3.5)."""
    for peer in ctx.policies:
        tracking = peer.tracking
        if peer.arn == firing.policy.arn or tracking is None or tracking.disable_scale_in:
            continue
        low = peer.alarm("low")
        ev = ctx.evaluations.get(low.name) if low is not None else None
        if ev is None or ev.state.value != "ALARM" or ev.latest_value is None:
            return Skip(firing, f"policy {peer.name} is not ready to scale in")
        until = state.cooldown(peer.arn).scale_in_until
        if until is not None and now < until:
            return Skip(firing, f"policy {peer.name} is in its scale-in cooldown")
        wanted = max(wanted, tracking_proposal(tracking, ctx.current_capacity,
                                               ev.latest_value, False))
    return wanted


def _scale_out_cooldown(
    state: TargetState, firing: Firing, ctx: TargetContext, now: float, wanted: int,
    value: float,
) -> tuple[int | Skip, int]:
    """During this policy's scale-out cooldown (or while its scale-out is still in flight),
    the proposal is recomputed from the capacity before that scale-out and acted on only if
    it is larger than the current capacity: C_base=2 scaled to 5; M now says 7 from base 2 →
    add only 2 more. Returns (capacity or skip, base)."""
    policy = firing.policy
    cd = state.cooldown(policy.arn)
    flight = state.in_flight
    base: int | None = None
    if flight is not None and flight.policy_arn == policy.arn and flight.direction == "out":
        base = flight.base
    elif cd.scale_out_until is not None and now < cd.scale_out_until:
        base = cd.scale_out_base
    if base is None:
        return wanted, ctx.current_capacity
    from_base = raw_proposal(firing, value, base)
    if from_base is None or from_base <= ctx.current_capacity:
        return Skip(
            firing,
            f"policy {policy.name} is in its scale-out cooldown and {from_base} (from base "
            f"{base}) is not larger than {ctx.current_capacity}",
        ), base
    return from_base, base


def _clamp(
    state: TargetState, firing: Firing, current: int, wanted: int, direction: Direction,
    base: int,
) -> Proposal | Skip:
    target = state.target
    capacity = target.clamp(wanted)
    if direction == "out" and capacity <= current:
        reason = NotScaledReason("AlreadyAtMaxCapacity", max_capacity=target.max_capacity,
                                 current_capacity=current)
        return Skip(firing, f"already at maximum capacity {target.max_capacity}", reason)
    if direction == "in" and capacity >= current:
        reason = NotScaledReason("AlreadyAtMinCapacity", min_capacity=target.min_capacity,
                                 current_capacity=current)
        return Skip(firing, f"already at minimum capacity {target.min_capacity}", reason)
    return Proposal(firing, capacity, direction, base, _cooldown_seconds(firing.policy, direction),
                    f"policy {firing.policy.name} proposes {wanted}")


def _cooldown_seconds(policy: ScalingPolicy, direction: Direction) -> int:
    if policy.tracking is not None:
        t = policy.tracking
        return t.scale_out_cooldown if direction == "out" else t.scale_in_cooldown
    assert policy.step is not None
    return policy.step.cooldown
