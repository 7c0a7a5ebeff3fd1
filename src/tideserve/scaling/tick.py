"""One autoscaling tick, pure: the world and what can be observed now in; the next world, the
effects to carry out and the activities to record out. The live driver calls it on wall time
and the simulator on simulated time, so both make the same decisions from the same inputs.

Per tick, in order:
1. alarms that are due are evaluated (alarm_tick); Auto Scaling actions become Firings;
2. per scalable target (in key order), with the endpoint's capacity as observed:
   a. the in-flight activity progresses: Pending → InProgress once the endpoint has the new
      desired count; InProgress → Successful when the endpoint is InService with every
      instance serving (cooldowns start then, `complete_activity`);
   b. a RegisterScalableTarget's Min/Max is enforced (`enforce_bounds`) once InService;
   c. due scheduled actions run (`apply_scheduled_action`), in fire-time order;
   d. the firings of its policies are decided together (`execute_policies`), a scale-in
      stopping at what a ForecastAndScale policy forecasts (`predictive.hold_scale_in`);
   e. its predictive policies scale out to their forecast (`predictive.decide`): the higher
      capacity wins, as AWS combines predictive with reactive policies.
   Each decision that sets a capacity supersedes the previous one of the same tick (the
   engine marks it Overridden), so at most one SetCapacity per target leaves a tick.
3. a target whose endpoint or variant is gone is removed with its policies, scheduled
   actions and target-tracking alarms (AWS deregisters variants of a deleted endpoint).

`record_outcomes` is the second half: the edge reports how each SetCapacity went.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tideserve.scaling import activities as acts
from tideserve.scaling import predictive
from tideserve.scaling.alarm_tick import evaluate_alarms
from tideserve.scaling.alarms import AlarmEvaluation
from tideserve.scaling.engine import (
    Decision,
    Firing,
    TargetContext,
    TargetState,
    apply_scheduled_action,
    complete_activity,
    enforce_bounds,
    execute_policies,
)
from tideserve.scaling.model import Activity, ActivityStatus, ScheduledAction, TargetKey
from tideserve.scaling.ports import IN_SERVICE, Capacity
from tideserve.scaling.schedule import due_scheduled_actions, next_fire_time
from tideserve.scaling.world import (
    Applied,
    Effect,
    Observation,
    SetCapacity,
    TargetRecord,
    TargetRemoved,
    TickConfig,
    TickResult,
    World,
)

TERMINAL = ("Successful", "Overridden", "Unfulfilled", "Failed")


@dataclass
class _Target:
    """One target's working state while the tick decides for it."""

    record: TargetRecord
    capacity: Capacity
    current: int  # the capacity the engine works from: the variant's desired count
    open: dict[str, Activity]  # this target's Pending/InProgress activities by id
    changed: list[Activity] = field(default_factory=list)
    set_to: SetCapacity | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def state(self) -> TargetState:
        return self.record.state

    def set_state(self, state: TargetState) -> None:
        self.record = replace(self.record, state=state)

    def record_activity(self, activity: Activity) -> None:
        self.changed.append(activity)
        if activity.status_code in TERMINAL:
            self.open.pop(activity.activity_id, None)
        else:
            self.open[activity.activity_id] = activity


def tick(
    world: World, obs: Observation, now: float, config: TickConfig | None = None
) -> TickResult:
    config = config or TickConfig()
    alarm_outcome = evaluate_alarms(world, obs, now, config)
    world = replace(world, alarms=alarm_outcome.alarms)
    evaluations = {r.name: r.as_evaluation() for r in world.alarms}
    targets: list[TargetRecord] = []
    removed: list[TargetKey] = []
    effects: list[Effect] = list(alarm_outcome.effects)
    changed: list[Activity] = []
    still_open: list[Activity] = []
    reasons: list[str] = []
    for record in sorted(world.targets, key=lambda r: _sort_key(r.key)):
        capacity = obs.capacities.get(record.key.resource_id)
        if capacity is None:
            removed.append(record.key)
            effects.append(TargetRemoved(record.key))
            continue
        firings = alarm_outcome.firings.get(record.key, [])
        t = _advance(world, record, capacity, firings, evaluations, obs, now, config)
        targets.append(t.record)
        changed.extend(t.changed)
        still_open.extend(t.open.values())
        reasons.extend(t.reasons)
        if t.set_to is not None:
            effects.append(t.set_to)
    world = _without(replace(world, targets=tuple(targets), open_activities=tuple(still_open)),
                     removed)
    return TickResult(world, tuple(effects), tuple(changed), tuple(reasons))


