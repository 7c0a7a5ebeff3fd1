"""The external object store (`--object-store`): s3:// locations mapped onto an fsspec prefix,
exercised against a `file://` directory (a stand-in for a shared or remote store; no network
here) and `memory://`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import tar_gz
from tideserve.asyncinf.objects import Objects
from tideserve.control.models import ModelCache
from tideserve.errors import ValidationError
from tideserve.objectstore.remote import (
    OPTIONS_ENV,
    FsspecObjects,
    options_from_env,
    store_url,
)


@pytest.fixture(params=["file", "memory"])
def objects(request, tmp_path) -> Iterator[FsspecObjects]:
    if request.param == "file":
        yield FsspecObjects(f"file://{tmp_path}/external")
        return
    prefix = f"memory://test-{uuid.uuid4().hex}"
    store = FsspecObjects(prefix)
    yield store
    with contextlib.suppress(FileNotFoundError):  # memory:// is process-wide: clean up
        store.fs.rm(store.fs._strip_protocol(prefix), recursive=True)


def test_locations_map_onto_the_prefix_with_the_embedded_layout():
    assert store_url("s3://", "s3://models/a/m.tar.gz") == "s3://models/a/m.tar.gz"
    assert store_url("file:///mnt/s3", "s3://models/m.tar.gz") == "file:///mnt/s3/models/m.tar.gz"
    assert store_url("file:///mnt/s3/", "s3://b-1/k") == "file:///mnt/s3/b-1/k"
    assert store_url("memory://", "s3://bkt/dir/") == "memory://bkt/dir/"
    assert store_url("s3://shared/tideserve", "s3://bkt/k") == "s3://shared/tideserve/bkt/k"


@pytest.mark.parametrize("uri", ["s3://models/../escape", "s3://models/a/./b", "s3://models/",
                                 "s3://UPPER/k", "s3://models//k", "https://models/k"])
def test_a_location_that_could_leave_its_bucket_is_refused(uri):
    with pytest.raises(ValidationError):
        store_url("file:///mnt/s3", uri)


def test_objects_round_trip_through_the_store(objects: FsspecObjects):
    store: Objects = objects  # the protocol async inference uses
    uri = "s3://inputs/job/rows.csv"
    assert not store.exists(uri)
    store.put_bytes(uri, b"1,2,3\n")
    assert store.exists(uri) and store.size(uri) == 6
    with store.open(uri) as f:
        assert f.read() == b"1,2,3\n"
    store.put_bytes(uri, b"replaced")
    with store.open(uri) as f:
        assert f.read() == b"replaced"
    store.remove(uri)
    store.remove(uri)  # removing what is gone is not an error (failure-location cleanup)
    assert not store.exists(uri)
    with pytest.raises(OSError):
        store.open(uri)


def test_a_bucket_or_prefix_is_not_an_object(objects: FsspecObjects):
    objects.put_bytes("s3://results/a/b.out", b"x")
    assert not objects.exists("s3://results/a/")


def test_a_writer_shows_the_object_whole_and_only_at_the_end(objects: FsspecObjects):
    uri = "s3://results/ep/out/id.out"
    with objects.writer(uri) as out:
        out.write(b"part one, ")
        assert not objects.exists(uri)  # nothing is visible while the body streams in
        out.write(b"part two")
    with objects.open(uri) as f:
        assert f.read() == b"part one, part two"
    folder = objects.path("s3://results/ep/out/x").rsplit("/", 1)[0]
    assert [p.rsplit("/", 1)[-1] for p in objects.fs.ls(folder, detail=False)] == ["id.out"]


def test_a_writer_that_fails_leaves_nothing_behind(objects: FsspecObjects):
    uri = "s3://results/ep/out/broken.out"
    objects.put_bytes(uri, b"the earlier result")
    with pytest.raises(RuntimeError), objects.writer(uri) as out:
        out.write(b"half a resp")
        raise RuntimeError("the instance went away")
    with objects.open(uri) as f:
        assert f.read() == b"the earlier result"  # untouched, no partial overwrite
    folder = objects.path(uri).rsplit("/", 1)[0]
    assert [p.rsplit("/", 1)[-1] for p in objects.fs.ls(folder, detail=False)] == ["broken.out"]


def test_a_file_prefix_is_plain_files_in_the_embedded_layout(tmp_path):
    objects = FsspecObjects(f"file://{tmp_path}/shared")
    assert not objects.atomic_put  # a filesystem: temp key, then rename
    objects.put_bytes("s3://results/ep/out/1.out", b"[1]")
    assert (tmp_path / "shared" / "results" / "ep" / "out" / "1.out").read_bytes() == b"[1]"


def test_a_store_with_atomic_puts_is_written_straight_to_the_key():
    objects = FsspecObjects(f"memory://atomic-{uuid.uuid4().hex}")
    objects.atomic_put = True  # what an s3:// prefix gets: one PUT per object, atomic there
    objects.put_bytes("s3://results/one.out", b"ok")
    assert objects.fs.cat_file(objects.path("s3://results/one.out")) == b"ok"
    objects.fs.rm(objects._root, recursive=True)


def test_an_unusable_prefix_is_refused_at_startup():
    with pytest.raises(ValidationError, match="not usable"):
        FsspecObjects("nosuchprotocol://bucket")


def test_s3_without_s3fs_says_what_to_install():
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(ValidationError, match="s3fs"):
            FsspecObjects("s3://")
    else:
        pytest.skip("s3fs is installed here")


def test_storage_options_come_from_json_in_the_environment():
    assert options_from_env({}) == {}
    options = {"endpoint_url": "http://minio:9000", "key": "k", "secret": "s"}
    assert options_from_env({OPTIONS_ENV: '{"endpoint_url": "http://minio:9000", "key": "k", '
                                          '"secret": "s"}'}) == options
    with pytest.raises(ValidationError, match="JSON object"):
        options_from_env({OPTIONS_ENV: '["endpoint_url"]'})
    with pytest.raises(ValidationError, match="not valid JSON"):
        options_from_env({OPTIONS_ENV: "{endpoint_url"})


def _model_row(url: str) -> SimpleNamespace:
    spec = {"PrimaryContainer": {"Image": "tideserve/sklearn", "ModelDataUrl": url}}
    return SimpleNamespace(name_lower="m", creation_time=1.0, spec=spec)


def test_model_data_resolves_in_the_external_store_not_the_embedded_one(objects, tmp_path):
    objects.put_bytes("s3://models/m.tar.gz", tar_gz({"model.skops": b"weights"}))
    embedded = tmp_path / "embedded-s3"
    (embedded / "models").mkdir(parents=True)
    (embedded / "models" / "m.tar.gz").write_bytes(tar_gz({"model.skops": b"embedded"}))
    cache = ModelCache(tmp_path / "models", embedded, objects)
    prepared = asyncio.run(cache.prepare(_model_row("s3://models/m.tar.gz"), holder="test"))
    assert (prepared.model_dir / "model.skops").read_bytes() == b"weights"


def test_model_data_outside_s3_still_resolves_as_before(objects, tmp_path):
    archive = tmp_path / "local.tar.gz"
    archive.write_bytes(tar_gz({"model.skops": b"local"}))
    cache = ModelCache(tmp_path / "models", tmp_path / "embedded-s3", objects)
    prepared = asyncio.run(cache.prepare(_model_row(str(archive)), holder="test"))
    assert (prepared.model_dir / "model.skops").read_bytes() == b"local"


def test_missing_model_data_in_the_external_store_is_not_found(objects, tmp_path):
    from tideserve.errors import NotFoundError

    cache = ModelCache(tmp_path / "models", tmp_path / "embedded-s3", objects)
    with pytest.raises(NotFoundError):
        asyncio.run(cache.prepare(_model_row("s3://models/absent.tar.gz"), holder="test"))


def test_a_directory_prefix_in_the_external_store_is_a_model_directory(objects, tmp_path):
    objects.put_bytes("s3://models/dir/model.skops", b"w")
    objects.put_bytes("s3://models/dir/code/inference.py", b"# handler")
    cache = ModelCache(tmp_path / "models", tmp_path / "embedded-s3", objects)
    prepared = asyncio.run(cache.prepare(_model_row("s3://models/dir/"), holder="test"))
    assert (prepared.model_dir / "code" / "inference.py").read_bytes() == b"# handler"
    assert isinstance(prepared.model_dir, Path)
