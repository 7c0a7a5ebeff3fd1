"""The evidence rightsizing reads: which variants run on which instance types (the ledger),
and their utilisation and invocations over the look-back (the metric store).

Like Cost Explorer, only what is running at the end of the look-back is considered (stopped
and deleted variants need no advice). Usage rows whose type is not in the catalog (serverless
memory sizes) are skipped: they have no instance type to change. GPUUtilization is read when
published (the sampler does not yet) and then joins the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger, Usage
from tideserve.cost.rightsizing import VariantUtilisation
from tideserve.metrics import names
from tideserve.metrics.model import dimensions
from tideserve.metrics.store import MetricStore

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class _Key:
    endpoint: str
    variant: str
    instance_type: str


def gather(metrics: MetricStore, ledger: Ledger, catalog: Catalog, start: float,
           end: float) -> list[VariantUtilisation]:
    """One VariantUtilisation per (endpoint, variant, type) with instances running at `end`,
    sorted by endpoint and variant."""
    running: dict[_Key, int] = {}
    for u in ledger.running(end):
        if u.instance_type in catalog:
            key = _Key(u.endpoint_name, u.variant, u.instance_type)
            running[key] = running.get(key, 0) + 1
    hours = dict(_running_hours(ledger.usage(start, end), start, end))
    out = []
    for key in sorted(running, key=lambda k: (k.endpoint, k.variant, k.instance_type)):
        vcpu = catalog.get(key.instance_type).vcpu
        dims = dimensions(EndpointName=key.endpoint, VariantName=key.variant)
        cpu_p95 = _one(metrics, names.CPU_UTILIZATION, dims, start, end, "p95")
        cpu_max = _one(metrics, names.CPU_UTILIZATION, dims, start, end, "Maximum")
        out.append(VariantUtilisation(
            endpoint=key.endpoint, variant=key.variant, instance_type=key.instance_type,
            instance_count=running[key],
            cpu_p95=None if cpu_p95 is None else cpu_p95 / vcpu,
            cpu_max=None if cpu_max is None else cpu_max / vcpu,
            memory_max=_one(metrics, names.MEMORY_UTILIZATION, dims, start, end, "Maximum"),
            gpu_p95=_one(metrics, names.GPU_UTILIZATION, dims, start, end, "p95"),
            invocations=sum(p.sum for p in metrics.datapoints(
                names.SAGEMAKER, names.INVOCATIONS, dims, start, end, with_sketch=False)),
            running_hours=hours.get(key, 0.0),
        ))
    return out


def _one(metrics: MetricStore, metric: str, dims: tuple[tuple[str, str], ...], start: float,
         end: float, stat: str) -> float | None:
    """`stat` of the whole look-back as one period (None: nothing published)."""
    values = metrics.series(names.ENDPOINT_INSTANCES, metric, dims, stat, end - start, start,
                            end)
    return values[0][1] if values else None


def _running_hours(usages: list[Usage], start: float, end: float) -> Iterator[tuple[_Key, float]]:
    totals: dict[_Key, float] = {}
    for u in usages:
        life = u.interval(end)
        seconds = max(0.0, min(life.end, end) - max(life.start, start))
        key = _Key(u.endpoint_name, u.variant, u.instance_type)
        totals[key] = totals.get(key, 0.0) + seconds / 3600.0
    yield from totals.items()
