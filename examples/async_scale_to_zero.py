"""An asynchronous endpoint that scales to zero and back, driven through boto3 only.

1. trains a model, packs it with an inference.py that takes 0.3 s per request;
2. starts `tideserve up` with a 1-s metric period (an AWS minute is a second here);
3. deploys an async endpoint (1 instance, 1 request in flight per instance) and puts on it
   the scale-to-zero pattern AWS documents: MinCapacity 0, target tracking on
   ApproximateBacklogSizePerInstance (target 5), and a step policy behind an alarm on
   HasBacklogWithoutCapacity;
4. waits for the idle endpoint to scale in to zero, uploads 40 inputs, invokes them with
   invoke_endpoint_async, and prints the instance count as it goes 0 -> N -> 0;
5. counts the outputs and prints the scaling activities.

Inputs go through the server's S3 API when it answers; otherwise they are written as files
under <state-dir>/s3/<bucket>/<key>, the object store's layout, and the script says so.

    .venv/bin/python examples/async_scale_to_zero.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.test_async_endpoints import (  # noqa: E402
    SLOW_HANDLER,
    deploy_async,
    scale_to_zero_policies,
)
from tests.support import (  # noqa: E402
    RunningServer,
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)

ENDPOINT = "tide-async"
REQUESTS = 40


def upload(srv: RunningServer, keys_and_bodies: list[tuple[str, str]]) -> list[str]:
    """s3://inputs/<key> for each body, through the server's S3 API (PutObject)."""
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="inputs")
    for key, body in keys_and_bodies:
        s3.put_object(Bucket="inputs", Key=key, Body=body.encode())
    print(f"uploaded {len(keys_and_bodies)} inputs with S3 PutObject")
    return [f"s3://inputs/{key}" for key, _ in keys_and_bodies]


def instance_counts(sm) -> tuple[int, int]:
    v = sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0]
    return v["DesiredInstanceCount"], v["CurrentInstanceCount"]


def watch(sm, until, timeout: float, label: str) -> None:
    start, last = time.monotonic(), None
    while time.monotonic() - start < timeout:
        counts = instance_counts(sm)
        if counts != last:
            print(f"  t+{time.monotonic() - start:5.1f}s  desired {counts[0]}, "
                  f"current {counts[1]}")
            last = counts
        if until(counts):
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {label}")


def main() -> None:
    model, X = train_breast_cancer("logistic")
    with tempfile.TemporaryDirectory(prefix="tideserve-async-") as tmp:
        archive = pack_skops(model, Path(tmp) / "model", {"code/inference.py": SLOW_HANDLER})
        srv = start_server(Path(tmp) / "state", period=1.0)
        try:
            run(srv, archive, X)
        finally:
            stop_server(srv)


def run(srv: RunningServer, archive: Path, X) -> None:
    sm, rt, aas, cw = (srv.client(s) for s in (
        "sagemaker", "sagemaker-runtime", "application-autoscaling", "cloudwatch"))
    deploy_async(sm, ENDPOINT, str(archive), max_concurrent=1, sleep=0.3)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=ENDPOINT,
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    resource = scale_to_zero_policies(aas, cw, ENDPOINT, max_capacity=3)
    print("endpoint in service; idle queue, so target tracking scales it in to zero:")
    watch(sm, lambda c: c == (0, 0), 60, "scale-in to zero")

    inputs = upload(srv, [(f"rows/{i}.csv", csv_rows(X[i:i + 1])) for i in range(REQUESTS)])
    outputs = [rt.invoke_endpoint_async(EndpointName=ENDPOINT, InputLocation=uri,
                                        ContentType="text/csv", Accept="application/json")
               ["OutputLocation"] for uri in inputs]
    print(f"{REQUESTS} requests accepted at zero instances; scaling out and back:")
    peak = [0]

    def back_to_zero(counts: tuple[int, int]) -> bool:
        peak[0] = max(peak[0], counts[1])
        return peak[0] > 0 and counts == (0, 0)

    watch(sm, back_to_zero, 120, "scale-out and back to zero")
    written = sum((srv.state_dir / "s3" / u.removeprefix("s3://")).exists() for u in outputs)
    print(f"outputs written: {written} of {REQUESTS}; peak instances {peak[0]}")
    for a in reversed(aas.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]):
        print(f"  {a['StatusCode']:>10}  {a['Description']}  <- {a['Cause'][:90]}")


if __name__ == "__main__":
    main()
