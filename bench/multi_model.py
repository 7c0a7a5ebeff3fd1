"""Multi-model endpoints: 200 small per-client models behind one variant, Zipf traffic, caches
that hold about a quarter of the models per instance, on 1 and on 3 instances. Prints the
cache hit rate, p50/p99 latency of hits and of misses, loads and evictions, and RSS per
instance; asserts nothing.

    .venv/bin/python bench/multi_model.py [--models 200] [--requests 4000] [--warmup 1000]
        [--zipf 1.0] [--concurrency 4] [--instances 1,3] [--threads 1]

What runs: the router (serving/router.py: affinity routing by TargetModel, the MME metrics)
in this process, and real multi-model instance processes (serving/multi_model.py) reading
skops archives from an embedded store's directory, as `tideserve up` lays them out. The
front's SigV4 and HTTP parsing are left out: they cost the same for every request. Latency
is the router's invoke, request to answer. A request is a hit when its model was loaded on
the instance it reached (what ModelCacheHit counts). Figures are taken after `--warmup`
requests, so they show the steady state, not the first load of every model.

With Zipf exponent 1.0 over 200 models the 50 most popular get 77 % of the requests
(H(50)/H(200) = 4.50/5.88) and the 150 most popular 95 %: one instance's cache of 50 models
cannot hit more than about 77 %; three instances holding disjoint sets (affinity) can reach
about 95 %, three copies of the same 50 (no affinity) would stay at 77 %.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support import csv_rows, free_port  # noqa: E402

from tideserve.metrics.aggregator import MetricAggregator  # noqa: E402
from tideserve.serving.router import Invocation, Router  # noqa: E402
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable, VariantRoute  # noqa: E402

BUCKET, PREFIX = "bench", "clients/"


def train_and_upload(store: Path, n: int) -> tuple[int, np.ndarray]:
    """n LogisticRegressions on slices of iris, each a skops archive under the prefix.
    Returns one archive's unpacked size and a row to ask."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    folder = store / BUCKET / PREFIX
    folder.mkdir(parents=True)
    size = 0
    for k in range(n):
        rows = np.random.default_rng(k).choice(len(X), 100, replace=False)
        model = LogisticRegression(max_iter=300).fit(X[rows], y[rows])
        data = skops.io.dumps(model)
        size = max(size, len(data))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("model.skops")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        (folder / f"client-{k:03}.tar.gz").write_bytes(buf.getvalue())
    return size, X[:1]


def start_instance(store: Path, cache: Path, budget_bytes: int, threads: int
                   ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cache.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
           "TIDESERVE_MULTI_MODEL_URL": f"s3://{BUCKET}/{PREFIX}",
           "TIDESERVE_MULTI_MODEL_OBJECT_ROOT": str(store),
           "TIDESERVE_MODEL_CACHE_MEMORY_MB": str(budget_bytes / 2**20)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", str(cache),
         "--runtime", "sklearn", "--port", str(port), "--threads", str(threads)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("instance did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def zipf_targets(n_models: int, count: int, s: float, seed: int) -> list[str]:
    weights = [1 / (k + 1) ** s for k in range(n_models)]
    names = [f"client-{k:03}.tar.gz" for k in range(n_models)]
    rng = random.Random(seed)
    rng.shuffle(names)  # popularity is not alphabetical
    return rng.choices(names, weights=weights, k=count)


async def drive(router: Router, targets: list[str], body: bytes, concurrency: int
                ) -> list[tuple[bool, float]]:
    out: list[tuple[bool, float]] = []
    queue = list(reversed(targets))

    async def worker() -> None:
        while queue:
            target = queue.pop()
            headers = {"content-type": "text/csv", "x-amzn-sagemaker-target-model": target}
            t0 = time.perf_counter()
            result = await router.invoke(Invocation("bench", body, headers))
            out.append((bool(result.cache_hit), (time.perf_counter() - t0) * 1000))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def run(args: argparse.Namespace, instances: int, store: Path, budget: int, body: bytes,
        work: Path) -> None:
    procs = [start_instance(store, work / f"cache-{instances}-{i}", budget, args.threads)
             for i in range(instances)]
    backends = [Backend(f"i-{i}", url, multi_model=True) for i, (_, url) in enumerate(procs)]
    routes = RouteTable()
    routes.put(EndpointRoute("bench", [VariantRoute("AllTraffic", 1.0, backends)]))
    router = Router(routes, MetricAggregator(60.0), "000000000000", "us-east-1")
    targets = zipf_targets(args.models, args.warmup + args.requests, args.zipf, seed=1)

    async def main() -> list[tuple[bool, float]]:
        try:
            await drive(router, targets[:args.warmup], body, args.concurrency)
            before = [httpx.get(url + "/models").json() for _, url in procs]
            measured = await drive(router, targets[args.warmup:], body, args.concurrency)
            after = [httpx.get(url + "/models").json() for _, url in procs]
            report(instances, measured, before, after, procs)
            return measured
        finally:
            await router.close()

    try:
        asyncio.run(main())
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(10)


def report(instances: int, measured: list[tuple[bool, float]], before: list[dict],
           after: list[dict], procs: list[tuple[subprocess.Popen[bytes], str]]) -> None:
    hits = np.array([ms for hit, ms in measured if hit])
    misses = np.array([ms for hit, ms in measured if not hit])

    def pct(a: np.ndarray, q: float) -> str:
        return f"{np.percentile(a, q):7.2f}" if len(a) else "    n/a"

    loads = sum(a["loads"] - b["loads"] for a, b in zip(after, before, strict=True))
    evictions = sum(a["evictions"] - b["evictions"] for a, b in zip(after, before, strict=True))
    held = [len(a["models"]) for a in after]
    distinct = len({m["targetModel"] for a in after for m in a["models"]})
    print(f"\n{instances} instance(s): {len(measured)} requests after warm-up")
    print(f"  cache hit rate        {len(hits) / len(measured):6.1%}")
    print(f"  hit  latency p50/p99  {pct(hits, 50)} / {pct(hits, 99)} ms   ({len(hits)})")
    print(f"  miss latency p50/p99  {pct(misses, 50)} / {pct(misses, 99)} ms   ({len(misses)})")
    print(f"  loads {loads}, evictions {evictions}")
    print(f"  models loaded per instance {held}; distinct over the fleet {distinct}")
    print("  RSS per instance (MB)  " + ", ".join(f"{rss_mb(p.pid):.0f}" for p, _ in procs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--instances", default="1,3")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        size, row = train_and_upload(work / "s3", args.models)
        budget = size * args.models // 4
        print(f"{args.models} models trained and packed in {time.perf_counter() - t0:.1f} s; "
              f"{size} bytes each unpacked; cache budget {budget} bytes per instance "
              f"(~{args.models // 4} models); Zipf s={args.zipf}, concurrency "
              f"{args.concurrency}")
        body = csv_rows(row).encode()
        for n in (int(x) for x in args.instances.split(",")):
            run(args, n, work / "s3", budget, body, work)


if __name__ == "__main__":
    main()
