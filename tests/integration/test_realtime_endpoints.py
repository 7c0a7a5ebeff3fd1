"""Real-time endpoints through boto3 against a real `tideserve up` process: deploy, describe,
invoke, update, scale, delete, errors in AWS's shapes, metrics, restart."""

from __future__ import annotations

import json
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.support import RunningServer, csv_rows
from tideserve.metrics import catalogue

pytestmark = pytest.mark.integration

def deploy(sm, name: str, model_data: str, count: int = 1, variant: str = "AllTraffic",
           config: str | None = None, model: str | None = None) -> None:
    model = model or name
    try:
        sm.create_model(
            ModelName=model,
            PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": model_data},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
        )
    except ClientError as exc:
        if "already existing" not in str(exc):
            raise
    sm.create_endpoint_config(
        EndpointConfigName=config or name,
        ProductionVariants=[{"VariantName": variant, "ModelName": model,
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": count}],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config or name)


def wait_until_created(sm, name: str, timeout: float = 60) -> dict:
    """DescribeEndpoint once the endpoint has left Creating (InService or Failed)."""
    deadline = time.monotonic() + timeout
    while True:
        desc = sm.describe_endpoint(EndpointName=name)
        if desc["EndpointStatus"] != "Creating" or time.monotonic() > deadline:
            return desc
        time.sleep(0.3)


def wait_in_service(sm, name: str) -> dict:
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240}
    )
    return sm.describe_endpoint(EndpointName=name)


def test_deploy_describe_and_invoke_with_boto3(server: RunningServer, trained):
    model, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "breast-cancer", str(archive), count=2)
    assert sm.describe_endpoint(EndpointName="breast-cancer")["EndpointStatus"] == "Creating"
    desc = wait_in_service(sm, "breast-cancer")
    variant = desc["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    assert desc["EndpointArn"].endswith(":endpoint/breast-cancer")

    resp = rt.invoke_endpoint(EndpointName="breast-cancer", Body=csv_rows(X[:20]),
                              ContentType="text/csv", Accept="application/json",
                              CustomAttributes="trace=1", InferenceId="abc")
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert resp["ContentType"] == "application/json"
    predicted = np.asarray(json.loads(resp["Body"].read())).ravel()
    np.testing.assert_array_equal(predicted, model.predict(X[:20]))

    resp = rt.invoke_endpoint(EndpointName="breast-cancer", Body=json.dumps(X[:3].tolist()),
                              ContentType="application/json", TargetVariant="AllTraffic")
    np.testing.assert_array_equal(
        np.asarray(json.loads(resp["Body"].read())).ravel(), model.predict(X[:3])
    )
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert "breast-cancer" in names


def test_errors_have_aws_shapes_and_the_server_keeps_serving(server: RunningServer, trained):
    model, X, _, crashing = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "crashy", str(crashing))
    wait_in_service(sm, "crashy")

    with pytest.raises(ClientError) as unknown:
        rt.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1", ContentType="text/csv")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"

    with pytest.raises(ClientError) as too_big:
        rt.invoke_endpoint(EndpointName="crashy", Body=b"1" * (6 * 1024 * 1024 + 1),
                           ContentType="text/csv")
    assert too_big.value.response["Error"]["Code"] == "ValidationError"

    bad = X[:1].copy()
    bad[0, 0] = -1.0
    with pytest.raises(rt.exceptions.ModelError) as crash:
        rt.invoke_endpoint(EndpointName="crashy", Body=csv_rows(bad), ContentType="text/csv")
    assert crash.value.response["OriginalStatusCode"] == 500
    assert "negative radius" in crash.value.response["OriginalMessage"]

    with pytest.raises(rt.exceptions.ModelError) as malformed:
        rt.invoke_endpoint(EndpointName="crashy", Body=b"1,2,not-a-number\n",
                           ContentType="text/csv")
    assert malformed.value.response["OriginalStatusCode"] == 400

    ok = rt.invoke_endpoint(EndpointName="crashy", Body=csv_rows(X[:2]), ContentType="text/csv")
    np.testing.assert_array_equal(
        np.asarray(json.loads(ok["Body"].read())).ravel(), model.predict(X[:2])
    )

    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint(EndpointName="never-made")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert 'Could not find endpoint "arn:aws:sagemaker:' in str(missing.value)

    with pytest.raises(ClientError) as dup:
        sm.create_endpoint(EndpointName="CRASHY", EndpointConfigName="crashy")
    assert "Cannot create already existing endpoint" in str(dup.value)

    with pytest.raises(ClientError) as image:
        sm.create_model(ModelName="bad-image", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                        PrimaryContainer={"Image": "example.com/mystery:1",
                                          "ModelDataUrl": "s3://b/m.tar.gz"})
    assert image.value.response["Error"]["Code"] == "ValidationException"


def test_a_malicious_archive_fails_the_endpoint_and_writes_nothing_outside(
    server: RunningServer, tmp_path: Path
):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload.txt"
    payload.write_text("owned")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../../escaped.txt")
    sm = server.client("sagemaker")
    deploy(sm, "evil", f"file://{evil}")
    desc = wait_until_created(sm, "evil")
    assert desc["EndpointStatus"] == "Failed"
    assert "escaped.txt" in desc["FailureReason"]
    assert not list(server.state_dir.parent.rglob("escaped.txt"))
    sm.delete_endpoint(EndpointName="evil")


