"""SigV4 verification (spec §7.4), against requests signed by botocore's own signer."""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tideserve.api.sigv4 import (
    Identity,
    PayloadHash,
    canonical_uri,
    check_headers,
    scope_service,
    verify,
    verify_payload,
)
from tideserve.errors import AuthError

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:18081"
BODY = b'{"EndpointName": "e"}'


def secret_for(key_id: str) -> str | None:
    return {KEY: SECRET}.get(key_id)


@dataclass
class Signed:
    """A request as the server receives it, plus the time it was signed."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    signed_at: float

    def verify(self, now: float | None = None, **overrides) -> Identity:
        fields = {
            "method": self.method,
            "raw_path": self.path,
            "query_string": self.query,
            "headers": self.headers,
            "body": self.body,
            "secret_for": secret_for,
            "now": self.signed_at if now is None else now,
        }
        fields.update(overrides)
        return verify(**fields)

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers if k.lower() == name)

    def with_header(self, name: str, value: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.headers if k.lower() != name.lower()] + [(name, value)]


def sign(
    path: str = "/",
    body: bytes = BODY,
    service: str = "sagemaker",
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
    presign: bool = False,
    region: str = "eu-west-1",
) -> Signed:
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}{path}",
        data=body,
        headers=headers or {"X-Amz-Target": "SageMaker.DescribeEndpoint"},
    )
    credentials = Credentials(KEY, secret)
    if presign:
        SigV4QueryAuth(credentials, service, region, expires=300).add_auth(request)
    else:
        SigV4Auth(credentials, service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()]
    sent.append(("Host", HOST))  # what the HTTP client adds on the wire
    stamp = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ")
    return Signed("POST", parts.path, parts.query, sent, body, calendar.timegm(stamp.timetuple()))


def rejected(signed: Signed, **kwargs) -> AuthError:
    with pytest.raises(AuthError) as caught:
        signed.verify(**kwargs)
    return caught.value


def test_a_good_signature_names_its_signer() -> None:
    identity = sign(service="monitoring").verify()
    assert identity == Identity(access_key_id=KEY, region="eu-west-1", service="monitoring")


def test_a_tampered_body_is_an_invalid_signature() -> None:
    error = rejected(sign(), body=BODY.replace(b'"e"', b'"f"'))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("The request signature we calculated does not match")


def test_a_replay_with_another_body_and_the_old_hash_header_is_an_invalid_signature() -> None:
    # The attacker keeps the captured signature and claims the old body's hash in the header
    # S3 uses; for these services the hash is always the received body's own.
    signed = sign()
    claimed = signed.headers + [("X-Amz-Content-SHA256", hashlib.sha256(BODY).hexdigest())]
    signed.verify(headers=claimed)  # the header alone, agreeing with the body, is harmless
    error = rejected(signed, headers=claimed, body=b'{"EndpointName": "other"}')
    assert error.code == "InvalidSignatureException"


def test_unsigned_payload_is_for_s3_only() -> None:
    signed = sign(headers={"X-Amz-Target": "SageMaker.DescribeEndpoint",
                           "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert rejected(signed).code == "InvalidSignatureException"
    assert rejected(signed, body=b"anything").code == "InvalidSignatureException"


def test_a_presigned_url_cannot_leave_the_body_unsigned() -> None:
    # S3's presigner signs UNSIGNED-PAYLOAD, so anyone holding the URL may send any body;
    # botocore's presigner for other services signs the (empty) body, and so must they.
    request = AWSRequest(method="POST", url=f"http://{HOST}/endpoints/e/invocations")
    S3SigV4QueryAuth(Credentials(KEY, SECRET), "sagemaker", "eu-west-1", expires=300).add_auth(
        request
    )
    parts = urlsplit(request.prepare().url)
    stamp = calendar.timegm(
        datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ").timetuple()
    )
    signed = Signed("POST", parts.path, parts.query, [("Host", HOST)], b"1,2,3", stamp)
    assert rejected(signed).code == "InvalidSignatureException"


def test_the_body_can_be_hashed_as_it_streams_in() -> None:
    signed = sign()
    pending = check_headers(signed.method, signed.path, signed.query, signed.headers,
                            secret_for, signed.signed_at)
    streamed = PayloadHash()
    for chunk in (BODY[:5], BODY[5:]):
        streamed.update(chunk)
    assert verify_payload(pending, digest=streamed.hexdigest()).access_key_id == KEY
    assert verify_payload(pending, BODY).access_key_id == KEY
    with pytest.raises(AuthError):
        verify_payload(pending, digest=hashlib.sha256(b"other").hexdigest())


@pytest.mark.parametrize(("service", "region", "why"), [
    ("monitoring", "eu-west-1", "Credential should be scoped to correct service: 'sagemaker'."),
    ("iam", "eu-west-1", "Credential should be scoped to correct service: 'sagemaker'."),
    ("sagemaker", "xx-nowhere-9",
     "Credential should be scoped to a valid region, not 'xx-nowhere-9'."),
])
def test_the_scope_must_name_the_service_called_and_a_region_of_the_server(
    service: str, region: str, why: str
) -> None:
    signed = sign(service=service, region=region)
    error = rejected(signed, expected_service="sagemaker", regions={"eu-west-1"})
    assert (error.code, error.message) == ("InvalidSignatureException", why)


def test_global_services_may_also_be_scoped_to_us_east_1() -> None:
    assert sign(service="iam", region="us-east-1").verify(regions={"eu-west-1"})
    error = rejected(sign(service="sagemaker", region="us-east-1"), regions={"eu-west-1"})
    assert "valid region" in error.message


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    assert rejected(sign(secret="not-the-secret")).code == "InvalidSignatureException"


def test_an_unknown_access_key_is_unrecognized() -> None:
    error = rejected(sign(), secret_for=lambda key_id: None)
    assert error.code == "UnrecognizedClientException"
    assert error.message == "The security token included in the request is invalid."


def test_no_authorization_at_all_is_a_missing_token() -> None:
    signed = sign()
    headers = [(k, v) for k, v in signed.headers if k.lower() != "authorization"]
    assert rejected(signed, headers=headers).code == "MissingAuthenticationTokenException"


def test_an_authorization_without_a_signature_is_incomplete() -> None:
    signed = sign()
    cut = signed.header("authorization").split(", Signature=")[0]
    error = rejected(signed, headers=signed.with_header("Authorization", cut))
    assert error.code == "IncompleteSignatureException"
    assert "requires 'Signature' parameter" in error.message


def test_host_must_be_signed() -> None:
    signed = sign()
    auth = signed.header("authorization").replace("SignedHeaders=host;", "SignedHeaders=")
    error = rejected(signed, headers=signed.with_header("Authorization", auth))
    assert error.code == "IncompleteSignatureException"


def test_a_session_token_must_be_signed() -> None:
    signed = sign()
    headers = signed.headers + [("X-Amz-Security-Token", "FQoGZXIvYXdz")]
    assert rejected(signed, headers=headers).code == "IncompleteSignatureException"


def test_a_missing_signed_header_is_an_invalid_signature() -> None:
    signed = sign()
    headers = [(k, v) for k, v in signed.headers if k.lower() != "x-amz-target"]
    assert rejected(signed, headers=headers).code == "InvalidSignatureException"


def test_clock_skew_up_to_fifteen_minutes_is_tolerated() -> None:
    signed = sign()
    signed.verify(now=signed.signed_at + 14 * 60)
    signed.verify(now=signed.signed_at - 14 * 60)


def test_a_signature_seventeen_minutes_old_has_expired() -> None:
    signed = sign()
    error = rejected(signed, now=signed.signed_at + 17 * 60)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(f"Signature expired: {signed.header('x-amz-date')} is now")


def test_a_signature_from_the_future_is_not_yet_current() -> None:
    signed = sign()
    error = rejected(signed, now=signed.signed_at - 17 * 60)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("Signature not yet current")


def test_the_scope_date_must_be_the_request_date() -> None:
    signed = sign()
    day = signed.header("x-amz-date")[:8]
    auth = signed.header("authorization").replace(f"/{day}/", "/19990101/")
    error = rejected(signed, headers=signed.with_header("Authorization", auth))
    assert error.code == "InvalidSignatureException"
    assert "Date in Credential scope does not match" in error.message


def test_the_scope_service_can_be_required() -> None:
    signed = sign(service="ce")
    error = rejected(signed, expected_service="sagemaker")
    assert error.code == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("raw_path", "canonical"),
    [
        ("/", "/"),
        ("", "/"),
        ("/endpoints/my-endpoint/invocations", "/endpoints/my-endpoint/invocations"),
        # The path is encoded once more: a literal %XX becomes %25XX.
        ("/endpoints/a%20b/invocations", "/endpoints/a%2520b/invocations"),
        ("/x/100%25/y", "/x/100%2525/y"),
        # Dot segments and empty segments go; a trailing slash stays.
        ("/a//b/./c/../d/", "/a/b/d/"),
        # Long paths stay linear (an earlier fast-path regex backtracked exponentially).
        ("/" + "ab/" * 40 + "%41", "/" + "ab/" * 40 + "%2541"),
    ],
)
def test_canonical_uri(raw_path: str, canonical: str) -> None:
    assert canonical_uri(raw_path) == canonical


@pytest.mark.parametrize(
    "path", ["/endpoints/a%20b/invocations", "/x/100%25/y", "/a//b/./c/../d/", "/p~q_r.s-t/"]
)
def test_paths_needing_canonicalisation_verify_as_botocore_signed_them(path: str) -> None:
    sign(path=path).verify()


def test_header_values_are_trimmed_and_whitespace_collapsed() -> None:
    signed = sign(headers={"X-Amz-Target": "SageMaker.DescribeEndpoint", "X-Custom": "a   b  c"})
    # A proxy that re-spaces the value must not break the signature.
    signed.verify(headers=signed.with_header("X-Custom", "  a b c "))


def test_an_empty_body_hashes_as_empty() -> None:
    sign(body=b"").verify()


def test_presigned_query_authentication() -> None:
    signed = sign(presign=True, body=b"")
    assert "X-Amz-Signature=" in signed.query
    assert signed.verify().region == "eu-west-1"
    assert rejected(signed, now=signed.signed_at + 301).code == "InvalidSignatureException"


def test_a_rotated_secret_is_not_served_from_the_key_cache() -> None:
    signed = sign()
    signed.verify()
    error = rejected(signed, secret_for=lambda key_id: "rotated-secret")
    assert error.code == "InvalidSignatureException"


def test_scope_service_reads_the_credential_scope() -> None:
    signed = sign(service="application-autoscaling")
    assert scope_service(signed.headers) == "application-autoscaling"
    assert scope_service({"authorization": signed.header("authorization")}) == (
        "application-autoscaling"
    )
    assert scope_service([("Content-Type", "x")]) is None
    assert scope_service({"authorization": "Bearer abc"}) is None


def test_verify_is_cheap() -> None:
    # Not a benchmark (bench/sigv4.py prints the figure); a guard against a 10x regression,
    # e.g. losing the signing-key cache. Generous for a shared CI machine.
    signed = sign()
    signed.verify()
    start = time.perf_counter()
    for _ in range(200):
        signed.verify()
    per_call = (time.perf_counter() - start) / 200
    assert per_call < 2e-3


def test_a_signers_scope_parsed_once_still_has_each_signature_checked() -> None:
    """The part of Authorization before its Signature is cached per signer and scope; a
    request that reuses it with another signature, or another body, is still refused."""
    first, second = sign(body=b'{"n": 1}'), sign(body=b'{"n": 2}')
    assert first.verify() == second.verify()  # the second one's scope came from the cache
    forged = first.header("authorization")[:-64] + "0" * 64
    assert rejected(first, headers=first.with_header("Authorization", forged)).code == \
        "InvalidSignatureException"
    assert rejected(first, body=second.body).code == "InvalidSignatureException"
