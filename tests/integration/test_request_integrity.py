"""What an attacker's tools try against a real `tideserve up`: replaying a captured signed
request with another body, signing for another service or region, and reading secrets off
the disk. Each must fail."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows

pytestmark = pytest.mark.integration

ENDPOINT = "integrity"


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, trained) -> str:
    _, _, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, ENDPOINT, str(archive))
    wait_in_service(sm, ENDPOINT)
    return ENDPOINT


@pytest.fixture(autouse=True)
def delete_endpoints_afterwards():
    """This module's endpoint serves all its tests; the module fixture's server deletes it at
    the end of the session (overrides conftest's per-test clean-up)."""
    yield


def capture(server: RunningServer, path: str, body: bytes, headers: dict[str, str],
            service: str = "sagemaker", region: str = "us-east-1",
            secret: str | None = None) -> dict[str, str]:
    """The headers of a request signed with the server's own key, as a wire capture shows."""
    key_id, real_secret = server.credentials()
    request = AWSRequest(method="POST", url=server.url + path, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret or real_secret), service, region).add_auth(request)
    return dict(request.prepare().headers)


def send(server: RunningServer, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """Send `body` with `headers` as captured (the HTTP client sets Content-Length anew)."""
    sent = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return httpx.post(server.url + path, content=body, headers=sent, timeout=30)


def csv_body(X, rows: int) -> bytes:
    return csv_rows(X[:rows]).encode()


# -- the signature covers the body ----------------------------------------------------------


def test_a_captured_invocation_replayed_with_another_body_is_refused(
    server: RunningServer, trained, endpoint: str
):
    _, X, _, _ = trained
    path = f"/endpoints/{endpoint}/invocations"
    one_row = csv_body(X, 1)
    headers = capture(server, path, one_row,
                      {"Content-Type": "text/csv", "Accept": "application/json"})
    assert len(json.loads(send(server, path, one_row, headers).content)) == 1  # capture works

    # The replay: three rows, the captured signature, and the hash header claiming the old body.
    replay = {**headers, "X-Amz-Content-SHA256": hashlib.sha256(one_row).hexdigest()}
    answer = send(server, path, csv_body(X, 3), replay)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException")


def test_a_captured_create_model_replayed_with_another_model_data_url_is_refused(
    server: RunningServer,
):
    original = json.dumps({
        "ModelName": "integrity-replayed", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
        "PrimaryContainer": {"Image": "tideserve/sklearn", "ModelDataUrl": "s3://good/m.tar.gz"},
    }).encode()
    target = {"X-Amz-Target": "SageMaker.CreateModel",
              "Content-Type": "application/x-amz-json-1.1"}
    headers = capture(server, "/", original, target)
    evil = original.replace(b"s3://good/", b"s3://evil/")
    replay = {**headers, "X-Amz-Content-SHA256": hashlib.sha256(original).hexdigest()}
    answer = send(server, "/", evil, replay)
    assert answer.status_code == 403
    assert answer.json()["__type"] == "InvalidSignatureException"
    with pytest.raises(ClientError, match="Could not find model"):
        server.client("sagemaker").describe_model(ModelName="integrity-replayed")


# -- the credential scope must be ours ------------------------------------------------------


@pytest.mark.parametrize(("service", "region", "says"), [
    ("monitoring", "us-east-1", "scoped to correct service: 'sagemaker'"),
    ("iam", "us-east-1", "scoped to correct service: 'sagemaker'"),
    ("sagemaker", "xx-nowhere-9", "scoped to a valid region, not 'xx-nowhere-9'"),
])
def test_an_invocation_signed_for_another_service_or_region_is_refused(
    server: RunningServer, trained, endpoint: str, service: str, region: str, says: str
):
    _, X, _, _ = trained
    path = f"/endpoints/{endpoint}/invocations"
    body = csv_body(X, 1)
    headers = capture(server, path, body, {"Content-Type": "text/csv"}, service, region)
    answer = send(server, path, body, headers)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException")
    assert says in answer.json()["message"]


def client_in_region(server: RunningServer, service: str, region: str):
    key_id, secret = server.credentials()
    return boto3.Session(region_name=region, aws_access_key_id=key_id,
                         aws_secret_access_key=secret).client(
        service, endpoint_url=server.url, config=Config(retries={"max_attempts": 1}))


def test_control_plane_calls_signed_for_another_region_are_refused(server: RunningServer):
    with pytest.raises(ClientError) as refused:
        client_in_region(server, "sagemaker", "xx-nowhere-9").list_endpoints()
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_s3_requests_signed_for_another_region_are_malformed(server: RunningServer):
    with pytest.raises(ClientError) as refused:
        client_in_region(server, "s3", "xx-nowhere-9").list_buckets()
    error = refused.value.response["Error"]
    assert error["Code"] == "AuthorizationHeaderMalformed"
    assert "the region 'xx-nowhere-9' is wrong; expecting 'us-east-1'" in error["Message"]


# -- secrets at rest --------------------------------------------------------------------------


def test_no_file_under_the_state_dir_is_readable_by_group_or_others(
    server: RunningServer, trained, endpoint: str
):
    _, X, _, _ = trained
    server.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=csv_body(X, 2), ContentType="text/csv")
    s3 = server.client("s3")
    s3.create_bucket(Bucket="integrity-bucket")
    s3.put_object(Bucket="integrity-bucket", Key="a/b.txt", Body=b"x" * 1000)

    state = server.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("tideserve.db", "tideserve.db-wal", "secret.key", "credentials"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    exposed = [f"{stat.S_IMODE(p.lstat().st_mode):o} {p}" for p in state.rglob("*")
               if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
               and not unpacked_from_an_archive(state, p)]
    assert exposed == []


def unpacked_from_an_archive(state: Path, path: Path) -> bool:
    """A file of a model's tree keeps the mode its model.tar.gz gave it (tarfile applies it,
    whatever the umask); the tree's directories, like every directory here, are 0700, so no
    one else reaches it."""
    return path.is_file() and path.relative_to(state).parts[0] == "models"


def test_a_copy_of_the_database_does_not_yield_a_signing_secret(
    server: RunningServer, tmp_path: Path
):
    key_id, secret = server.credentials()
    copy = tmp_path / "stolen.db"
    for suffix in ("", "-wal"):  # the database as a backup would take it, WAL included
        source = server.state_dir / f"tideserve.db{suffix}"
        if source.exists():
            shutil.copy(source, tmp_path / f"stolen.db{suffix}")
            assert secret.encode() not in source.read_bytes()
    with sqlite3.connect(copy) as db:
        stored = dict(db.execute("SELECT access_key_id, secret_access_key FROM access_keys"))
    assert key_id in stored and stored[key_id] != secret
    headers = capture(server, "/", b"{}", {"X-Amz-Target": "SageMaker.ListEndpoints",
                                           "Content-Type": "application/x-amz-json-1.1"},
                      secret=stored[key_id])
    answer = send(server, "/", b"{}", headers)
    assert answer.status_code == 403
    assert answer.json()["__type"] == "InvalidSignatureException"
