"""In-memory aggregation of metric values per period: the hot path's only metrics work.

The router calls `put_many` once per request: a lock, then per metric two dict lookups and a
few float operations (see bench/metrics_record.py). Nothing touches the database; once per
period the lead's loop calls `flush(now)` and hands the closed periods to MetricStore.put.

Two kinds of state per series (namespace, metric name, dimensions, unit):
- open periods: statistic set + sketch per period start; `flush` returns and forgets the closed
  ones (period start + period <= now), as CloudWatch serves only closed periods;
- cumulative totals (count, sum, last value) that flush never resets, for Prometheus counters.

Late values (a timestamp in a period already flushed) open that period again; the next flush
emits a second datapoint for it and the store merges the two, so nothing is lost.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from tideserve.clock import Clock, WallClock
from tideserve.metrics.catalogue import Metric
from tideserve.metrics.model import Datapoint, Dimensions
from tideserve.metrics.sketch import SketchBuilder

SeriesKey = tuple[str, str, Dimensions, str]  # namespace, metric name, dimensions, unit


class _Period:
    __slots__ = ("sample_count", "sum", "minimum", "maximum", "sketch")

    def __init__(self) -> None:
        self.sample_count = 0.0
        self.sum = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.sketch = SketchBuilder()


class _Series:
    __slots__ = ("count", "sum", "last", "periods")

    def __init__(self) -> None:
        self.count = 0.0
        self.sum = 0.0
        self.last = math.nan
        self.periods: dict[float, _Period] = {}


@dataclass(frozen=True)
class SeriesTotals:
    """Cumulative since start-up, for Prometheus: `count` values summing to `sum`; `last` is
    the most recent value (for gauges such as CPUUtilization)."""

    namespace: str
    metric_name: str
    dimensions: Dimensions
    unit: str
    count: float
    sum: float
    last: float


class MetricAggregator:
    def __init__(self, period: float, clock: Clock | None = None) -> None:
        """`period` in seconds; `clock` stamps values recorded without a timestamp (the
        wall clock unless injected: the simulator and tests pass theirs)."""
        if period <= 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = float(period)
        self.clock: Clock = clock or WallClock()
        self._series: dict[SeriesKey, _Series] = {}
        self._lock = threading.Lock()

    def record(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        value: float,
        unit: str = "None",
        *,
        timestamp: float | None = None,
        count: float = 1.0,
    ) -> None:
        """Add `value` (`count` times, for PutMetricData Values/Counts) at `timestamp` (epoch
        seconds; now by default). `dimensions` must be canonical: sorted by name, as
        model.dimensions() builds them, once per series rather than per request."""
        if timestamp is None:
            timestamp = self.clock.now()
        start = timestamp - timestamp % self.period
        with self._lock:
            self._add((namespace, name, dimensions, unit), start, value, count)

    def _add(self, key: SeriesKey, start: float, value: float, count: float) -> None:
        """One value into its series' period; the caller holds the lock."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        p = series.periods.get(start)
        if p is None:
            p = series.periods[start] = _Period()
        p.sample_count += count
        p.sum += value * count
        if value < p.minimum:
            p.minimum = value
        if value > p.maximum:
            p.maximum = value
        p.sketch.add(value, count)
        series.count += count
        series.sum += value * count
        series.last = value

    def put(self, metric: Metric, dimensions: Dimensions, value: float, *,
            timestamp: float | None = None) -> None:
        """record() for a catalogue metric: its namespace, name and unit."""
        self.record(metric.namespace, metric.name, dimensions, value, metric.unit,
                    timestamp=timestamp)

    def put_many(self, dimensions: Dimensions, values: Sequence[tuple[Metric, float]], *,
                 timestamp: float | None = None) -> None:
        """put() for several catalogue metrics of one series' dimensions, at one time: what
        a request records (the router's seven values), for one clock read and one lock."""
        if timestamp is None:
            timestamp = self.clock.now()
        start = timestamp - timestamp % self.period
        add = self._add
        with self._lock:
            for metric, value in values:
                add((metric.namespace, metric.name, dimensions, metric.unit), start, value, 1.0)

    def ensure_zero(self, metric: Metric, dimensions: Dimensions) -> None:
        """ensure() for a catalogue metric in the current period."""
        self.ensure(metric.namespace, metric.name, dimensions, metric.unit)

    def record_statistics(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        *,
        sample_count: float,
        sum: float,
        minimum: float,
        maximum: float,
        unit: str = "None",
        timestamp: float | None = None,
    ) -> None:
        """Add a pre-aggregated statistic set (PutMetricData StatisticValues)."""
        if timestamp is None:
            timestamp = self.clock.now()
        start = timestamp - timestamp % self.period
        key = (namespace, name, dimensions, unit)
        with self._lock:
            series = self._series.setdefault(key, _Series())
            p = series.periods.setdefault(start, _Period())
            p.sample_count += sample_count
            p.sum += sum
            p.minimum = min(p.minimum, minimum)
            p.maximum = max(p.maximum, maximum)
            p.sketch.add_statistic_set(sample_count, minimum, maximum)
            series.count += sample_count
            series.sum += sum
            series.last = maximum

    def ensure(
        self, namespace: str, name: str, dimensions: Dimensions, unit: str = "None", *,
        timestamp: float | None = None,
    ) -> None:
        """Make the period holding `timestamp` publish a datapoint for this series even with no
        values: it then flushes as a zero (Sum/Min/Max/Average 0, SampleCount 0 — a count of
        values, and no request was made, so Invocations' SampleCount stays the request count
        over any window), the way SageMaker publishes zeros for an idle variant so scale-in
        alarms see data (§5.1).
        The server calls this for catalogue.zero_filled(kind) once per period per live variant;
        values recorded in the same period replace the zero rather than adding to it."""
        if timestamp is None:
            timestamp = self.clock.now()
        start = timestamp - timestamp % self.period
        key = (namespace, name, dimensions, unit)
        with self._lock:
            series = self._series.setdefault(key, _Series())
            series.periods.setdefault(start, _Period())

    def flush(self, now: float) -> list[Datapoint]:
        """Return and forget every period that has closed (start + period <= now)."""
        closed: list[tuple[SeriesKey, float, _Period]] = []
        with self._lock:
            for key, series in self._series.items():
                if not series.periods:
                    continue
                for start in [s for s in series.periods if s + self.period <= now]:
                    closed.append((key, start, series.periods.pop(start)))
        closed.sort(key=lambda c: (c[1], c[0]))
        return [_datapoint(key, start, p) for key, start, p in closed]

    def totals(self) -> list[SeriesTotals]:
        with self._lock:
            return [
                SeriesTotals(k[0], k[1], k[2], k[3], s.count, s.sum, s.last)
                for k, s in self._series.items()
            ]

    def forget(self, dimensions: Dimensions) -> None:
        """Drop every series with exactly these dimensions (e.g. a deleted variant), open
        periods included, so neither memory nor the Prometheus page grows forever."""
        with self._lock:
            for key in [k for k in self._series if k[2] == dimensions]:
                del self._series[key]

    def forget_endpoints_except(self, live: set[str], namespaces: frozenset[str]) -> None:
        """Drop every series of `namespaces` whose EndpointName is not in `live` (lower-cased
        names): a deleted endpoint's counters and gauges leave the Prometheus page. Call it
        after a flush, so the closed periods have reached the store."""
        with self._lock:
            for key in [k for k in self._series if k[0] in namespaces]:
                endpoint = _endpoint_of(key[2])
                if endpoint is not None and endpoint not in live:
                    del self._series[key]


def _endpoint_of(dims: Dimensions) -> str | None:
    return next((value.lower() for name, value in dims if name == "EndpointName"), None)


def _datapoint(key: SeriesKey, start: float, p: _Period) -> Datapoint:
    namespace, name, dims, unit = key
    if p.sample_count == 0:  # ensured but idle: publish a zero that counts no request
        return Datapoint(namespace, name, dims, start, unit, 0.0, 0.0, 0.0, 0.0,
                         SketchBuilder().freeze())
    return Datapoint(
        namespace, name, dims, start, unit, p.sample_count, p.sum, p.minimum, p.maximum,
        p.sketch.freeze(),
    )
