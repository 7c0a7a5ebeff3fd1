"""Fixtures for the cost tests: a SQLite ledger in tmp_path on a FakeClock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.cost.builders import Fleet, at
from tideserve.clock import FakeClock
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.cost.tables import heartbeat, instance_usage
from tideserve.db import make_engine, metadata


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cost.db'}")
    metadata.create_all(engine, tables=[instance_usage, heartbeat])
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2024-03-12 00:00:00"))


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.default()


@pytest.fixture
def ledger(engine: Engine, catalog: Catalog, clock: FakeClock) -> Ledger:
    return Ledger(engine, catalog, clock)


@pytest.fixture
def fleet(ledger: Ledger) -> Fleet:
    return Fleet(ledger)
