"""The live driver on SQLite with the real metric store: metrics in, capacity out, activities
in DescribeScalingActivities, and state that survives a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.autoscaling.conftest import Env, make_env
from tests.autoscaling.harness import (
    INVOCATIONS_70,
    RESOURCE,
    T0,
    FakeEndpoint,
    Fleet,
    target_params,
)
from tideserve.autoscaling.driver import ScalingDriver
from tideserve.autoscaling.validate import target_key
from tideserve.clock import FakeClock
from tideserve.metrics.model import Datapoint
from tideserve.metrics.store import MetricStore

DIMS = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
NS = {"ServiceNamespace": "sagemaker"}


def publish(metrics: MetricStore, name: str, value: float, start: float,
            namespace: str = "AWS/SageMaker", unit: str = "None") -> None:
    metrics.put([Datapoint(namespace, name, DIMS, start, unit, 1, value, value, value)])


Live = tuple[Env, MetricStore, ScalingDriver]


@pytest.fixture
def live(tmp_path: Path) -> Live:
    clock = FakeClock(T0)
    env = make_env(tmp_path, clock=clock, fleet=Fleet(clock, ep=FakeEndpoint(2, provision=120)))
    metrics = MetricStore(env.engine)
    return env, metrics, ScalingDriver(env.store, metrics, env.fleet, clock, env.settings)


def scale_out(env: Env, metrics: MetricStore, driver: ScalingDriver) -> None:
    env.aas.register_scalable_target({**target_params(), "MinCapacity": 1, "MaxCapacity": 4})
    env.aas.put_scaling_policy({**target_params(), "PolicyName": "tt",
                                "PolicyType": "TargetTrackingScaling",
                                "TargetTrackingScalingPolicyConfiguration": INVOCATIONS_70})
    for minute in range(3):
        publish(metrics, "InvocationsPerInstance", 175, T0 + 60 * minute)
    env.clock.set(T0 + 182)  # a little after the third minute closed
    driver.step(env.clock.now())


def activities(env: Env, include_not_scaled: bool = False) -> list[dict[str, object]]:
    return list(env.aas.describe_scaling_activities(
        {**NS, "ResourceId": RESOURCE, "IncludeNotScaledActivities": include_not_scaled})[
        "ScalingActivities"])


def test_driver_scales_out_clamped_to_max_and_records_the_activity(live: Live) -> None:
    env, metrics, driver = live
    scale_out(env, metrics, driver)
    endpoint = env.fleet.endpoints[RESOURCE]
    assert endpoint.requests == [4]  # ceil(2 × 175 / 70) = 5, clamped to MaxCapacity 4
    [activity] = activities(env)
    assert activity["Description"] == "Setting desired instance count to 4."
    assert activity["StatusCode"] == "InProgress"
    [high] = env.cw.describe_alarms({"StateValue": "ALARM"})["MetricAlarms"]
    assert "-AlarmHigh-" in high["AlarmName"]


def test_completion_after_a_restart_reports_the_instance_startup_time(
        live: Live, tmp_path: Path) -> None:
    env, metrics, driver = live
    scale_out(env, metrics, driver)
    # The server restarts: a new store and driver over the same database.
    again = make_env(tmp_path, clock=env.clock, fleet=env.fleet)
    driver = ScalingDriver(again.store, MetricStore(again.engine), again.fleet,
                           again.clock, again.settings)
    publish(metrics, "InstanceStartupTime", 95.0, T0 + 240, namespace="tideserve",
            unit="Seconds")
    env.clock.set(T0 + 242)
    asyncio.run(driver.run_once())  # still Updating: AlarmHigh's firing is not scalable
    env.clock.set(T0 + 302)
    asyncio.run(driver.run_once())  # InService with 4 since T0+302
    [done] = activities(again)
    assert done["StatusCode"] == "Successful"
    assert str(done["StatusMessage"]).endswith(
        "The change took 120.0 s from decision to serving; instances started in 95.0 s.")
    assert json.loads(str(done["Details"])) == {"DecisionToServingSeconds": 120.0,
                                                "InstanceStartupSeconds": 95.0}
    everything = activities(again, include_not_scaled=True)
    # Newest first: AlarmHigh, still in ALARM at T0+302, finds the variant at its maximum;
    # at T0+242 it found the endpoint Updating.
    assert [a["StatusCode"] for a in everything] == ["Failed", "Failed", "Successful"]
    assert [a["NotScaledReasons"] for a in everything[:2]] == [
        [{"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 4, "CurrentCapacity": 4}],
        [{"Code": "TargetServicePutResourceAsUnscalable"}]]
    record = again.store.target(target_key(target_params()))
    assert record is not None
    cooldown = record.state.cooldowns[0]
    assert cooldown.scale_out_until == T0 + 302 + 300


def test_set_alarm_state_runs_a_step_policy_at_the_next_tick(live: Live) -> None:
    env, metrics, driver = live
    env.aas.register_scalable_target({**target_params(), "MinCapacity": 1, "MaxCapacity": 4})
    arn = env.aas.put_scaling_policy({
        **target_params(), "PolicyName": "step", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}})[
        "PolicyARN"]
    env.cw.put_metric_alarm({"AlarmName": "manual", "Namespace": "AWS/SageMaker",
                             "MetricName": "Backlog", "Statistic": "Average", "Period": 60,
                             "EvaluationPeriods": 1, "Threshold": 1.0,
                             "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                             "AlarmActions": [arn]})
    driver.step(T0 + 5)
    assert env.fleet.endpoints[RESOURCE].requests == []
    env.cw.set_alarm_state({"AlarmName": "manual", "StateValue": "ALARM",
                            "StateReason": "testing",
                            "StateReasonData": json.dumps(
                                {"evaluatedDatapoints": [{"value": 5.0}]})})
    driver.step(T0 + 6)
    assert env.fleet.endpoints[RESOURCE].requests == [3]


def test_a_deleted_endpoint_is_deregistered_by_the_next_tick(live: Live) -> None:
    env, metrics, driver = live
    scale_out(env, metrics, driver)
    del env.fleet.endpoints[RESOURCE]
    driver.step(T0 + 200)
    assert env.aas.describe_scalable_targets(NS)["ScalableTargets"] == []
    assert env.cw.describe_alarms({})["MetricAlarms"] == []
    assert len(activities(env)) == 1  # the history stays
