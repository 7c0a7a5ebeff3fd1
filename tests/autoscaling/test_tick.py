"""The autoscaling tick, read like spec §1.3-§1.7 and §8: a clock marches minute by minute, an
endpoint converges after a provisioning delay, and each step is narrated."""

from __future__ import annotations

from dataclasses import replace

from tests.autoscaling.harness import (
    INVOCATIONS_70,
    RESOURCE,
    T0,
    FakeEndpoint,
    Harness,
    with_alarm,
    with_policy,
    with_schedule,
    world_with,
)
from tideserve.errors import ConflictError
from tideserve.scaling.world import Notify, TargetRemoved, TickConfig

IPI = "InvocationsPerInstance"


def scaled_out_to_five() -> Harness:
    """Spec §8 item 2: two instances, 175 invocations per instance per minute for three
    minutes, target 70 → desired ceil(2 × 175 / 70) = 5."""
    world, _ = with_policy(world_with(1, 10), INVOCATIONS_70)
    h = Harness(world, FakeEndpoint(2, provision=120))
    h.put(IPI, 175, periods=2)
    # Two breaching minutes are not enough: AlarmHigh wants 3 of 3.
    assert h.alarm("High").state.value == "INSUFFICIENT_DATA"
    assert h.endpoint.requests == []
    h.put(IPI, 175)  # the third minute closes at T0+180 and is evaluated then
    assert h.alarm("High").state.value == "ALARM"
    return h


def test_alarm_high_after_three_periods_starts_an_activity_and_sets_the_capacity() -> None:
    h = scaled_out_to_five()
    assert h.endpoint.requests == [5] and h.endpoint.status == "Updating"
    [activity] = h.scaled()
    assert activity.description == "Setting desired instance count to 5."
    assert activity.cause == (
        f"monitor alarm {h.alarm('High').name} in state ALARM triggered policy tt")
    assert activity.start_time == T0 + 180 and activity.status_code == "InProgress"


def test_activity_completes_when_every_new_instance_serves_and_cooldown_starts_then() -> None:
    h = scaled_out_to_five()
    h.run_until(T0 + 290)  # SageMaker is still bringing the three instances up
    assert h.scaled()[0].status_code == "InProgress"
    # While Updating, AlarmHigh keeps firing every minute: recorded once as not scalable.
    assert [r.not_scaled_reasons[0].code for r in h.not_scaled()] == [
        "TargetServicePutResourceAsUnscalable"]
    h.run_until(T0 + 300)  # InService with 5 instances at T0+300
    [done] = h.scaled()
    assert done.status_code == "Successful" and done.end_time == T0 + 300
    assert done.status_message == (
        "Successfully set desired instance count to 5. Change successfully fulfilled by "
        "sagemaker. The change took 120.0 s from decision to serving.")
    assert done.details == '{"DecisionToServingSeconds": 120.0}'
    policy = h.world.policies[0]
    cooldown = h.world.targets[0].state.cooldown(policy.arn)
    assert (cooldown.scale_out_until, cooldown.scale_out_base) == (T0 + 600, 2)


def test_in_scale_out_cooldown_only_a_larger_scale_out_from_the_old_base_acts() -> None:
    h = scaled_out_to_five()
    h.run_until(T0 + 300)
    # Still 175 per instance: from the base of 2 that is 5 again, not more → nothing.
    h.put(IPI, 175, periods=2)
    assert h.endpoint.requests == [5]
    # 245: from base 2, ceil(2 × 245 / 70) = 7 > 5 → only the difference is added.
    h.put(IPI, 245)
    assert h.endpoint.requests == [5, 7]
    assert h.scaled()[-1].description == "Setting desired instance count to 7."


