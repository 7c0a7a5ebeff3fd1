"""Large async inputs: InvokeEndpointAsync on CSV objects of growing size, up to near 1 GB
(AWS's async limit), through a real `tideserve up` and a LogisticRegression trained on
scikit-learn's breast-cancer data. For each size prints the throughput (input MB / seconds from
the call to the output object), and the peak resident memory of the server and of the instance
while that request ran, sampled every 20 ms. Every output row is checked; asserts nothing on
time. Not part of the test suite (a 1 GB run needs ~2 GB of disk and several GB of memory).

    .venv/bin/python bench/async_large.py [--sizes-mb 10,100,1000] [--via-s3]

The input is written where the embedded store keeps objects (<state>/s3/<bucket>/<key>), the
same file an S3 PutObject makes; --via-s3 uploads it with boto3 instead (multipart), which
also exercises the store's upload path but does not change what is measured: the server's
memory stays bounded by its chunk sizes (see asyncinf/invoke.py), the instance's grows with
the input (it holds the body and parses it whole).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import pack_skops, start_server, stop_server, train_breast_cancer  # noqa: E402

POOL_ROWS = 5000


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def instance_pids(server_pid: int) -> list[int]:
    """The server's child processes (its instances)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server_pid:
                found.append(int(entry.name))
    return found


class PeakSampler:
    """Peak VmRSS of some processes, sampled on a thread until stopped."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peaks = {pid: rss_mb(pid) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], rss_mb(pid))

    def stop(self) -> dict[int, float]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def pool_of_rows(model, X) -> tuple[list[bytes], np.ndarray]:
    rng = np.random.default_rng(7)
    rows = X[rng.integers(0, len(X), POOL_ROWS)] * rng.normal(1.0, 0.05, (POOL_ROWS, X.shape[1]))
    lines = [",".join(f"{v:.6g}" for v in row).encode() for row in rows]
    parsed = np.array([[float(c) for c in line.split(b",")] for line in lines])
    return lines, model.predict(parsed)


def write_csv(path: Path, lines: list[bytes], megabytes: float, seed: int) -> np.ndarray:
    """About `megabytes` MB of rows drawn from the pool, written in 50 000-row batches; returns
    which pool row each line is."""
    per_row = sum(len(line) + 1 for line in lines) / len(lines)
    picks = np.random.default_rng(seed).integers(0, len(lines), int(megabytes * 1e6 / per_row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for start in range(0, len(picks), 50_000):
            out.write(b"\n".join(lines[i] for i in picks[start:start + 50_000]) + b"\n")
    return picks


def deploy(server, archive: Path, instance_type: str) -> None:
    sm = server.client("sagemaker")
    sm.create_model(ModelName="big", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive)})
    sm.create_endpoint_config(
        EndpointConfigName="big",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "big",
                             "InstanceType": instance_type, "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/big/out"},
                              "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}})
    sm.create_endpoint(EndpointName="big", EndpointConfigName="big")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="big", WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})


def run_one(server, state: Path, lines, predicted, megabytes: float, seed: int,
            via_s3: bool) -> dict[str, float]:
    key = f"rows-{megabytes:g}mb.csv"
    path = state / "s3" / "inputs" / key
    if via_s3:
        path = state.parent / key
    picks = write_csv(path, lines, megabytes, seed)
    size = path.stat().st_size
    if via_s3:
        s3 = server.client("s3")
        try:
            s3.create_bucket(Bucket="inputs")
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        s3.upload_file(str(path), "inputs", key)
        path.unlink()
    pids = [server.proc.pid, *instance_pids(server.proc.pid)]
    sampler = PeakSampler(pids)
    started = time.perf_counter()
    answer = server.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName="big", InputLocation=f"s3://inputs/{key}", ContentType="text/csv",
        InvocationTimeoutSeconds=3600)
    out = state / "s3" / answer["OutputLocation"].removeprefix("s3://")
    failed = state / "s3" / answer["FailureLocation"].removeprefix("s3://")
    while not out.exists() and not failed.exists():
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    peaks = sampler.stop()
    if failed.exists():
        raise SystemExit(f"{key} failed: {failed.read_text()}")
    got = np.asarray(json.loads(out.read_bytes()))
    correct = got.shape == picks.shape and bool(np.array_equal(got, predicted[picks]))
    (state / "s3" / "inputs" / key).unlink(missing_ok=True)
    out.unlink()
    return {"input_mb": size / 1e6, "rows": len(picks), "seconds": seconds,
            "mb_per_s": size / 1e6 / seconds, "server_peak_mb": peaks[server.proc.pid],
            "instance_peak_mb": max((v for p, v in peaks.items() if p != server.proc.pid),
                                    default=0.0), "rows_correct": correct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="10,100,1000")
    parser.add_argument("--instance-type", default="ml.m5.2xlarge")  # 32 GiB for a 1 GB input
    parser.add_argument("--via-s3", action="store_true")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes_mb.split(",")]
    model, X = train_breast_cancer("logistic")
    lines, predicted = pool_of_rows(model, X)
    with tempfile.TemporaryDirectory(prefix="tideserve-async-large-") as tmp:
        root = Path(tmp)
        archive = pack_skops(model, root / "model")
        server = start_server(root / "state", period=5.0)
        try:
            deploy(server, archive, args.instance_type)
            idle_mb = rss_mb(server.proc.pid)
            print(f"server RSS before the first request: {idle_mb:.0f} MB")
            print(f"{'input MB':>9} {'rows':>9} {'seconds':>8} {'MB/s':>6} "
                  f"{'server peak MB':>15} {'instance peak MB':>17} rows correct")
            for i, megabytes in enumerate(sizes):
                r = run_one(server, root / "state", lines, predicted, megabytes, i, args.via_s3)
                print(f"{r['input_mb']:9.1f} {r['rows']:9d} {r['seconds']:8.1f} "
                      f"{r['mb_per_s']:6.1f} {r['server_peak_mb']:15.0f} "
                      f"{r['instance_peak_mb']:17.0f} {r['rows_correct']}", flush=True)
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
