"""Serverless endpoints through boto3 alone against a real `tideserve up`: a model deployed on
a serverless endpoint cold-starts, serves warm, throttles above MaxConcurrency, returns to
zero workers after the keep-alive; provisioned concurrency keeps workers warm and is a
scalable dimension (and the only one); its duration and its provisioned concurrency show up in
the cost report as serverless GB-seconds; throttles and worker memory reach CloudWatch."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.support import RunningServer, csv_rows, pack_skops, start_server, stop_server
from tideserve.metrics import catalogue
from tideserve.serverless.config import KEEP_ALIVE_ENV

pytestmark = pytest.mark.integration

KEEP_ALIVE = 3.0  # seconds an idle on-demand worker stays warm in this server

# Rows whose first feature is negative make the model sleep that many seconds first.
SLEEPY_HANDLER = '''
import time
import numpy as np

def predict_fn(data, model):
    data = np.asarray(data, dtype=float)
    if data[0][0] < 0:
        time.sleep(-data[0][0])
        data = np.abs(data)
    return model.predict(data)
'''


@pytest.fixture(scope="module")
def sl_server(tmp_path_factory):
    os.environ[KEEP_ALIVE_ENV] = str(KEEP_ALIVE)
    try:
        srv = start_server(tmp_path_factory.mktemp("sl") / "state", period=2.0)
    finally:
        os.environ.pop(KEEP_ALIVE_ENV, None)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def sleepy(trained, tmp_path_factory):
    model, X, _, _ = trained
    archive = pack_skops(model, tmp_path_factory.mktemp("sleepy"), {
        "code/inference.py": SLEEPY_HANDLER})
    return model, X, archive


def upload(server: RunningServer, archive: Path, bucket: str, key: str) -> str:
    """The model into the server's object store with boto3's upload_file, as s3://bucket/key."""
    s3 = server.client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def deploy(server: RunningServer, name: str, model_data: str, **serverless: int) -> None:
    sm = server.client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": model_data})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "ServerlessConfig": serverless}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})


def workers(server: RunningServer, endpoint: str) -> int:
    """Instance processes of the endpoint, as the server records them."""
    with sqlite3.connect(server.state_dir / "tideserve.db") as db:
        (n,) = db.execute("SELECT count(*) FROM instances WHERE endpoint_name = ?",
                          (endpoint,)).fetchone()
    return int(n)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def invoke(rt, name: str, rows) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    resp = rt.invoke_endpoint(EndpointName=name, Body=csv_rows(rows), ContentType="text/csv")
    elapsed = time.perf_counter() - t0
    return np.array(json.loads(resp["Body"].read()), dtype=float).ravel(), elapsed


def statistic(server: RunningServer, metric: str, name: str, stat: str,
              namespace: str = "AWS/SageMaker") -> float | None:
    resp = server.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=metric, Statistics=[stat], Period=60,
        Dimensions=[{"Name": "EndpointName", "Value": name},
                    {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=1))
    points = resp["Datapoints"]
    return sum(p[stat] for p in points) if points else None


