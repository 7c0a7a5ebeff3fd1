"""The Python-level object store other tideserve modules use (async inference, batch jobs),
its on-disk layout, and the pure pieces: key rules, listing pages, ranges, routing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tideserve.clock import FakeClock
from tideserve.errors import ConflictError, NotFoundError, ValidationError
from tideserve.objectstore.conditions import byte_range, precondition_status
from tideserve.objectstore.keys import bucket_from_host, check_key, parse_uri
from tideserve.objectstore.listing import ListRequest, list_page
from tideserve.objectstore.s3_api import is_s3_request
from tideserve.objectstore.store import ObjectStore
from tideserve.serving.archive import fetch_model_data


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore(tmp_path / "state" / "s3", FakeClock(1_700_000_000.0))
    s.create_bucket("models")
    return s


def test_objects_are_plain_files_that_model_data_urls_resolve_to(
    store: ObjectStore, tmp_path: Path
) -> None:
    info = store.put_bytes("models", "m1/weights.bin", b"\x00\x01", "application/x-weights")
    assert (store.root / "models" / "m1" / "weights.bin").read_bytes() == b"\x00\x01"
    assert info.etag == hashlib.md5(b"\x00\x01").hexdigest()
    assert info.last_modified == 1_700_000_000.0  # from the injected clock
    assert store.head("models", "m1/weights.bin").attributes.content_type == (
        "application/x-weights"
    )
    model_dir = fetch_model_data("s3://models/m1/weights.bin", tmp_path / "m", store.root)
    assert (model_dir / "weights.bin").read_bytes() == b"\x00\x01"


def test_python_interface_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "payload.json"
    source.write_bytes(b'{"x": 1}')
    bucket, key = parse_uri("s3://models/async/in/req-1.json")
    store.put_file(bucket, key, source, "application/json")
    assert store.exists(bucket, key)
    assert store.get_bytes(bucket, key) == b'{"x": 1}'
    with store.open(bucket, key) as f:
        assert f.read(4) == b'{"x"'
    store.delete(bucket, key)
    assert not store.exists(bucket, key)
    with pytest.raises(NotFoundError) as missing:
        store.get_bytes(bucket, key)
    assert missing.value.code == "NoSuchKey"
    with pytest.raises(NotFoundError) as no_bucket:
        store.put_bytes("absent-bucket", "k", b"")
    assert no_bucket.value.code == "NoSuchBucket"


def test_a_file_copied_in_by_hand_is_an_object_with_a_derived_etag(store: ObjectStore) -> None:
    path = store.root / "models" / "copied" / "model.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tarball")
    info = store.head("models", "copied/model.tar.gz")
    assert info.etag == hashlib.md5(b"tarball").hexdigest()
    assert info.size == 7
    path.write_bytes(b"replaced by hand")  # the sidecar is now stale and must be ignored
    assert (
        store.head("models", "copied/model.tar.gz").etag
        == hashlib.md5(b"replaced by hand").hexdigest()
    )
    assert store.list_keys("models") == ["copied/model.tar.gz"]


def test_keys_and_prefixes_cannot_share_a_path(store: ObjectStore) -> None:
    store.put_bytes("models", "a", b"1")
    with pytest.raises(ConflictError):
        store.put_bytes("models", "a/b", b"2")
    store.delete("models", "a")
    store.put_bytes("models", "a/b", b"2")  # fine once "a" is gone
    with pytest.raises(ConflictError):
        store.put_bytes("models", "a", b"1")


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "a/./b", "a//b", "x" * 256, "a\x00b", "k" * 1025]
)
def test_keys_that_are_not_one_plain_relative_path_are_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        check_key(key)


def test_ordinary_keys_are_accepted() -> None:
    for key in ("model.tar.gz", "a/b/c.tar.gz", "with space/and+plus", "folder/", "ünïcode"):
        assert check_key(key) == key


KEYS = ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2"]


@pytest.mark.parametrize(
    ("name", "request_", "pages"),
    [
        (
            "no delimiter, two per page",
            ListRequest(max_keys=2),
            [(["a/1", "a/2"], []), (["a/b/3", "b"], []), (["c/1", "c/2"], [])],
        ),
        (
            "a common prefix counts once and is resumed past",
            ListRequest(delimiter="/", max_keys=1),
            [([], ["a/"]), (["b"], []), ([], ["c/"])],
        ),
        (
            "prefix and delimiter",
            ListRequest(prefix="a/", delimiter="/", max_keys=10),
            [(["a/1", "a/2"], ["a/b/"])],
        ),
        ("start after", ListRequest(start_after="b", max_keys=10), [(["c/1", "c/2"], [])]),
    ],
)
def test_listing_pages(name: str, request_: ListRequest, pages: list[Any]) -> None:
    got, token = [], None
    while True:
        req = ListRequest(
            request_.prefix, request_.delimiter, request_.max_keys, request_.start_after, token
        )
        page = list_page(KEYS, req)
        got.append((list(page.keys), list(page.common_prefixes)))
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert got == pages, name


def test_byte_ranges() -> None:
    assert byte_range("bytes=0-9", 100) == (0, 10)
    assert byte_range("bytes=90-", 100) == (90, 10)
    assert byte_range("bytes=-10", 100) == (90, 10)
    assert byte_range("bytes=95-200", 100) == (95, 5)  # clamped to the end
    assert byte_range("bytes=0-1,5-6", 100) is None  # several ranges: whole object, as S3
    assert byte_range(None, 100) is None
    with pytest.raises(ValidationError):
        byte_range("bytes=100-", 100)


def test_preconditions() -> None:
    assert precondition_status({"if-match": '"e1"'}, "e1", 0) is None
    assert precondition_status({"if-none-match": '"e1"'}, "e1", 0) == 304
    with pytest.raises(ValidationError):
        precondition_status({"if-match": '"other"'}, "e1", 0)


@pytest.mark.parametrize(
    ("host", "bucket"),
    [
        ("127.0.0.1:8080", None),
        ("localhost:8080", None),
        ("s3.localhost:8080", None),
        ("models.localhost:8080", "models"),
        ("my.models.localhost", "my.models"),
        ("models.s3.us-east-1.amazonaws.com", "models"),
        ("models.s3.localhost:9000", "models"),
        ("tideserve.internal", None),
    ],
)
def test_virtual_host_bucket(host: str, bucket: str | None) -> None:
    assert bucket_from_host(host) == bucket


def test_configured_endpoint_host() -> None:
    assert bucket_from_host("models.tideserve.internal:80", ("tideserve.internal",)) == "models"


def _scope(headers: dict[str, str], query: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "query_string": query.encode(),
    }


def test_is_s3_request() -> None:
    signed = (
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/{}/aws4_request, "
        "SignedHeaders=host, Signature=x"
    )
    assert is_s3_request(_scope({"authorization": signed.format("s3"), "host": "h"}))
    assert not is_s3_request(_scope({"authorization": signed.format("sagemaker"), "host": "h"}))
    assert is_s3_request(
        _scope({"host": "h"}, "X-Amz-Credential=AK%2F20240101%2Fus-east-1%2Fs3%2Faws4_request")
    )
    assert is_s3_request(_scope({"host": "models.localhost:8080"}))
    assert not is_s3_request(_scope({"host": "127.0.0.1:8080"}))
