"""The per-container metrics of a multi-container variant (spec hosting-jobs §2.4), from the
front's report: ContainerLatency for each container that ran, and with direct invocation the
invoked container's Invocations, 4XX/5XX errors and OverheadLatency under ContainerName too."""

from __future__ import annotations

from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.serving.containers.report import DIRECT, ContainerLayout, ContainerReport


def container_errors(status: int, failed: bool) -> tuple[int, int, int]:
    """(4XX, 5XX, model error) for an answer of `status` (0: no answer came)."""
    return int(400 <= status < 500), int(status >= 500), int(failed)


def record_per_container(metrics: MetricAggregator, endpoint: str, variant: str,
                         layout: ContainerLayout, report: ContainerReport,
                         errors: tuple[int, int, int], total_us: float,
                         target: str | None) -> None:
    for name, us in report.latencies:
        dims = dimensions(EndpointName=endpoint, VariantName=variant, ContainerName=name)
        metrics.put(catalogue.CONTAINER_LATENCY, dims, us)
    if layout.mode != DIRECT or target is None:
        return
    model_us = report.model_us
    dims = dimensions(EndpointName=endpoint, VariantName=variant, ContainerName=target)
    invocations, four, five, overhead = catalogue.PER_CONTAINER_IN_DIRECT
    metrics.put_many(dims, (
        (invocations, 1.0), (four, float(errors[0])), (five, float(errors[1])),
        (overhead, max(0.0, total_us - model_us)),
    ))
