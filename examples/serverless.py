"""A serverless endpoint, driven through boto3 only.

1. trains a model and packs it with an inference.py that sleeps when the first feature is
   negative (so some requests can be made slow on purpose);
2. starts `tideserve up` with a 2-s metric period and a 4-s serverless keep-alive;
3. uploads model.tar.gz with S3 upload_file to the server's own S3 API and deploys it on a
   serverless endpoint (2 GB, MaxConcurrency 2);
4. prints the cold start's latency against warm ones, then sends 6 slow requests at once to
   show the requests above MaxConcurrency throttled;
5. waits past the keep-alive: the workers have scaled back to zero, so the next request
   cold-starts again (CloudWatch's ModelSetupTime counts the cold starts);
6. prints the serverless cost from Cost Explorer's GetCostAndUsage (GB-seconds of duration).

    .venv/bin/python examples/serverless.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from botocore.exceptions import ClientError  # noqa: E402
from tests.integration.test_serverless_endpoints import SLEEPY_HANDLER  # noqa: E402
from tests.support import (  # noqa: E402
    RunningServer,
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)

from tideserve.serverless.config import KEEP_ALIVE_ENV  # noqa: E402

ENDPOINT = "tide-serverless"
KEEP_ALIVE = 4.0  # seconds an idle worker stays warm (AWS: minutes)
ROLE = "arn:aws:iam::123456789012:role/example"


def deploy(srv: RunningServer, archive: Path) -> None:
    s3, sm = srv.client("s3"), srv.client("sagemaker")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(archive), "models", "serverless/model.tar.gz")
    print("uploaded s3://models/serverless/model.tar.gz with upload_file")
    sm.create_model(ModelName=ENDPOINT, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "tideserve/sklearn",
        "ModelDataUrl": "s3://models/serverless/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": ENDPOINT,
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=ENDPOINT, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    variant = sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0]
    print(f"{ENDPOINT} is InService: {variant['CurrentServerlessConfig']} "
          "(no instances; nothing runs until the first request)")


def invoke(rt, rows) -> float:
    """Seconds the call took."""
    t0 = time.perf_counter()
    resp = rt.invoke_endpoint(EndpointName=ENDPOINT, Body=csv_rows(rows),
                              ContentType="text/csv")
    json.loads(resp["Body"].read())
    return time.perf_counter() - t0


def latencies(rt, X) -> None:
    cold = invoke(rt, X[:5])
    warm = sorted(invoke(rt, X[5 * i:5 * i + 5]) for i in range(1, 6))
    print(f"cold start: {cold * 1000:7.0f} ms   warm (median of 5): {warm[2] * 1000:5.0f} ms")


def throttling(rt, X) -> None:
    slow = X[:1] * 0 - 1.0  # each request sleeps 1 s in the model

    def attempt(_: int) -> str:
        try:
            invoke(rt, slow)
            return "served"
        except ClientError as exc:
            return exc.response["Error"]["Code"]
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    print(f"6 concurrent 1-s requests at MaxConcurrency 2: {counts} "
          "(botocore retried each throttle once)")


def back_to_zero(rt, X) -> None:
    print(f"idle for {KEEP_ALIVE + 2:.0f} s (keep-alive {KEEP_ALIVE:.0f} s) ...")
    time.sleep(KEEP_ALIVE + 2)
    print(f"first request after the idle spell: {invoke(rt, X[:5]) * 1000:.0f} ms "
          "(scaled to zero, so a cold start again)")


def cloudwatch(srv: RunningServer) -> None:
    time.sleep(4.5)  # two metric periods: the last values are flushed
    cw = srv.client("cloudwatch")
    for metric, stat in (("ModelSetupTime", "SampleCount"), ("ModelSetupTime", "Average"),
                         ("Invocations", "Sum"), ("Invocation4XXErrors", "Sum")):
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Statistics=[stat], Period=3600,
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT},
                        {"Name": "VariantName", "Value": "AllTraffic"}],
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(minutes=1))["Datapoints"]
        value = sum(p[stat] for p in points) if stat != "Average" else (
            points[0][stat] / 1000 if points else 0.0)
        unit = " ms" if stat == "Average" else ""
        print(f"  CloudWatch {metric} {stat}: {value:.0f}{unit}")


def cost(srv: RunningServer) -> None:
    today = datetime.now(UTC).date()
    resp = srv.client("ce").get_cost_and_usage(
        TimePeriod={"Start": f"{today}", "End": f"{today + timedelta(days=1)}"},
        Granularity="DAILY", Metrics=["UnblendedCost", "UsageQuantity"],
        GroupBy=[{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}])
    for group in resp["ResultsByTime"][0]["Groups"]:
        m = group["Metrics"]
        seconds = float(m["UsageQuantity"]["Amount"]) * 3600
        print(f"cost of {group['Keys'][0]}: ${float(m['UnblendedCost']['Amount']):.6f} "
              f"for {seconds:.0f} s of request duration (GetCostAndUsage; billed per "
              "GB-second, nothing while idle)")


def main() -> None:
    model, X = train_breast_cancer("logistic")
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_skops(model, Path(tmp) / "model", {"code/inference.py": SLEEPY_HANDLER})
        os.environ[KEEP_ALIVE_ENV] = str(KEEP_ALIVE)
        srv = start_server(Path(tmp) / "state", period=2.0)
        print(f"tideserve up at {srv.url}")
        try:
            deploy(srv, archive)
            rt = srv.client("sagemaker-runtime")
            latencies(rt, X)
            throttling(rt, X)
            back_to_zero(rt, X)
            cloudwatch(srv)
            cost(srv)
            srv.client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)
        finally:
            stop_server(srv)


if __name__ == "__main__":
    main()
