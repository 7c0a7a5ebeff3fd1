"""The S3 API through boto3, against a real server: what `ModelDataUrl`, async inference and
`aws s3`-style tools rely on."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.objectstore.conftest import S3Server


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_buckets_are_created_listed_located_and_deleted(s3: Any) -> None:
    s3.create_bucket(Bucket="models-a")
    s3.create_bucket(
        Bucket="models-b", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert {"models-a", "models-b"} <= set(names)
    assert s3.get_bucket_location(Bucket="models-b")["LocationConstraint"] == "eu-west-1"
    assert s3.get_bucket_location(Bucket="models-a")["LocationConstraint"] is None
    assert s3.head_bucket(Bucket="models-b")["ResponseMetadata"]["HTTPStatusCode"] == 200

    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket="models-a")
    assert error_code(again) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as bad:
        s3.create_bucket(Bucket="Bad_Bucket")
    assert error_code(bad) == "InvalidBucketName"

    s3.put_object(Bucket="models-a", Key="x", Body=b"1")
    with pytest.raises(ClientError) as busy:
        s3.delete_bucket(Bucket="models-a")
    assert error_code(busy) == "BucketNotEmpty"
    s3.delete_object(Bucket="models-a", Key="x")
    s3.delete_bucket(Bucket="models-a")
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket="models-a")
    assert error_code(gone) == "404"
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket="models-a")
    assert error_code(missing) == "NoSuchBucket"


def test_objects_round_trip_with_content_type_and_metadata(
    s3: Any, bucket: str, s3_server: S3Server
) -> None:
    body = b"feature_1,feature_2\n1.0,2.0\n"
    put = s3.put_object(
        Bucket=bucket,
        Key="inputs/batch 1+2.csv",
        Body=body,
        ContentType="text/csv",
        Metadata={"owner": "ml-team"},
        CacheControl="no-cache",
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    got = s3.get_object(Bucket=bucket, Key="inputs/batch 1+2.csv")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"owner": "ml-team"}
    assert got["CacheControl"] == "no-cache"
    assert got["ETag"] == put["ETag"]

    head = s3.head_object(Bucket=bucket, Key="inputs/batch 1+2.csv")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "text/csv"
    # The object is the plain file serving/archive.py reads for s3:// URLs.
    assert (s3_server.root / bucket / "inputs" / "batch 1+2.csv").read_bytes() == body

    s3.delete_object(Bucket=bucket, Key="inputs/batch 1+2.csv")
    s3.delete_object(Bucket=bucket, Key="inputs/batch 1+2.csv")  # idempotent, as in S3
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="inputs/batch 1+2.csv")
    assert error_code(missing) == "NoSuchKey"
    with pytest.raises(ClientError) as head_missing:
        s3.head_object(Bucket=bucket, Key="inputs/batch 1+2.csv")
    assert error_code(head_missing) == "404"
    assert not (s3_server.root / bucket / "inputs").exists()  # emptied directories pruned


def test_ranged_gets_return_206_with_the_requested_bytes(s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="blob", Body=data)
    cases = {"bytes=2-5": data[2:6], "bytes=-3": data[-3:], "bytes=1000-": data[1000:]}
    for header, expected in cases.items():
        got = s3.get_object(Bucket=bucket, Key="blob", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["Body"].read() == expected, header
    assert s3.get_object(Bucket=bucket, Key="blob", Range="bytes=2-5")["ContentRange"] == (
        f"bytes 2-5/{len(data)}"
    )
    with pytest.raises(ClientError) as past_end:
        s3.get_object(Bucket=bucket, Key="blob", Range="bytes=5000-")
    assert error_code(past_end) == "InvalidRange"
    with pytest.raises(ClientError) as changed:
        s3.get_object(Bucket=bucket, Key="blob", IfMatch='"not-the-etag"')
    assert error_code(changed) == "PreconditionFailed"


def test_listing_with_prefix_delimiter_and_pagination(s3: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "a/b/3", "b", "c d+e", "c-1"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    everything = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything["Contents"]] == [
        "a/1",
        "a/2",
        "a/b/3",
        "b",
        "c d+e",
        "c-1",
    ]
    assert everything["KeyCount"] == 6 and not everything["IsTruncated"]

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/"]
    assert [o["Key"] for o in top["Contents"]] == ["b", "c d+e", "c-1"]

    under_a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/b/"]

    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    assert [p["KeyCount"] for p in pages] == [2, 2]
    seen = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    seen += [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert sorted(seen) == ["a/", "b", "c d+e", "c-1"]

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="a/b/3")
    assert [o["Key"] for o in after["Contents"]] == ["b", "c d+e", "c-1"]


def test_delete_objects_in_one_batch(s3: Any, bucket: str) -> None:
    for key in ("x/1", "x/2"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "x/1"}, {"Key": "x/2"}, {"Key": "never"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["never", "x/1", "x/2"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_upload_file_multipart_and_download_file_round_trip(
    s3: Any, bucket: str, tmp_path: Any, s3_server: S3Server
) -> None:
    source = tmp_path / "model.tar.gz"
    with open(source, "wb") as f:
        for _ in range(5):
            f.write(os.urandom(8 * 1024 * 1024))
        f.write(os.urandom(123_457))
    mib8 = 8 * 1024 * 1024
    config = TransferConfig(multipart_threshold=mib8, multipart_chunksize=mib8, max_concurrency=2)
    s3.upload_file(str(source), bucket, "models/m1/model.tar.gz", Config=config)

    head = s3.head_object(Bucket=bucket, Key="models/m1/model.tar.gz")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].strip('"').endswith("-6")  # six parts: five of 8 MiB and the rest
    stored = s3_server.root / bucket / "models" / "m1" / "model.tar.gz"
    expected = hashlib.md5(source.read_bytes()).hexdigest()
    assert hashlib.md5(stored.read_bytes()).hexdigest() == expected

    target = tmp_path / "downloaded"
    s3.download_file(bucket, "models/m1/model.tar.gz", str(target), Config=config)
    assert hashlib.md5(target.read_bytes()).hexdigest() == expected
    assert not any(s3_server.app.store.uploads_root.iterdir())  # parts cleaned up


def test_multipart_rules(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=b"x" * 10)[
            "ETag"
        ]
        for n in (1, 2)
    ]
    parts = [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]

    with pytest.raises(ClientError) as small:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    assert error_code(small) == "EntityTooSmall"
    with pytest.raises(ClientError) as wrong:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="big",
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
        )
    assert error_code(wrong) == "InvalidPart"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": parts[:1]}
    )
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"x" * 10

    second = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=second)
    with pytest.raises(ClientError) as gone:
        s3.upload_part(Bucket=bucket, Key="aborted", UploadId=second, PartNumber=1, Body=b"1")
    assert error_code(gone) == "NoSuchUpload"


@pytest.mark.parametrize("key", ["a/../../escape", "../outside", "a/./b", "a//b"])
def test_keys_that_are_not_plain_paths_are_refused(
    s3: Any, bucket: str, key: str, s3_server: S3Server
) -> None:
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key=key, Body=b"nope")
    assert error_code(refused) == "InvalidArgument"
    assert not (s3_server.root / "outside").exists()
    assert not (s3_server.root.parent / "escape").exists()


def test_a_key_cannot_be_both_an_object_and_a_prefix(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="data", Body=b"1")
    with pytest.raises(ClientError) as below:
        s3.put_object(Bucket=bucket, Key="data/part-0", Body=b"2")
    assert error_code(below) == "XTideserveKeyConflict"
    s3.put_object(Bucket=bucket, Key="dir/", Body=b"")  # a folder marker
    s3.put_object(Bucket=bucket, Key="dir/file", Body=b"3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["data", "dir/", "dir/file"]
    with pytest.raises(ClientError) as marker_body:
        s3.put_object(Bucket=bucket, Key="other/", Body=b"not empty")
    assert error_code(marker_body) == "InvalidArgument"


def test_a_wrong_secret_or_unknown_key_is_refused(s3_server: S3Server, bucket: str) -> None:
    with pytest.raises(ClientError) as wrong:
        s3_server.client(secret="wrong").list_objects_v2(Bucket=bucket)
    assert error_code(wrong) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as unknown:
        s3_server.client(key_id="AKIDUNKNOWN").list_buckets()
    assert error_code(unknown) == "InvalidAccessKeyId"
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_body_that_does_not_match_its_signed_hash_is_refused(
    s3_server: S3Server, bucket: str
) -> None:
    client = s3_server.client()

    def tamper(request: Any, **_: Any) -> None:
        body = request.body.read() if hasattr(request.body, "read") else request.body
        request.body = body.replace(b"good", b"evil")

    client.meta.events.register("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as mismatch:
        client.put_object(Bucket=bucket, Key="signed", Body=b"good payload")
    assert error_code(mismatch) == "XAmzContentSHA256Mismatch"
    with pytest.raises(ClientError):
        client.head_object(Bucket=bucket, Key="signed")  # nothing was stored


def test_virtual_host_addressing(
    s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore with addressing_style=virtual against http://localhost:PORT sends Host
    `<bucket>.localhost:PORT`; many resolvers map *.localhost to loopback, this one may not,
    so the test resolves it for the client."""
    import socket

    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = s3_server.client(
        endpoint_url=f"http://localhost:{s3_server.port}", s3={"addressing_style": "virtual"}
    )
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    client.put_object(Bucket=bucket, Key="vh/key.txt", Body=b"virtual")
    assert client.get_object(Bucket=bucket, Key="vh/key.txt")["Body"].read() == b"virtual"
    listed = client.list_objects_v2(Bucket=bucket, Prefix="vh/")
    assert [o["Key"] for o in listed["Contents"]] == ["vh/key.txt"]
    assert sent[0].startswith(f"http://{bucket}.localhost:{s3_server.port}/vh/key.txt")


def test_presigned_urls_work_without_credentials(s3_server: S3Server, bucket: str) -> None:
    """SigV4 query authentication. botocore presigns S3 URLs with SigV2 unless told
    `signature_version='s3v4'`; SigV2 is not accepted."""
    import httpx

    s3 = s3_server.client(signature_version="s3v4")
    s3.put_object(Bucket=bucket, Key="shared/report.txt", Body=b"for anyone with the link")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared/report.txt"}, ExpiresIn=60
    )
    assert httpx.get(url).content == b"for anyone with the link"
    forged = url.replace("shared/report.txt", "shared/other.txt")
    assert httpx.get(forged).status_code == 403
