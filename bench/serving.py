"""Serving throughput and latency: in-process vs the instance called directly vs through the
router, for a light model (LogisticRegression) and a heavy one (RandomForest, 200 trees) on
scikit-learn's breast-cancer data, at concurrency 1, 8 and 64. Prints figures and ratios taken
in this one run; asserts nothing.

    .venv/bin/python bench/serving.py [--duration 5] [--models lr,rf] [--concurrency 1,8,64]

Targets (issue 2): router overhead p50 <= 0.5 ms (router p50 - direct p50 at c=1); with one
instance, light-model throughput through the router >= 80 % of calling the instance directly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    csv_rows,
    free_port,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)

MODELS = {"lr": "logistic", "rf": "forest"}
# skops refuses tree internals unless told to trust them (they are plain arrays, but skops
# only trusts what it audits by default).
TRUST = {"TIDESERVE_SKOPS_TRUSTED": "sklearn.tree._tree.Tree"}


def in_process(model_dir: Path, body: bytes, seconds: float) -> dict[str, float]:
    from tideserve.serving.instance import load_runtime

    runtime = load_runtime(model_dir, "sklearn", TRUST, False)
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        runtime.invoke(body, "text/csv", "application/json", None)
        lat.append(time.perf_counter() - t0)
    return {"rps": len(lat) / seconds, "p50_ms": statistics.median(lat) * 1000}


def load(url: str, body_file: Path, headers: dict[str, str], c: int, seconds: float
         ) -> dict[str, float]:
    argv = [sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "--body-file",
            str(body_file), "-c", str(c), "-d", str(seconds), "-w", "1"]
    for k, v in headers.items():
        argv += ["--header", f"{k}: {v}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_instance(model_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", str(model_dir),
         "--runtime", "sklearn", "--port", str(port), "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **TRUST},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("instance did not start")


def presigned_headers(url: str, body: bytes, state: Path) -> dict[str, str]:
    """SigV4 headers for one request; a signature stays valid for 15 minutes, so the load
    generator can replay it without signing each request."""
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(state / "credentials")
    creds = boto3.Session(region_name="us-east-1").get_credentials()
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "text/csv", "Accept": "application/json"})
    SigV4Auth(creds, "sagemaker", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def deploy(server, name: str, archive: Path) -> None:
    sm = server.client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive),
                                      "Environment": TRUST})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--concurrency", default="1,8,64")
    a = ap.parse_args()
    levels = [int(c) for c in a.concurrency.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tideserve-bench-") as tmp:
        tmpdir = Path(tmp)
        server = start_server(tmpdir / "state", period=60.0)
        try:
            for key in a.models.split(","):
                model, X = train_breast_cancer(MODELS[key])
                archive = pack_skops(model, tmpdir / key)
                model_dir = tmpdir / f"{key}-dir"
                model_dir.mkdir()
                (model_dir / "model.skops").write_bytes((tmpdir / key / "model.skops").read_bytes())
                body = csv_rows(X[:1]).encode()
                body_file = tmpdir / f"{key}.csv"
                body_file.write_bytes(body)
                inproc = in_process(model_dir, body, min(a.duration, 3.0))
                print(f"[{key}] in-process runtime.invoke: {inproc['rps']:.0f} calls/s, "
                      f"p50 {inproc['p50_ms']:.3f} ms", flush=True)
                proc, direct_url = start_instance(model_dir)
                try:
                    direct = {c: load(direct_url + "/invocations", body_file,
                                      {"Content-Type": "text/csv"}, c, a.duration) for c in levels}
                finally:
                    proc.terminate()
                    proc.wait()
                deploy(server, f"bench-{key}", archive)
                url = f"{server.url}/endpoints/bench-{key}/invocations"
                headers = presigned_headers(url, body, server.state_dir)
                routed = {c: load(url, body_file, headers, c, a.duration) for c in levels}
                for c in levels:
                    d, r = direct[c], routed[c]
                    rows.append((key, c, inproc["rps"], d, r))
                    print(f"[{key}] c={c:<3} direct {d['rps']:7.0f} req/s p50 {d['p50_ms']:6.2f} "
                          f"p99 {d['p99_ms']:6.2f} | router {r['rps']:7.0f} req/s "
                          f"p50 {r['p50_ms']:6.2f} p99 {r['p99_ms']:6.2f} | "
                          f"router/direct {r['rps'] / d['rps']:.2f} | errors {r['errors']}",
                          flush=True)
        finally:
            stop_server(server)
    print("\nmodel  c    in-proc/s  direct/s  router/s  router÷direct  overhead p50 ms")
    for key, c, inproc_rps, d, r in rows:
        print(f"{key:5} {c:3}  {inproc_rps:9.0f} {d['rps']:9.0f} {r['rps']:9.0f} "
              f"{r['rps'] / d['rps']:13.2f} {r['p50_ms'] - d['p50_ms']:16.3f}")


if __name__ == "__main__":
    main()