def test_cold_start_warm_throttle_and_back_to_zero(sl_server: RunningServer, sleepy):
    model, X, archive = sleepy
    sm, rt = sl_server.client("sagemaker"), sl_server.client("sagemaker-runtime")
    deploy(sl_server, "sl-demand", upload(sl_server, archive, "models", "sleepy/model.tar.gz"),
           MemorySizeInMB=2048, MaxConcurrency=2)
    variant = sm.describe_endpoint(EndpointName="sl-demand")["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert variant["DesiredServerlessConfig"] == variant["CurrentServerlessConfig"]
    assert "CurrentInstanceCount" not in variant
    assert workers(sl_server, "sl-demand") == 0  # nothing runs while idle

    cold, cold_s = invoke(rt, "sl-demand", X[:10])
    warm, warm_s = invoke(rt, "sl-demand", X[10:20])
    assert list(cold) == list(model.predict(X[:10]))
    assert list(warm) == list(model.predict(X[10:20]))
    assert cold_s > warm_s * 3, (cold_s, warm_s)  # the first request waited for a start
    assert workers(sl_server, "sl-demand") == 1

    slow = -np.abs(X[:1]) * 0 - 1.5  # each request sleeps 1.5 s
    def attempt(_: int) -> str:
        try:
            invoke(rt, "sl-demand", slow)
            return "ok"
        except ClientError as exc:
            return exc.response["Error"]["Code"]
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert set(outcomes) <= {"ok", "ThrottlingException"}, outcomes
    assert 1 <= outcomes.count("ok") <= 2 and outcomes.count("ThrottlingException") >= 4
    assert workers(sl_server, "sl-demand") <= 2

    wait_for(lambda: workers(sl_server, "sl-demand") == 0, KEEP_ALIVE + 10,
             "idle workers to stop after the keep-alive")
    setup = wait_for(lambda: statistic(sl_server, "ModelSetupTime", "sl-demand", "Maximum"),
                     10, "ModelSetupTime")
    assert setup > 10_000  # microseconds: a process start takes far more than 10 ms
    assert statistic(sl_server, "ModelSetupTime", "sl-demand", "SampleCount") >= 2

    # Throttled requests are 4XX invocations (the model never saw them, so no model error).
    # botocore retries a ThrottlingException (retries max_attempts=1: one retry), so the
    # server saw at least one throttle per failed call, and each success exactly once.
    throttled = statistic(sl_server, "Invocation4XXErrors", "sl-demand", "Sum")
    assert throttled >= outcomes.count("ThrottlingException")
    invocations = statistic(sl_server, "Invocations", "sl-demand", "Sum")
    assert invocations == 2 + outcomes.count("ok") + throttled
    assert statistic(sl_server, "InvocationModelErrors", "sl-demand", "Sum") == 0
    busiest = statistic(sl_server, "ServerlessConcurrentExecutionsUtilization", "sl-demand",
                        "Maximum")
    assert busiest is not None and 0 < busiest <= 1  # up to 2 of MaxConcurrency 2 busy
    # Workers report MemoryUtilization (resident memory over MemorySizeInMB), and no CPU.
    memory = statistic(sl_server, "MemoryUtilization", "sl-demand", "Maximum",
                       "/aws/sagemaker/Endpoints")
    assert memory is not None and 0 < memory < 100
    assert statistic(sl_server, "CPUUtilization", "sl-demand", "Maximum",
                     "/aws/sagemaker/Endpoints") is None
    # All it published is in the catalogue for serverless variants.
    listed = sl_server.client("cloudwatch").list_metrics(
        Dimensions=[{"Name": "EndpointName", "Value": "sl-demand"}])["Metrics"]
    published = {(m["Namespace"], m["MetricName"]) for m in listed}
    assert published <= {m.key for m in catalogue.published_by(catalogue.SERVERLESS)}
    assert {m.key for m in catalogue.zero_filled(catalogue.SERVERLESS)} <= published


def test_payload_above_four_megabytes_is_refused(sl_server: RunningServer, sleepy):
    _, X, archive = sleepy
    deploy(sl_server, "sl-limits", upload(sl_server, archive, "models", "limits.tar.gz"),
           MemorySizeInMB=1024, MaxConcurrency=1)
    rt = sl_server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="sl-limits", Body=b"1" * (4 * 1024 * 1024 + 1),
                           ContentType="text/csv")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "4194304" in err.value.response["Error"]["Message"]


