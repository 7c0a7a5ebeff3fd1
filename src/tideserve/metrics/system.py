"""Instance utilisation metrics for `/aws/sagemaker/Endpoints` (§5.3), sampled with psutil.

CPUUtilization is the process tree's CPU summed over cores, so an instance with 4 vCPUs ranges
0..400 % as on SageMaker; MemoryUtilization is resident memory over the instance type's memory,
0..100 %. A local process is not confined to its instance type's size, so both are clamped to
the range AWS can report (a process using 6 cores on a 4-vCPU type reads 400 %).

Non-blocking: psutil's cpu_percent(interval=None) measures since the previous call on the same
Process object, so Process objects are kept between samples; a process's first sample only
primes the measurement and records no CPU value. Each instance records its own value into the
variant's series, so Average is the mean over instances and SampleCount counts instance samples.

A multi-container instance (serving/containers/front.py) is one tree too: its front and every
container count in the instance's values. Each container's own subtree is also recorded with
a ContainerName dimension (spec hosting-jobs §2.4 has it for direct invocation; pipelines get
it as well, to show which stage uses the CPU), so the containers' values sum to about the
instance's (less the front). A container is a direct child of the instance's process whose
environment names it (CONTAINER_ENV), read once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import psutil

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions


class InstanceShape(Protocol):
    @property
    def vcpu(self) -> int: ...
    @property
    def memory_gib(self) -> float: ...


class InstanceTypes(Protocol):
    """What the sampler needs of the price catalog (cost.catalog.Catalog is one), so that
    metrics does not import cost."""

    def __contains__(self, name: str) -> bool: ...
    def get(self, name: str) -> InstanceShape: ...


@dataclass(frozen=True)
class InstanceInfo:
    pid: int
    vcpu: int  # of the instance type, e.g. 4 for ml.m5.xlarge
    memory_limit_bytes: int  # of the instance type
    endpoint: str
    variant: str

    @staticmethod
    def from_catalog(catalog: InstanceTypes, pid: int, endpoint: str, variant: str,
                     instance_type: str) -> InstanceInfo:
        t = catalog.get(instance_type)
        return InstanceInfo(pid, t.vcpu, int(t.memory_gib * 2**30), endpoint, variant)


# The controller's form: instance id -> (pid, endpoint, variant, instance type name).
ControllerInstance = tuple[int, str, str, str]
CONTAINER_ENV = "TIDESERVE_CONTAINER_HOSTNAME"  # set by the multi-container front


@dataclass
class _Usage:
    cpu: float = 0.0
    rss: int = 0


class _Tracked:
    """psutil Process objects of one instance's tree, kept so cpu_percent has a baseline."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.procs: dict[int, psutil.Process] = {}
        self.names: dict[int, str | None] = {}  # direct child pid -> its container, if one

    def sample(self) -> tuple[float | None, int, dict[str, _Usage]]:
        """(cpu percent over cores or None while priming, rss bytes) of the process tree, and
        each container's share of it (empty for an instance of one container)."""
        root = psutil.Process(self.pid)  # raises NoSuchProcess once it is gone
        current = {self.pid: self.procs.get(self.pid) or root}
        owner: dict[int, str] = {}  # pid -> the container it belongs to
        try:
            for child in root.children():
                name = self._container(child)
                for proc in (child, *_descendants(child)):
                    current[proc.pid] = self.procs.get(proc.pid) or proc
                    if name is not None:
                        owner[proc.pid] = name
        except psutil.Error:
            pass
        primed = self.pid in self.procs
        total = _Usage()
        containers: dict[str, _Usage] = {name: _Usage() for name in set(owner.values())}
        for pid, proc in current.items():
            try:
                pct = proc.cpu_percent(interval=None)
                rss = proc.memory_info().rss
            except psutil.Error:  # a child exited between listing and sampling
                continue
            counted = pct if pid in self.procs else 0.0  # new children count from next time
            for usage in (total, containers.get(owner.get(pid, ""))):
                if usage is not None:
                    usage.cpu += counted
                    usage.rss += rss
        self.procs = current
        self.names = {pid: name for pid, name in self.names.items() if pid in current}
        return (total.cpu if primed else None), total.rss, containers

    def _container(self, child: psutil.Process) -> str | None:
        if child.pid not in self.names:
            try:
                self.names[child.pid] = child.environ().get(CONTAINER_ENV)
            except psutil.Error:
                self.names[child.pid] = None
        return self.names[child.pid]


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


class InstanceSampler:
    def __init__(self, aggregator: MetricAggregator,
                 catalog: InstanceTypes | None = None) -> None:
        """`catalog` resolves instance type names when `sample` is given controller tuples."""
        self._aggregator = aggregator
        self._catalog = catalog
        self._tracked: dict[str, _Tracked] = {}

    def sample(self, instances: Mapping[str, InstanceInfo | ControllerInstance],
               now: float | None = None) -> None:
        """Record one CPUUtilization and MemoryUtilization value per live instance at `now`
        (the aggregator's clock by default). Instances absent from `instances` are forgotten;
        vanished processes and unknown instance types are skipped."""
        now = self._aggregator.clock.now() if now is None else now
        for gone in self._tracked.keys() - instances.keys():
            del self._tracked[gone]
        for instance_id, given in instances.items():
            info = self._info(given)
            if info is None:
                continue
            tracked = self._tracked.get(instance_id)
            if tracked is None or tracked.pid != info.pid:
                tracked = self._tracked[instance_id] = _Tracked(info.pid)
            try:
                cpu, rss, containers = tracked.sample()
            except psutil.Error:
                del self._tracked[instance_id]
                continue
            self._record(info, cpu, rss, now)
            for name, usage in containers.items():
                self._record(info, usage.cpu if cpu is not None else None, usage.rss, now,
                             container=name)

    def _info(self, given: InstanceInfo | ControllerInstance) -> InstanceInfo | None:
        if isinstance(given, InstanceInfo):
            return given
        pid, endpoint, variant, instance_type = given
        if self._catalog is None or instance_type not in self._catalog:
            return None
        return InstanceInfo.from_catalog(self._catalog, pid, endpoint, variant, instance_type)

    def _record(self, info: InstanceInfo, cpu: float | None, rss: int, now: float,
                container: str | None = None) -> None:
        named = {names.ENDPOINT_NAME: info.endpoint, names.VARIANT_NAME: info.variant}
        if container is not None:
            named[names.CONTAINER_NAME] = container
        dims = dimensions(named)
        ns = names.ENDPOINT_INSTANCES
        if cpu is not None:
            cpu = min(cpu, 100.0 * info.vcpu)
            self._aggregator.record(ns, names.CPU_UTILIZATION, dims, cpu, names.PERCENT,
                                    timestamp=now)
        if info.memory_limit_bytes > 0:
            mem = min(100.0 * rss / info.memory_limit_bytes, 100.0)
            self._aggregator.record(ns, names.MEMORY_UTILIZATION, dims, mem, names.PERCENT,
                                    timestamp=now)
