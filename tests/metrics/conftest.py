from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tideserve.clock import FakeClock
from tideserve.db import make_engine, metadata
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.cloudwatch import CloudWatchMetrics
from tideserve.metrics.store import MetricStore
from tideserve.metrics.tables import metric_datapoints, metric_series

# 2023-11-14T22:13:20Z, on a minute boundary (1_700_000_000 % 60 == 20, so shift by 40 s).
T0 = 1_700_000_040.0


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    # Only our tables: the suite must not depend on other packages' table modules.
    metadata.create_all(engine, tables=[metric_series, metric_datapoints])
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(engine: Engine) -> MetricStore:
    return MetricStore(engine)


@pytest.fixture
def aggregator() -> MetricAggregator:
    return MetricAggregator(60.0)


@pytest.fixture
def cw(store: MetricStore, aggregator: MetricAggregator, clock: FakeClock) -> CloudWatchMetrics:
    return CloudWatchMetrics(store, aggregator, clock)