def test_scale_in_after_fifteen_low_periods_then_waits_for_its_cooldown() -> None:
    world, policy = with_policy(world_with(1, 10), INVOCATIONS_70)
    h = Harness(world, FakeEndpoint(5, provision=30))
    h.put(IPI, 40, periods=14)  # 40 < 63 (0.9 × 70) for 14 minutes: not yet
    assert h.endpoint.requests == []
    h.put(IPI, 40)  # the fifteenth: AlarmLow → ceil(5 × 40 / 70) = 3
    assert h.endpoint.requests == [3]
    assert h.scaled()[0].cause.startswith(f"monitor alarm TargetTracking-{RESOURCE}-AlarmLow-")
    completed = T0 + 15 * 60 + 30
    h.put(IPI, 40, periods=5)  # next proposal is 2, but the 300-s scale-in cooldown holds it
    assert h.endpoint.requests == [3]
    cooldown = h.world.targets[0].state.cooldown(policy.arn)
    assert cooldown.scale_in_until == completed + 300
    h.put(IPI, 40, periods=1)  # the first evaluation after the cooldown
    assert h.endpoint.requests == [3, 2]


def test_step_policy_behind_a_users_alarm_scales_from_zero() -> None:
    """Spec §1.8: HasBacklogWithoutCapacity ≥ 1 for 2 of 2 minutes adds one instance."""
    world, policy = with_policy(world_with(0, 4), {
        "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
        "Cooldown": 300, "StepAdjustments": [{"MetricIntervalLowerBound": 0,
                                              "ScalingAdjustment": 1}]}, name="backlog")
    world = with_alarm(world, {
        "AlarmName": "has-backlog", "Namespace": "AWS/SageMaker",
        "MetricName": "HasBacklogWithoutCapacity", "Statistic": "Average", "Period": 60,
        "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
        "AlarmActions": [policy.arn]})
    h = Harness(world, FakeEndpoint(0, provision=60))
    h.put("HasBacklogWithoutCapacity", 1, periods=2)
    assert h.endpoint.requests == [1]
    assert h.scaled()[0].cause == (
        "monitor alarm has-backlog in state ALARM triggered policy backlog")


def test_a_users_alarm_with_an_sns_action_only_records_a_notification() -> None:
    world = with_alarm(world_with(1, 4), {
        "AlarmName": "latency", "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1000,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:ops"]})
    h = Harness(world, FakeEndpoint(1))
    h.put("ModelLatency", 5000)
    notes = [e for r in h.results for e in r.effects if isinstance(e, Notify)]
    assert [(n.alarm_name, n.state_value) for n in notes] == [("latency", "ALARM")]
    h.put("ModelLatency", 6000)  # staying in ALARM: SNS actions run only on transitions
    notes = [e for r in h.results for e in r.effects if isinstance(e, Notify)]
    assert len(notes) == 1


def test_scheduled_action_raises_min_and_scales_out_at_once_inside_a_cooldown() -> None:
    h = scaled_out_to_five()
    h.run_until(T0 + 300)  # scale-out cooldown runs to T0+600
    h.world = with_schedule(h.world, "evening", "at(2023-11-14T22:25:00)", MinCapacity=7)
    fire_at = 1_700_000_700.0  # 2023-11-14T22:25:00Z
    h.run_until(fire_at - 10)
    assert h.endpoint.requests == [5]
    h.run_until(fire_at)
    assert h.endpoint.requests == [5, 7]
    assert h.world.targets[0].target.min_capacity == 7
    assert h.scaled()[-1].cause == "scheduled action name evening was triggered"


def test_register_moves_capacity_inside_new_bounds_once_the_endpoint_is_in_service() -> None:
    world = world_with(3, 10)
    world = replace(world, targets=(replace(world.targets[0], check_bounds=True),))
    endpoint = FakeEndpoint(2)
    endpoint.status = "Creating"
    h = Harness(world, endpoint)
    h.run_until(T0 + 30)
    assert endpoint.requests == []  # not active yet: capacity untouched
    endpoint.status = "InService"
    h.run_until(T0 + 40)
    assert endpoint.requests == [3]
    assert h.scaled()[0].cause == "minimum capacity was set to 3"
    assert not h.world.targets[0].check_bounds


