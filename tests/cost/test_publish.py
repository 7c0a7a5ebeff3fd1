"""Cost as metrics: HourlyCost and CostPerInference per variant, for the last closed period,
through the real aggregator and metric store."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.cost.builders import ARNS, Fleet, at
from tideserve.clock import FakeClock
from tideserve.control.store import ControlStore
from tideserve.cost.ledger import Ledger
from tideserve.cost.publish import NAMESPACE, publish_cost_metrics
from tideserve.cost.sources import invocations_from_metrics, tags_from_store
from tideserve.db import metadata
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.metrics.store import MetricStore
from tideserve.metrics.tables import metric_datapoints, metric_series

M5 = 0.115
SHOP_A = dimensions(EndpointName="shop", VariantName="a")


@pytest.fixture
def metric_store(engine: Engine) -> MetricStore:
    metadata.create_all(engine, tables=[metric_series, metric_datapoints])
    return MetricStore(engine)


def test_hourly_cost_and_cost_per_inference_land_in_the_period_they_describe(
    fleet: Fleet, ledger: Ledger, clock: FakeClock, metric_store: MetricStore
) -> None:
    t0 = at("2024-03-11 10:00:00")
    clock.set(t0)
    aggregator = MetricAggregator(60.0, clock)
    fleet.run("shop", "a", "ml.m5.large", t0 - 3600, None)
    fleet.run("shop", "a", "ml.m5.large", t0 + 30, None)  # scaled out mid-period
    fleet.run("shop", "b", "ml.m5.large", t0 - 3600, t0 + 45)  # scaled in to zero
    # 120 requests to variant a in 10:00:00-10:01:00, none to b.
    aggregator.record("AWS/SageMaker", "Invocations", SHOP_A, 1.0, "None",
                      timestamp=t0 + 10, count=120)

    clock.set(t0 + 65)  # the lead's loop: flush the closed period, then publish for it
    metric_store.put(aggregator.flush(clock.now()))
    published = publish_cost_metrics(aggregator, ledger, invocations_from_metrics(metric_store),
                                     clock.now(), 60.0)
    metric_store.put(aggregator.flush(clock.now()))

    a, b = published
    assert (a.variant, a.period_start, a.invocations) == ("a", t0, 120)
    assert a.hourly_cost == pytest.approx(2 * M5)  # both instances run at 10:01
    assert a.cost_usd == pytest.approx((60 + 30) * M5 / 3600)
    assert a.cost_per_inference == pytest.approx(90 * M5 / 3600 / 120)
    assert (b.hourly_cost, b.cost_per_inference) == (0.0, None)

    def stored(name: str, dims: tuple[tuple[str, str], ...]) -> list[tuple[float, float]]:
        return metric_store.series(NAMESPACE, name, dims, "Average", 60.0, t0, t0 + 120)

    assert stored("HourlyCost", SHOP_A) == [(t0, pytest.approx(2 * M5))]
    assert stored("CostPerInference", SHOP_A) == [(t0, pytest.approx(a.cost_per_inference))]
    shop_b = dimensions(EndpointName="shop", VariantName="b")
    assert stored("HourlyCost", shop_b) == [(t0, 0.0)]
    assert stored("CostPerInference", shop_b) == []


def test_a_variant_without_instances_in_the_period_publishes_nothing(
    fleet: Fleet, ledger: Ledger, clock: FakeClock
) -> None:
    t0 = at("2024-03-11 10:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0 - 3600, t0 - 600)
    aggregator = MetricAggregator(60.0, clock)
    assert publish_cost_metrics(aggregator, ledger, lambda *a: 5.0, t0 + 1, 60.0) == []
    assert aggregator.flush(t0 + 3600) == []


def test_tags_come_from_the_control_store(engine: Engine) -> None:
    import tideserve.control.tables as control_tables

    metadata.create_all(engine, tables=[control_tables.tags])
    store = ControlStore(engine)
    store.put_tags(ARNS.endpoint("shop"), [{"Key": "team", "Value": "retail"}])
    tags_for = tags_from_store(store)
    assert tags_for(ARNS.endpoint("shop")) == {"team": "retail"}
    assert tags_for(ARNS.endpoint("other")) == {}
