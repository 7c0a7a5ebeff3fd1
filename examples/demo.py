"""`make demo`: a model trained, packed SageMaker-style, served and measured.

1. trains LogisticRegression on scikit-learn's breast-cancer data and packs model.tar.gz;
2. starts `tideserve up` (metric period 2 s, so time runs 30x faster than CloudWatch's);
3. deploys it with boto3 on 2 instances, sends traffic, prints throughput and latency;
4. prints the per-period metrics from CloudWatch's API;
5. puts an Application Auto Scaling target-tracking policy on the variant, sends a burst that
   scales it out, lets the burst end so it scales back in, and prints the scaling activities;
6. stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import csv_rows, pack_skops, train_breast_cancer  # noqa: E402

PERIOD = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(state: Path, port: int) -> subprocess.Popen[bytes]:
    state.mkdir(parents=True)
    with open(state / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideserve.cli", "up", "--port", str(port), "--state-dir",
             str(state), "--period", str(PERIOD)],
            start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def clients(url: str, state: Path) -> tuple:
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(state / "credentials")
    session = boto3.Session(region_name="us-east-1")
    cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=32)
    return tuple(session.client(s, endpoint_url=url, config=cfg)
                 for s in ("sagemaker", "sagemaker-runtime", "cloudwatch",
                           "application-autoscaling"))


def deploy(sm, archive: Path) -> None:
    sm.create_model(ModelName="breast-cancer",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive)},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/demo")
    sm.create_endpoint_config(EndpointConfigName="breast-cancer", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "breast-cancer",
        "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}])
    t0 = time.monotonic()
    sm.create_endpoint(EndpointName="breast-cancer", EndpointConfigName="breast-cancer")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="breast-cancer", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
    desc = sm.describe_endpoint(EndpointName="breast-cancer")
    v = desc["ProductionVariants"][0]
    print(f"endpoint {desc['EndpointName']}: {desc['EndpointStatus']} in "
          f"{time.monotonic() - t0:.1f} s with {v['CurrentInstanceCount']} instances")


def traffic(rt, body: str, seconds: float, threads: int, pause: float = 0.0,
            until=None) -> list[float]:
    """Closed-loop requests from `threads` threads for `seconds`, or until `until()` is true."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop and not (until and until()):
            t0 = time.perf_counter()
            try:
                rt.invoke_endpoint(EndpointName="breast-cancer", Body=body, ContentType="text/csv")
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - counted and shown
                errors.append(repr(exc))
            if pause:
                time.sleep(pause)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        print(f"  {len(errors)} errors, e.g. {errors[0]}")
    return latencies


def report_latency(latencies: list[float], seconds: float) -> None:
    q = statistics.quantiles([x * 1000 for x in latencies], n=100)
    print(f"  {len(latencies)} requests in {seconds:.0f} s = {len(latencies) / seconds:.0f} req/s "
          f"(boto3 client, 8 threads); latency p50 {q[49]:.2f} ms, p90 {q[89]:.2f} ms, "
          f"p99 {q[98]:.2f} ms")