def test_invalid_serverless_configs_are_refused(sl_server: RunningServer, sleepy):
    sm = sl_server.client("sagemaker")
    _, _, archive = sleepy
    url = upload(sl_server, archive, "models", "invalid.tar.gz")
    sm.create_model(ModelName="sl-invalid", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": url})
    cases = {
        "Member must be one of": {"MemorySizeInMB": 1536, "MaxConcurrency": 1},
        "less than or equal to MaxConcurrency": {"MemorySizeInMB": 1024, "MaxConcurrency": 2,
                                                 "ProvisionedConcurrency": 3},
    }
    for message, serverless in cases.items():
        with pytest.raises(ClientError, match=message):
            sm.create_endpoint_config(EndpointConfigName="sl-invalid", ProductionVariants=[{
                "VariantName": "v", "ModelName": "sl-invalid", "ServerlessConfig": serverless}])
    with pytest.raises(ClientError, match="cannot be mixed"):
        sm.create_endpoint_config(EndpointConfigName="sl-invalid", ProductionVariants=[
            {"VariantName": "a", "ModelName": "sl-invalid",
             "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}},
            {"VariantName": "b", "ModelName": "sl-invalid", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}])


def test_provisioned_concurrency_stays_warm_and_scales_on_schedule(sl_server, sleepy):
    _, X, archive = sleepy
    sm, rt = sl_server.client("sagemaker"), sl_server.client("sagemaker-runtime")
    aas = sl_server.client("application-autoscaling")
    deploy(sl_server, "sl-warm", upload(sl_server, archive, "models", "warm.tar.gz"),
           MemorySizeInMB=1024, MaxConcurrency=3, ProvisionedConcurrency=1)
    assert workers(sl_server, "sl-warm") == 1  # warm before InService
    _, first_s = invoke(rt, "sl-warm", X[:5])
    assert first_s < 1.0  # no cold start
    time.sleep(KEEP_ALIVE + 2)
    assert workers(sl_server, "sl-warm") == 1  # provisioned workers outlive the keep-alive

    resource = "endpoint/sl-warm/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredProvisionedConcurrency"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension=dimension, MinCapacity=1, MaxCapacity=3)
    when = datetime.now(UTC) + timedelta(seconds=3)
    aas.put_scheduled_action(
        ServiceNamespace="sagemaker", ScheduledActionName="warm-up", ResourceId=resource,
        ScalableDimension=dimension, Schedule=f"at({when:%Y-%m-%dT%H:%M:%S})",
        ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 3})

    def provisioned() -> int:
        v = sm.describe_endpoint(EndpointName="sl-warm")["ProductionVariants"][0]
        return int(v.get("CurrentServerlessConfig", {}).get("ProvisionedConcurrency", 0))
    wait_for(lambda: provisioned() == 2, 30, "provisioned concurrency 2")
    assert workers(sl_server, "sl-warm") == 2
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                 ResourceId=resource)["ScalingActivities"]
    assert any("provisioned concurrency to 2" in a["Description"] for a in activities)

    with pytest.raises(ClientError, match="less than or equal to MaxConcurrency"):
        sm.update_endpoint_weights_and_capacities(EndpointName="sl-warm",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                          "ServerlessUpdateConfig": {"ProvisionedConcurrency": 4}}])

    # A serverless variant has no instance count to scale.
    with pytest.raises(ClientError) as err:
        aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1, MaxCapacity=3)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert dimension in err.value.response["Error"]["Message"]


def test_serverless_duration_is_billed_in_gb_seconds(sl_server: RunningServer, sleepy):
    _, X, archive = sleepy
    rt, ce = sl_server.client("sagemaker-runtime"), sl_server.client("ce")
    configured = time.time()
    deploy(sl_server, "sl-billed", upload(sl_server, archive, "models", "billed.tar.gz"),
           MemorySizeInMB=4096, MaxConcurrency=2, ProvisionedConcurrency=1)
    invoke(rt, "sl-billed", -np.abs(X[:1]) * 0 - 1.0)  # one second of duration at 4 GB
    today = datetime.now(UTC).date()

    def serverless_cost(instance_type: str) -> float:
        resp = ce.get_cost_and_usage(
            TimePeriod={"Start": f"{today}", "End": f"{today + timedelta(days=1)}"},
            Granularity="DAILY", Metrics=["UnblendedCost", "UsageQuantity"],
            GroupBy=[{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}])
        groups = {g["Keys"][0]: g["Metrics"] for g in resp["ResultsByTime"][0]["Groups"]}
        metrics = groups.get(instance_type)
        return float(metrics["UnblendedCost"]["Amount"]) if metrics else 0.0
    cost = wait_for(lambda: serverless_cost("ml.serverless.4gb"), 10,
                    "serverless usage in Cost Explorer")
    # 4 GB x ~1.0 s x $0.00002 per GB-second, plus the model's own time.
    assert 4 * 1.0 * 0.00002 <= cost <= 4 * 1.6 * 0.00002, cost
    # Provisioned concurrency: 1 unit x 4 GB for as long as it has been configured, busy or
    # not, at $0.000005 per GB-second (approximate), billed per closed period.
    provisioned = wait_for(lambda: serverless_cost("ml.serverless.4gb.provisioned"), 10,
                           "provisioned concurrency in Cost Explorer")
    assert 0 < provisioned <= 4 * (time.time() - configured) * 0.000005, provisioned
