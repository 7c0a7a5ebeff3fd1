"""A real SQLite database in tmp_path with autoscaling's service layer on top."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.autoscaling.harness import T0, FakeEndpoint, Fleet
from tideserve.autoscaling import tables  # noqa: F401  (registers the tables)
from tideserve.autoscaling.aas_api import AutoScalingApi
from tideserve.autoscaling.alarms_api import CloudWatchAlarms
from tideserve.autoscaling.storage import MemoryScalingStore, ScalingStorage
from tideserve.autoscaling.store import ScalingStore
from tideserve.clock import FakeClock
from tideserve.db import make_engine, metadata, sqlite_url
from tideserve.schema import create_all
from tideserve.settings import Settings


@dataclass
class Env:
    path: Path
    engine: Engine
    clock: FakeClock
    fleet: Fleet
    store: ScalingStorage
    aas: AutoScalingApi
    cw: CloudWatchAlarms
    settings: Settings


def make_env(path: Path, settings: Settings | None = None, fleet: Fleet | None = None,
             clock: FakeClock | None = None, memory: bool = False) -> Env:
    """`memory`: the service layer on the simulator's MemoryScalingStore instead of SQLite."""
    engine = make_engine(sqlite_url(path))
    create_all(engine)
    metadata.create_all(engine)
    clock = clock or FakeClock(T0)
    settings = settings or Settings(state_dir=path)
    fleet = fleet or Fleet(clock, ep=FakeEndpoint(2), other=FakeEndpoint(1),
                           third=FakeEndpoint(1))
    store: ScalingStorage = MemoryScalingStore() if memory else ScalingStore(engine)
    return Env(path, engine, clock, fleet, store, AutoScalingApi(store, fleet, clock, settings),
               CloudWatchAlarms(store, clock, settings), settings)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)
