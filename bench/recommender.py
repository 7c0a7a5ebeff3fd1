"""How long a Default Inference Recommender job takes, and how close its MaxInvocations is
to what bench/serving.py measures for the same model and shape. Prints figures; asserts
nothing.

    .venv/bin/python bench/recommender.py [--period 2] [--model rf|lr] [--seconds 5]

1. A real `tideserve up` (--period compresses the Default job's 180 s ramp: 6 s a type at 2).
2. The model of bench/serving.py (RandomForest, 200 trees, or LogisticRegression, on the
   breast-cancer data), a tar.gz of 16 one-row CSV payloads, and a Default job: its wall
   time from CreateInferenceRecommendationsJob to COMPLETED, and each type's figures.
3. For each recommended type's shape (its vCPUs as threads, capped at this machine's cores;
   all the cores it may use, unpinned, as the recommender's instance of a type that fills
   the machine), bench/serving.py's direct measurement: a tideserve instance started the way
   serving.py starts one, loaded by bench/loadgen.py at concurrency 1, 2, 4, 8 for --seconds
   each; its best throughput x 60 is the reference. ratio = MaxInvocations / reference.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support import (  # noqa: E402
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,  # noqa: E402
)

import serving  # noqa: E402  (bench/serving.py: the reference measurement)

ROLE = "arn:aws:iam::123456789012:role/bench"


def payload_tar(rows: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, row in enumerate(rows):
            info = tarfile.TarInfo(f"{i}.csv")
            info.size = len(row.encode())
            tar.addfile(info, io.BytesIO(row.encode()))
    return buf.getvalue()


def default_job(server, X, archive: Path) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    sm, s3 = server.client("sagemaker"), server.client("s3")
    sm.create_model(ModelName="bench-ir", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "tideserve/sklearn", "ModelDataUrl": str(archive),
        "Environment": serving.TRUST})
    s3.create_bucket(Bucket="bench-ir")
    s3.put_object(Bucket="bench-ir", Key="payloads.tar.gz",
                  Body=payload_tar([csv_rows(X[i:i + 1]) for i in range(16)]))
    began = time.monotonic()
    sm.create_inference_recommendations_job(
        JobName="bench-default", JobType="Default", RoleArn=ROLE, InputConfig={
            "ModelName": "bench-ir", "ContainerConfig": {
                "Domain": "MACHINE_LEARNING", "Framework": "SAGEMAKER-SCIKIT-LEARN",
                "PayloadConfig": {"SamplePayloadUrl": "s3://bench-ir/payloads.tar.gz",
                                  "SupportedContentTypes": ["text/csv"]}}})
    while True:
        job = sm.describe_inference_recommendations_job(JobName="bench-default")
        if job["Status"] in ("COMPLETED", "FAILED", "STOPPED"):
            return time.monotonic() - began, job
        time.sleep(0.25)


def reference_per_minute(model_dir: Path, X, seconds: float) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """bench/serving.py's direct instance, unpinned (the machine's cores), best of c=1..8."""
    body_file = Path(tempfile.mkdtemp()) / "row.csv"
    body_file.write_text(csv_rows(X[:1]))
    proc, url = serving.start_instance(model_dir, {}, None)
    try:
        serving.wait_answering(url + "/invocations", body_file.read_bytes(), "text/csv", proc)
        best, best_c = 0.0, 1
        for c in (1, 2, 4, 8):
            r = serving.load(url + "/invocations", body_file, {"Content-Type": "text/csv"}, c,
                             seconds, None)
            if r["rps"] > best:
                best, best_c = r["rps"], c
        return best * 60.0, best_c
    finally:
        serving.stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--period", type=float, default=2.0)
    ap.add_argument("--model", choices=("rf", "lr"), default="rf")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    model, X = train_breast_cancer(serving.MODELS[args.model])
    tmp = Path(tempfile.mkdtemp(prefix="bench-ir-"))
    archive = pack_skops(model, tmp / "model")
    model_dir = tmp / "model"
    server = start_server(tmp / "state", period=args.period)
    try:
        wall, job = default_job(server, X, archive)
    finally:
        stop_server(server)
    print(f"Default job ({args.model}, --period {args.period}, {os.cpu_count()} cores): "
          f"{job['Status']} in {wall:.1f} s wall {job.get('FailureReason', '')}")
    reference, best_c = reference_per_minute(model_dir, X, args.seconds)
    print(f"bench/serving.py direct instance ({serving.FLEET_THREADS} threads, unpinned): "
          f"{reference:,.0f} inv/min (best at c={best_c})")
    print(f"{'InstanceType':<14}{'MaxInvocations':>15}{'p95 ms':>8}{'CPU%':>7}{'$/inference':>13}"
          f"{'ratio':>7}")
    for rec in job.get("InferenceRecommendations", []):
        m, e = rec["Metrics"], rec["EndpointConfiguration"]
        print(f"{e['InstanceType']:<14}{m['MaxInvocations']:>15,}{m['ModelLatency']:>8}"
              f"{m['CpuUtilization']:>7.0f}{m['CostPerInference']:>13.3e}"
              f"{m['MaxInvocations'] / reference:>7.2f}")


if __name__ == "__main__":
    main()
