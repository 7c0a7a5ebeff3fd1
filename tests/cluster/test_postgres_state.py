"""Every table on a real PostgreSQL server: the migrations create the schema, the control
plane's races resolve as on SQLite, and the leader lock is one server's at a time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from tests.control import test_service_races as races
from tideserve.clock import FakeClock
from tideserve.cluster.leader import Leadership
from tideserve.cluster.migrate import current_revision, head_revision, upgrade
from tideserve.control.sagemaker import SageMakerService
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.db import make_engine
from tideserve.schema import metadata

# The race tests of tests/control, here on PostgreSQL (the `servers` fixture below).
test_create_race = races.test_one_of_two_creates_of_a_name_wins_and_the_other_is_told_it_exists
test_capacity_race = (
    races.test_one_of_two_capacity_changes_wins_and_the_other_sees_the_endpoint_updating)
test_tags_race = races.test_two_add_tags_cannot_together_pass_the_limit_of_fifty


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A database of its own for each test, on the session's server."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def servers(engine: Engine, database: str) -> Iterator[tuple[SageMakerService, ...]]:
    other = make_engine(database)
    a = SageMakerService(ControlStore(engine), races.ARNS, Catalog.default(), FakeClock())
    b = SageMakerService(ControlStore(other), races.ARNS, Catalog.default(), FakeClock())
    a.create_model({"ModelName": "m", "PrimaryContainer": {
        "Image": "tideserve/sklearn", "ModelDataUrl": "s3://b/k"}})
    a.create_endpoint_config({"EndpointConfigName": "c", "ProductionVariants": [{
        "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}]})
    yield a, b
    other.dispose()


def test_the_migrations_create_every_table_and_a_second_upgrade_changes_nothing(engine):
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_the_leader_lock_is_one_servers_and_passes_on_when_its_connection_closes(
        engine, database, tmp_path):
    other = make_engine(database)
    first, second = Leadership(engine, tmp_path / "a"), Leadership(other, tmp_path / "b")
    try:
        assert first.try_acquire() and first.still_held()
        assert not second.try_acquire()
        # A vanished host's session is found by keepalive in seconds, not hours.
        assert first._conn.execute(text("SHOW tcp_keepalives_idle")).scalar() == "4"
        first.release()  # as a killed server's connection closes
        # The server ends the closed session a moment later: a follower asks each poll.
        deadline = time.monotonic() + 5
        while not second.try_acquire():
            assert time.monotonic() < deadline, "the lock never passed on"
            time.sleep(0.05)
        assert second.still_held()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        other.dispose()


def test_the_sqlite_lock_is_one_servers_too(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db'}")
    first = Leadership(engine, tmp_path / "leader.lock")
    second = Leadership(engine, tmp_path / "leader.lock")
    assert first.try_acquire() and not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


def test_an_old_sqlite_state_dir_upgrades_with_its_data(tmp_path):
    """A database made before migrations (no alembic_version, instances without the columns
    0002 adds) keeps its rows and gains the columns."""
    from tideserve.schema import create_all

    engine = make_engine(f"sqlite:///{tmp_path / 'tideserve.db'}")
    create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE instances DROP COLUMN token"))
        conn.execute(text("ALTER TABLE instances DROP COLUMN serving"))
        conn.execute(text("INSERT INTO instances (instance_id, endpoint_name, variant_name, pid,"
                          " url, start_time) VALUES ('i-1', 'e', 'v', 1, 'http://x', 0)"))
    upgrade(engine)
    rows = ControlStore(engine).recorded_instances()
    assert [(r.instance_id, r.token, r.serving) for r in rows] == [("i-1", None, False)]
    assert current_revision(engine) == head_revision()
