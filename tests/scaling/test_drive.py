"""drive_once, the one step both clocks run: the tick's SetCapacity goes through the edge's
`apply`, and how it went is recorded in the same step; and datapoint_query, the one metric
read both worlds make for an alarm evaluation."""

from __future__ import annotations

from dataclasses import replace

from tests.autoscaling.harness import INVOCATIONS_70, T0, with_policy, world_with
from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.scaling.alarms import MetricAlarm, datapoint_query
from tideserve.scaling.drive import drive_once
from tideserve.scaling.ports import Capacity
from tideserve.scaling.world import Applied, Observation, SetCapacity, World

RESOURCE = "endpoint/ep/variant/AllTraffic"


def breaching_world() -> tuple[World, Observation]:
    """Two instances at 175 invocations per instance for three minutes, target 70: AlarmHigh
    goes to ALARM at T0 + 180 and asks for ceil(2 × 175 / 70) = 5."""
    world, _ = with_policy(world_with(1, 10), INVOCATIONS_70)

    def points(alarm: MetricAlarm, period: float, now: float) -> dict[float, float]:
        return {T0 + 60 * m: 175.0 for m in range(3)} if "AlarmHigh" in alarm.name else {}

    return world, Observation(points, {RESOURCE: Capacity(2, 2, "InService")})


def test_an_accepted_capacity_leaves_the_step_in_progress_with_the_edge_asked_once() -> None:
    world, obs = breaching_world()
    asked: list[SetCapacity] = []

    def apply(effect: SetCapacity) -> Applied:
        asked.append(effect)
        return Applied(effect)

    result = drive_once(world, lambda w: obs, T0 + 180, apply)
    assert [e.capacity for e in asked] == [5]
    assert [a.status_code for a in result.activities] == ["Pending", "InProgress"]
    [open_activity] = result.world.open_activities
    assert open_activity.status_code == "InProgress" and result.applied == (Applied(asked[0]),)


def test_a_refused_capacity_fails_the_activity_in_the_same_step() -> None:
    world, obs = breaching_world()
    refusal = 'Cannot update in-progress endpoint "ep".'
    result = drive_once(world, lambda w: obs, T0 + 180, lambda e: Applied(e, refusal))
    done = result.activities[-1]
    assert done.status_code == "Failed" and done.end_time == T0 + 180
    assert refusal in (done.status_message or "")
    assert result.world.open_activities == ()


def test_an_edge_that_cannot_tell_leaves_the_activity_pending_for_the_next_tick() -> None:
    world, obs = breaching_world()
    result = drive_once(world, lambda w: obs, T0 + 180, lambda e: None)
    assert [a.status_code for a in result.world.open_activities] == ["Pending"]
    assert result.applied == ()


def test_datapoint_query_reads_the_evaluation_range_and_one_period_more() -> None:
    alarm = validate_alarm({
        "AlarmName": "a", "MetricName": "CPUUtilization", "Namespace": "x", "Period": 60,
        "EvaluationPeriods": 3, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold",
        "ExtendedStatistic": "p90"}, now=T0)
    q = datapoint_query(alarm, 60.0, 1000.0)
    # R = 3 + 2 = 5 periods, one more: start (16 - 6) × 60 = 600, up to now.
    assert (q.statistic, q.period, q.start, q.end) == ("p90", 60.0, 600.0, 1000.0)
    no_statistic = replace(alarm, extended_statistic=None)
    assert datapoint_query(no_statistic, 60.0, 1000.0).statistic == "Average"


def test_a_capacity_served_at_once_completes_its_activity_in_the_same_step() -> None:
    """An endpoint that serves the new count the moment it accepts it (a scale-in with no
    draining): the step ticks again at the same instant, so the activity ends — and its
    cooldown starts — when the endpoint settled, not a driver cadence later."""
    world, obs = breaching_world()
    serving = {RESOURCE: Capacity(2, 2, "InService")}

    def observe(w: World) -> Observation:
        return Observation(obs.datapoints_for, dict(serving))

    def apply(effect: SetCapacity) -> Applied:
        serving[RESOURCE] = Capacity(effect.capacity, effect.capacity, "InService")
        return Applied(effect)

    result = drive_once(world, observe, T0 + 180, apply)
    done = result.activities[-1]
    assert done.status_code == "Successful" and done.end_time == T0 + 180
    assert result.world.open_activities == ()