def _sort_key(key: TargetKey) -> tuple[str, str, str]:
    return key.service_namespace, key.resource_id, key.scalable_dimension


def _advance(
    world: World,
    record: TargetRecord,
    capacity: Capacity,
    firings: Sequence[Firing],
    evaluations: Mapping[str, AlarmEvaluation],
    obs: Observation,
    now: float,
    config: TickConfig,
) -> _Target:
    key = record.key
    opened = {a.activity_id: a for a in world.open_activities if a.key == key}
    t = _Target(record, capacity, capacity.desired, opened)
    _progress(t, obs, now, config)
    if t.record.check_bounds and capacity.status == IN_SERVICE:
        _apply(t, enforce_bounds(t.state, t.current, now), now)
        t.record = replace(t.record, check_bounds=False)
    scalable = capacity.status == IN_SERVICE
    unscalable = f"the endpoint is {capacity.status}"
    mine = [a for a in world.actions if a.key == key]
    for action in _due_actions(mine, t.record.schedule_checked, now):
        decision = apply_scheduled_action(t.state, action, t.current, now, scalable, unscalable)
        _apply(t, decision, now)
    if mine:  # a target without scheduled actions keeps its row unchanged tick after tick
        t.record = replace(t.record, schedule_checked=now)
    policies = tuple(p for p in world.policies if p.key == key)
    forecasts = dict(obs.forecasts)
    at = _forecast_time(now, config)
    if firings:
        ctx = TargetContext(t.current, policies, evaluations, scalable, unscalable)
        before = t.state
        decision = execute_policies(before, firings, ctx, now, config.time_scale)
        floor = predictive.floor_for(policies, forecasts, before.target, at, config.time_scale)
        _apply(t, predictive.hold_scale_in(before, decision, floor, t.current, now), now)
    for policy in policies:
        if policy.predictive is not None:
            decision = predictive.decide(t.state, policy, forecasts.get(policy.arn), t.current,
                                         now, config.time_scale, scalable, at)
            _apply(t, decision, now)
    return t


def _forecast_time(now: float, config: TickConfig) -> float:
    """The time predictive policies read the forecast at: the start of the metric period
    whose evaluation slot (period start + evaluation delay) `now` is in. Forecasts move on
    once a period, at the moment alarms evaluate, so a driver ticking every second and the
    simulator, ticking at the slots, act at the same instant."""
    if not config.resolution:
        return now
    return math.floor((now - config.evaluation_delay) / config.resolution) * config.resolution


def _due_actions(
    actions: Sequence[ScheduledAction], checked: float, now: float
) -> list[ScheduledAction]:
    """Due since the last check, or since the action was put if that is later (an action put
    at 18:05 does not fire its 18:00 occurrence)."""
    due = [(max(checked, a.creation_time), a) for a in actions]
    fired = [(since, a) for since, a in due if due_scheduled_actions([a], since, now)]
    return [a for _, a in sorted(fired, key=lambda p: (next_fire_time(p[1], p[0]) or 0.0,
                                                       p[1].name))]


def _apply(t: _Target, decision: Decision, now: float) -> None:
    t.set_state(decision.state)
    for old in decision.overridden:
        superseded = t.open.get(old)
        if superseded is not None:
            t.record_activity(acts.mark(superseded, "Overridden", now))
    if decision.activity is not None:
        t.record_activity(decision.activity)
        t.reasons.append(f"{t.record.key.resource_id}: {decision.reason}")
    if decision.desired is not None and decision.activity is not None:
        t.current = decision.desired
        t.set_to = SetCapacity(t.record.key, decision.desired, decision.activity.activity_id)


# --- the in-flight activity ------------------------------------------------------------------


