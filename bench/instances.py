"""Instances on their own: memory and start-up per runtime, and a LogisticRegression served
with and without adaptive batching at concurrency 1, 8 and 64. Prints figures and ratios taken
in this one run; asserts nothing.

    .venv/bin/python bench/instances.py [--duration 5] [--concurrency 1,8,64] [--pin]
        [--skip-rss] [--repeats 3] [--skip-start] [--skip-scale-out] [--skip-batching]
        [--batch-size 16] [--batch-delay-ms 2]

Start-up through the local fleet (fleet/local.py, fleet/readiness.py, what the controller
runs on a scale-out): provider.start -> /ping 200 for an sklearn model, cold (no spare) and
handed to a warm spare (serving/spare.py), a few times each.

Scale-out through a real server (`tideserve up`): an endpoint of one sklearn instance is
raised to 2, then 3 instances (UpdateEndpointWeightsAndCapacities) and the server's
tideserve/InstanceStartupTime metric (request to start -> /ping 200) is read back with
GetMetricStatistics, one value per start in time order (the first instance is always cold).
Run with PYTHONPATH pointing at another checkout's src for its figures.

RSS is /proc/<pid>/status VmRSS after the instance has answered one request; start-up is
process start to the first 200 from /ping (what the fleet waits for). With --pin the instance
runs on CPU 0 and the load generator on CPU 1 (taskset), the one-core setting of issue 11.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serving import builders  # noqa: E402
from tests.support import csv_rows, free_port, train_breast_cancer  # noqa: E402

TRUST = {"TIDESERVE_SKOPS_TRUSTED": "sklearn.tree._tree.Tree"}
SPARE_SETTLE_S = 15.0  # time a fresh spare gets to finish its imports before the next start


def start(model_dir: Path, runtime: str, env: dict[str, str], extra: list[str],
          cpu: str | None) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    argv = [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", str(model_dir),
            "--runtime", runtime, "--port", str(port), "--threads", "1", *extra]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu, *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    while proc.poll() is None:
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - started
        except httpx.HTTPError:
            time.sleep(0.005)
    raise RuntimeError(f"{runtime} instance exited with {proc.returncode}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used: per request served, a figure that holds on a
    busy machine where requests/s depends on what else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def runtimes(root: Path) -> list[tuple[str, str, Path, list[str], bytes]]:
    """(label, runtime, model dir, instance flags, one request body) per runtime."""
    _, iris_x = builders.iris()
    cancer_x = builders.breast_cancer_xgboost()[1]
    out = [
        ("sklearn skops", "sklearn", builders.sklearn_dir(root / "skops"), [], iris_x[:1]),
        ("sklearn joblib", "sklearn", builders.sklearn_dir(root / "joblib", fmt="joblib"),
         ["--trust-pickle"], iris_x[:1]),
        ("xgboost json", "xgboost", builders.xgboost_dir(root / "xgb"), [], cancer_x[:1]),
        ("onnx", "onnx", builders.onnx_dir(root / "onnx"), [], iris_x[:1]),
        ("inference.py", "python", builders.model_dir(root / "py", {"code/inference.py": """
            import numpy as np
            def model_fn(model_dir):
                return lambda rows: np.asarray(rows).sum(axis=-1)
        """}), [], iris_x[:1]),
    ]
    try:
        import torch

        pt = builders.model_dir(root / "pt")
        torch.jit.script(torch.nn.Linear(4, 3)).save(str(pt / "model.pt"))
        out.append(("pytorch torchscript", "pytorch", pt, [], iris_x[:1]))
    except ImportError:
        pass
    return [(label, rt, d, flags, builders.csv_rows(x)) for label, rt, d, flags, x in out]


def memory_and_startup(root: Path, cpu: str | None, repeats: int = 3) -> None:
    print(f"runtime               RSS MB   start->ping s (median of {repeats})")
    for label, runtime, model_dir, flags, body in runtimes(root):
        rss, starts = 0.0, []
        for _ in range(repeats):
            proc, url, seconds = start(model_dir, runtime, {}, flags, cpu)
            try:
                r = httpx.post(url + "/invocations", content=body,
                               headers={"Content-Type": "text/csv"}, timeout=30)
                assert r.status_code == 200, r.text
                rss = rss_mb(proc.pid)
                starts.append(seconds)
            finally:
                stop(proc)
        print(f"{label:20} {rss:7.1f}   {sorted(starts)[len(starts) // 2]:6.2f}", flush=True)


async def fleet_start(root: Path, repeats: int = 3) -> None:
    import aiohttp

    from tideserve.cost.catalog import Catalog
    from tideserve.fleet.base import InstanceSpec
    from tideserve.fleet.local import LocalProcessProvider
    from tideserve.fleet.readiness import wait_until_ready

    model_dir = builders.sklearn_dir(root / "fleet-skops")
    kind = Catalog.default().get("ml.m5.large")
    for warm in (False, True):
        provider = LocalProcessProvider(root / f"logs-{warm}", warm_spares=warm)
        seconds = []
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
                for i in range(repeats + 1):
                    spec = InstanceSpec(f"i-{warm}-{i}", "bench", "AllTraffic", kind, model_dir,
                                        "sklearn")
                    t0 = time.perf_counter()
                    handle = await provider.start(spec)
                    await wait_until_ready(provider, handle, http, 120)
                    if i:  # the first start of a kind is always cold: it makes the spare
                        seconds.append(time.perf_counter() - t0)
                    await provider.stop(handle, 5)
                    if warm:  # in a fleet the spare has had the time since the last start
                        await asyncio.sleep(SPARE_SETTLE_S)
        finally:
            provider.stop_all_now()
        label = "warm spare" if warm else "cold      "
        print(f"fleet start -> /ping, sklearn skops, {label}: "
              f"{' '.join(f'{s:.2f}' for s in seconds)} s (median "
              f"{sorted(seconds)[len(seconds) // 2]:.2f})", flush=True)


def scale_out(root: Path) -> None:
    import datetime

    from tests.support import pack_skops, start_server, stop_server

    model, _ = builders.iris()
    archive = pack_skops(model, root / "scale-out")
    server = start_server(root / "state", period=1.0)
    try:
        sm, cw = server.client("sagemaker"), server.client("cloudwatch")
        sm.create_model(ModelName="so", ExecutionRoleArn="arn:aws:iam::123456789012:role/b",
                        PrimaryContainer={"Image": "tideserve/sklearn",
                                          "ModelDataUrl": str(archive)})
        sm.create_endpoint_config(EndpointConfigName="so", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "so", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="so", EndpointConfigName="so")
        waiter = sm.get_waiter("endpoint_in_service")
        waiter.wait(EndpointName="so", WaiterConfig={"Delay": 0.5, "MaxAttempts": 600})
        first_ready = time.monotonic()
        for count in (2, 3):
            time.sleep(max(0.0, first_ready + SPARE_SETTLE_S - time.monotonic()))
            sm.update_endpoint_weights_and_capacities(EndpointName="so",
                DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic",
                                              "DesiredInstanceCount": count}])
            waiter.wait(EndpointName="so", WaiterConfig={"Delay": 0.5, "MaxAttempts": 600})
            first_ready = time.monotonic()
        time.sleep(3)  # one metric period and its flush
        now = datetime.datetime.now(datetime.UTC)
        got = cw.get_metric_statistics(
            Namespace="tideserve", MetricName="InstanceStartupTime",
            Dimensions=[{"Name": "EndpointName", "Value": "so"},
                        {"Name": "VariantName", "Value": "AllTraffic"}],
            StartTime=now - datetime.timedelta(minutes=20), EndTime=now, Period=1,
            Statistics=["Maximum"])["Datapoints"]
        seconds = [p["Maximum"] for p in sorted(got, key=lambda p: p["Timestamp"])]
        print("InstanceStartupTime, sklearn skops, first instance then scale-outs 1->2->3: "
              + ", ".join(f"{v:.2f} s" for v in seconds), flush=True)
        desc = sm.describe_endpoint(EndpointName="so")["ProductionVariants"][0]
        assert desc["CurrentInstanceCount"] == 3, desc
    finally:
        stop_server(server)


def load(url: str, body_file: Path, c: int, seconds: float, cpu: str | None
         ) -> dict[str, float]:
    argv = [sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "--body-file",
            str(body_file), "--header", "Content-Type: text/csv", "-c", str(c),
            "-d", str(seconds), "-w", "1"]
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def batching(root: Path, a: argparse.Namespace, cpus: tuple[str | None, str | None]) -> None:
    model, X = train_breast_cancer("logistic")
    import skops.io

    model_dir = root / "lr"
    model_dir.mkdir()
    skops.io.dump(model, model_dir / "model.skops")
    body_file = root / "lr.csv"
    body_file.write_text(csv_rows(X[:1]))
    levels = [int(c) for c in a.concurrency.split(",")]
    on = {"TIDESERVE_MAX_BATCH_SIZE": str(a.batch_size),
          "TIDESERVE_MAX_BATCH_DELAY_MS": str(a.batch_delay_ms)}
    results: dict[str, dict[int, dict[str, float]]] = {}
    for mode, env in (("unbatched", {}), ("batched", on)):
        proc, url, _ = start(model_dir, "sklearn", {**TRUST, **env}, [], cpus[0])
        results[mode] = {}
        try:
            for c in levels:
                cpu0 = cpu_seconds(proc.pid)
                r = results[mode][c] = load(url + "/invocations", body_file, c, a.duration,
                                            cpus[1])
                # Warm-up requests are not counted in r, so this slightly overstates the cost.
                r["cpu_us"] = (cpu_seconds(proc.pid) - cpu0) / max(1, r["requests"]) * 1e6
                print(f"[lr {mode:9}] c={c:<3} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.2f} ms"
                      f"  p99 {r['p99_ms']:6.2f} ms  instance CPU {r['cpu_us']:5.0f} us/req  "
                      f"errors {r['errors']}", flush=True)
        finally:
            stop(proc)
    print("\nLR, one instance, 1 thread: batched / unbatched")
    print("  c   unbatched/s  batched/s  ratio   p50 off/on ms    p99 off/on ms"
          "    CPU us/req off/on")
    for c in levels:
        off, onr = results["unbatched"][c], results["batched"][c]
        print(f"{c:3}   {off['rps']:9.0f} {onr['rps']:10.0f} {onr['rps'] / off['rps']:6.2f}   "
              f"{off['p50_ms']:6.2f}/{onr['p50_ms']:<6.2f}   {off['p99_ms']:7.2f}/"
              f"{onr['p99_ms']:<7.2f}  {off['cpu_us']:6.0f}/{onr['cpu_us']:<6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batch-delay-ms", type=float, default=2.0)
    ap.add_argument("--pin", action="store_true", help="instance on CPU 0, load on CPU 1")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="starts per runtime for RSS")
    ap.add_argument("--skip-start", action="store_true")
    ap.add_argument("--skip-scale-out", action="store_true")
    ap.add_argument("--skip-batching", action="store_true")
    a = ap.parse_args()
    cpus = ("0", "1") if a.pin else (None, None)
    with tempfile.TemporaryDirectory(prefix="tideserve-bench-") as tmp:
        root = Path(tmp)
        if not a.skip_rss:
            memory_and_startup(root, cpus[0], a.repeats)
        if not a.skip_start:
            asyncio.run(fleet_start(root))
        if not a.skip_scale_out:
            scale_out(root)
        if not a.skip_batching:
            batching(root, a, cpus)


if __name__ == "__main__":
    main()
