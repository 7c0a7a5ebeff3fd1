"""The scaling engine: what Application Auto Scaling does when an alarm action, a scheduled
action or a Min/Max change reaches a scalable target (spec §1.5, the reference algorithm).

Two drivers use it and must get identical decisions: the live controller (alarm evaluations
on period ticks of wall time) and the discrete-event simulator. Both hold one `TargetState`
per scalable target, pass it in with the inputs of the moment, apply the returned `Decision`
(set the capacity, store the activity) and later report the activity's end with
`complete_activity` — cooldowns start then, as AWS starts them when SageMaker reports the
change fulfilled.

Time compression: cooldowns are stored as AWS states them (seconds) and every function that
measures one takes `time_scale` (our seconds per AWS second: period / 60, see
Settings.time_scale). Alarm periods are compressed by the driver, which passes
`period=alarm.period * time_scale` to `alarms.evaluate`.

Nothing here raises for "no data" or "cannot scale": every outcome is a Decision with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from tideserve.scaling import activities as acts
from tideserve.scaling.alarms import AlarmEvaluation, MetricAlarm
from tideserve.scaling.model import (
    Activity,
    ActivityStatus,
    NotScaledReason,
    ScalableTarget,
    ScalingPolicy,
    ScheduledAction,
)
from tideserve.scaling.policies import Proposal, Skip, propose

Direction = Literal["out", "in"]


@dataclass(frozen=True)
class PolicyCooldown:
    """One policy's cooldown clocks, in engine time (already multiplied by time_scale)."""

    policy_arn: str
    scale_out_until: float | None = None
    # The capacity before the scale-out that opened the scale-out cooldown: a later, larger
    # scale-out is computed from it so that the capacity already added counts (spec §1.3.4).
    scale_out_base: int | None = None
    scale_in_until: float | None = None


@dataclass(frozen=True)
class InFlight:
    """The activity the target service is working on."""

    activity_id: str
    policy_arn: str | None
    direction: Direction
    base: int  # capacity before the activity (or the cooldown base it escalates)
    cooldown: int  # seconds, as AWS states it, started when the activity completes


@dataclass(frozen=True)
class TargetState:
    """Everything the engine remembers about one scalable target."""

    target: ScalableTarget
    desired: int | None = None  # the last capacity the engine asked for
    cooldowns: tuple[PolicyCooldown, ...] = ()
    in_flight: InFlight | None = None
    # (policy ARN, NotScaledReason code) of the last not-scaled record: AAS re-runs a policy
    # every minute while its alarm stays in ALARM, so an unchanged reason is recorded once
    # rather than every minute for weeks.
    last_not_scaled: tuple[str, str] | None = None

    def cooldown(self, policy_arn: str) -> PolicyCooldown:
        found = next((c for c in self.cooldowns if c.policy_arn == policy_arn), None)
        return found or PolicyCooldown(policy_arn)

    def with_cooldown(self, cd: PolicyCooldown) -> TargetState:
        others = tuple(c for c in self.cooldowns if c.policy_arn != cd.policy_arn)
        return replace(self, cooldowns=(*others, cd))


@dataclass(frozen=True)
class Decision:
    state: TargetState
    desired: int | None  # capacity to apply now; None = leave the capacity alone
    activity: Activity | None  # new activity, a not-scaled record, or None
    reason: str  # why, in words a user reads
    overridden: tuple[str, ...] = ()  # ids of in-flight activities now Overridden


@dataclass(frozen=True)
class Firing:
    """One alarm action reaching a policy: the alarm (its name and threshold matter) and the
    evaluation that fired it."""

    policy: ScalingPolicy
    alarm: MetricAlarm
    evaluation: AlarmEvaluation


@dataclass(frozen=True)
class TargetContext:
    """What the driver observes about the target right now."""

    current_capacity: int  # the variant's DesiredInstanceCount (spec: Desired, not Current)
    policies: tuple[ScalingPolicy, ...] = ()  # every policy on the target (scale-in consensus)
    evaluations: Mapping[str, AlarmEvaluation] = field(default_factory=dict)  # by alarm name
    scalable: bool = True  # False while the endpoint is not InService (e.g. Updating)
    unscalable_reason: str = "the endpoint is not InService"


def execute_policy(
    state: TargetState, firing: Firing, ctx: TargetContext, now: float, time_scale: float = 1.0
) -> Decision:
    return execute_policies(state, [firing], ctx, now, time_scale)


def execute_policies(
    state: TargetState,
    firings: Sequence[Firing],
    ctx: TargetContext,
    now: float,
    time_scale: float = 1.0,
) -> Decision:
    """All alarm actions that reached this target in one evaluation tick. Proposals are made
    per policy, then the largest capacity wins (spec §1.3.5)."""
    if not firings:
        return Decision(state, None, None, "no alarm action fired")
    if not ctx.scalable:
        first = firings[0]
        reason = NotScaledReason("TargetServicePutResourceAsUnscalable")
        return _not_scaled(state, first, reason, now, f"not scalable: {ctx.unscalable_reason}")
    outcomes = [propose(state, f, ctx, now) for f in firings]
    proposals = [o for o in outcomes if isinstance(o, Proposal)]
    if proposals:
        return _start(state, max(proposals, key=lambda p: p.capacity), ctx, now)
    skips = [o for o in outcomes if isinstance(o, Skip)]
    recorded = next((s for s in skips if s.not_scaled is not None), None)
    if recorded is not None:
        assert recorded.not_scaled is not None
        return _not_scaled(state, recorded.firing, recorded.not_scaled, now, recorded.reason)
    return Decision(state, None, None, "; ".join(s.reason for s in skips))


