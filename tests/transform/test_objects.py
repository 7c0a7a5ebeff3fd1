"""Listing, reading and publishing through both object stores a job may use."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tideserve.objectstore.remote import FsspecObjects
from tideserve.transform.objects import EmbeddedObjects, ExternalObjects, JobObjects


@pytest.fixture(params=["embedded", "external"])
def objects(request, tmp_path: Path) -> JobObjects:
    if request.param == "embedded":
        store = EmbeddedObjects(tmp_path / "s3")
        for key, body in (("p/a.csv", b"1\n"), ("p/sub/b.csv", b"22\n"), ("q/c.csv", b"3")):
            store.store.create_bucket("inputs", exist_ok=True)
            store.store.put_bytes("inputs", key, body)
        return store
    remote = FsspecObjects(f"memory://t-{uuid.uuid4().hex}")
    for key, body in (("p/a.csv", b"1\n"), ("p/sub/b.csv", b"22\n"), ("q/c.csv", b"3")):
        remote.put_bytes(f"s3://inputs/{key}", body)
    return ExternalObjects(remote, tmp_path / "staging")


def test_a_prefix_lists_its_objects_in_key_order_with_sizes(objects: JobObjects):
    assert objects.list("s3://inputs/p/") == [("s3://inputs/p/a.csv", 2),
                                              ("s3://inputs/p/sub/b.csv", 3)]
    assert objects.list("s3://inputs/p/a") == [("s3://inputs/p/a.csv", 2)]
    assert objects.list("s3://inputs/none/") == []
    assert objects.list("s3://nobucket/p/") == []


def test_an_output_appears_whole_once_published(objects: JobObjects):
    staged = objects.new_output()
    staged.write(b"out\n")
    staged.finish()
    assert objects.size("s3://results/j/a.csv.out") is None
    objects.publish(staged, "s3://results/j/a.csv.out", "etag", "text/csv")
    with objects.open("s3://results/j/a.csv.out") as f:
        assert f.read() == b"out\n"


def test_a_staged_output_left_by_a_stopped_server_is_published_as_it_is(
        objects: JobObjects, tmp_path: Path):
    staged = objects.new_output()
    staged.write(b"left behind\n")
    staged.finish()
    objects.republish(staged.path, "s3://results/j/b.csv.out")
    with objects.open("s3://results/j/b.csv.out") as f:
        assert f.read() == b"left behind\n"
    assert not staged.path.exists()
