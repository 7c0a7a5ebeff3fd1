"""Target tracking on a serverless variant's provisioned concurrency, live, through boto3:
SageMakerVariantProvisionedConcurrencyUtilization drives
sagemaker:variant:DesiredProvisionedConcurrency out under concurrent load and back in when it
stops, on a server whose metric period is 2 s (an AWS minute; AlarmHigh needs 3 of them above
the target, AlarmLow 15 below 90 % of it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.integration.test_serverless_endpoints import (
    SLEEPY_HANDLER,
    deploy,
    invoke,
    upload,
    wait_for,
    workers,
)
from tests.support import RunningServer, pack_skops

pytestmark = pytest.mark.integration

ENDPOINT = "sl-tracked"
RESOURCE = f"endpoint/{ENDPOINT}/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
LOAD = 3  # requests in flight at once, each taking 0.5 s


def provisioned(server: RunningServer) -> int:
    v = server.client("sagemaker").describe_endpoint(
        EndpointName=ENDPOINT)["ProductionVariants"][0]
    return int(v.get("CurrentServerlessConfig", {}).get("ProvisionedConcurrency", 0))


def track_utilization(server: RunningServer) -> list[dict]:
    aas = server.client("application-autoscaling")
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                 ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=3)
    resp = aas.put_scaling_policy(
        PolicyName="pc-utilization", ServiceNamespace="sagemaker", ResourceId=RESOURCE,
        ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.5,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"},
            "ScaleOutCooldown": 60, "ScaleInCooldown": 60,  # AWS seconds: 2 s here
        })
    names = [a["AlarmName"] for a in resp["Alarms"]]
    return server.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]


def test_target_tracking_scales_provisioned_concurrency_out_and_back_in(server, trained,
                                                                         tmp_path):
    model, X, _, _ = trained
    archive = pack_skops(model, tmp_path, {"code/inference.py": SLEEPY_HANDLER})
    # A bucket of its own: the shared server's "models" is test_serving_edges' to create.
    deploy(server, ENDPOINT, upload(server, archive, "sl-tracked-models", "tracked.tar.gz"),
           MemorySizeInMB=1024, MaxConcurrency=4, ProvisionedConcurrency=1)
    alarms = track_utilization(server)

    # The managed alarms watch the series the pool publishes.
    assert {a["MetricName"] for a in alarms} == {"ServerlessProvisionedConcurrencyUtilization"}
    assert {(a["Namespace"], a["Statistic"]) for a in alarms} == {("AWS/SageMaker", "Average")}
    dims = alarms[0]["Dimensions"]
    assert sorted((d["Name"], d["Value"]) for d in dims) == [
        ("EndpointName", ENDPOINT), ("VariantName", "AllTraffic")]
    cw = server.client("cloudwatch")

    def published() -> list[dict]:
        return cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="ServerlessProvisionedConcurrencyUtilization",
            Dimensions=dims, Statistics=["Average"], Period=60,
            StartTime=datetime.now(UTC) - timedelta(minutes=5),
            EndTime=datetime.now(UTC) + timedelta(minutes=1))["Datapoints"]

    # The first datapoint lands when the period after the deployment closes (2 s here).
    wait_for(published, 10, "the pool to publish the alarms' metric")

    rt = server.client("sagemaker-runtime")
    slow = -np.abs(X[:1]) * 0 - 0.5
    stop = threading.Event()

    def keep_busy(_: int) -> int:
        served = 0
        while not stop.is_set():
            invoke(rt, ENDPOINT, slow)
            served += 1
        return served

    with ThreadPoolExecutor(LOAD) as pool:
        load = [pool.submit(keep_busy, i) for i in range(LOAD)]
        try:
            # PC 1 fully used -> ceil(1 x 1.0 / 0.5) = 2; then ceil(2 x 1.0 / 0.5) = 4 -> Max 3.
            # Two scale-outs, each 3 periods then a worker start: ~7 s of CPU apiece, which
            # took over a minute in all on a 2-core machine at load 10.
            wait_for(lambda: provisioned(server) == 3, 120, "provisioned concurrency 3")
        finally:
            stop.set()
        assert all(f.result() > 0 for f in load)  # and none was throttled
    assert workers(server, ENDPOINT) >= 3

    # Idle: 15 periods below 0.45 -> ceil(3 x 0 / 0.5) = 0 -> Min 1.
    started = time.monotonic()
    wait_for(lambda: provisioned(server) == 1, 45, "provisioned concurrency back to 1")
    assert time.monotonic() - started > 15 * 2 - 4  # AlarmLow waited for its 15 periods

    def successful() -> list[dict]:
        activities = server.client("application-autoscaling").describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingActivities"]
        return [a for a in activities if a["StatusCode"] == "Successful"]

    # The last activity is fulfilled once the driver sees the endpoint InService at 1.
    done = wait_for(lambda: [a for a in successful() if a["Description"].endswith("to 1.")]
                    and successful(), 10, "the scale-in activity to succeed")
    descriptions = [a["Description"] for a in done]
    assert "Setting desired provisioned concurrency to 1." in descriptions
    assert "Setting desired provisioned concurrency to 3." in descriptions
    assert any("AlarmHigh" in a["Cause"] for a in done)
    assert any("AlarmLow" in a["Cause"] for a in done)
    assert all("provisioned concurrency" in a["StatusMessage"] for a in done)
