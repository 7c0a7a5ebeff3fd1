"""Fixtures for the cost tests: a SQLite ledger in tmp_path on a FakeClock, and builders that
read like the story they tell ("an ml.m5.large of endpoint shop ran from 23:00 to 01:00")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

import tideserve.cost.tables  # noqa: F401  (registers the ledger's tables)
from tideserve.clock import FakeClock
from tideserve.control.names import Arns
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.cost.tables import heartbeat, instance_usage
from tideserve.db import make_engine, metadata

ARNS = Arns("us-east-1", "123456789012")
DAY = 86400.0
HOUR = 3600.0


def at(text: str) -> float:
    """'2024-03-10 23:59:30' (UTC) -> epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


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


class Fleet:
    """Starts and stops metered instances by name: run('shop', 'a', 'ml.m5.large', t0, t1)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.count = 0

    def start(self, endpoint: str, variant: str, instance_type: str, t: float,
              purchase_option: str = "OnDemand") -> str:
        self.count += 1
        instance_id = f"{endpoint}-{self.count:04d}"
        self.ledger.instance_started(instance_id, ARNS.endpoint(endpoint), endpoint, variant,
                                     instance_type, purchase_option, at=t)
        return instance_id

    def run(self, endpoint: str, variant: str, instance_type: str, t0: float,
            t1: float | None, purchase_option: str = "OnDemand") -> str:
        instance_id = self.start(endpoint, variant, instance_type, t0, purchase_option)
        if t1 is not None:
            self.ledger.instance_stopped(instance_id, at=t1)
        return instance_id


@pytest.fixture
def fleet(ledger: Ledger) -> Fleet:
    return Fleet(ledger)
