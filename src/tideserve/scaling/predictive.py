"""What a predictive scaling policy decides, pure: a forecast and the target in, a capacity (or
a reason not to set one) out.

AWS's rules (spec §14.3):
- the capacity for a time is the forecast's, SchedulingBufferTime seconds early: at `now` the
  policy wants the most capacity any forecast bin in [now, now + buffer] needs, so instances
  are serving when the load arrives;
- HonorMaxCapacity caps it at MaxCapacity; IncreaseMaxCapacity lets the forecast pass it, up
  to forecast × (1 + MaxCapacityBuffer %) (forecast 50, max 40, buffer 10 → a max of 55);
- predictive scaling only scales out; Mode ForecastOnly never scales;
- with target tracking or step policies, the higher capacity wins: a reactive scale-in stops
  at the forecast capacity (`hold_scale_in`).
No usable forecast (too little history, too large an error) means no decision: the reactive
policies alone scale, as on AWS before 24 h of data.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tideserve.scaling import activities as acts
from tideserve.scaling.engine import Decision, TargetState, begin, overridden
from tideserve.scaling.model import ScalableTarget, ScalingPolicy
from tideserve.scaling.predictive_model import (
    FORECAST_AND_SCALE,
    INCREASE_MAX,
    Forecast,
    PredictiveConfig,
)


def forecast_capacity(
    config: PredictiveConfig, forecast: Forecast | None, target: ScalableTarget, now: float,
    time_scale: float = 1.0,
) -> int | None:
    """The capacity the forecast asks for at `now`, inside the target's bounds as the
    MaxCapacityBreachBehavior allows; None without a usable forecast for this time."""
    if forecast is None or not forecast.usable:
        return None
    ahead = config.scheduling_buffer_time * time_scale
    wanted = forecast.capacity_between(now, now + ahead)
    if wanted is None:
        return None
    if config.max_capacity_breach_behavior == INCREASE_MAX:
        raised = math.ceil(wanted * (1 + (config.max_capacity_buffer or 0) / 100))
        ceiling = max(target.max_capacity, raised)
    else:
        ceiling = target.max_capacity
    return max(target.min_capacity, min(wanted, ceiling))


def cause(policy: ScalingPolicy, capacity: int) -> str:
    """AWS's wording is UNCONFIRMED; this is the spec's recommendation (§14.3)."""
    return f"predictive scaling policy {policy.name} forecasted capacity {capacity}"


def decide(
    state: TargetState,
    policy: ScalingPolicy,
    forecast: Forecast | None,
    current: int,
    now: float,
    time_scale: float = 1.0,
    scalable: bool = True,
    at: float | None = None,
) -> Decision:
    """One predictive policy at one tick: scale out to the forecast capacity if it is above
    what the target has (or is already getting). `at` is the time the forecast is read at
    (the tick's metric period, see tick._forecast_time); `now` by default."""
    config = policy.predictive
    assert config is not None
    if config.mode != FORECAST_AND_SCALE:
        return Decision(state, None, None, f"policy {policy.name} forecasts only")
    wanted = forecast_capacity(config, forecast, state.target, now if at is None else at,
                               time_scale)
    if wanted is None:
        why = forecast.note if forecast is not None and forecast.note else "no forecast yet"
        return Decision(state, None, None, f"policy {policy.name}: {why}")
    flight = state.in_flight
    asked = state.desired if flight is not None and state.desired is not None else current
    if wanted <= max(current, asked):
        return Decision(state, None, None,
                        f"policy {policy.name} forecasts {wanted}; the target has {current}")
    if state.target.suspended.dynamic_scaling_out_suspended:
        return Decision(state, None, None, "dynamic scale-out is suspended")
    if not scalable:
        return Decision(state, None, None, "the endpoint is not InService; retried next tick")
    activity = acts.start_activity(state.target.key, wanted, cause(policy, wanted), now,
                                   policy.arn)
    new_state = begin(state, activity, "out", current, 0)  # predictive has no cooldown
    new_state = replace(new_state, cooldowns=tuple(
        replace(c, scale_in_until=None) for c in new_state.cooldowns))
    reason = f"scale out from {current} to {wanted}: {cause(policy, wanted)}"
    return Decision(new_state, wanted, activity, reason, overridden(state))


def hold_scale_in(before: TargetState, decision: Decision, floor: int | None,
                  current: int, now: float) -> Decision:
    """A reactive decision under a forecast: a scale-in below the forecast capacity `floor`
    stops at it (the higher capacity wins), or does not happen if the floor is the current
    capacity or above."""
    desired, activity = decision.desired, decision.activity
    if floor is None or desired is None or activity is None or desired >= current:
        return decision
    if desired >= floor:
        return decision
    if floor >= current:
        return Decision(before, None, None,
                        f"{decision.reason}; held at {current} by the predictive forecast")
    kept = acts.start_activity(before.target.key, floor, activity.cause, now,
                               activity.policy_arn)
    flight = decision.state.in_flight
    assert flight is not None
    state = replace(decision.state, desired=floor,
                    in_flight=replace(flight, activity_id=kept.activity_id))
    reason = f"{decision.reason}; stopped at {floor} by the predictive forecast"
    return Decision(state, floor, kept, reason, decision.overridden)


def floor_for(policies: tuple[ScalingPolicy, ...], forecasts: dict[str, Forecast],
              target: ScalableTarget, now: float, time_scale: float) -> int | None:
    """The highest capacity any ForecastAndScale policy of the target forecasts now."""
    floors = [forecast_capacity(p.predictive, forecasts.get(p.arn), target, now, time_scale)
              for p in policies
              if p.predictive is not None and p.predictive.mode == FORECAST_AND_SCALE]
    return max((f for f in floors if f is not None), default=None)
