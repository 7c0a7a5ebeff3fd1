"""The store: periods in, CloudWatch statistics out; exact dimension matching; roll-up of 60-s
rows into longer query periods with percentiles intact; retention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import Datapoint, dimensions
from tideserve.metrics.sketch import SketchBuilder
from tideserve.metrics.store import RETENTION_SECONDS, MetricStore

T0 = 1_700_000_040.0  # on a minute boundary
NS = names.SAGEMAKER
V1 = dimensions(EndpointName="ep", VariantName="v1")


def nearest_rank(values: np.ndarray, pct: float) -> float:
    """The reference percentile: the smallest value with pct % of the values at or below it."""
    ordered = np.sort(values)
    return float(ordered[max(math.ceil(pct / 100 * len(ordered) - 1e-9), 1) - 1])


def point(t: float, value: float, dims=V1, name=names.INVOCATIONS, unit="None") -> Datapoint:
    b = SketchBuilder()
    b.add(value)
    return Datapoint(NS, name, dims, t, unit, 1, value, value, value, b.freeze())


def test_statistics_per_stored_period(store: MetricStore) -> None:
    store.put([point(T0, 5), point(T0 + 60, 7)])
    out = store.statistics(NS, names.INVOCATIONS, V1, T0, T0 + 120, 60, ["Sum", "SampleCount"])
    assert [(p["Timestamp"].timestamp(), p["Sum"], p["SampleCount"], p["Unit"]) for p in out] == [
        (T0, 5, 1, "None"), (T0 + 60, 7, 1, "None")
    ]


def test_a_300s_query_merges_five_60s_periods_percentiles_included(store: MetricStore) -> None:
    rng = np.random.default_rng(11)
    agg = MetricAggregator(60)
    values = rng.lognormal(7.0, 0.8, size=3000)
    for i, x in enumerate(values):  # spread over five minutes
        agg.record(NS, names.MODEL_LATENCY, V1, float(x), names.MICROSECONDS,
                   timestamp=T0 + i * 0.1)
    store.put(agg.flush(T0 + 300))
    [dp] = store.statistics(NS, names.MODEL_LATENCY, V1, T0, T0 + 300, 300,
                            ["Average", "Minimum", "Maximum"], ["p50", "p99"])
    assert dp["Average"] == pytest.approx(values.mean())
    assert dp["Minimum"] == values.min() and dp["Maximum"] == values.max()
    for pct in (50, 99):
        expected = nearest_rank(values, pct)
        assert dp["ExtendedStatistics"][f"p{pct}"] == pytest.approx(expected, rel=0.02)


def test_dimension_sets_match_exactly(store: MetricStore) -> None:
    endpoint_only = dimensions(EndpointName="ep")
    with_extra = dimensions(EndpointName="ep", VariantName="v1", Extra="x")
    store.put([point(T0, 1, V1), point(T0, 10, endpoint_only), point(T0, 100, with_extra)])

    def total(dims) -> list[float]:
        return [p["Sum"] for p in store.statistics(NS, names.INVOCATIONS, dims, T0, T0 + 60,
                                                   60, ["Sum"])]

    assert total(V1) == [1]
    assert total(endpoint_only) == [10]
    assert total(with_extra) == [100]
    assert total(()) == []


def test_units_are_kept_apart_and_filtered(store: MetricStore) -> None:
    store.put([point(T0, 1, unit="Count"), point(T0, 2, unit="None")])
    both = store.statistics(NS, names.INVOCATIONS, V1, T0, T0 + 60, 60, ["Sum"])
    assert sorted((p["Unit"], p["Sum"]) for p in both) == [("Count", 1), ("None", 2)]
    only = store.statistics(NS, names.INVOCATIONS, V1, T0, T0 + 60, 60, ["Sum"], unit="Count")
    assert [(p["Unit"], p["Sum"]) for p in only] == [("Count", 1)]


def test_rows_for_the_same_period_merge(store: MetricStore) -> None:
    store.put([point(T0, 1)])
    store.put([point(T0, 2)])  # a late flush of the same period
    [dp] = store.statistics(NS, names.INVOCATIONS, V1, T0, T0 + 60, 60, ["Sum", "SampleCount"])
    assert (dp["Sum"], dp["SampleCount"]) == (3, 2)


def test_series_for_alarms_skips_periods_without_data(store: MetricStore) -> None:
    store.put([point(T0, 4), point(T0 + 120, 6)])
    assert store.series(NS, names.INVOCATIONS, V1, "Sum", 60, T0, T0 + 180) == [
        (T0, 4.0), (T0 + 120, 6.0)
    ]
    assert store.series(NS, names.INVOCATIONS, V1, "p90", 180, T0, T0 + 180) == [
        (T0, pytest.approx(6.0, rel=0.01))
    ]


def test_percentiles_are_omitted_when_a_value_is_negative(store: MetricStore) -> None:
    b = SketchBuilder()
    b.add(-3.0)
    store.put([Datapoint("App", "Delta", (), T0, "None", 1, -3, -3, -3, b.freeze())])
    [dp] = store.statistics("App", "Delta", (), T0, T0 + 60, 60, (), ["p50"])
    assert dp["ExtendedStatistics"] == {}
    assert store.series("App", "Delta", (), "p50", 60, T0, T0 + 60) == []


def test_list_metrics_filters(store: MetricStore) -> None:
    v2 = dimensions(EndpointName="ep", VariantName="v2")
    store.put([point(T0, 1, V1), point(T0, 1, v2),
               point(T0, 1, V1, name=names.MODEL_LATENCY, unit="Microseconds")])
    assert len(store.list_metrics(NS)) == 3
    assert store.list_metrics(NS, names.MODEL_LATENCY) == [(NS, names.MODEL_LATENCY, V1)]
    assert [m[2] for m in store.list_metrics(NS, names.INVOCATIONS, [("VariantName", "v2")])] == [
        v2
    ]
    assert len(store.list_metrics(dimension_filters=[("VariantName", None)])) == 3
    assert store.list_metrics(dimension_filters=[("Missing", None)]) == []
    assert store.list_metrics("Other") == []


def test_rows_older_than_fifteen_days_are_pruned_on_put(store: MetricStore) -> None:
    store.put([point(T0, 1)])
    later = T0 + RETENTION_SECONDS + 3600
    store.put([point(later, 2)])
    assert store.datapoints(NS, names.INVOCATIONS, V1, 0, later + 60) == [point(later, 2)]


def test_retention_can_be_shortened_for_a_compressed_period(engine) -> None:
    store = MetricStore(engine, retention_seconds=600)
    store.put([point(T0, 1)])
    store.put([point(T0 + 660, 2)])
    assert store.datapoints(NS, names.INVOCATIONS, V1, 0, T0 + 720) == [point(T0 + 660, 2)]
