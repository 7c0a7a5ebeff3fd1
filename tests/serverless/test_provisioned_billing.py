"""Provisioned concurrency is billed for the whole time it is configured, per provisioned
GB-second (spec §6.1), beside the on-demand GB-seconds of request duration: both reach the
cost ledger once per period as closed rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tideserve.clock import FakeClock
from tideserve.cost.billing import Interval, cost_of
from tideserve.cost.catalog import (
    SERVERLESS_PROVISIONED_USD_PER_GB_SECOND,
    SERVERLESS_USD_PER_GB_SECOND,
    Catalog,
)
from tideserve.cost.ledger import Ledger, Usage
from tideserve.cost.tables import heartbeat, instance_usage
from tideserve.db import make_engine, metadata
from tideserve.serverless.billing import Metered, ProvisionedMeter, ServerlessBilling

T0 = 1_700_000_040.0  # a minute boundary
WHO = Metered("arn:aws:sagemaker:us-east-1:123456789012:endpoint/e", "e", "AllTraffic", 2048)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'cost.db'}")
    metadata.create_all(engine, tables=[instance_usage, heartbeat])
    try:
        yield Ledger(engine, Catalog.default(), FakeClock(T0))
    finally:
        engine.dispose()


def cost(rows: list[Usage]) -> float:
    return sum(cost_of(r.interval(0), r.rate_per_hour, Interval(0, 1e12)) for r in rows)


def by_type(rows: list[Usage], suffix: str) -> list[Usage]:
    return [r for r in rows if r.instance_type.endswith(suffix)]


def test_provisioned_units_integrate_into_unit_seconds() -> None:
    meter = ProvisionedMeter(since=0.0)
    meter.set(0.0, 1)
    meter.set(20.0, 3)  # raised by a scaling policy
    assert meter.take(60.0) == pytest.approx(1 * 20 + 3 * 40)
    assert meter.take(120.0) == pytest.approx(3 * 60)  # a quiet period still costs
    meter.set(150.0, 0)  # the endpoint is deleted
    assert meter.take(180.0) == pytest.approx(3 * 30)
    assert meter.take(240.0) == 0.0


def test_a_change_just_after_the_period_end_is_billed_in_that_period() -> None:
    # The flush runs a few ms after the boundary; a change in between is not lost.
    meter = ProvisionedMeter(since=0.0, units=2)
    meter.set(60.005, 1)
    assert meter.take(60.0) == pytest.approx(2 * 60.005)
    assert meter.take(120.0) == pytest.approx(1 * (120 - 60.005))


def test_provisioned_and_on_demand_seconds_are_separate_rows_at_their_rates(
        ledger: Ledger) -> None:
    billing = ServerlessBilling(ledger, period=60.0)
    billing.provision(WHO, 2, T0)  # ProvisionedConcurrency 2 at 2 GB from T0
    billing.add(WHO, 1.5)  # one request of 1.5 s
    rows = billing.flush(T0 + 60.01)

    on_demand, provisioned = by_type(rows, "2gb"), by_type(rows, ".provisioned")
    assert [r.instance_type for r in provisioned] == ["ml.serverless.2gb.provisioned"] * 2
    assert all((r.start, r.end) == (T0, T0 + 60) for r in provisioned)  # one per unit
    # 2 units x 2 GB x 60 s = 240 provisioned GB-seconds; 1.5 s x 2 GB = 3 GB-seconds.
    assert cost(provisioned) == pytest.approx(240 * SERVERLESS_PROVISIONED_USD_PER_GB_SECOND)
    assert cost(on_demand) == pytest.approx(3 * SERVERLESS_USD_PER_GB_SECOND)
    assert sorted(r.instance_id for r in ledger.usage(T0, T0 + 60)) == sorted(
        r.instance_id for r in rows)

    billing.provision(WHO, 0, T0 + 90)  # deleted half-way through the next period
    rows = billing.flush(T0 + 120.01)
    assert cost(rows) == pytest.approx(2 * 2 * 30 * SERVERLESS_PROVISIONED_USD_PER_GB_SECOND)
    assert billing.flush(T0 + 180.01) == []  # nothing configured, nothing billed


def test_on_demand_only_endpoints_have_no_provisioned_rows(ledger: Ledger) -> None:
    billing = ServerlessBilling(ledger, period=60.0)
    billing.provision(WHO, 0, T0)
    billing.add(WHO, 0.25)
    assert [r.instance_type for r in billing.flush(T0 + 60.01)] == ["ml.serverless.2gb"]
