"""Multi-model endpoints through boto3 alone against a real `tideserve up`: 50 archives under
one S3 prefix, one MME variant on two instances, every model answering with its own
predictions, loads, hits and evictions in CloudWatch, a 51st model served without an update,
and the bad requests (invalid and missing targets, an oversized model, broken archives) each
refused in AWS's shape while the other models keep answering."""

from __future__ import annotations

import io
import json
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.support import RunningServer, csv_rows, tar_gz
from tideserve.metrics import catalogue

pytestmark = pytest.mark.integration

BUCKET = "mme-models"
PREFIX = "clients/"
MODELS = 50
PER_INSTANCE = 15  # the cache budget holds about this many of the 50 models


def _skops_archive(model) -> bytes:
    import skops.io

    return tar_gz({"model.skops": skops.io.dumps(model)})


@pytest.fixture(scope="module")
def clients():
    """One regression model per client, each answering iris rows with its own numbers (the
    target is the class scaled and shifted by the client's number), and one row to ask."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression

    X, y = load_iris(return_X_y=True)
    models = {}
    for k in range(MODELS + 1):
        rows = slice(k % 3, None, 2)
        models[f"client-{k:03}.tar.gz"] = LinearRegression().fit(X[rows], y[rows] * (k + 1) + k)
    return models, X[:2]


def _invoke(rt, endpoint: str, target: str, rows) -> np.ndarray:
    resp = rt.invoke_endpoint(EndpointName=endpoint, TargetModel=target, Body=csv_rows(rows),
                              ContentType="text/csv", Accept="application/json")
    return np.asarray(json.loads(resp["Body"].read())).ravel()


def _error(call) -> tuple[str, str, dict]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err


def test_one_variant_serves_fifty_models_and_a_fifty_first(server: RunningServer, clients):
    models, rows = clients
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    s3, cw = server.client("s3"), server.client("cloudwatch")
    s3.create_bucket(Bucket=BUCKET)
    archives = {name: _skops_archive(m) for name, m in models.items()}
    for name in list(archives)[:MODELS]:
        s3.put_object(Bucket=BUCKET, Key=PREFIX + name, Body=archives[name])
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "broken.tar.gz", Body=b"\x1f\x8b not a tar")
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "no-model.tar.gz",
                  Body=tar_gz({"README": b"no model file here"}))
    unpacked = _unpacked_size(archives["client-000.tar.gz"])
    budget_mb = PER_INSTANCE * unpacked / 2**20
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "huge.tar.gz",
                  Body=tar_gz({"model.skops": b"\0" * int(budget_mb * 2**20 * 2)}))

    sm.create_model(
        ModelName="clients",
        PrimaryContainer={"Image": "tideserve/sklearn", "Mode": "MultiModel",
                          "ModelDataUrl": f"s3://{BUCKET}/{PREFIX}",
                          "Environment": {"TIDESERVE_MODEL_CACHE_MEMORY_MB": f"{budget_mb:.4f}"}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
    )
    sm.create_endpoint_config(EndpointConfigName="clients", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "clients", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 2}])
    sm.create_endpoint(EndpointName="clients", EndpointConfigName="clients")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="clients", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    started = datetime.now(UTC) - timedelta(seconds=5)

    names = list(models)[:MODELS]
    with ThreadPoolExecutor(4) as pool:
        answers = dict(zip(names, pool.map(lambda n: _invoke(rt, "clients", n, rows), names),
                           strict=True))
    for name in names:  # each model's own predictions
        np.testing.assert_allclose(answers[name], models[name].predict(rows), rtol=1e-6)
    again = _invoke(rt, "clients", names[-1], rows)  # still loaded: a hit
    np.testing.assert_allclose(again, models[names[-1]].predict(rows), rtol=1e-6)

    # The 51st model: uploaded under the prefix, served with no endpoint update.
    newest = list(models)[MODELS]
    s3.put_object(Bucket=BUCKET, Key=PREFIX + newest, Body=archives[newest])
    np.testing.assert_allclose(_invoke(rt, "clients", newest, rows),
                               models[newest].predict(rows), rtol=1e-6)

    _bad_requests_are_refused_and_the_others_keep_answering(rt, models, rows)
    _the_cache_is_seen_in_cloudwatch(cw, started)
    _the_variant_scales_as_any_variant(server, sm, rt, models, rows)


def _the_variant_scales_as_any_variant(server, sm, rt, models, rows) -> None:
    aas = server.client("application-autoscaling")
    resource = "endpoint/clients/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension=dimension, MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="per-instance", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 100.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    sm.update_endpoint_weights_and_capacities(EndpointName="clients", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="clients", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    variant = sm.describe_endpoint(EndpointName="clients")["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 3
    for name in list(models)[:6]:  # some now hash to the new instance, which loads them
        np.testing.assert_allclose(_invoke(rt, "clients", name, rows),
                                   models[name].predict(rows), rtol=1e-6)
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                   ScalableDimension=dimension)


def _unpacked_size(archive: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return sum(m.size for m in tar.getmembers())


def _bad_requests_are_refused_and_the_others_keep_answering(rt, models, rows) -> None:
    code, message, _ = _error(lambda: rt.invoke_endpoint(
        EndpointName="clients", Body=csv_rows(rows), ContentType="text/csv"))
    assert code == "ValidationError" and "is missing a target model header" in message

    for bad in ("../x.tar.gz", "a//b.tar.gz", "/abs.tar.gz"):
        code, message, _ = _error(lambda b=bad: _invoke(rt, "clients", b, rows))
        assert code == "ValidationError" and "is not a valid path relative to" in message

    code, message, _ = _error(lambda: _invoke(rt, "clients", "client-999.tar.gz", rows))
    assert code == "ValidationError"
    assert message.startswith(f"Failed to download model data(bucket: {BUCKET}, key: "
                              f"{PREFIX}client-999.tar.gz). Please ensure")

    code, message, _ = _error(lambda: _invoke(rt, "clients", "broken.tar.gz", rows))
    assert code == "ValidationError" and message.startswith("Failed to extract model data(")

    code, message, _ = _error(lambda: _invoke(rt, "clients", "huge.tar.gz", rows))
    assert code == "ValidationError" and "bytes of memory, more than the" in message

    code, message, err = _error(lambda: _invoke(rt, "clients", "no-model.tar.gz", rows))
    assert code == "ModelError" and "Failed to load model no-model.tar.gz" in message
    assert err["OriginalStatusCode"] == 500

    name = "client-007.tar.gz"  # the endpoint still serves the good ones
    np.testing.assert_allclose(_invoke(rt, "clients", name, rows), models[name].predict(rows),
                               rtol=1e-6)


def _the_cache_is_seen_in_cloudwatch(cw, started: datetime) -> None:
    dims = [{"Name": "EndpointName", "Value": "clients"},
            {"Name": "VariantName", "Value": "AllTraffic"}]

    def stats(namespace: str, metric: str, extra=()) -> dict:
        resp = cw.get_metric_statistics(
            Namespace=namespace, MetricName=metric, Dimensions=[*dims, *extra],
            StartTime=started, EndTime=datetime.now(UTC) + timedelta(minutes=1), Period=60,
            Statistics=["Sum", "SampleCount", "Average"])
        points = resp["Datapoints"]
        return {"Sum": sum(p["Sum"] for p in points),
                "SampleCount": sum(p["SampleCount"] for p in points),
                "Unit": points[0]["Unit"] if points else None}

    deadline = time.monotonic() + 20
    while True:  # the router's figures reach the store once their period ends (2 s here)
        loads = stats("AWS/SageMaker", "ModelLoadingTime")
        unloads = stats("AWS/SageMaker", "ModelUnloadingTime")
        loaded = stats("/aws/sagemaker/Endpoints", "LoadedModelCount")
        if (loads["SampleCount"] >= MODELS + 1 and unloads["SampleCount"] > 0
                and loaded["SampleCount"] > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    hits = stats("AWS/SageMaker", "ModelCacheHit")
    assert loads["SampleCount"] >= MODELS + 1 and loads["Unit"] == "Microseconds"
    assert unloads["SampleCount"] > 0  # 51 models, 2 x 15 fit: evictions
    assert 1 <= hits["Sum"] < hits["SampleCount"]
    assert stats("AWS/SageMaker", "ModelDownloadingTime")["SampleCount"] >= MODELS + 1
    assert stats("AWS/SageMaker", "ModelLoadingWaitTime")["SampleCount"] >= MODELS + 1
    assert loaded["SampleCount"] > 0 and loaded["Unit"] == "None"
    per_model = stats("tideserve", "TargetModelInvocations",
                      [{"Name": "TargetModel", "Value": "client-007.tar.gz"}])
    assert per_model["Sum"] >= 2

    data = cw.get_metric_data(
        MetricDataQueries=[{"Id": "hitrate", "MetricStat": {"Metric": {
            "Namespace": "AWS/SageMaker", "MetricName": "ModelCacheHit", "Dimensions": dims},
            "Period": 60, "Stat": "Average"}}],
        StartTime=started, EndTime=datetime.now(UTC) + timedelta(minutes=1))
    rates = data["MetricDataResults"][0]["Values"]
    assert rates and all(0 <= r < 1 for r in rates)

    # Everything the variant published is in the catalogue, as real-time or multi-model.
    listed = cw.list_metrics(Dimensions=[{"Name": "EndpointName", "Value": "clients"}])
    published = {(m["Namespace"], m["MetricName"]) for m in listed["Metrics"]}
    allowed = {m.key for kind in (catalogue.REAL_TIME, catalogue.MULTI_MODEL)
               for m in catalogue.published_by(kind)}
    assert published <= allowed
    assert {m.key for m in catalogue.MULTI_MODEL_METRICS} <= published


def test_target_model_rules_on_single_model_endpoints_and_in_create_model(
        server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    code, message, _ = _error(lambda: sm.create_model(
        ModelName="mme-bad", PrimaryContainer={
            "Image": "tideserve/sklearn", "ModelDataUrl": "s3://b/p/",
            "MultiModelConfig": {"ModelCacheSetting": "Disabled"}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/test"))
    assert code == "ValidationException" and "Mode set to MultiModel" in message

    sm.create_model(ModelName="mme-rules", PrimaryContainer={
        "Image": "tideserve/sklearn", "Mode": "MultiModel", "ModelDataUrl": "s3://b/p/"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/test")
    code, message, _ = _error(lambda: sm.create_endpoint_config(
        EndpointConfigName="mme-serverless", ProductionVariants=[{
            "VariantName": "v", "ModelName": "mme-rules",
            "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}]))
    assert code == "ValidationException" and "serverless endpoints do not support" in message

    sm.create_model(ModelName="single", PrimaryContainer={
        "Image": "tideserve/sklearn", "ModelDataUrl": str(archive)},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/test")
    sm.create_endpoint_config(EndpointConfigName="single", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "single", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="single", EndpointConfigName="single")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="single", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    code, message, _ = _error(lambda: rt.invoke_endpoint(
        EndpointName="single", TargetModel="a.tar.gz", Body=csv_rows(X[:1]),
        ContentType="text/csv"))
    assert code == "ValidationError"  # the body's ErrorCode: tests/serving/test_multi_model.py
    assert message == ("Endpoint single is not a multi-model endpoint and does not support "
                       "target model header.")