def _progress(t: _Target, obs: Observation, now: float, config: TickConfig) -> None:
    flight = t.state.in_flight
    if flight is None:
        return
    activity = t.open.get(flight.activity_id)
    if activity is None:  # its record is gone (e.g. pruned): nothing left to finish
        t.set_state(replace(t.state, in_flight=None))
        return
    cap = t.capacity
    if activity.status_code == "Pending":
        if cap.desired == activity.desired:  # asked for before a restart: it took
            t.record_activity(acts.mark(activity, "InProgress"))
        elif cap.status == IN_SERVICE:  # never reached the endpoint: ask again
            assert activity.desired is not None
            t.set_to = SetCapacity(t.record.key, activity.desired, activity.activity_id)
        return
    if cap.settled and cap.desired == activity.desired:
        _finish(t, activity, "Successful", _fulfilled(t, activity, obs, now), now, config)
    elif cap.status == "Failed":
        why = acts.failure_message(activity, "the endpoint is Failed")
        _finish(t, activity, "Failed", (why, None), now, config)
    elif cap.settled:
        # InService at another count: SageMaker rolled the change back (nothing else can set
        # the capacity of an Updating endpoint), so the activity went unfulfilled.
        why = acts.failure_message(activity, f"the endpoint settled at {cap.desired} instances")
        _finish(t, activity, "Unfulfilled", (why, None), now, config)


def _finish(
    t: _Target,
    activity: Activity,
    status: ActivityStatus,
    text: tuple[str | None, str | None],
    now: float,
    config: TickConfig,
) -> None:
    message, details = text
    state, done = complete_activity(t.state, activity, now, status, message, config.time_scale)
    if details is not None:
        done = replace(done, details=details)
    t.set_state(state)
    t.record_activity(done)
    t.reasons.append(f"{activity.key.resource_id}: activity {activity.activity_id} {status}")


def _fulfilled(
    t: _Target, activity: Activity, obs: Observation, now: float
) -> tuple[str, str]:
    """SageMaker's success message, plus how long the change took from the decision to every
    instance serving, and the longest instance start-up the fleet reported meanwhile."""
    took = now - activity.start_time
    flight = t.state.in_flight
    startup = None
    if obs.startup_seconds is not None and flight is not None and flight.direction == "out":
        startup = obs.startup_seconds(activity.key.resource_id, activity.start_time, now)
    message = f"{acts.success_message(activity)} The change took {took:.1f} s from decision to "
    message += "serving" if startup is None else f"serving; instances started in {startup:.1f} s"
    details: dict[str, float] = {"DecisionToServingSeconds": round(took, 3)}
    if startup is not None:
        details["InstanceStartupSeconds"] = round(startup, 3)
    return message + ".", json.dumps(details)


# --- after the edge applied the capacities -------------------------------------------------


def record_outcomes(
    world: World, applied: Sequence[Applied], now: float, config: TickConfig | None = None
) -> TickResult:
    """Pending → InProgress for every SetCapacity the endpoint accepted; Failed for one it
    refused (e.g. ConflictError while Updating). A failed activity starts no cooldown and the
    alarm, still in ALARM, tries again at its next evaluation."""
    config = config or TickConfig()
    targets = {r.key: r for r in world.targets}
    open_by_id = {a.activity_id: a for a in world.open_activities}
    changed: list[Activity] = []
    for outcome in applied:
        activity = open_by_id.get(outcome.effect.activity_id)
        record = targets.get(outcome.effect.key)
        if activity is None or record is None or activity.status_code != "Pending":
            continue
        if outcome.error is None:
            done = acts.mark(activity, "InProgress")
        else:
            message = acts.failure_message(activity, outcome.error)
            state, done = complete_activity(record.state, activity, now, "Failed", message,
                                            config.time_scale)
            targets[record.key] = replace(record, state=state)
        changed.append(done)
        open_by_id[done.activity_id] = done
    still_open = tuple(a for a in open_by_id.values() if a.status_code not in TERMINAL)
    world = replace(world, targets=tuple(targets.values()), open_activities=still_open)
    return TickResult(world, (), tuple(changed))


def _without(world: World, removed: Sequence[TargetKey]) -> World:
    """The world less the removed targets and everything that was theirs."""
    if not removed:
        return world
    gone = set(removed)
    alarms = {a.name for p in world.policies if p.key in gone for a in p.alarms}
    return replace(
        world,
        policies=tuple(p for p in world.policies if p.key not in gone),
        actions=tuple(a for a in world.actions if a.key not in gone),
        alarms=tuple(r for r in world.alarms if r.name not in alarms),
        open_activities=tuple(a for a in world.open_activities if a.key not in gone),
    )
