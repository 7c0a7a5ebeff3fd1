"""Signed InvokeEndpoint latency with and without a connection flood: 2,000 idle connections
plus 100 slowloris ones (tests/flood.py) against a real `tideserve up` on loopback, a
LogisticRegression on scikit-learn's breast-cancer data, invoked one call at a time with
boto3. Prints p50/p99/max for each phase and the flood's own counts; asserts nothing.

    .venv/bin/python bench/flood.py [--requests 500] [--idle 2000] [--slow 100]
        [--max-connections-per-client 1024]

Target (issue 9): p99 of signed invocations under the flood under 50 ms.
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

from tests.flood import Flood  # noqa: E402
from tests.support import (  # noqa: E402
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies_ms(rt, body: str, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        rt.invoke_endpoint(EndpointName="flood", Body=body, ContentType="text/csv")["Body"].read()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def report(name: str, samples: list[float]) -> None:
    print(f"{name:<28} n={len(samples):<5} p50={statistics.median(samples):6.2f} ms  "
          f"p99={percentile(samples, 0.99):6.2f} ms  max={max(samples):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--max-connections-per-client", type=int, default=1024,
                        help="the server's cap; above the flood's size, every idle connection "
                        "stays open until its header deadline instead of being evicted")
    args = parser.parse_args()
    model, X = train_breast_cancer("logistic")
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_skops(model, Path(tmp) / "model")
        srv = start_server(Path(tmp) / "state", extra=[
            "--max-connections-per-client", str(args.max_connections_per_client)])
        try:
            sm, rt = srv.client("sagemaker"), srv.client("sagemaker-runtime")
            sm.create_model(ModelName="flood", ExecutionRoleArn="arn:aws:iam::123456789012:role/b",
                            PrimaryContainer={"Image": "tideserve/sklearn",
                                              "ModelDataUrl": str(archive)})
            sm.create_endpoint_config(EndpointConfigName="flood", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": "flood",
                "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
            sm.create_endpoint(EndpointName="flood", EndpointConfigName="flood")
            sm.get_waiter("endpoint_in_service").wait(
                EndpointName="flood", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})
            body = csv_rows(X[:1])
            latencies_ms(rt, body, 50)  # warm the pools
            report("no flood", latencies_ms(rt, body, args.requests))
            host, port = srv.url.removeprefix("http://").split(":")
            with Flood(host, int(port), idle=args.idle, slow=args.slow,
                       max_seconds=600) as flood:
                opened = flood.stats.opened
                report(f"flood {args.idle} idle + {args.slow} slow",
                       latencies_ms(rt, body, args.requests))
                stats = flood.stats
            print(f"flood: {opened} connections opened at start, {stats.opened} in all, "
                  f"{stats.closed_by_server} closed by the server, {stats.refused} refused")
        finally:
            stop_server(srv)


if __name__ == "__main__":
    main()
