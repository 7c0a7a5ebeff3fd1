"""What a serverless variant publishes once per metric period (spec §5.1, and SageMaker's
serverless monitoring page, whose list it calls exhaustive):

    AWS/SageMaker             zeros for Invocations and the error counts of an idle variant;
                              ServerlessConcurrentExecutionsUtilization (executions over
                              MaxConcurrency); with ProvisionedConcurrency, its Utilization
                              and Executions, and zeros for its Invocations/Spillover counts
    /aws/sagemaker/Endpoints  MemoryUtilization of each worker (resident memory over
                              MemorySizeInMB), through the InstanceSampler instances use

Serverless endpoints publish no CPUUtilization, so the workers' sampler writes through a
sink that keeps only MemoryUtilization.
"""

from __future__ import annotations

from typing import cast

from tideserve.metrics import catalogue, names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.system import InstanceInfo, InstanceSampler
from tideserve.serverless.pool import ServerlessPool


def publish_period(metrics: MetricAggregator, pool: ServerlessPool, now: float,
                   closed: float) -> None:
    """The variant's AWS/SageMaker values for the period that started at `closed` and has
    just ended (`now` is a few ms past its end)."""
    dims = (("EndpointName", pool.endpoint), ("VariantName", pool.variant))
    provisioned = pool.config.provisioned_concurrency > 0
    for metric in catalogue.zero_filled(catalogue.SERVERLESS, provisioned):
        metrics.ensure_zero(metric, dims)
    put = metrics.put
    put(catalogue.CONCURRENT_EXECUTIONS_UTILIZATION, dims, pool.concurrency_utilization(now),
        timestamp=closed)
    if pool.config.provisioned_concurrency:
        utilization, peak = pool.utilization(now)
        put(catalogue.PC_UTILIZATION, dims, utilization, timestamp=closed)
        put(catalogue.PC_EXECUTIONS, dims, float(peak), timestamp=closed)


class _MemoryOnly:
    """The part of MetricAggregator InstanceSampler writes to, passing on MemoryUtilization
    only."""

    def __init__(self, inner: MetricAggregator) -> None:
        self.inner = inner
        self.clock = inner.clock

    def record(self, namespace: str, name: str, dims: tuple[tuple[str, str], ...],
               value: float, unit: str, timestamp: float | None = None) -> None:
        if name == names.MEMORY_UTILIZATION:
            self.inner.record(namespace, name, dims, value, unit, timestamp=timestamp)


class WorkerSampler:
    """MemoryUtilization of serverless workers, sampled like instances."""

    def __init__(self, metrics: MetricAggregator) -> None:
        self.sampler = InstanceSampler(cast(MetricAggregator, _MemoryOnly(metrics)))

    def sample(self, pools: list[ServerlessPool], now: float) -> None:
        infos: dict[str, InstanceInfo] = {}
        for pool in pools:
            vcpu = pool.config.instance_type().vcpu
            limit = pool.config.memory_mb * 2**20
            for worker in pool.workers:
                pid = getattr(worker.handle, "pid", None)
                if isinstance(pid, int):
                    infos[worker.worker_id] = InstanceInfo(pid, vcpu, limit, pool.endpoint,
                                                           pool.variant)
        self.sampler.sample(infos, now)
