"""Two `tideserve up` servers on one PostgreSQL: controller failover time, and the router's
latency through the leader and through the follower (which routes to the leader's instances
from the shared instance table).

Each round SIGKILLs the server that leads (its instances die with it) and times, from the
kill: the survivor taking the leader lock, its controller's first tick on the endpoint
(DescribeEndpoint leaves InService for SystemUpdating while it restores the instances), and
the endpoint InService and answering through the survivor again. The killed server is then
started again, as the follower, for the next round.

    python bench/cluster.py [--rounds 3] [--period 2] [--instances 2]

Needs PostgreSQL's server binaries (`make postgres`) and psycopg (`pip install
'tideserve[postgres]'`). Prints figures; never passes or fails on time."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.postgres_server import MISSING, postgres_bin, postgres_server  # noqa: E402
from tests.support import (  # noqa: E402
    RunningServer,
    csv_rows,
    pack_skops,
    start_server,
    stop_server,
    train_breast_cancer,
)


def leads(server: RunningServer, since: int) -> bool:
    return "took the leader lock" in server.log_path.read_text(errors="replace")[since:]


def deploy(sm, name: str, model_data: str, count: int) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": model_data})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": count}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def status(sm, name: str) -> str:
    try:
        return str(sm.describe_endpoint(EndpointName=name)["EndpointStatus"])
    except Exception:
        return "?"


def wait_until(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()


def invoke_ok(rt, body: str) -> bool:
    try:
        rt.invoke_endpoint(EndpointName="bench", Body=body, ContentType="text/csv")
        return True
    except Exception as exc:
        if os.environ.get("BENCH_DEBUG"):
            print(exc)
        return False


def latencies_ms(rt, body: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        rt.invoke_endpoint(EndpointName="bench", Body=body, ContentType="text/csv")
        out.append((time.perf_counter() - t) * 1000)
    return sorted(out)


def failover(dead: RunningServer, alive: RunningServer, body: str) -> tuple[float, ...]:
    """Kill the leader; seconds until the lock, the first tick, and serving again."""
    sm, rt = alive.client("sagemaker"), alive.client("sagemaker-runtime")
    mark = len(alive.log_path.read_text(errors="replace"))
    os.kill(dead.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    dead.proc.wait(timeout=10)
    t_lock = wait_until(lambda: leads(alive, mark), 60, "the lock") - killed
    t_tick = wait_until(lambda: status(sm, "bench") == "SystemUpdating", 60,
                        "the first tick") - killed
    t_serve = wait_until(lambda: status(sm, "bench") == "InService"
                         and invoke_ok(rt, body), 120, "InService") - killed
    return t_lock, t_tick, t_serve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--period", type=float, default=2.0)
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    if postgres_bin() is None:
        raise SystemExit(MISSING)
    model, X = train_breast_cancer("logistic")
    body = csv_rows(X[:1])
    with postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        archive = pack_skops(model, Path(tmp) / "model")
        state = Path(tmp) / "state"
        extra = ["--database-url", url]
        servers = [start_server(state, args.period, extra), None]
        servers[1] = start_server(state, args.period, extra)
        leader = 0
        rows: list[tuple[float, ...]] = []
        try:
            sm = servers[0].client("sagemaker")
            deploy(sm, "bench", str(archive), args.instances)
            wait_until(lambda: status(sm, "bench") == "InService", 120, "InService")
            for i, name in ((0, "leader"), (1, "follower")):
                rt = servers[i].client("sagemaker-runtime")
                try:
                    wait_until(lambda rt=rt: invoke_ok(rt, body), 30, f"{name} routing")
                except SystemExit:
                    print(servers[i].log())
                    raise
                lat = latencies_ms(rt, body, args.requests)
                print(f"InvokeEndpoint via the {name}: p50 {statistics.median(lat):.2f} ms, "
                      f"p99 {lat[int(len(lat) * 0.99) - 1]:.2f} ms ({args.requests} requests)")
            for _ in range(args.rounds):
                dead, alive = servers[leader], servers[1 - leader]
                assert dead is not None and alive is not None
                t_lock, t_tick, t_serve = failover(dead, alive, body)
                rows.append((t_lock, t_tick, t_serve))
                print(f"failover: lock {t_lock:.2f} s, first controller tick {t_tick:.2f} s, "
                      f"InService and answering {t_serve:.2f} s after the kill")
                stop_server(dead)
                servers[leader] = start_server(state, args.period, extra)
                leader = 1 - leader
        finally:
            for server in servers:
                if server is not None:
                    stop_server(server)
        if rows:
            med = [statistics.median(r[i] for r in rows) for i in range(3)]
            print(f"median of {len(rows)} (period {args.period:g} s, {args.instances} "
                  f"instances): lock {med[0]:.2f} s, first tick {med[1]:.2f} s, "
                  f"serving {med[2]:.2f} s")


if __name__ == "__main__":
    main()
