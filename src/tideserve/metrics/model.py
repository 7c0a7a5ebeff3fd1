"""The metric datapoint: the contract between publishers (aggregator), the store, and readers
(CloudWatch API, alarms, autoscaling, simulator).

A metric is (namespace, metric name, exact dimension set) as in CloudWatch (§5.4); each
datapoint is the statistic set of one period of it, in one unit, plus a quantile sketch so
percentiles survive aggregation into longer periods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tideserve.metrics.sketch import Sketch, merge_sketches

# ((name, value), ...) sorted by name: hashable, so it keys dicts on the hot path.
Dimensions = tuple[tuple[str, str], ...]


def dimensions(items: Mapping[str, str] | Iterable[tuple[str, str]] = (), **kw: str) -> Dimensions:
    """Canonical dimensions: dimensions({"VariantName": "v", "EndpointName": "e"}) or
    dimensions(EndpointName="e", VariantName="v"). Build once per series, not per request."""
    pairs = dict(items.items() if isinstance(items, Mapping) else items)
    pairs.update(kw)
    return tuple(sorted(pairs.items()))


@dataclass(frozen=True)
class Datapoint:
    namespace: str
    metric_name: str
    dimensions: Dimensions
    timestamp: float  # period start, seconds since the Unix epoch
    unit: str  # CloudWatch StandardUnit, e.g. "Microseconds"; "None" for counts
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    sketch: Sketch | None = None

    @property
    def average(self) -> float:
        """Sum / SampleCount; 0 for the zero published for an idle period (no values)."""
        if self.sample_count:
            return self.sum / self.sample_count
        return 0.0 if self.sum == 0 else math.nan


def merge_datapoints(points: Iterable[Datapoint], *, timestamp: float | None = None) -> Datapoint:
    """One datapoint for several (same series and unit), e.g. five 60-s periods answering a
    300-s query. The timestamp is the given one or the earliest. Percentiles survive only if
    every part has a sketch."""
    items = list(points)
    if not items:
        raise ValueError("merge_datapoints needs at least one datapoint")
    first = items[0]
    sketches = [p.sketch for p in items]
    sketch = None
    if all(s is not None for s in sketches):
        sketch = merge_sketches(s for s in sketches if s is not None)
    return Datapoint(
        namespace=first.namespace,
        metric_name=first.metric_name,
        dimensions=first.dimensions,
        timestamp=min(p.timestamp for p in items) if timestamp is None else timestamp,
        unit=first.unit,
        sample_count=sum(p.sample_count for p in items),
        sum=sum(p.sum for p in items),
        minimum=min(p.minimum for p in items),
        maximum=max(p.maximum for p in items),
        sketch=sketch,
    )
