"""The async backlog metrics (spec §5.2), dimension {EndpointName} only, sampled several
times a period so each period's Average is the backlog over the period, and published every
period whatever the backlog: the scale-from-zero alarm on HasBacklogWithoutCapacity must see
a 0 or a 1 each period (§1.8), and a TT AlarmLow must see the empty queue to scale in."""

from __future__ import annotations

from dataclasses import dataclass

from tideserve.asyncinf import backlog_formula as formula
from tideserve.asyncinf.queue import Backlog
from tideserve.metrics import catalogue
from tideserve.metrics import names as n
from tideserve.metrics.aggregator import MetricAggregator


@dataclass(frozen=True)
class BacklogSample:
    size: int  # ApproximateBacklogSize: queued + in processing
    per_instance: float  # ApproximateBacklogSizePerInstance
    age_of_oldest: float  # ApproximateAgeOfOldestRequest, seconds
    without_capacity: int  # HasBacklogWithoutCapacity: 1 or 0


def backlog_sample(backlog: Backlog | None, instances: int, now: float) -> BacklogSample:
    """The sample at `now` (backlog_formula.py has the formulas the simulator shares)."""
    size = backlog.size if backlog else 0
    oldest = backlog.oldest_enqueued_at if backlog else None
    return BacklogSample(
        size=size,
        per_instance=float(formula.per_instance(size, instances)),
        age_of_oldest=max(0.0, now - oldest) if oldest is not None else 0.0,
        without_capacity=int(formula.without_capacity(size, instances)),
    )


def record_backlog(metrics: MetricAggregator, endpoint: str, sample: BacklogSample,
                   now: float) -> None:
    dims = ((n.ENDPOINT_NAME, endpoint),)
    put = metrics.put
    put(catalogue.BACKLOG_SIZE, dims, float(sample.size), timestamp=now)
    put(catalogue.BACKLOG_SIZE_PER_INSTANCE, dims, sample.per_instance, timestamp=now)
    put(catalogue.AGE_OF_OLDEST_REQUEST, dims, sample.age_of_oldest, timestamp=now)
    put(catalogue.BACKLOG_WITHOUT_CAPACITY, dims, float(sample.without_capacity), timestamp=now)
