"""Batch transform throughput and memory: one CSV object through a transform job on a real
`tideserve up` (1 instance, MultiRecord, 6 MB mini-batches), against the same model called
in-process on the same mini-batches (same splitter, same CSV codec), and the peak resident
memory of the server and of the instance while the job ran (sampled every 50 ms). Every output
row is checked against the model's own predictions. Asserts nothing on time.

    .venv/bin/python bench/transform.py [--mb 200] [--gb 1.2] [--instances 1] [--concurrent N]
    .venv/bin/python bench/transform.py --files 20 --instances 2 --gb 1.1 [--small-mb 10]

--files N writes N input objects: N-1 small ones (--small-mb each) and one of --mb/--gb (the
issue's done-when: 20 files, one over 1 GB, on 2 instances); every `.out` is checked, row by
row, streaming (64 MB of output lines at a time: bounded memory whatever the size).

The in-process baseline runs one mini-batch at a time on one thread; the job's instance
predicts MaxConcurrentTransforms mini-batches at once (by default its thread count, from
GET /execution-parameters), while the server reads and splits the next ones: with
--concurrent 1 the ratio is the pipeline's own overhead.

--gb sizes the input in GB instead (a >1 GB run needs ~3x its size in free disk: the input,
the output's temp file, the output). The input is written where the embedded store keeps
objects (<state>/s3/<bucket>/<key>), the same file an S3 PutObject makes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.async_large import instance_pids, pool_of_rows, rss_mb, write_csv  # noqa: E402
from tests.support import pack_skops, start_server, stop_server, train_breast_cancer  # noqa: E402

from tideserve.serving import codecs  # noqa: E402
from tideserve.transform.cli import fetch_progress  # noqa: E402
from tideserve.transform.records import batches  # noqa: E402

PAYLOAD_MB = 6


class Peaks:
    """Peak VmRSS (MB) of the server and of its children, which come and go: rescanned."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = rss_mb(server_pid)
        self.instance = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        children: list[int] = []
        tick = 0
        while not self._stop.wait(0.05):
            if tick % 10 == 0:
                children = instance_pids(self.server_pid)
            tick += 1
            self.server = max(self.server, rss_mb(self.server_pid))
            for pid in children:
                self.instance = max(self.instance, rss_mb(pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def in_process(model, paths: list[Path], out_path: Path) -> tuple[float, int]:
    """The same mini-batches through the model in this process: seconds, rows."""
    rows = 0
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as source, open(out_path, "wb") as out:
            for batch in batches(source, split_line=True, multi=True,
                                 max_payload_mb=PAYLOAD_MB):
                data = codecs.decode(batch.body, "text/csv")
                body, _ = codecs.encode(model.predict(data), "text/csv")
                out.write(body if body.endswith(b"\n") else body + b"\n")
                rows += batch.count
    return time.perf_counter() - started, rows


def run_job(server, instances: int, concurrent: int | None) -> dict[str, float]:
    sm = server.client("sagemaker")
    sm.create_model(ModelName="bench", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "tideserve/sklearn",
                                      "ModelDataUrl": str(server.archive)})
    peaks = Peaks(server.proc.pid)
    created = time.perf_counter()
    extra = {"MaxConcurrentTransforms": concurrent} if concurrent else {}
    sm.create_transform_job(
        TransformJobName="bench", ModelName="bench", MaxPayloadInMB=PAYLOAD_MB,
        BatchStrategy="MultiRecord", **extra,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": "s3://inputs/bench/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": "s3://outputs/bench", "Accept": "text/csv",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": instances})
    first_byte = None
    while True:
        progress = fetch_progress(sm, "bench")
        if first_byte is None and progress["BytesDone"] > 0:  # reading has begun
            first_byte = time.perf_counter()
        if progress["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.2)
    ended = time.perf_counter()
    peaks.stop()
    desc = sm.describe_transform_job(TransformJobName="bench")
    if desc["TransformJobStatus"] != "Completed":
        raise SystemExit(f"job {desc['TransformJobStatus']}: {desc.get('FailureReason')}")
    return {"job_s": ended - created, "transform_s": ended - (first_byte or created),
            "rows": progress["RecordsDone"], "server_mb": peaks.server,
            "instance_mb": peaks.instance}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=200.0, help="input size in MB")
    parser.add_argument("--gb", type=float, help="input size in GB (overrides --mb)")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--files", type=int, default=1,
                        help="input objects: N-1 of --small-mb and one of --mb/--gb")
    parser.add_argument("--small-mb", type=float, default=10.0,
                        help="size of each small input object in MB (with --files)")
    parser.add_argument("--concurrent", type=int, default=None,
                        help="MaxConcurrentTransforms (default: the instance's "
                        "execution-parameters, its thread count)")
    args = parser.parse_args()
    megabytes = args.gb * 1000 if args.gb else args.mb
    model, X = train_breast_cancer("logistic")
    lines, predicted = pool_of_rows(model, X)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = root / "state"
        archive = pack_skops(model, root / "model")
        folder = state / "s3" / "inputs" / "bench"
        inputs = []  # (path, which pool row each line is)
        for i in range(args.files):
            # The big one last: part-00 .. part-18 small, part-19 big (sorted keys, dealt
            # round-robin, so it lands on the second instance of two).
            name = "rows.csv" if args.files == 1 else f"part-{i:02d}.csv"
            size_mb = megabytes if i == args.files - 1 else args.small_mb
            inputs.append((folder / name, write_csv(folder / name, lines, size_mb, seed=3 + i)))
        (state / "s3" / "outputs").mkdir(parents=True)
        size = sum(p.stat().st_size for p, _ in inputs)
        total_rows = sum(len(picks) for _, picks in inputs)
        print(f"input: {len(inputs)} objects, {size / 1e6:.0f} MB (largest "
              f"{inputs[-1][0].stat().st_size / 1e6:.0f} MB), {total_rows:,} rows; "
              f"mini-batches of {PAYLOAD_MB} MB; {args.instances} instance(s)", flush=True)

        local_s, local_rows = in_process(model, [p for p, _ in inputs], root / "local.out")
        (root / "local.out").unlink()
        print(f"in-process:  {local_rows / local_s:12,.0f} rows/s  "
              f"{size / local_s / 1e6:8.1f} MB/s  ({local_s:.1f} s)", flush=True)

        server = start_server(state, period=5.0)
        server.archive = archive  # type: ignore[attr-defined]
        try:
            got = run_job(server, args.instances, args.concurrent)
        finally:
            stop_server(server)
        checked = 0
        for path, picks in inputs:
            checked += check(state / "s3" / "outputs" / "bench" / (path.name + ".out"),
                             predicted, picks)
        print(f"checked: {len(inputs)} .out files, {checked:,} output rows, each in input "
              "order")
        rate = got["rows"] / got["transform_s"]
        print(f"transform:   {rate:12,.0f} rows/s  {size / got['transform_s'] / 1e6:8.1f} MB/s  "
              f"({got['transform_s']:.1f} s transforming, {got['job_s']:.1f} s with instance "
              f"start)")
        print(f"ratio transform / in-process: {rate / (local_rows / local_s):.2f}")
        print(f"peak RSS: server {got['server_mb']:.0f} MB, instance {got['instance_mb']:.0f} MB")


def check(out: Path, predicted: np.ndarray, picks: np.ndarray) -> int:
    """Every output row, in order, is the model's prediction for its input row; read 64 MB of
    lines at a time and compared with the predictions of just those rows (bounded memory)."""
    done = 0
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.readlines(64 << 20), []):
            values = np.array([float(v) for v in chunk])
            if not np.array_equal(values, predicted[picks[done:done + len(values)]]):
                raise SystemExit(f"{out.name}: output rows {done}..{done + len(values)} differ")
            done += len(values)
    if done != len(picks):
        raise SystemExit(f"{out.name}: output has {done} rows, input {len(picks)}")
    return done


if __name__ == "__main__":
    main()
