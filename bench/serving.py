"""Serving throughput and latency, beside the shared bench's peers, in one run: the bare
SageMaker-contract ASGI app (`srv_sagemaker.py`, the floor a Python server can reach), the
hand-written raw ASGI and FastAPI apps, a tideserve instance called directly, and the router
(`tideserve up` in front of one instance), for a light model (LogisticRegression) and a heavy
one (RandomForest, 200 trees) on scikit-learn's breast-cancer data, at concurrency 1, 8, 64.
Every figure is also printed as a ratio to the bare app measured in the same run. Prints
figures; asserts nothing.

    .venv/bin/python bench/serving.py [--duration 5] [--models lr,rf] [--concurrency 1,8,64]
        [--cores one|any] [--peers sagemaker,rawasgi,fastapi] [--batch-env K=V,K=V]
        [--rounds 2]

--cores one (the default where the machine has two CPUs or more): every server — the peer,
the instance, the router and its instance together — is pinned to CPU 1 and the load
generator to CPU 0, so figures are per core and comparable with the peers' table
(../shared/bench/peers/README.md uses wrk; this uses bench/loadgen.py, its own closed-loop
generator, which costs more per request than wrk, so absolute req/s are lower than theirs
and ratios are what to compare). --cores any leaves placement to the kernel.

The peers are run from where they live (PEERS, or $TIDESERVE_PEERS) as subprocesses of this
interpreter's uvicorn (uvloop + httptools, as theirs), serving the very model tideserve serves
(written as the joblib file they load). --batch-env: an Environment for the model (adaptive
batching's settings); each (model, c) is then measured without and with it.

--tracing off,unsampled,on: the router is measured once per tracing setting, each on a
server of its own (OTEL_SDK_DISABLED=true; --trace-sample-ratio 0; --trace-sample-ratio 1,
spans kept in memory and the instance exporting its own to the server), as `router:<mode>`
rows beside the default server's `router`; the difference is tracing's cost per request.

Targets (issue 11): LR c=8 through the router >= 0.5x the bare app, p99 <= 5 ms; RF c=8 >=
0.95x bare; router overhead p50 at c=1 (router p50 - direct p50) <= 0.2 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
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
PEERS = Path(os.environ.get("TIDESERVE_PEERS", ROOT.parent.parent / "shared/bench/peers"))
if not PEERS.is_dir():
    PEERS = Path("/work/shared/bench/peers")
# name: (module:app, path, body format, content type)
PEER_APPS = {
    "sagemaker": ("srv_sagemaker:app", "/invocations", "csv", "text/csv"),
    "rawasgi": ("srv_rawasgi:app", "/", "row", "application/json"),
    "fastapi": ("srv_fastapi:app", "/predict", "row", "application/json"),
}
SERVER_CPU, LOAD_CPU = 1, 0
# --tracing modes: the server's flags and environment for each.
TRACING = {
    "off": ([], {"OTEL_SDK_DISABLED": "true"}),
    "unsampled": (["--trace-sample-ratio", "0"], {}),
    "on": (["--trace-sample-ratio", "1"], {}),
}
# The prediction threads the fleet gives the router's instance (ml.m5.large: 2 vCPUs, capped
# at os.cpu_count(), which pinning does not lower): the direct instance gets as many, so that
# router ÷ direct is the hop's cost alone.
FLEET_THREADS = max(1, min(2, os.cpu_count() or 1))

Result = dict[str, float]


@dataclass(frozen=True)
class Target:
    """One system to load: where, with what, and whose CPU to count (name -> pid)."""

    system: str
    batching: str
    url: str
    body_file: Path
    headers: dict[str, str]
    pids: dict[str, int]

    @property
    def label(self) -> str:
        return self.system + self.batching


# -- placement ----------------------------------------------------------------------------------


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def pin_here(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child to `cpu` (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


# -- load ---------------------------------------------------------------------------------------


def load(url: str, body_file: Path, headers: dict[str, str], c: int, seconds: float,
         cpu: int | None) -> Result:
    argv = [sys.executable, str(ROOT / "bench" / "loadgen.py"), url, "--body-file",
            str(body_file), "-c", str(c), "-d", str(seconds), "-w", "1"]
    for k, v in headers.items():
        argv += ["--header", f"{k}: {v}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         preexec_fn=pin_here(cpu))
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def wait_answering(url: str, body: bytes, ctype: str, proc: subprocess.Popen[bytes],
                   headers: dict[str, str] | None = None) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            r = httpx.post(url, content=body, timeout=2,
                           headers={"Content-Type": ctype, **(headers or {})})
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def instance_pid(state_dir: Path, endpoint: str) -> int | None:
    """The pid of the endpoint's instance, from the server's own instance table: the server's
    other children include warm spares (serving/spare.py), which look alike from outside."""
    with sqlite3.connect(f"file:{state_dir / 'tideserve.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT pid FROM instances WHERE endpoint_name = ?",
                         (endpoint,)).fetchone()
    return int(row[0]) if row else None


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the systems --------------------------------------------------------------------------------


def in_process(model_dir: Path, body: bytes, seconds: float) -> Result:
    from tideserve.serving.instance import load_runtime

    runtime = load_runtime(model_dir, "sklearn", TRUST, False)
    lat: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        runtime.invoke(body, "text/csv", "application/json", None)
        lat.append(time.perf_counter() - t0)
    return {"rps": len(lat) / seconds, "p50_ms": statistics.median(lat) * 1000}


def start_peer(app: str, key: str, peer_root: Path, cpu: int | None) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {**os.environ, "MODEL": key, "PEERBENCH_ROOT": str(peer_root),
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
         "--log-level", "warning"],
        cwd=PEERS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=pin_here(cpu))
    proc.port = port  # type: ignore[attr-defined]
    return proc


def start_instance(model_dir: Path, env: dict[str, str], cpu: int | None
                   ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tideserve.serving.instance", "--model-dir", str(model_dir),
         "--runtime", "sklearn", "--port", str(port), "--threads", str(FLEET_THREADS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **TRUST, **env}, preexec_fn=pin_here(cpu),
    )
    return proc, f"http://127.0.0.1:{port}"


def signed_headers(url: str, body: bytes, state: Path) -> dict[str, str]:
    """SigV4 headers for one request; a signature stays valid for 15 minutes, so the load
    generator can replay it without signing each request."""
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(state / "credentials")
    creds = boto3.Session(region_name="us-east-1").get_credentials()
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "text/csv", "Accept": "application/json"})
    SigV4Auth(creds, "sagemaker", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def deploy(server, name: str, archive: Path, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    sm = server.client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive),
                                      "Environment": {**TRUST, **env}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 240})


# -- one model ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.a = args
        self.tmp = tmp
        self.levels = [int(c) for c in args.concurrency.split(",")]
        pinned = args.cores == "one"
        self.server_cpu = SERVER_CPU if pinned else None
        self.load_cpu = LOAD_CPU if pinned else None
        self.peer_root = tmp / "peerbench"
        (self.peer_root / "data").mkdir(parents=True)
        self.rows: list[tuple[str, str, int, str, Result]] = []  # model, batching, c, system
        self.rss: list[tuple[str, str, float]] = []
        self.traced_servers: dict[str, object] = {}  # --tracing mode -> its server

    def measure_all(self, key: str, targets: list[Target]) -> None:
        """Every system at each concurrency in turn, `rounds` times over (A B C A B C), so
        that the machine's noise falls alike on all; the best round of each is kept (noise
        only ever slows a run down)."""
        for c in self.levels:
            best: dict[str, Result] = {}
            for _ in range(self.a.rounds):
                for t in targets:
                    r = self.once(t, c)
                    if t.label not in best or r["rps"] > best[t.label]["rps"]:
                        best[t.label] = r
            for t in targets:
                r = best[t.label]
                self.rows.append((key, t.batching, c, t.system, r))
                cpu = "".join(f" | {n} CPU {r[f'{n}_cpu_us']:.0f} µs/req" for n in t.pids)
                print(f"[{key}{t.batching}] {t.system:10} c={c:<3} {r['rps']:7.0f} req/s "
                      f"p50 {r['p50_ms']:6.2f} ms p99 {r['p99_ms']:6.2f} ms "
                      f"errors {r['errors']:.0f}" + cpu, flush=True)

    def once(self, t: Target, c: int) -> Result:
        """One load run; CPU per request of `t.pids` (warm-up included: an over-estimate by
        about the warm-up's share)."""
        before = {name: cpu_seconds(pid) for name, pid in t.pids.items()}
        r = load(t.url, t.body_file, t.headers, c, self.a.duration, self.load_cpu)
        served = max(1.0, r["requests"] * (1 + 1 / self.a.duration))
        for name, pid in t.pids.items():
            r[f"{name}_cpu_us"] = (cpu_seconds(pid) - before[name]) / served * 1e6
        return r

    def peers(self, key: str, model: object, X: object, stack: ExitStack) -> list[Target]:
        import joblib

        joblib.dump(model, self.peer_root / "data" / f"{key}.joblib")
        targets = []
        for name in filter(None, self.a.peers.split(",")):
            app, path, fmt, ctype = PEER_APPS[name]
            row = [float(v) for v in X[0]]  # type: ignore[index]
            body = (csv_rows(X[:1]) if fmt == "csv"  # type: ignore[index]
                    else json.dumps({"row": row}, separators=(",", ":"))).encode()
            body_file = self.tmp / f"{key}-{name}.body"
            body_file.write_bytes(body)
            proc = start_peer(app, key, self.peer_root, self.server_cpu)
            stack.callback(stop, proc)
            url = f"http://127.0.0.1:{proc.port}{path}"  # type: ignore[attr-defined]
            wait_answering(url, body, ctype, proc)
            self.rss.append((key, name, rss_mb(proc.pid)))
            label = "bare" if name == "sagemaker" else name
            targets.append(Target(label, "", url, body_file, {"Content-Type": ctype}, {}))
        return targets

    def tideserve(self, key: str, server, model_dir: Path, archive: Path,  # type: ignore[no-untyped-def]
                  body_file: Path, env: dict[str, str], batching: str,
                  stack: ExitStack) -> list[Target]:
        body = body_file.read_bytes()
        proc, direct = start_instance(model_dir, env, self.server_cpu)
        stack.callback(stop, proc)
        wait_answering(direct + "/invocations", body, "text/csv", proc)
        self.rss.append((key, f"instance{batching}", rss_mb(proc.pid)))
        name = f"bench-{key}{'-b' if batching else ''}"
        deploy(server, name, archive, env)
        stack.callback(server.client("sagemaker").delete_endpoint, EndpointName=name)
        url = f"{server.url}/endpoints/{name}/invocations"
        headers = signed_headers(url, body, server.state_dir)
        instance = instance_pid(server.state_dir, name)
        self.rss.append((key, f"router's instance{batching}",
                         rss_mb(instance) if instance else float("nan")))
        return [
            Target("direct", batching, direct + "/invocations", body_file,
                   {"Content-Type": "text/csv"}, {"instance": proc.pid}),
            Target("router", batching, url, body_file, headers,
                   {"router": server.proc.pid, **({"instance": instance} if instance else {})}),
            *(self.traced_router(key, mode, traced, archive, body_file, env, batching, stack)
              for mode, traced in self.traced_servers.items()),
        ]

    def traced_router(self, key: str, mode: str, server, archive: Path,  # type: ignore[no-untyped-def]
                      body_file: Path, env: dict[str, str], batching: str,
                      stack: ExitStack) -> Target:
        """The router of the server started with tracing `mode` (--tracing)."""
        name = f"bench-{key}{'-b' if batching else ''}"
        deploy(server, name, archive, env)
        stack.callback(server.client("sagemaker").delete_endpoint, EndpointName=name)
        url = f"{server.url}/endpoints/{name}/invocations"
        instance = instance_pid(server.state_dir, name)
        return Target(f"router:{mode}", batching, url, body_file,
                      signed_headers(url, body_file.read_bytes(), server.state_dir),
                      {"router": server.proc.pid, **({"instance": instance} if instance else {})})

    def model(self, key: str, server) -> None:  # type: ignore[no-untyped-def]
        model, X = train_breast_cancer(MODELS[key])
        archive = pack_skops(model, self.tmp / key)
        model_dir = self.tmp / f"{key}-dir"
        model_dir.mkdir()
        (model_dir / "model.skops").write_bytes((self.tmp / key / "model.skops").read_bytes())
        body_file = self.tmp / f"{key}.csv"
        body_file.write_bytes(csv_rows(X[:1]).encode())
        inproc = in_process(model_dir, body_file.read_bytes(), min(self.a.duration, 3.0))
        print(f"[{key}] in-process runtime.invoke: {inproc['rps']:.0f} calls/s, "
              f"p50 {inproc['p50_ms']:.3f} ms", flush=True)
        with ExitStack() as stack:
            targets = self.peers(key, model, X, stack)
            targets += self.tideserve(key, server, model_dir, archive, body_file, {}, "", stack)
            if self.a.batch_env:
                env = dict(kv.split("=", 1) for kv in self.a.batch_env.split(","))
                targets += self.tideserve(key, server, model_dir, archive, body_file, env,
                                          "+batch", stack)
            self.measure_all(key, targets)

    def report(self) -> None:
        bare = {(m, c): r for m, _, c, s, r in self.rows if s == "bare"}
        direct = {(m, b, c): r for m, b, c, s, r in self.rows if s == "direct"}
        print("\nmodel        system      c    req/s  p50 ms  p99 ms  ÷bare  router÷direct"
              "  router-direct p50 ms  router CPU µs/req  instance CPU µs/req")
        for m, b, c, s, r in self.rows:
            base = bare.get((m, c))
            ratio = f"{r['rps'] / base['rps']:5.2f}" if base else "    -"
            extra = ""
            d = direct.get((m, b, c))
            if s.startswith("router") and d:
                extra = (f"  {r['rps'] / d['rps']:13.2f}  {r['p50_ms'] - d['p50_ms']:20.3f}"
                         f"  {r.get('router_cpu_us', math.nan):17.0f}"
                         f"  {r.get('instance_cpu_us', math.nan):19.0f}")
            elif s == "direct":
                extra = f"  {'':13}  {'':20}  {'':17}  {r.get('instance_cpu_us', math.nan):19.0f}"
            print(f"{m + b:12} {s:10} {c:3} {r['rps']:8.0f} {r['p50_ms']:7.2f} "
                  f"{r['p99_ms']:7.2f}  {ratio}{extra}")
        print("\nRSS after start-up, MB:")
        for m, system, mb in self.rss:
            print(f"  {m:4} {system:24} {mb:7.1f}")


def start_traced(state: Path, mode: str):  # type: ignore[no-untyped-def]
    """A server with tracing `mode`; its environment reaches it through ours."""
    flags, env = TRACING[mode]
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return start_server(state, period=60.0, extra=flags)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--cores", choices=("one", "any"), default="one" if can_pin() else "any")
    ap.add_argument("--peers", default="sagemaker,rawasgi,fastapi")
    ap.add_argument("--batch-env", default="", help="K=V,... an Environment for batching")
    ap.add_argument("--rounds", type=int, default=2, help="runs per system and c; best kept")
    ap.add_argument("--tracing", default="",
                    help=f"comma list of {','.join(TRACING)}: the router once per mode")
    a = ap.parse_args()
    if a.cores == "one" and not can_pin():
        ap.error("--cores one needs two CPUs and os.sched_setaffinity")
    print(f"cores: {a.cores} (servers on CPU {SERVER_CPU}, load on CPU {LOAD_CPU})"
          if a.cores == "one" else "cores: any", flush=True)
    with tempfile.TemporaryDirectory(prefix="tideserve-bench-") as tmp:
        bench = Bench(a, Path(tmp))
        # The router runs on the servers' CPU with its instances (they inherit it).
        if bench.server_cpu is not None:
            os.sched_setaffinity(0, {bench.server_cpu})
        server = start_server(Path(tmp) / "state", period=60.0)
        try:
            for mode in filter(None, a.tracing.split(",")):
                bench.traced_servers[mode] = start_traced(Path(tmp) / f"state-{mode}", mode)
            for key in a.models.split(","):
                bench.model(key, server)
        finally:
            stop_server(server)
            for traced in bench.traced_servers.values():
                stop_server(traced)  # type: ignore[arg-type]
        bench.report()


if __name__ == "__main__":
    main()
