"""The in-memory aggregator: per-period statistic sets, closed periods only, zeros for idle
variants, cumulative totals that survive flushes."""

from __future__ import annotations

import threading

import pytest

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions, merge_datapoints

T0 = 1_700_000_040.0  # on a minute boundary

V1 = dimensions(EndpointName="ep", VariantName="v1")
V2 = dimensions(EndpointName="ep", VariantName="v2")
NS = names.SAGEMAKER


def test_dimensions_are_canonical_whatever_the_order() -> None:
    assert dimensions({"VariantName": "v1", "EndpointName": "ep"}) == V1
    assert V1 == (("EndpointName", "ep"), ("VariantName", "v1"))


def test_one_period_yields_sum_count_min_max_average() -> None:
    agg = MetricAggregator(60)
    for i, latency in enumerate([1200.0, 800.0, 4000.0]):
        agg.record(NS, names.MODEL_LATENCY, V1, latency, names.MICROSECONDS, timestamp=T0 + i)
    [dp] = agg.flush(T0 + 60)
    assert (dp.timestamp, dp.unit) == (T0, "Microseconds")
    assert (dp.sample_count, dp.sum, dp.minimum, dp.maximum) == (3, 6000.0, 800.0, 4000.0)
    assert dp.average == 2000.0
    assert dp.sketch is not None and dp.sketch.quantile(1.0) == 4000.0


def test_flush_returns_only_closed_periods_and_forgets_them() -> None:
    agg = MetricAggregator(60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 10)  # period T0
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 70)  # period T0+60, still open
    assert agg.flush(T0 + 59.9) == []  # T0's period closes at T0+60
    assert [d.timestamp for d in agg.flush(T0 + 60)] == [T0]
    assert agg.flush(T0 + 60) == []  # forgotten
    assert [d.timestamp for d in agg.flush(T0 + 120)] == [T0 + 60]


def test_series_differ_by_dimensions_and_by_unit() -> None:
    agg = MetricAggregator(60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0)
    agg.record(NS, names.INVOCATIONS, V2, 1, timestamp=T0)
    agg.record(NS, names.INVOCATIONS, V2, 1, "Count", timestamp=T0)
    points = agg.flush(T0 + 60)
    assert sorted((d.dimensions, d.unit, d.sum) for d in points) == [
        (V1, "None", 1.0), (V2, "Count", 1.0), (V2, "None", 1.0)
    ]


def test_an_idle_variant_publishes_a_zero_and_traffic_replaces_it() -> None:
    agg = MetricAggregator(60)
    agg.ensure(NS, names.INVOCATIONS, V1, timestamp=T0)  # idle
    agg.ensure(NS, names.INVOCATIONS, V2, timestamp=T0)  # busy: ensure, then two requests
    agg.record(NS, names.INVOCATIONS, V2, 1, timestamp=T0 + 5)
    agg.record(NS, names.INVOCATIONS, V2, 1, timestamp=T0 + 6)
    by_variant = {d.dimensions: d for d in agg.flush(T0 + 60)}
    idle, busy = by_variant[V1], by_variant[V2]
    # The idle zero is a value of 0 that counts no request: SampleCount stays the request count.
    assert (idle.sample_count, idle.sum, idle.minimum, idle.maximum, idle.average) == (
        0, 0, 0, 0, 0)
    assert (busy.sample_count, busy.sum, busy.minimum) == (2, 2, 1)
    # The next period publishes nothing unless ensured again (the router ensures each period).
    assert agg.flush(T0 + 120) == []


def test_sample_count_over_a_minute_of_short_periods_is_the_request_count() -> None:
    # --period 10: six 10-s periods answer one 60-s query; 6 requests fall in one of them
    agg = MetricAggregator(10)
    for offset in range(0, 60, 10):
        agg.ensure(NS, names.INVOCATIONS, V1, timestamp=T0 + offset)
    for i in range(6):
        agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 20 + i)
    minute = merge_datapoints(agg.flush(T0 + 60), timestamp=T0)
    assert (minute.sample_count, minute.sum) == (6, 6)


def test_a_late_value_for_a_flushed_period_flushes_again() -> None:
    agg = MetricAggregator(60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0)
    agg.flush(T0 + 60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 30)  # arrives after the flush
    [late] = agg.flush(T0 + 61)
    assert (late.timestamp, late.sum) == (T0, 1.0)


def test_values_with_counts_and_statistic_sets() -> None:
    agg = MetricAggregator(60)
    agg.record("App", "Size", (), 10.0, timestamp=T0, count=3)
    agg.record_statistics("App", "Size", (), sample_count=2, sum=50.0, minimum=20.0,
                          maximum=30.0, timestamp=T0)
    [dp] = agg.flush(T0 + 60)
    assert (dp.sample_count, dp.sum, dp.minimum, dp.maximum) == (5, 80.0, 10.0, 30.0)
    assert dp.sketch is not None and dp.sketch.quantile(0.5) is None  # a set with spread


def test_cumulative_totals_survive_flushes_and_forget_drops_a_variant() -> None:
    agg = MetricAggregator(60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0)
    agg.flush(T0 + 60)
    agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 60)
    [t] = agg.totals()
    assert (t.count, t.sum, t.last) == (2, 2, 1)
    agg.forget(V1)
    assert agg.totals() == [] and agg.flush(T0 + 1000) == []


def test_concurrent_records_are_all_counted() -> None:
    agg = MetricAggregator(60)

    def worker() -> None:
        for _ in range(2000):
            agg.record(NS, names.INVOCATIONS, V1, 1, timestamp=T0 + 1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [dp] = agg.flush(T0 + 60)
    assert dp.sum == 8000


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MetricAggregator(0)


def test_a_request_recorded_at_once_flushes_as_the_same_values_one_by_one() -> None:
    from tideserve.metrics import catalogue

    request = [(catalogue.INVOCATIONS, 1.0), (catalogue.MODEL_LATENCY, 850.0),
               (catalogue.INVOCATION_4XX_ERRORS, 0.0)]
    at_once, one_by_one = MetricAggregator(60), MetricAggregator(60)
    for i in range(3):
        at_once.put_many(V1, request, timestamp=T0 + i)
        for metric, value in request:
            one_by_one.put(metric, V1, value, timestamp=T0 + i)
    flushed = at_once.flush(T0 + 60)
    assert flushed == one_by_one.flush(T0 + 60)
    assert [(dp.metric_name, dp.sample_count, dp.sum) for dp in flushed] == [
        ("Invocation4XXErrors", 3.0, 0.0), ("Invocations", 3.0, 3.0),
        ("ModelLatency", 3.0, 2550.0)]