def _start(state: TargetState, p: Proposal, ctx: TargetContext, now: float) -> Decision:
    policy, key = p.firing.policy, state.target.key
    cause = acts.policy_cause(p.firing.alarm.name, policy.name)
    activity = acts.start_activity(key, p.capacity, cause, now, policy.arn)
    new_state = begin(state, activity, p.direction, p.base, p.cooldown)
    if p.direction == "out":  # any scale-out ends every scale-in cooldown on the target
        new_state = replace(
            new_state,
            cooldowns=tuple(replace(c, scale_in_until=None) for c in new_state.cooldowns),
        )
    verb = "scale out" if p.direction == "out" else "scale in"
    reason = f"{verb} from {ctx.current_capacity} to {p.capacity}: {p.reason}"
    return Decision(new_state, p.capacity, activity, reason, overridden(state))


def begin(
    state: TargetState, activity: Activity, direction: Direction, base: int, cooldown: int
) -> TargetState:
    """The state once `activity` is in flight (a predictive decision starts one too)."""
    assert activity.desired is not None
    flight = InFlight(activity.activity_id, activity.policy_arn, direction, base, cooldown)
    return replace(state, desired=activity.desired, in_flight=flight, last_not_scaled=None)


def overridden(state: TargetState) -> tuple[str, ...]:
    return (state.in_flight.activity_id,) if state.in_flight else ()


def _not_scaled(
    state: TargetState, firing: Firing, reason: NotScaledReason, now: float, why: str
) -> Decision:
    marker = (firing.policy.arn, reason.code)
    if state.last_not_scaled == marker:
        return Decision(state, None, None, f"{why} (already recorded)")
    cause = acts.policy_cause(firing.alarm.name, firing.policy.name)
    record = acts.not_scaled_activity(state.target.key, cause, now, reason, firing.policy.arn)
    return Decision(replace(state, last_not_scaled=marker), None, record, why)


def complete_activity(
    state: TargetState,
    activity: Activity,
    now: float,
    status: ActivityStatus = "Successful",
    message: str | None = None,
    time_scale: float = 1.0,
) -> tuple[TargetState, Activity]:
    """The target service reported the end of `activity` at `now`. A successful policy
    activity starts that policy's cooldown now (AWS starts it when the change is fulfilled,
    which for SageMaker is when the new instances are InService)."""
    if message is None and status == "Successful":
        message = acts.success_message(activity)
    finished = acts.mark(activity, status, now, message)
    flight = state.in_flight
    if flight is None or flight.activity_id != activity.activity_id:
        return state, finished
    state = replace(state, in_flight=None)
    if status != "Successful" or flight.policy_arn is None:
        return state, finished
    until = now + flight.cooldown * time_scale
    cd = state.cooldown(flight.policy_arn)
    if flight.direction == "out":
        cd = replace(cd, scale_out_until=until, scale_out_base=flight.base)
    else:
        cd = replace(cd, scale_in_until=until)
    return state.with_cooldown(cd), finished


def enforce_bounds(state: TargetState, current_capacity: int, now: float) -> Decision:
    """After RegisterScalableTarget (create or update, even one that only changed
    SuspendedState): a capacity outside [Min, Max] is moved inside at once, cooldowns and
    suspension notwithstanding (they gate dynamic scaling only). The caller skips this when
    the resource is not active."""
    target = state.target
    if current_capacity < target.min_capacity:
        value, cause = target.min_capacity, acts.bound_cause("minimum", target.min_capacity)
    elif current_capacity > target.max_capacity:
        value, cause = target.max_capacity, acts.bound_cause("maximum", target.max_capacity)
    else:
        return Decision(state, None, None, f"capacity {current_capacity} is within bounds")
    activity = acts.start_activity(target.key, value, cause, now)
    direction: Direction = "out" if value > current_capacity else "in"
    new_state = begin(state, activity, direction, current_capacity, 0)
    return Decision(new_state, value, activity, cause, overridden(state))


def apply_scheduled_action(
    state: TargetState,
    action: ScheduledAction,
    current_capacity: int,
    now: float,
    scalable: bool = True,
    unscalable_reason: str = "the endpoint is not InService",
) -> Decision:
    """A scheduled action fires: set Min/Max (unspecified ones unchanged), then move the
    capacity inside the new band — at once, even inside a cooldown (spec §1.6). The new
    Min/Max are in `Decision.state.target`; the driver stores that target."""
    target = state.target
    if target.suspended.scheduled_scaling_suspended:
        return Decision(state, None, None, "scheduled scaling is suspended; action skipped")
    new_min = target.min_capacity if action.min_capacity is None else action.min_capacity
    new_max = target.max_capacity if action.max_capacity is None else action.max_capacity
    cause = acts.scheduled_cause(action.name)
    if new_min > new_max:
        why = (
            f"Failed to run scheduled action {action.name}: minimum capacity {new_min} "
            f"cannot be greater than maximum capacity {new_max}"
        )
        return Decision(state, None, acts.failed_activity(
            target.key, current_capacity, cause, now, why), why)
    state = replace(state, target=replace(target, min_capacity=new_min, max_capacity=new_max))
    value = state.target.clamp(current_capacity)
    if value == current_capacity:
        return Decision(state, None, None, f"{cause}; capacity {value} is within the new bounds")
    if not scalable:
        why = f"Resource Id [{target.key.resource_id}] is not scalable. Reason: {unscalable_reason}"
        return Decision(state, None, acts.failed_activity(target.key, value, cause, now, why), why)
    activity = acts.start_activity(target.key, value, cause, now)
    direction: Direction = "out" if value > current_capacity else "in"
    new_state = begin(state, activity, direction, current_capacity, 0)
    return Decision(new_state, value, activity, cause, overridden(state))