def report_metrics(cw, start: datetime) -> None:
    dims = [{"Name": "EndpointName", "Value": "breast-cancer"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    end = datetime.now(UTC) + timedelta(seconds=PERIOD)
    rows: dict[datetime, dict[str, float]] = {}
    for name, stat in (("Invocations", "Sum"), ("InvocationsPerInstance", "Sum"),
                       ("ModelLatency", "Average"), ("OverheadLatency", "Average"),
                       ("InvocationModelErrors", "Sum")):
        resp = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=name,
                                        Dimensions=dims, StartTime=start, EndTime=end,
                                        Period=int(PERIOD), Statistics=[stat])
        for d in resp["Datapoints"]:
            rows.setdefault(d["Timestamp"], {})[name] = d[stat]
    print("per-period metrics (CloudWatch GetMetricStatistics, period 2 s):")
    print(f"  {'period':10} {'Invocations':>11} {'PerInstance':>11} {'ModelLat µs':>11} "
          f"{'Overhead µs':>11} {'Errors':>6}")
    for ts in sorted(rows):
        r = rows[ts]
        print(f"  {ts:%H:%M:%S}   {r.get('Invocations', 0):11.0f} "
              f"{r.get('InvocationsPerInstance', 0):11.1f} {r.get('ModelLatency', 0):11.0f} "
              f"{r.get('OverheadLatency', 0):11.0f} {r.get('InvocationModelErrors', 0):6.0f}")


class CapacityWatch:
    """Prints the variant's instance counts whenever they change, from DescribeEndpoint."""

    def __init__(self, sm) -> None:
        self.sm = sm
        self.last: tuple[int, int] | None = None
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def counts(self) -> tuple[int, int]:
        v = self.sm.describe_endpoint(EndpointName="breast-cancer")["ProductionVariants"][0]
        return v["DesiredInstanceCount"], v["CurrentInstanceCount"]

    def _run(self) -> None:
        while not self.stop.is_set():
            now = self.counts()
            if now != self.last:
                print(f"  t={time.monotonic() - self.t0:5.1f} s  desired {now[0]}, "
                      f"serving {now[1]}")
                self.last = now
            self.stop.wait(0.5)


def autoscale(sm, rt, aas, body: str) -> None:
    resource = "endpoint/breast-cancer/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension=dimension, MinCapacity=1, MaxCapacity=4)
    aas.put_scaling_policy(
        PolicyName="invocations-per-instance", ServiceNamespace="sagemaker",
        ResourceId=resource, ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,  # per instance per "minute" (here: per 2-s period)
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 300, "ScaleInCooldown": 300})  # 10 s each at --period 2
    print("autoscaling: 1..4 instances, target 100 invocations per instance per period")
    watch = CapacityWatch(sm)
    try:
        print("burst: 8 threads until the variant has scaled out ...")
        burst = traffic(rt, body, 60, threads=8, until=lambda: watch.counts()[1] >= 4)
        print(f"  burst served {len(burst)} requests")
        print("trickle: 1 request every 0.2 s until the variant has scaled back in ...")
        trickle = traffic(rt, body, 120, threads=1, pause=0.2,
                          until=lambda: watch.counts() == (1, 1))
        print(f"  trickle served {len(trickle)} requests")
    finally:
        watch.stop.set()
        watch.thread.join()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the driver marks the last one done on its next tick
        activities = aas.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
        if all(a["StatusCode"] not in ("Pending", "InProgress") for a in activities):
            break
        time.sleep(0.5)
    print("scaling activities (DescribeScalingActivities, oldest first):")
    for a in reversed(activities):
        print(f"  {a['StartTime']:%H:%M:%S} {a['StatusCode']:10} {a['Description']}")
        print(f"      cause: {a['Cause']}")
        if a.get("StatusMessage"):
            print(f"      {a['StatusMessage']}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tideserve-demo-") as tmp:
        state = Path(tmp) / "state"
        model, X = train_breast_cancer("logistic")
        archive = pack_skops(model, Path(tmp) / "model")
        print(f"trained LogisticRegression on breast-cancer data; packed {archive.name}")
        port = free_port()
        proc = start_server(state, port)
        try:
            sm, rt, cw, aas = clients(f"http://127.0.0.1:{port}", state)
            deploy(sm, archive)
            answer = rt.invoke_endpoint(EndpointName="breast-cancer", Body=csv_rows(X[:3]),
                                        ContentType="text/csv")
            print(f"predictions for 3 rows: {json.loads(answer['Body'].read())}")
            start = datetime.now(UTC)
            seconds = 8.0
            print(f"sending traffic for {seconds:.0f} s ...")
            report_latency(traffic(rt, csv_rows(X[:1]), seconds, threads=8), seconds)
            time.sleep(PERIOD * 1.5)  # let the last period close
            report_metrics(cw, start)
            autoscale(sm, rt, aas, csv_rows(X[:1]))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            print("server stopped")


if __name__ == "__main__":
    main()
