"""Autoscaling on live endpoints with the boto3 calls a SageMaker user writes, against a
server whose metric period is 2 s (every AWS duration 30x shorter: a "minute" is 2 s, so
InvocationsPerInstance targets count requests per 2-s period)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows

pytestmark = pytest.mark.integration


def register(aas, endpoint: str, lo: int, hi: int) -> str:
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    aas.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=lo, MaxCapacity=hi)
    return resource


def variant(sm, endpoint: str) -> dict:
    return sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


class Load:
    """Closed-loop traffic from threads, each pausing `pause` s between requests; every
    failure is kept."""

    def __init__(self, rt, endpoint: str, body: str) -> None:
        self.rt, self.endpoint, self.body = rt, endpoint, body
        self.failures: list[str] = []
        self.served = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, threads: int, pause: float) -> None:
        for _ in range(threads):
            t = threading.Thread(target=self._run, args=(pause,), daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, pause: float) -> None:
        while not self._stop.is_set():
            try:
                self.rt.invoke_endpoint(EndpointName=self.endpoint, Body=self.body,
                                        ContentType="text/csv")
                self.served += 1
            except Exception as exc:  # noqa: BLE001 - every failure is collected
                self.failures.append(repr(exc))
            if pause:
                self._stop.wait(pause)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()
        self._stop.clear()


def test_target_tracking_scales_out_under_load_and_back_in_without_a_failed_request(
    server: RunningServer, trained
):
    _, X, archive, _ = trained
    sm, rt, aas, cw = (server.client(s) for s in (
        "sagemaker", "sagemaker-runtime", "application-autoscaling", "cloudwatch"))
    deploy(sm, "tidal", str(archive), count=1)
    wait_in_service(sm, "tidal")
    resource = register(aas, "tidal", 1, 3)
    policy = aas.put_scaling_policy(
        PolicyName="ipi-target", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": 300, "ScaleOutCooldown": 300,
        },
    )
    alarm_names = [a["AlarmName"] for a in policy["Alarms"]]
    assert len(alarm_names) == 2
    described = cw.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"]
    assert {a["MetricName"] for a in described} == {"InvocationsPerInstance"}

    load = Load(rt, "tidal", csv_rows(X[:1]))
    try:
        load.start(threads=4, pause=0.0)  # far above 10 per instance per period
        wait_for(lambda: variant(sm, "tidal")["DesiredInstanceCount"] == 3, 60,
                 "scale-out to 3")
        wait_for(lambda: variant(sm, "tidal")["CurrentInstanceCount"] == 3, 60,
                 "3 instances serving")
        load.stop()
        load.start(threads=1, pause=0.3)  # a trickle, well below target, through scale-in
        wait_for(lambda: variant(sm, "tidal")["CurrentInstanceCount"] == 1, 120,
                 "scale-in to 1")
        time.sleep(1)
    finally:
        load.stop()
    assert load.failures == []
    assert load.served > 50

    activities = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    done = [a for a in activities if a["StatusCode"] == "Successful"]
    descriptions = [a["Description"] for a in done]
    assert "Setting desired instance count to 3." in descriptions
    assert "Setting desired instance count to 1." in descriptions
    scale_out = next(a for a in done if a["Description"].endswith(" 3."))
    assert "in state ALARM triggered policy ipi-target" in scale_out["Cause"]
    assert "AlarmHigh" in scale_out["Cause"]
    assert "from decision to serving" in scale_out["StatusMessage"]


def test_step_scaling_behind_a_users_alarm_and_a_customized_cpu_policy(
    server: RunningServer, trained
):
    _, _, archive, _ = trained
    sm, aas, cw = (server.client(s) for s in ("sagemaker", "application-autoscaling",
                                               "cloudwatch"))
    deploy(sm, "stepped", str(archive), count=1)
    wait_in_service(sm, "stepped")
    resource = register(aas, "stepped", 1, 4)
    step = aas.put_scaling_policy(
        PolicyName="add-two", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 300,
            "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 2}],
        },
    )
    dims = [{"Name": "EndpointName", "Value": "stepped"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    cw.put_metric_alarm(
        AlarmName="stepped-busy", Namespace="AWS/SageMaker", MetricName="InvocationsPerInstance",
        Dimensions=dims, Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1000.0,
        ComparisonOperator="GreaterThanThreshold", AlarmActions=[step["PolicyARN"]],
        TreatMissingData="notBreaching")
    cw.set_alarm_state(AlarmName="stepped-busy", StateValue="ALARM",
                       StateReason="testing the step policy",
                       StateReasonData='{"evaluatedDatapoints": [{"value": 1500.0}]}')
    wait_for(lambda: variant(sm, "stepped")["CurrentInstanceCount"] == 3, 60, "step to 3")
    activities = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    assert any("stepped-busy" in a["Cause"] and a["Description"].endswith(" 3.")
               for a in activities)

    cpu = aas.put_scaling_policy(
        PolicyName="cpu-50", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            "CustomizedMetricSpecification": {
                "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints",
                "Dimensions": dims, "Statistic": "Average", "Unit": "Percent"},
        },
    )
    alarms = cw.describe_alarms(AlarmNames=[a["AlarmName"] for a in cpu["Alarms"]])
    assert {a["MetricName"] for a in alarms["MetricAlarms"]} == {"CPUUtilization"}
    assert {a["Namespace"] for a in alarms["MetricAlarms"]} == {"/aws/sagemaker/Endpoints"}
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                   ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    left = cw.describe_alarms(AlarmNames=[a["AlarmName"] for a in cpu["Alarms"]])
    assert left["MetricAlarms"] == []


def test_a_scheduled_action_raises_the_minimum_and_scales_out(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm, aas = server.client("sagemaker"), server.client("application-autoscaling")
    deploy(sm, "scheduled", str(archive), count=1)
    wait_in_service(sm, "scheduled")
    resource = register(aas, "scheduled", 1, 3)
    when = datetime.now(UTC) + timedelta(seconds=3)
    aas.put_scheduled_action(
        ServiceNamespace="sagemaker", ScheduledActionName="morning-rush", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        Schedule=f"at({when:%Y-%m-%dT%H:%M:%S})",
        ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 3})
    wait_for(lambda: variant(sm, "scheduled")["CurrentInstanceCount"] == 2, 60,
             "the scheduled minimum of 2")
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                           ResourceIds=[resource])["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 3)
    # In the audit trail the capacity change is Application Auto Scaling's, not the user's.
    events = server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": "scheduled"}])["Events"]
    update = next(json.loads(e["CloudTrailEvent"]) for e in events
                  if e["EventName"] == "UpdateEndpointWeightsAndCapacities")
    assert update["userIdentity"]["type"] == "AssumedRole"
    assert update["userIdentity"]["invokedBy"] == "sagemaker.application-autoscaling.amazonaws.com"
