"""S3 SigV4: the payload hash must be one AWS defines, the body must match it, and the scope
must name s3 and one of the server's regions."""

from __future__ import annotations

import calendar
import hashlib
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tideserve.errors import AuthError, ValidationError
from tideserve.objectstore import s3_auth

KEY, SECRET = "AKIDS3SCOPE", "s3-scope-secret"
HOST = "127.0.0.1:9000"
BODY = b"hello"


class DeclaringSigner(S3SigV4Auth):
    """botocore's S3 signer, declaring (and signing) the payload hash it is given."""

    def __init__(self, declared: str, region: str) -> None:
        super().__init__(Credentials(KEY, SECRET), "s3", region)
        self.declared = declared

    def payload(self, request: AWSRequest) -> str:
        return self.declared


def signed_put(content_sha256: str, region: str = "us-east-1") -> tuple[list, str, float]:
    request = AWSRequest(method="PUT", url=f"http://{HOST}/bucket/key", data=BODY)
    DeclaringSigner(content_sha256, region).add_auth(request)
    prepared = request.prepare()
    headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in prepared.headers.items()]
    headers.append(("Host", HOST))
    stamp = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ")
    return headers, urlsplit(prepared.url).path, calendar.timegm(stamp.timetuple())


def check(content_sha256: str, region: str = "us-east-1") -> s3_auth.S3Identity:
    headers, path, now = signed_put(content_sha256, region)
    return s3_auth.verify("PUT", path, "", headers, {KEY: SECRET}.get, now, {"us-east-1"})


@pytest.mark.parametrize("declared", [
    hashlib.sha256(BODY).hexdigest(),
    "UNSIGNED-PAYLOAD",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
])
def test_the_payload_hash_modes_aws_defines_are_accepted(declared: str) -> None:
    assert check(declared).payload_hash == declared


@pytest.mark.parametrize("declared", ["STREAMING-ANYTHING", "not-a-hash", "ab" * 31])
def test_any_other_payload_hash_is_an_invalid_argument(declared: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check(declared)
    assert refused.value.code == "InvalidArgument"


def test_a_body_that_does_not_match_the_signed_hash_is_a_mismatch() -> None:
    signed_hash = hashlib.sha256(BODY).hexdigest()
    s3_auth.verify_payload(signed_hash, hashlib.sha256(BODY).hexdigest())
    with pytest.raises(ValidationError) as refused:
        s3_auth.verify_payload(signed_hash, hashlib.sha256(b"other").hexdigest())
    assert refused.value.code == "XAmzContentSHA256Mismatch"


def test_a_scope_for_another_region_is_a_malformed_authorization() -> None:
    with pytest.raises(AuthError) as refused:
        check("UNSIGNED-PAYLOAD", region="xx-nowhere-9")
    assert refused.value.code == "AuthorizationHeaderMalformed"
    assert refused.value.message == (
        "The authorization header is malformed; the region 'xx-nowhere-9' is wrong; "
        "expecting 'us-east-1'"
    )
