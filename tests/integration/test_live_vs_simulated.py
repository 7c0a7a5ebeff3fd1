"""The simulator against reality: the same trace segment and the same target-tracking policy,
replayed as real requests against a live endpoint (period 2 s, so 30x compressed time) and run
through the simulator with the serving profile measured from that endpoint. Capacity over time
and instance-seconds must agree.

Tolerances (stated, not tuned to pass): the two in-service capacity curves are within one
instance of each other for at least 80 % of the trace, and their instance-seconds differ by
at most 30 %. Alarm ticks of the live server fall on wall-clock period boundaries while the
simulator's fall on trace minutes, so each scaling decision may land up to one period apart.
The agreement measured is printed (pytest -s) for the record."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows
from tideserve.sim import scenario_from_dict, simulate
from tideserve.sim.profile import measure_profile

pytestmark = pytest.mark.integration

PERIOD = 2.0
COMPRESSION = 30  # --period 2 against CloudWatch's 60
TRACE = Path(__file__).resolve().parent.parent / "data" / "azure_llm_code_2023_1s_first30min.csv"
SEGMENT_SECONDS = 1800  # 30 trace minutes = 60 s of replay
RATE_SCALE = 0.5
TARGET = 50.0  # invocations per instance per (compressed) minute


def integer_counts() -> np.ndarray:
    """The segment's per-second counts × RATE_SCALE as whole requests (carrying the remainder,
    so the total is kept): the live replay and the simulator get the very same arrivals."""
    raw = np.loadtxt(TRACE, delimiter=",", skiprows=1)[:SEGMENT_SECONDS, 1] * RATE_SCALE
    out, carry = np.zeros(len(raw), dtype=int), 0.0
    for i, x in enumerate(raw):
        carry += x
        out[i] = int(carry)
        carry -= out[i]
    return out


def presign(server: RunningServer, url: str, body: bytes) -> dict[str, str]:
    key_id, secret = server.credentials()
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "text/csv"})
    SigV4Auth(Credentials(key_id, secret), "sagemaker", "us-east-1").add_auth(req)
    return dict(req.headers.items())


async def replay(url: str, body: bytes, headers: dict[str, str], counts: np.ndarray,
                 started: list[float]) -> tuple[int, int]:
    """Open loop: bin i's requests go out at i / COMPRESSION seconds after the start."""
    ok = failed = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok, failed = (ok + 1, failed) if resp.status == 200 else (ok, failed + 1)
        except aiohttp.ClientError:
            failed += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        # Start on a period boundary of the server's clock, so that trace minute k is the
        # live server's period k, as it is the simulator's minute k.
        await asyncio.sleep(PERIOD - time.time() % PERIOD)
        start = time.perf_counter()
        started.append(start)
        tasks = []
        for i, n in enumerate(counts):
            delay = start + i / COMPRESSION - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks += [asyncio.create_task(one(session)) for _ in range(n)]
        await asyncio.gather(*tasks)
    return ok, failed


class CapacitySampler(threading.Thread):
    def __init__(self, sm, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.sm, self.endpoint = sm, endpoint
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            v = self.sm.describe_endpoint(EndpointName=self.endpoint)["ProductionVariants"][0]
            self.samples.append((time.perf_counter(), v["CurrentInstanceCount"]))
            self.done.wait(0.1)

    def per_trace_second(self, t0: float, seconds: int) -> np.ndarray:
        times = np.array([t for t, _ in self.samples]) - t0
        counts = np.array([c for _, c in self.samples])
        at = np.arange(seconds) / COMPRESSION
        idx = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(counts) - 1)
        return counts[idx]


def scenario(counts: np.ndarray, tmp: Path, profile, startup: float) -> dict:
    trace = tmp / "segment.csv"
    trace.write_text("t_seconds,requests\n" + "".join(f"{i},{n}\n" for i, n in enumerate(counts)))
    pct = {f"p{p}": profile.service_time.quantile(p / 100) * COMPRESSION for p in (50, 90, 99)}
    return {
        "name": "live-vs-sim",
        "trace": {"path": str(trace), "rate_scale": 1},
        "endpoint": {"name": "replayed", "variant": "AllTraffic", "instance_type": "ml.m5.large",
                     "initial_instances": 1},
        # Simulated in AWS time: every duration measured live is 30x longer there.
        "profile": {"service_time": pct, "concurrency": profile.concurrency,
                    "startup_seconds": startup * COMPRESSION},
        "slo": {"latency_seconds": 1.0},
        "simulation": {"step_seconds": 1, "metric_period": 60, "mode": "fluid"},
        "policy_sets": [{
            "name": "tt",
            "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 4},
            "put_scaling_policy": [{
                "PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": TARGET, "ScaleOutCooldown": 300, "ScaleInCooldown": 300,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}],
        }],
    }


def test_live_capacity_and_instance_seconds_agree_with_the_simulator(
    server: RunningServer, trained, tmp_path
):
    _, X, archive, _ = trained
    sm, aas, cw = (server.client(s) for s in ("sagemaker", "application-autoscaling",
                                               "cloudwatch"))
    rt = server.client("sagemaker-runtime")
    deploy(sm, "replayed", str(archive), count=1)
    wait_in_service(sm, "replayed")
    measured_from = datetime.now(UTC) - timedelta(seconds=30)
    body = csv_rows(X[:1]).encode()
    for _ in range(100):  # a light load to measure the serving profile
        rt.invoke_endpoint(EndpointName="replayed", Body=body, ContentType="text/csv")
    time.sleep(2.5)  # let the period close
    profile = measure_profile(cw, "replayed", "AllTraffic", measured_from,
                              datetime.now(UTC) + timedelta(minutes=1),
                              instance_type="ml.m5.large", concurrency=2)
    startup = max(profile.startup_seconds, 0.5)

    resource = "endpoint/replayed/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                 MinCapacity=1, MaxCapacity=4)
    spec = scenario(integer_counts(), tmp_path, profile, startup)
    aas.put_scaling_policy(ServiceNamespace="sagemaker", ResourceId=resource,
                           ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                           **spec["policy_sets"][0]["put_scaling_policy"][0])

    counts = integer_counts()
    url = f"{server.url}/endpoints/replayed/invocations"
    sampler = CapacitySampler(sm, "replayed")
    sampler.start()
    started: list[float] = []
    try:
        ok, failed = asyncio.run(replay(url, body, presign(server, url, body), counts, started))
    finally:
        sampler.done.set()
        sampler.join()
    assert failed == 0 and ok == int(counts.sum())

    live = sampler.per_trace_second(started[0], len(counts))
    sim = simulate(scenario_from_dict(spec)).runs[0].log.in_service[: len(counts)]
    within_one = float(np.mean(np.abs(live - sim) <= 1))
    equal = float(np.mean(live == sim))
    live_s, sim_s = float(live.sum()), float(sim.sum())
    print(f"\nlive vs simulated: capacity equal {equal:.0%} and within one instance "
          f"{within_one:.0%} of the time; "
          f"instance-seconds live {live_s:.0f}, simulated {sim_s:.0f} "
          f"(ratio {live_s / sim_s:.2f}); live max {live.max()}, simulated max {sim.max()}")
    assert sim.max() > 1, "the segment should make the simulated policy scale out"
    assert live.max() > 1, "the segment should make the live policy scale out"
    assert within_one >= 0.8
    assert abs(live_s - sim_s) / sim_s <= 0.30