def test_a_refused_capacity_fails_the_activity_and_the_next_evaluation_retries() -> None:
    world, _ = with_policy(world_with(1, 10), INVOCATIONS_70)
    endpoint = FakeEndpoint(2, provision=60)
    refusals = [True]
    original = endpoint.set_desired_capacity

    def refuse_once(resource_id: str, n: int, now: float = 0.0) -> None:
        if refusals and refusals.pop():
            raise ConflictError(f'Cannot update in-progress endpoint "{resource_id}".')
        original(resource_id, n, now)

    endpoint.set_desired_capacity = refuse_once  # type: ignore[method-assign]
    h = Harness(world, endpoint)
    h.put(IPI, 175, periods=3)
    [failed] = h.scaled()
    assert failed.status_code == "Failed"
    assert failed.status_message == (
        "Failed to set desired instance count to 5. Reason: Cannot update in-progress "
        f'endpoint "{RESOURCE}".')
    assert endpoint.requests == []
    h.put(IPI, 175)  # AlarmHigh still in ALARM at the next minute: AAS tries again
    assert endpoint.requests == [5]
    assert [a.status_code for a in h.scaled()] == ["Failed", "InProgress"]


def test_compressed_time_runs_the_same_story_thirty_times_faster() -> None:
    """--period 2: a minute is 2 s, AlarmHigh needs three 2-s periods, the 300-s cooldown
    lasts 10 s."""
    world, policy = with_policy(world_with(1, 10), INVOCATIONS_70)
    config = TickConfig(time_scale=2 / 60, resolution=2.0)
    h = Harness(world, FakeEndpoint(2, provision=4), config=config)
    h.put(IPI, 175, periods=3, period=2.0)
    assert h.endpoint.requests == [5] and h.scaled()[0].start_time == T0 + 6
    h.run_until(T0 + 10)
    assert h.scaled()[0].status_code == "Successful"
    cooldown = h.world.targets[0].state.cooldown(policy.arn)
    assert cooldown.scale_out_until is not None
    assert abs(cooldown.scale_out_until - (T0 + 10 + 10)) < 1e-6


def test_a_deleted_endpoint_takes_its_target_policies_and_alarms_with_it() -> None:
    world, _ = with_policy(world_with(1, 10), INVOCATIONS_70)
    h = Harness(world, FakeEndpoint(2))
    h.endpoint.exists = False
    result = h.tick()
    assert [type(e) for e in result.effects if isinstance(e, TargetRemoved)] == [TargetRemoved]
    assert h.world.targets == () and h.world.policies == () and h.world.alarms == ()


def test_a_scheduled_action_fires_its_next_occurrence_not_one_before_it_was_put() -> None:
    world = world_with(1, 10, now=T0 - 3600)  # an old target: schedules checked since then
    world = with_schedule(world, "too-late", "cron(10 22 * * ? *)", now=T0, MinCapacity=3)
    world = with_schedule(world, "soon", "cron(15 22 * * ? *)", now=T0, MinCapacity=4)
    h = Harness(world, FakeEndpoint(2))
    h.run_until(T0 + 50)  # T0 is 22:14 UTC; 22:10 passed before the action existed
    assert h.endpoint.requests == []
    h.run_until(T0 + 60)  # 22:15
    assert h.endpoint.requests == [4]
    assert h.scaled()[0].cause == "scheduled action name soon was triggered"


def test_an_endpoint_that_rolls_back_leaves_the_activity_unfulfilled_and_no_cooldown() -> None:
    h = scaled_out_to_five()
    h.endpoint.desired, h.endpoint.status, h.endpoint.ready_at = 2, "InService", None
    h.run_until(T0 + 190)
    [activity] = h.scaled()
    assert activity.status_code == "Unfulfilled"
    assert activity.status_message == (
        "Failed to set desired instance count to 5. Reason: the endpoint settled at 2 "
        "instances")
    assert h.world.targets[0].state.in_flight is None
    assert h.world.targets[0].state.cooldowns == ()
