"""Prometheus text exposition of the aggregator's cumulative totals (never reset by flush).

Mapping from a CloudWatch series to a Prometheus family, by what the metric means:
- levels sampled each period (the async backlog gauges, whatever their unit) -> gauge
  `tideserve_<snake_name>` = last value;
- counting metrics (Invocations, the error counts, custom unit Count) -> counter
  `tideserve_<snake_name>_total` = cumulative Sum;
- time units (Microseconds, Milliseconds, Seconds) -> summary
  `tideserve_<snake_name>_<unit>` with _count and _sum (e.g. tideserve_model_latency_microseconds);
- Percent and everything else -> gauge `tideserve_<snake_name>` = last value recorded.
Dimensions become labels (EndpointName -> endpoint, VariantName -> variant, others snake_case),
plus `namespace`; families take the union of their series' label names ("" where absent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tideserve.metrics import catalogue, names
from tideserve.metrics.aggregator import MetricAggregator, SeriesTotals

_COUNTERS = {*(m.name for m in catalogue.zero_filled(catalogue.REAL_TIME)),
             names.INVOCATIONS_PROCESSED, names.INVOCATION_FAILURES}
# Levels sampled once per period, whatever their unit: the last value is what they mean.
_GAUGES = {names.APPROXIMATE_BACKLOG_SIZE, names.APPROXIMATE_BACKLOG_SIZE_PER_INSTANCE,
           names.HAS_BACKLOG_WITHOUT_CAPACITY, names.APPROXIMATE_AGE_OF_OLDEST_REQUEST,
           names.CONCURRENT_REQUESTS_PER_MODEL}
_TIME_UNITS = {"Microseconds": "microseconds", "Milliseconds": "milliseconds",
               "Seconds": "seconds"}
_LABELS = {names.ENDPOINT_NAME: "endpoint", names.VARIANT_NAME: "variant",
           names.INFERENCE_COMPONENT_NAME: "inference_component"}


def snake(name: str) -> str:
    """'InvocationsPerInstance' -> 'invocations_per_instance', 'CPUUtilization' ->
    'cpu_utilization', 'Invocation4XXErrors' -> 'invocation_4xx_errors'."""
    s = re.sub(r"([a-z])([0-9])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return re.sub(r"[^a-zA-Z0-9_]", "_", s).lower()


def _family(t: SeriesTotals) -> tuple[str, str]:
    """(kind, family name) for a series."""
    base = "tideserve_" + snake(t.metric_name)
    if t.metric_name in _GAUGES:
        return "gauge", base
    if t.metric_name in _COUNTERS or t.unit == "Count":
        return "counter", base
    if t.unit in _TIME_UNITS:
        return "summary", f"{base}_{_TIME_UNITS[t.unit]}"
    return "gauge", base


def _labels(t: SeriesTotals) -> dict[str, str]:
    out = {"namespace": t.namespace}
    for name, value in t.dimensions:
        out[_LABELS.get(name) or snake(name)] = value
    return out


class AggregatorCollector(Collector):
    def __init__(self, aggregator: MetricAggregator) -> None:
        self._aggregator = aggregator

    def collect(self) -> Iterator[Metric]:
        grouped: dict[tuple[str, str], list[tuple[SeriesTotals, dict[str, str]]]] = {}
        for t in self._aggregator.totals():
            if t.count > 0:  # ensured-but-idle series have no cumulative value yet
                grouped.setdefault(_family(t), []).append((t, _labels(t)))
        for (kind, name), members in sorted(grouped.items(), key=lambda kv: kv[0][1]):
            label_names = sorted({k for _, labels in members for k in labels})
            doc = f"CloudWatch metric {members[0][0].metric_name} ({members[0][0].unit})"
            family = _make(kind, name, doc, label_names)
            for t, labels in members:
                values = [labels.get(k, "") for k in label_names]
                if isinstance(family, CounterMetricFamily):
                    family.add_metric(values, t.sum)
                elif isinstance(family, SummaryMetricFamily):
                    family.add_metric(values, count_value=int(t.count), sum_value=t.sum)
                elif isinstance(family, GaugeMetricFamily) and not math.isnan(t.last):
                    family.add_metric(values, t.last)
            yield family


def _make(kind: str, name: str, doc: str, labels: list[str]) -> Metric:
    if kind == "counter":
        return CounterMetricFamily(name, doc, labels=labels)
    if kind == "summary":
        return SummaryMetricFamily(name, doc, labels=labels)
    return GaugeMetricFamily(name, doc, labels=labels)


def render(aggregator: MetricAggregator) -> tuple[bytes, str]:
    """(body, Content-Type) for a GET /metrics answer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AggregatorCollector(aggregator))
    return generate_latest(registry), CONTENT_TYPE_LATEST
