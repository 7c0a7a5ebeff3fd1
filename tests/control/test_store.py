"""Endpoint rows are read-modify-written in one transaction: concurrent changes all land, and a
change that raises writes nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from tideserve.control.store import ControlStore, EndpointRow
from tideserve.db import make_engine
from tideserve.schema import create_all


@pytest.fixture
def store(tmp_path) -> ControlStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_all(engine)
    store = ControlStore(engine)
    variant = {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}
    store.insert_endpoint(EndpointRow(
        "ep", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep", "c", None, "InService",
        None, [variant], 0.0, 0.0))
    return store


def test_concurrent_changes_each_land_and_bump_the_generation(store: ControlStore) -> None:
    def add_one(row: EndpointRow) -> bool:
        row.variants[0]["DesiredInstanceCount"] += 1
        return True

    def worker() -> None:
        for _ in range(25):
            store.modify_endpoint("EP", add_one, bump=True)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row = store.get_endpoint("ep")
    assert row is not None
    assert row.variants[0]["DesiredInstanceCount"] == 100
    assert row.generation == 101


def test_a_change_that_raises_writes_nothing(store: ControlStore) -> None:
    def half_done(row: EndpointRow) -> bool:
        row.status = "Updating"
        raise ValueError("refused")

    with pytest.raises(ValueError):
        store.modify_endpoint("ep", half_done)
    row = store.get_endpoint("ep")
    assert row is not None and row.status == "InService"


def test_pending_variants_round_trip_apart_from_the_serving_ones(store: ControlStore) -> None:
    def update(row: EndpointRow) -> bool:
        row.pending_config_name = "c2"
        row.pending_variants = [{"VariantName": "Green", "DesiredInstanceCount": 2}]
        return True

    store.modify_endpoint("ep", update, bump=True)
    row = store.get_endpoint("ep")
    assert row is not None
    assert [v["VariantName"] for v in row.variants] == ["AllTraffic"]
    assert row.pending_variants == [{"VariantName": "Green", "DesiredInstanceCount": 2}]


def test_a_database_from_before_pending_variants_reads_as_the_new_shape(tmp_path) -> None:
    """An older tideserve kept the blue/green fleet inside `variants`, marked "Pending"; its
    table has no pending_variants column until create_all adds it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE endpoints (name_lower VARCHAR(63) PRIMARY KEY, name VARCHAR(63), "
            "arn VARCHAR(256), config_name VARCHAR(63), pending_config_name VARCHAR(63), "
            "status VARCHAR(32), failure_reason TEXT, variants JSON, creation_time FLOAT, "
            "last_modified_time FLOAT, generation INTEGER)"))
        conn.execute(text(
            "INSERT INTO endpoints VALUES ('ep', 'ep', 'arn', 'c1', 'c2', 'Updating', NULL, "
            "'[{\"VariantName\": \"New\", \"Pending\": true}, {\"VariantName\": \"Old\"}]', "
            "0, 0, 3)"))
    create_all(engine)
    row = ControlStore(engine).get_endpoint("ep")
    assert row is not None
    assert row.variants == [{"VariantName": "Old"}]
    assert row.pending_variants == [{"VariantName": "New"}]


def test_two_stores_on_one_sqlite_file_never_lose_a_change(tmp_path) -> None:
    # Two servers sharing a database: no thread lock is shared, only the database's own.
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = ControlStore(make_engine(url))
    create_all(first.engine)
    first.insert_endpoint(EndpointRow(
        "ep", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep", "c", None, "InService",
        None, [{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}], 0.0, 0.0))
    second = ControlStore(make_engine(url))
    start = threading.Barrier(2)

    def add_one(row: EndpointRow) -> bool:
        row.variants[0]["DesiredInstanceCount"] += 1
        return True

    def worker(store: ControlStore) -> None:
        start.wait()
        for _ in range(30):
            store.modify_endpoint("ep", add_one, bump=True)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row = second.get_endpoint("ep")
    assert row is not None
    assert row.variants[0]["DesiredInstanceCount"] == 60
    assert row.generation == 61
