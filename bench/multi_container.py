"""What the multi-container front costs per request: the same LogisticRegression served as a
single-container endpoint, as one container of a Direct endpoint (one more loopback hop,
through the front), and as the last container of a two-container serial pipeline whose first
container passes the CSV through (two hops more). Sequential boto3 requests against a real
`tideserve up`; prints client p50/p99 and the router's OverheadLatency / ModelLatency p50 from
CloudWatch. Prints figures; asserts nothing.

    .venv/bin/python bench/multi_container.py [--requests 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)

PASSTHROUGH = '''
def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    return body, "text/csv"
'''
ROLE = "arn:aws:iam::123456789012:role/bench"


def deploy(sm, name: str, containers: list[dict], mode: str | None = None) -> None:
    extra = {"InferenceExecutionConfig": {"Mode": mode}} if mode else {}
    sm.create_model(ModelName=name, Containers=containers, ExecutionRoleArn=ROLE, **extra)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def run(rt, name: str, body: str, n: int, **kwargs: str) -> list[float]:
    for _ in range(20):  # warm the pools
        rt.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", **kwargs)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        rt.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", **kwargs)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def p50(cw, metric: str, name: str) -> float | None:
    now = time.time()
    points = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, StartTime=now - 600, EndTime=now + 60,
        Period=60, ExtendedStatistics=["p50"],
        Dimensions=[{"Name": "EndpointName", "Value": name},
                    {"Name": "VariantName", "Value": "AllTraffic"}])["Datapoints"]
    values = [p["ExtendedStatistics"]["p50"] for p in points if "ExtendedStatistics" in p]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    model, X = train_breast_cancer("logistic")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lr = str(pack_skops(model, root / "lr"))
        passthrough = str(pack_skops(model, root / "pass", {"code/inference.py": PASSTHROUGH}))
        srv = start_server(root / "state", period=2.0)
        try:
            sm, rt, cw = srv.client("sagemaker"), srv.client("sagemaker-runtime"), \
                srv.client("cloudwatch")
            sk = {"Image": "tideserve/sklearn", "ModelDataUrl": lr}
            deploy(sm, "single", [sk])
            deploy(sm, "direct", [{**sk, "ContainerHostname": "a"},
                                  {**sk, "ContainerHostname": "b"}], "Direct")
            deploy(sm, "serial", [{"Image": "tideserve/python", "ModelDataUrl": passthrough},
                                  sk])
            for name in ("single", "direct", "serial"):
                sm.get_waiter("endpoint_in_service").wait(
                    EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
            body = csv_rows(X[:1])
            results = {
                "single": run(rt, "single", body, args.requests),
                "direct": run(rt, "direct", body, args.requests, TargetContainerHostname="b"),
                "serial": run(rt, "serial", body, args.requests),
            }
            time.sleep(4.5)  # two periods: the last one flushed
            print(f"{'endpoint':8} {'client p50 ms':>14} {'p99 ms':>8} "
                  f"{'Overhead p50 us':>16} {'Model p50 us':>13}")
            for name, times in results.items():
                q = statistics.quantiles(times, n=100)
                over, mod = p50(cw, "OverheadLatency", name), p50(cw, "ModelLatency", name)
                print(f"{name:8} {statistics.median(times):14.3f} {q[98]:8.3f} "
                      f"{over or float('nan'):16.0f} {mod or float('nan'):13.0f}")
        finally:
            stop_server(srv)


if __name__ == "__main__":
    main()
