"""Target tracking, read like spec §1.3 and §8 items 1-5: alarm shapes, the capacity formula,
cooldowns, several policies, Min/Max and suspension. Time is a float; each step narrated."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.scaling.builders import (
    RESOURCE,
    T0,
    Endpoint,
    alarm_of,
    evaluation,
    fire,
    make_target,
    step_policy,
    tt_policy,
)
from tideserve.scaling.alarms import evaluate, new_alarm_state
from tideserve.scaling.engine import (
    TargetContext,
    TargetState,
    complete_activity,
    enforce_bounds,
    execute_policies,
    execute_policy,
)
from tideserve.scaling.model import delete_policy_plan, deregister_plan
from tideserve.scaling.target_tracking import target_tracking_alarms, tracking_proposal


def test_put_target_tracking_makes_alarm_high_and_low_exactly_like_aws() -> None:
    policy = tt_policy(target_value=70)
    high, low = target_tracking_alarms(policy)
    action = f"{policy.arn}:createdBy/{policy.created_by}"
    assert high.name.startswith(f"TargetTracking-{RESOURCE}-AlarmHigh-")
    assert low.name.startswith(f"TargetTracking-{RESOURCE}-AlarmLow-")
    for alarm in (high, low):
        assert (alarm.namespace, alarm.metric_name, alarm.statistic, alarm.period) == (
            "AWS/SageMaker", "InvocationsPerInstance", "Sum", 60)
        assert alarm.dimensions == (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
        assert alarm.alarm_actions == (action,) and alarm.ok_actions == ()
        assert alarm.description == (
            f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}.")
        assert alarm.treat_missing_data == "missing" and alarm.unit is None
    assert (high.evaluation_periods, high.datapoints_to_alarm, high.comparison_operator,
            high.threshold) == (3, 3, "GreaterThanThreshold", 70.0)
    assert (low.evaluation_periods, low.datapoints_to_alarm, low.comparison_operator,
            low.threshold) == (15, 15, "LessThanThreshold", 63.0)
    assert policy.arn.startswith("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:")
    assert policy.arn.endswith(f":resource/sagemaker/{RESOURCE}:policyName/tt")
    assert [a.arn for a in policy.alarms] == [
        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{a.name}" for a in policy.alarms]


def test_high_resolution_metric_alarm_high_uses_10_second_periods() -> None:
    policy = tt_policy(metric="SageMakerVariantConcurrentRequestsPerModelHighResolution",
                       target_value=4)
    high, low = target_tracking_alarms(policy)
    assert (high.metric_name, high.period, low.period) == ("ConcurrentRequestsPerModel", 10, 60)


def test_disable_scale_in_creates_only_alarm_high_and_never_scales_in() -> None:
    policy = tt_policy(DisableScaleIn=True)
    assert [a.name.split("-Alarm")[1][:4] for a in target_tracking_alarms(policy)] == ["High"]
    low_alarm = replace(alarm_of(tt_policy(name="other"), "low"), name="some-low")
    state = TargetState(make_target())
    decision = execute_policy(state, fire(policy, 10, alarm=low_alarm), TargetContext(5), T0)
    assert decision.desired is None and "DisableScaleIn" in decision.reason


@pytest.mark.parametrize(
    "case, capacity, metric, out, expected",
    [
        ("scale out rounds up: 2*175/70 = 5.0", 2, 175, True, 5),
        ("scale out rounds up: 3*80/70 = 3.43", 3, 80, True, 4),
        ("scale in removes floor: 5*40/70 = 2.86", 5, 40, False, 3),
        ("scale in never below the proportional value: 10*62/70 = 8.86", 10, 62, False, 9),
        ("high alarm never scales in", 4, 60, True, 4),
        ("low alarm never scales out", 4, 80, False, 4),
        ("from zero, a breaching metric asks for one instance", 0, 500, True, 1),
        ("exact ratio is not pushed up by float error: 3*70/70", 3, 70.0, False, 3),
    ],
)
def test_capacity_formula(case: str, capacity: int, metric: float, out: bool,
                          expected: int) -> None:
    config = tt_policy().tracking
    assert config is not None
    assert tracking_proposal(config, capacity, metric, out) == expected, case


def test_worked_example_175_invocations_on_2_instances_sets_5() -> None:
    policy = tt_policy(target_value=70)
    ep = Endpoint(TargetState(make_target(max_capacity=10)), capacity=2, provision=420)
    # t=0: AlarmHigh has seen 3 minutes at 175 per instance and fires.
    d = ep.tick(T0, fire(policy, 175))
    assert d.desired == 5 and ep.capacity == 5
    act = d.activity
    assert act is not None and act.status_code == "Pending"
    assert act.description == "Setting desired instance count to 5."
    assert act.cause == (f"monitor alarm {alarm_of(policy, 'high').name} in state ALARM "
                         f"triggered policy tt")
    # t=7 min: SageMaker reports the 5 instances InService; the activity succeeds.
    ep.advance(T0 + 420)
    done = ep.activities[-1]
    assert done.status_code == "Successful" and done.end_time == T0 + 420
    assert done.status_message == ("Successfully set desired instance count to 5. Change "
                                   "successfully fulfilled by sagemaker.")


def test_scale_out_cooldown_adds_only_the_difference_from_the_pre_scale_out_base() -> None:
    policy = tt_policy(target_value=70)  # ScaleOutCooldown 300 s
    ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=2)
    ep.tick(T0, fire(policy, 175))  # 2 → 5, completes at once: cooldown until T0+300
    assert ep.capacity == 5
    # t=+60: per-instance metric still 175 (traffic has not spread yet): from base 2 the
    # policy asks for 5 again — not larger than 5, ignored.
    d = ep.tick(T0 + 60, fire(policy, 175))
    assert d.desired is None and "scale-out cooldown" in d.reason
    # t=+120: a lower reading is ignored too.
    assert ep.tick(T0 + 120, fire(policy, 100)).desired is None
    # t=+180: 245 from base 2 → ceil(7.0) = 7 > 5: add only 2, not ceil(5*245/70)=18.
    assert ep.tick(T0 + 180, fire(policy, 245)).desired == 7
    # The escalation restarted the timer (kept base 2): at +400 (> T0+300) it is still active.
    assert ep.tick(T0 + 400, fire(policy, 245)).desired is None
    # After T0+180+300 the cooldown is over: 7*100/70 = 10.
    assert ep.tick(T0 + 481, fire(policy, 100)).desired == 10


def test_scale_in_waits_for_its_cooldown_and_any_scale_out_cancels_it() -> None:
    policy = tt_policy(target_value=70)
    ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=10)
    assert ep.tick(T0, fire(policy, 35, "low")).desired == 5  # 10*35/70 = 5
    # Scale-in cooldown (300 s) blocks a further scale-in at +60 …
    d = ep.tick(T0 + 60, fire(policy, 28, "low"))
    assert d.desired is None and "scale-in cooldown" in d.reason
    # … but a scale-out runs immediately, and cancels the scale-in cooldown.
    assert ep.tick(T0 + 120, fire(policy, 84)).desired == 6
    assert all(c.scale_in_until is None for c in ep.state.cooldowns)
    # Scale-out cooldown does not block scale-in (spec §1.3.4 rule 5).
    assert ep.tick(T0 + 180, fire(policy, 35, "low")).desired == 3


def test_scale_in_needs_every_target_tracking_policy_to_agree() -> None:
    a = tt_policy(name="invocations", target_value=70)
    b = tt_policy(name="concurrency", target_value=4,
                  metric="SageMakerVariantConcurrentRequestsPerModelHighResolution")
    low_b = alarm_of(b, "low").name
    state = TargetState(make_target(max_capacity=20))
    # b's AlarmLow is OK: a's scale-in is blocked.
    ctx = TargetContext(10, (a, b), {low_b: evaluation(3.9, "OK")})
    d = execute_policy(state, fire(a, 35, "low"), ctx, T0)
    assert d.desired is None and "concurrency is not ready" in d.reason
    # Both low: the larger proposal wins (a: 10*35/70 = 5, b: ceil(10*2.5/4) = 7).
    ctx = TargetContext(10, (a, b), {low_b: evaluation(2.5)})
    assert execute_policy(state, fire(a, 35, "low"), ctx, T0).desired == 7
    # A policy with DisableScaleIn is not asked.
    c = tt_policy(name="c", DisableScaleIn=True,
                  metric="SageMakerVariantConcurrentRequestsPerModelHighResolution")
    ctx = TargetContext(10, (a, c), {})
    assert execute_policy(state, fire(a, 35, "low"), ctx, T0).desired == 5
    # A step policy is not part of the consensus either.
    s = step_policy([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}])
    ctx = TargetContext(10, (a, b, s), {low_b: evaluation(3.9, "OK")})
    d = execute_policy(state, fire(s, 10, alarm=replace(alarm_of(a, "low"), name="u")), ctx, T0)
    assert d.desired == 9


def test_several_policies_firing_together_the_largest_capacity_wins() -> None:
    a = tt_policy(name="a", target_value=70)
    s = step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 200}],
                    adjustment="PercentChangeInCapacity")
    user = replace(alarm_of(a, "high"), name="user-high", threshold=50)
    state = TargetState(make_target(max_capacity=100))
    # a: ceil(10*91/70) = 13 (+3); step: +200 % = 30 → 30 wins.
    d = execute_policies(state, [fire(a, 91), fire(s, 60, alarm=user)], TargetContext(10), T0)
    assert d.desired == 30 and d.activity is not None and "user-high" in d.activity.cause


@pytest.mark.parametrize(
    "case, capacity, metric, kind, code, fields",
    [
        ("at max, asked for more", 10, 200, "high", "AlreadyAtMaxCapacity",
         {"max_capacity": 10, "current_capacity": 10}),
        ("at min, asked for less", 2, 10, "low", "AlreadyAtMinCapacity",
         {"min_capacity": 2, "current_capacity": 2}),
    ],
)
def test_min_max_clamp_records_a_not_scaled_activity_once(
    case: str, capacity: int, metric: float, kind: str, code: str, fields: dict[str, int]
) -> None:
    policy = tt_policy()
    ep = Endpoint(TargetState(make_target(min_capacity=2, max_capacity=10)), capacity)
    d = ep.tick(T0, fire(policy, metric, kind))
    assert d.desired is None and d.activity is not None, case
    reason = d.activity.not_scaled_reasons[0]
    assert reason.code == code and d.activity.status_code == "Failed"
    assert d.activity.description == "Attempting to scale due to alarm triggered"
    assert {k: getattr(reason, k) for k in fields} == fields
    # The same reason a minute later is not recorded again.
    again = ep.tick(T0 + 60, fire(policy, metric, kind))
    assert again.activity is None and "already recorded" in again.reason


def test_clamp_to_max_scales_partially() -> None:
    ep = Endpoint(TargetState(make_target(max_capacity=4)), capacity=2)
    assert ep.tick(T0, fire(tt_policy(), 700)).desired == 4


def test_rounding_to_current_is_already_at_desired_capacity() -> None:
    ep = Endpoint(TargetState(make_target()), capacity=7)
    d = ep.tick(T0, fire(tt_policy(), 60.5, "low"))  # ceil(7*60.5/70) = 7
    assert d.activity is not None
    assert d.activity.not_scaled_reasons[0].code == "AlreadyAtDesiredCapacity"


@pytest.mark.parametrize(
    "suspended, kind, metric, moves",
    [
        ({"dynamic_scaling_out_suspended": True}, "high", 200, False),
        ({"dynamic_scaling_out_suspended": True}, "low", 10, True),
        ({"dynamic_scaling_in_suspended": True}, "low", 10, False),
        ({"dynamic_scaling_in_suspended": True}, "high", 200, True),
        ({"scheduled_scaling_suspended": True}, "high", 200, True),
    ],
)
def test_suspended_states_gate_their_direction_only(
    suspended: dict[str, bool], kind: str, metric: float, moves: bool
) -> None:
    state = TargetState(make_target(max_capacity=20, **suspended))
    d = execute_policy(state, fire(tt_policy(), metric, kind), TargetContext(5), T0)
    assert (d.desired is not None) == moves
    if not moves:
        assert "suspended" in d.reason and d.activity is None


def test_resuming_scale_out_acts_on_the_alarm_still_in_breach() -> None:
    policy = tt_policy()
    ep = Endpoint(TargetState(make_target(max_capacity=20, dynamic_scaling_out_suspended=True)), 2)
    assert ep.tick(T0, fire(policy, 175)).desired is None
    ep.state = replace(ep.state, target=make_target(max_capacity=20))  # resume
    assert ep.tick(T0 + 60, fire(policy, 175)).desired == 5


def test_busy_endpoint_is_not_scaled_and_says_why() -> None:
    d = execute_policy(TargetState(make_target()), fire(tt_policy(), 175),
                       TargetContext(2, scalable=False), T0)
    assert d.desired is None and d.activity is not None
    assert d.activity.not_scaled_reasons[0].code == "TargetServicePutResourceAsUnscalable"


def test_alarm_not_in_alarm_or_without_data_does_nothing() -> None:
    policy = tt_policy()
    state = TargetState(make_target())
    ok = replace(fire(policy, 175), evaluation=evaluation(175, "OK"))
    none = replace(fire(policy, 175), evaluation=evaluation(None))
    for firing in (ok, none):
        d = execute_policy(state, firing, TargetContext(2), T0)
        assert d.desired is None and d.activity is None


def test_newer_activity_overrides_the_one_in_flight() -> None:
    policy = tt_policy()
    ep = Endpoint(TargetState(make_target(max_capacity=20)), capacity=2, provision=600)
    first = ep.tick(T0, fire(policy, 175))
    second = ep.tick(T0 + 60, fire(policy, 280))  # from base 2: 8 > 5
    assert second.desired == 8 and first.activity is not None
    assert second.overridden == (first.activity.activity_id,)


def test_cooldowns_are_compressed_by_time_scale() -> None:
    policy = tt_policy()
    state = TargetState(make_target(max_capacity=20))
    d = execute_policy(state, fire(policy, 175), TargetContext(2), T0)
    assert d.activity is not None
    # --period 2: 300 s of AWS cooldown is 10 s of ours.
    state, _ = complete_activity(d.state, d.activity, T0 + 1, time_scale=2 / 60)
    assert state.cooldown(policy.arn).scale_out_until == pytest.approx(T0 + 11)


def test_registering_bounds_moves_capacity_inside_at_once() -> None:
    state = TargetState(make_target(min_capacity=4, max_capacity=10))
    d = enforce_bounds(state, 2, T0)
    assert d.desired == 4 and d.activity is not None
    assert d.activity.cause == "minimum capacity was set to 4"
    d = enforce_bounds(TargetState(make_target(min_capacity=1, max_capacity=3)), 5, T0)
    assert d.desired == 3 and d.activity is not None
    assert d.activity.cause == "maximum capacity was set to 3"
    assert enforce_bounds(state, 5, T0).desired is None


def test_deregister_removes_policies_actions_and_managed_alarms() -> None:
    target = make_target()
    tt, step = tt_policy(), step_policy([{"MetricIntervalLowerBound": 0,
                                          "ScalingAdjustment": 1}])
    plan = deregister_plan(target, [tt, step], [])
    assert set(plan.policy_arns) == {tt.arn, step.arn}
    assert set(plan.alarm_names) == {a.name for a in tt.alarms} and len(plan.alarm_names) == 2
    assert delete_policy_plan(tt).alarm_names == plan.alarm_names
    assert delete_policy_plan(step).alarm_names == ()
    assert delete_policy_plan(step).detach_action_arn == step.arn


def test_end_to_end_with_real_alarms_scale_out_then_in_after_15_low_minutes() -> None:
    """Per-minute InvocationsPerInstance through the real alarm evaluator (§8 items 2 and 4)."""
    policy = tt_policy(target_value=70)
    high, low = target_tracking_alarms(policy)
    states = {high.name: new_alarm_state(T0), low.name: new_alarm_state(T0)}
    ep = Endpoint(TargetState(make_target(max_capacity=10)), capacity=2)
    sums: dict[float, float] = {}
    timeline: list[tuple[int, int]] = []
    for minute in range(40):
        start = T0 + 60 * minute
        per_instance = 175 if minute < 4 else 40 * 5 / ep.capacity  # load then a lull
        sums[start] = per_instance
        now = start + 60
        firings, evals = [], {}
        for alarm in (high, low):
            ev = evaluate(alarm, states[alarm.name], sums, now)
            states[alarm.name], evals[alarm.name] = ev.state, ev
            if ev.actions:
                firings.append(fire(policy, 0, alarm=alarm))
                firings[-1] = replace(firings[-1], evaluation=ev)
        ep.tick(now, *firings, ctx=TargetContext(ep.capacity, (policy,), evals))
        timeline.append((minute, ep.capacity))
    # AlarmHigh needs 3 breaching minutes (minutes 0-2) → at the end of minute 2: 2 → 5.
    assert timeline[1][1] == 2 and timeline[2][1] == 5
    # Then 40 per instance on 5 (< 63) from minute 4: 15 low minutes (4..18) → 5*40/70 → 3.
    assert timeline[17][1] == 5 and timeline[18][1] == 3
    descriptions = [a.description for a in ep.activities if a.scaled]
    assert descriptions == ["Setting desired instance count to 5.",
                            "Setting desired instance count to 3."]