def test_update_and_scale_without_dropping_requests(server: RunningServer, trained):
    model, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "rolling", str(archive), count=1)
    wait_in_service(sm, "rolling")
    sm.create_endpoint_config(
        EndpointConfigName="rolling-v2",
        ProductionVariants=[{"VariantName": "Blue", "ModelName": "rolling",
                             "InstanceType": "ml.c5.large", "InitialInstanceCount": 2}],
    )
    failures: list[str] = []
    served = [0]
    stop = threading.Event()
    body = csv_rows(X[:5])

    def traffic() -> None:
        while not stop.is_set():
            try:
                rt.invoke_endpoint(EndpointName="rolling", Body=body, ContentType="text/csv")
                served[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is collected
                failures.append(repr(exc))

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(traffic)
        try:
            time.sleep(0.5)
            sm.update_endpoint(EndpointName="rolling", EndpointConfigName="rolling-v2")
            during = sm.describe_endpoint(EndpointName="rolling")
            # the new fleet starts in seconds, so it is still pending here
            assert during["EndpointStatus"] == "Updating"
            assert [(v["VariantName"], v["CurrentInstanceCount"])
                    for v in during["ProductionVariants"]] == [("AllTraffic", 1)]
            assert [v["VariantName"] for v in
                    during["PendingDeploymentSummary"]["ProductionVariants"]] == ["Blue"]
            desc = wait_in_service(sm, "rolling")
            assert "PendingDeploymentSummary" not in desc
            assert desc["EndpointConfigName"] == "rolling-v2"
            assert [v["VariantName"] for v in desc["ProductionVariants"]] == ["Blue"]
            sm.update_endpoint_weights_and_capacities(
                EndpointName="rolling",
                DesiredWeightsAndCapacities=[{"VariantName": "Blue", "DesiredInstanceCount": 3}],
            )
            desc = wait_in_service(sm, "rolling")
            assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 3
            sm.update_endpoint_weights_and_capacities(
                EndpointName="rolling",
                DesiredWeightsAndCapacities=[{"VariantName": "Blue", "DesiredInstanceCount": 1}],
            )
            desc = wait_in_service(sm, "rolling")
            assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 1
            time.sleep(0.5)
        finally:
            stop.set()
    assert failures == []
    assert served[0] > 20


def test_invocation_metrics_reach_cloudwatch(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt, cw = (server.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    deploy(sm, "counted", str(archive), count=1)
    wait_in_service(sm, "counted")
    start = datetime.now(UTC) - timedelta(seconds=10)
    for _ in range(25):
        rt.invoke_endpoint(EndpointName="counted", Body=csv_rows(X[:1]), ContentType="text/csv")
    dims = [{"Name": "EndpointName", "Value": "counted"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    total = 0.0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
            StartTime=start, EndTime=datetime.now(UTC) + timedelta(minutes=1), Period=60,
            Statistics=["Sum"],
        )
        total = sum(d["Sum"] for d in resp["Datapoints"])
        if total >= 25:
            break
        time.sleep(0.5)
    assert total == 25
    latency = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=dims, StartTime=start,
        EndTime=datetime.now(UTC) + timedelta(minutes=1), Period=60,
        Statistics=["SampleCount", "Average"],
    )
    assert sum(d["SampleCount"] for d in latency["Datapoints"]) == 25
    assert all(d["Unit"] == "Microseconds" for d in latency["Datapoints"])
    listed = cw.list_metrics(Namespace="AWS/SageMaker", MetricName="Invocations")["Metrics"]
    assert any({"Name": "EndpointName", "Value": "counted"} in m["Dimensions"] for m in listed)
    # Everything published for the variant is in the catalogue for real-time endpoints, and
    # the sampled ConcurrentRequestsPerModel is among it.
    published: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = cw.list_metrics(Dimensions=[{"Name": "EndpointName", "Value": "counted"}])
        published = {(m["Namespace"], m["MetricName"]) for m in metrics["Metrics"]}
        if catalogue.CONCURRENT_REQUESTS_PER_MODEL.key in published:
            break
        time.sleep(0.5)
    assert published <= {m.key for m in catalogue.published_by(catalogue.REAL_TIME)}
    assert {m.key for m in catalogue.zero_filled(catalogue.REAL_TIME)} <= published
    assert catalogue.CONCURRENT_REQUESTS_PER_MODEL.key in published


def test_a_bad_signature_is_refused(server: RunningServer):
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="AKIAFAKEFAKEFAKE", aws_secret_access_key="nope")
    with pytest.raises(ClientError) as denied:
        sm.list_endpoints()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_delete_endpoint(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, "short-lived", str(archive))
    wait_in_service(sm, "short-lived")
    sm.delete_endpoint(EndpointName="short-lived")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sm.describe_endpoint(EndpointName="short-lived")
        except ClientError as exc:
            assert "Could not find endpoint" in str(exc)
            break
        time.sleep(0.2)
    else:
        pytest.fail("endpoint was not deleted")
