"""One benchmark (a job step): an instance of the candidate's shape, load-tested until it
breaks.

The shape: the fleet provider (fleet/local.py) gives the process the type's vCPUs as numeric
threads and an address-space limit from its memory; here the process tree is also pinned to
that many of this machine's cores (os.sched_setaffinity), so a 2-vCPU type really has two
cores. A type the machine cannot hold (more vCPUs than the cores this process may use, or
GPUs when it has none) is not run: the step FAILS with a FailureReason saying so. No figure
is extrapolated for it.

The instance is billed in the ledger from its start request to its stop, under the job's ARN
(spec §6.1's Inference Recommender row), and recorded in the `instances` table so a crashed
server's orphans are killed on restart, as a transform job's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from tideserve.clock import Clock
from tideserve.control import tables as ct
from tideserve.control.models import ModelCache
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import InstanceType
from tideserve.cost.ledger import Ledger
from tideserve.errors import TideserveError
from tideserve.fleet.base import InstanceHandle, InstanceProvider, InstanceSpec
from tideserve.fleet.readiness import NotReady, wait_until_ready
from tideserve.recommender.breaking import Verdict, Window, verdict
from tideserve.recommender.spec import Candidate, JobSpec
from tideserve.serving.instance_token import TOKEN_HEADER

STARTUP_TIMEOUT_SECONDS = 240.0
VARIANT = "AllTraffic"


@dataclass
class StepOutcome:
    """What one benchmark measured (or why it could not)."""

    endpoint_name: str
    instance_type: str
    status: str  # COMPLETED | FAILED | STOPPED
    failure_reason: str | None = None
    windows: list[Window] = field(default_factory=list)
    verdict: Verdict | None = None
    setup_seconds: float | None = None  # start request to the first good /ping
    started: float | None = None  # epoch seconds of the first request
    ended: float | None = None


def machine_cores() -> int:
    return len(os.sched_getaffinity(0))


def machine_gpus() -> int:
    return len([p for p in Path("/dev").glob("nvidia[0-9]*")])


def cannot_hold(t: InstanceType) -> str | None:
    cores, gpus = machine_cores(), machine_gpus()
    if t.vcpu > cores:
        return (f"{t.name} has {t.vcpu} vCPUs and this machine lets tideserve use {cores} "
                "cores: not benchmarked (no figure is extrapolated)")
    if t.gpu_count > gpus:
        return (f"{t.name} has {t.gpu_count} GPU(s) and this machine has {gpus}: not "
                "benchmarked (no figure is extrapolated)")
    return None


@dataclass
class Bench:
    store: ControlStore
    models: ModelCache
    provider: InstanceProvider
    ledger: Ledger
    clock: Clock
    time_scale: float
    window_seconds: float
    trust_pickle: bool = False

    async def run(self, spec: JobSpec, job_arn: str, candidate: Candidate, index: int,
                  payload_dir: Path, stop: asyncio.Event | None = None) -> StepOutcome:
        """Benchmark one candidate; `stop` set (StopInferenceRecommendationsJob) ends the
        load test at its next window and the step is STOPPED, its instance stopped."""
        endpoint = benchmark_endpoint_name(spec.name, index)
        itype = candidate.instance_type
        outcome = StepOutcome(endpoint, itype.name, "FAILED")
        reason = cannot_hold(itype)
        if reason is not None:
            outcome.failure_reason = reason
            return outcome
        model = self.store.get_resource(ct.models, spec.model_name)
        if model is None:
            outcome.failure_reason = f"ClientError: Model {spec.model_name} no longer exists."
            return outcome
        instance_id = f"{endpoint}-{uuid.uuid4().hex[:6]}"
        requested = self.clock.now()
        handle = None
        try:
            prepared = await self.models.prepare(model, holder=instance_id)
            inst = InstanceSpec(
                instance_id=instance_id, endpoint_name=endpoint, variant_name=VARIANT,
                instance_type=itype, model_dir=prepared.model_dir, runtime=prepared.runtime,
                environment={**prepared.environment, **candidate.environment},
                trust_pickle=self.trust_pickle, command=prepared.command)
            self.ledger.instance_started(instance_id, job_arn, endpoint, VARIANT, itype.name,
                                         at=requested)
            began = time.monotonic()
            handle = await self.provider.start(inst)
            self.store.record_instance(instance_id=instance_id, endpoint_name=endpoint,
                                       variant_name=VARIANT, pid=handle.pid, url=handle.url,
                                       start_time=requested)
            await self._ready(handle)
            outcome.setup_seconds = time.monotonic() - began
            pin(handle.pid, itype.vcpu)
            await self._load_test(spec, handle, itype, payload_dir, outcome,
                                  stop or asyncio.Event())
        except TideserveError as exc:
            outcome.failure_reason = f"ClientError: {exc.message}"
        except NotReady as exc:
            detail = self.provider.failure_detail(handle) if handle else ""
            outcome.failure_reason = (f"ModelError: the container did not answer /ping: {exc} "
                                      f"{detail}").strip()[:1024]
        finally:
            if handle is not None:
                await self.provider.stop(handle, grace_seconds=5.0)
            self.store.forget_instance(instance_id)
            await self.models.release(instance_id)
            self.ledger.instance_stopped(instance_id)
        return outcome

    async def _ready(self, handle: InstanceHandle) -> None:
        headers = {TOKEN_HEADER: handle.token} if handle.token else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0),
                                         headers=headers) as http:
            await wait_until_ready(self.provider, handle, http, STARTUP_TIMEOUT_SECONDS)

    async def _load_test(self, spec: JobSpec, handle: InstanceHandle, itype: InstanceType,
                         payload_dir: Path, outcome: StepOutcome,
                         stop: asyncio.Event) -> None:
        schedule = spec.traffic.duration_seconds * self.time_scale
        config = {"url": handle.url, "payload_dir": str(payload_dir),
                  "content_type": spec.content_type, "time_scale": self.time_scale,
                  "window_seconds": self.window_seconds, "max_seconds": schedule,
                  "phases": [[p.initial_users, p.spawn_rate, p.duration_seconds]
                             for p in spec.traffic.phases],
                  "headers": {TOKEN_HEADER: handle.token} if handle.token else {}}
        usage = Usage(handle.pid, itype)
        usage.sample()  # primes cpu_percent
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tideserve.recommender.loadgen", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(config).encode())
        proc.stdin.close()
        outcome.started = self.clock.now()
        try:
            while True:
                line = await proc.stdout.readline()
                done = not line
                if line:
                    cpu, memory = usage.sample()
                    raw = json.loads(line)
                    outcome.windows.append(Window(cpu_percent=cpu, memory_percent=memory,
                                                  **raw))
                result = verdict(outcome.windows, spec.stopping, schedule_done=done)
                if stop.is_set():
                    outcome.status, outcome.failure_reason = "STOPPED", "Stopped by request"
                    return
                if result.stop or done:
                    outcome.verdict = result
                    break
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            outcome.ended = self.clock.now()
        outcome.status = "COMPLETED" if outcome.verdict and outcome.verdict.result else "FAILED"
        if outcome.status == "FAILED":
            outcome.failure_reason = "ModelError: no request of the load test succeeded"


class Usage:
    """The instance's process tree: CPU summed over cores (0..100 x vCPUs, as SageMaker's
    CPUUtilization) and resident memory over the type's memory, between two samples."""

    def __init__(self, pid: int, itype: InstanceType) -> None:
        self.root = psutil.Process(pid)
        self.itype = itype
        self.procs: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[float | None, float | None]:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return None, None
        cpu, rss = 0.0, 0
        for p in tree:
            kept = self.procs.setdefault(p.pid, p)
            with contextlib.suppress(psutil.Error):
                cpu += kept.cpu_percent(interval=None)
                rss += kept.memory_info().rss
        memory = 100.0 * rss / (self.itype.memory_gib * 2**30)
        return min(cpu, 100.0 * self.itype.vcpu), min(memory, 100.0)


def pin(pid: int, vcpus: int) -> None:
    """Pin every thread of the instance's process tree to the first `vcpus` cores this server
    may use (threads started later inherit it)."""
    cores = sorted(os.sched_getaffinity(0))[:max(1, vcpus)]
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for proc in tree:
        with contextlib.suppress(psutil.Error, OSError):
            for thread in proc.threads():
                os.sched_setaffinity(thread.id, cores)


def benchmark_endpoint_name(job: str, index: int) -> str:
    """AWS names its benchmark endpoints sm-epc-<job>-<n>, the job part truncated (spec
    §11.1)."""
    return f"sm-epc-{job[:40]}-{index + 1}".lower()


def payload_folder(payloads: list[bytes]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tideserve-payloads-"))
    for i, body in enumerate(payloads):
        (folder / f"{i:05d}").write_bytes(body)
    return folder


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
