"""Channels and checkpoints through either object store: the embedded one (<state-dir>/s3)
and an external one through fsspec (memory:// here). A missing prefix fails in AWS's words;
checkpoints mirror the local directory: changed files uploaded, deleted files deleted."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tideserve.errors import ValidationError
from tideserve.objectstore.remote import FsspecObjects
from tideserve.training.transfer import (
    CheckpointSync,
    EmbeddedObjects,
    ExternalObjects,
    JobObjects,
    download_channel,
)


@pytest.fixture(params=["embedded", "external"])
def objects(request, tmp_path: Path) -> JobObjects:
    if request.param == "embedded":
        return EmbeddedObjects(tmp_path / "s3")
    return ExternalObjects(FsspecObjects(f"memory://tideserve-{uuid.uuid4().hex}"))


def test_channel_copies_every_object_under_the_prefix(objects: JobObjects, tmp_path: Path):
    for key, text in (("data/train/a.csv", "1,2"), ("data/train/sub/b.csv", "3,4"),
                      ("data/test/c.csv", "5,6")):
        source = tmp_path / "upload"
        source.write_text(text)
        objects.upload(source, f"s3://bucket-1/{key}")
    dest = tmp_path / "channel"
    assert download_channel(objects, "s3://bucket-1/data/train/", "S3Prefix", dest, "role") == 2
    assert (dest / "a.csv").read_text() == "1,2" and (dest / "sub" / "b.csv").read_text() == "3,4"
    with pytest.raises(ValidationError, match='No S3 objects found under S3 URL "s3://bucket-1/no/"'):
        download_channel(objects, "s3://bucket-1/no/", "S3Prefix", tmp_path / "none", "role")


def test_checkpoints_mirror_the_local_directory(objects: JobObjects, tmp_path: Path):
    local = tmp_path / "checkpoints"
    local.mkdir()
    sync = CheckpointSync(objects, local, "s3://bucket-2/ckpt/job")
    (local / "epoch-1.pt").write_text("one")
    (local / "nested").mkdir()
    (local / "nested" / "state.json").write_text("{}")
    assert sync.sync() == 2 and sync.sync() == 0  # nothing changed: nothing sent
    (local / "epoch-1.pt").unlink()
    (local / "epoch-2.pt").write_text("two")
    assert sync.sync() == 2
    assert objects.keys("s3://bucket-2/ckpt/job/") == [
        "s3://bucket-2/ckpt/job/epoch-2.pt", "s3://bucket-2/ckpt/job/nested/state.json"]
    fresh = tmp_path / "restored"
    assert CheckpointSync(objects, fresh, "s3://bucket-2/ckpt/job").restore() == 2
    assert (fresh / "epoch-2.pt").read_text() == "two"
