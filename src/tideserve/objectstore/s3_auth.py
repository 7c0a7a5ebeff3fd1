"""SigV4 as S3 speaks it, on top of api/sigv4.py's parsing, header canonicalisation, canonical
query and signing-key cache. What differs from the other services:

- The canonical URI is the path exactly as received (botocore's S3 signer neither removes dot
  segments nor encodes twice). A client that sent some characters raw may have signed the
  once-encoded form instead, so that is tried second.
- The payload hash is never computed here: it is the X-Amz-Content-SHA256 header as sent,
  required on header-signed requests and UNSIGNED-PAYLOAD for presigned URLs. It must be one
  of the values AWS defines (PAYLOAD_HASH_MODES, or a hex SHA-256); anything else is
  InvalidArgument, as S3 answers. The signature covers the value, and the body is checked
  against a hex value while it streams to disk (body.Digests -> verify_payload), so the
  signature is verified before a single body byte is read and the body when it has been.
- Signed streaming (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`): every chunk carries a
  signature chained from the request's (ChunkVerifier).
- The scope must name service `s3` and one of the server's regions (api/scope.py).
- Errors use S3's codes: AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch (403),
  RequestTimeTooSkewed (403), AuthorizationHeaderMalformed / AuthorizationQueryParametersError
  (wrong scope), InvalidRequest / InvalidArgument and XAmzContentSHA256Mismatch (400).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from tideserve.api import sigv4
from tideserve.api.scope import region_allowed
from tideserve.errors import AuthError, ValidationError

EMPTY_SHA256 = sigv4.EMPTY_SHA256
# X-Amz-Content-SHA256 values other than a hex digest, as S3 defines them. The ECDSA (SigV4a)
# streaming modes are absent: tideserve verifies AWS4-HMAC-SHA256 only.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
PAYLOAD_HASH_MODES = frozenset({
    UNSIGNED_PAYLOAD,
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
})
_HEX = frozenset("0123456789abcdefABCDEF")
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


@dataclass(frozen=True)
class S3Identity:
    access_key_id: str
    region: str
    signing_key: bytes  # kSigning, for chunk signatures
    scope: str  # YYYYMMDD/region/s3/aws4_request
    amz_date: str  # YYYYMMDDTHHMMSSZ
    signature: str  # the seed signature that chunk signatures chain from
    payload_hash: str  # X-Amz-Content-SHA256 as sent (UNSIGNED-PAYLOAD for presigned URLs)


def verify(
    method: str,
    raw_path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    secret_for: Callable[[str], str | None],
    now: float,
    regions: Collection[str] | None = None,
) -> S3Identity:
    """Check an S3 request's signature from its line and headers alone; raise AuthError (or
    ValidationError for a missing or undefined payload hash) with S3's codes. `regions`, when
    given, are the regions a credential scope may name."""
    header_map = sigv4.headers_by_name(headers)
    presigned = "authorization" not in header_map
    try:
        auth = sigv4.parse_authorization(header_map, query_string)
    except AuthError as exc:
        raise _malformed(exc.message, presigned, exc.code) from None
    if auth.service != "s3":
        raise _malformed(
            f"Credential should be scoped to correct service: 's3', not '{auth.service}'.",
            presigned,
            None,
        )
    if regions is not None and not region_allowed(auth.region, auth.service, regions):
        raise _wrong_region(auth.region, regions, presigned)
    signed_names = auth.signed_headers.split(";")
    amz_date = auth.amz_date or _request_date(header_map, signed_names)
    _check_time(amz_date, auth.date, now, auth.expires)
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise AuthError(
            "The AWS Access Key Id you provided does not exist in our records.",
            code="InvalidAccessKeyId",
        )
    payload_hash = _payload_hash(header_map, presigned)
    try:
        headers_block = sigv4.canonical_headers(header_map, signed_names)
    except AuthError:
        raise AuthError(_MISMATCH, code="SignatureDoesNotMatch") from None
    query = sigv4.canonical_query(query_string, drop_signature=presigned)
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    key = sigv4.signing_key(secret, auth)
    for uri in _candidate_uris(raw_path):
        canonical = (
            f"{method.upper()}\n{uri}\n{query}\n{headers_block}\n{auth.signed_headers}\n"
            f"{payload_hash}"
        )
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
        string_to_sign = f"{sigv4.ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, auth.signature):
            return S3Identity(
                auth.access_key_id, auth.region, key, scope, amz_date, auth.signature, payload_hash
            )
    raise AuthError(_MISMATCH, code="SignatureDoesNotMatch")


def _candidate_uris(raw_path: str) -> list[str]:
    path = raw_path or "/"
    once = quote(unquote(path), safe="/~")
    return [path] if once == path else [path, once]


def _payload_hash(header_map: Mapping[str, list[str]], presigned: bool) -> str:
    values = header_map.get("x-amz-content-sha256")
    if not values:
        if presigned:
            return UNSIGNED_PAYLOAD
        raise ValidationError(
            "Missing required header for this request: x-amz-content-sha256",
            code="InvalidRequest",
        )
    value = values[0].strip()
    if value in PAYLOAD_HASH_MODES or (len(value) == 64 and _HEX.issuperset(value)):
        return value
    raise ValidationError(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
        f"valid sha256 value; got {value!r}.",
        code="InvalidArgument",
    )


def verify_payload(signed_hash: str, body_digest: str) -> None:
    """The body's hex SHA-256 must be the hash the signature covers (a hex X-Amz-Content-SHA256;
    UNSIGNED-PAYLOAD and STREAMING-* bodies are not checked this way). Constant time, so the
    comparison leaks nothing about the expected value."""
    if not hmac.compare_digest(body_digest.lower(), signed_hash.lower()):
        raise ValidationError(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            code="XAmzContentSHA256Mismatch",
        )


def _wrong_region(region: str, regions: Collection[str], presigned: bool) -> AuthError:
    expecting = sorted(regions)[0] if len(regions) == 1 else "one of " + ", ".join(sorted(regions))
    if presigned:
        return AuthError(
            f"Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; "
            f"expecting '{expecting}'",
            code="AuthorizationQueryParametersError",
        )
    return AuthError(
        f"The authorization header is malformed; the region '{region}' is wrong; "
        f"expecting '{expecting}'",
        code="AuthorizationHeaderMalformed",
    )


def _request_date(header_map: dict[str, list[str]], signed_names: list[str]) -> str:
    try:
        return sigv4.request_date(header_map, signed_names)
    except AuthError as exc:
        raise AuthError(
            f"AWS authentication requires a valid Date or x-amz-date header: {exc.message}",
            code="AccessDenied",
        ) from None


def _check_time(amz_date: str, scope_date: str, now: float, expires: int | None) -> None:
    try:
        when = sigv4.amz_epoch(amz_date)
    except ValueError:
        raise AuthError(
            f"X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z'; got {amz_date!r}.", code="AccessDenied"
        ) from None
    if amz_date[:8] != scope_date:
        raise AuthError(
            f"The authorization header is malformed; Invalid credential date. Date is not the "
            f"same as X-Amz-Date: {scope_date} != {amz_date[:8]}.",
            code="AuthorizationHeaderMalformed",
        )
    if expires is not None:
        if when + expires < now:
            raise AuthError("Request has expired", code="AccessDenied")
        if when <= now + sigv4.MAX_SKEW_SECONDS:
            return
    elif abs(when - now) <= sigv4.MAX_SKEW_SECONDS:
        return
    raise AuthError(
        f"The difference between the request time ({amz_date}) and the current time is too large.",
        code="RequestTimeTooSkewed",
    )


def _malformed(message: str, presigned: bool, code: str | None) -> AuthError:
    if code == sigv4.MISSING:
        return AuthError("Access Denied", code="AccessDenied")
    if presigned:
        return AuthError(message, code="AuthorizationQueryParametersError")
    return AuthError(
        f"The authorization header is malformed; {message}", code="AuthorizationHeaderMalformed"
    )


class ChunkVerifier:
    """Checks the chained chunk signatures of STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies:

        chunk signature = HMAC(kSigning, "AWS4-HMAC-SHA256-PAYLOAD\\n" + date + "\\n" + scope
                          + "\\n" + previous signature + "\\n" + sha256("") + "\\n"
                          + sha256(chunk data))

    starting from the request's own signature; the trailer (…-TRAILER) is signed the same way
    over its `name:value\\n` lines with "AWS4-HMAC-SHA256-TRAILER" and no empty-hash line."""

    def __init__(self, identity: S3Identity) -> None:
        self._identity = identity
        self._previous = identity.signature
        self._hash = hashlib.sha256()
        self._claimed: str | None = None

    def start(self, signature: str | None) -> None:
        if signature is None:
            raise AuthError(
                "A chunk of a signed streaming body has no signature.",
                code="SignatureDoesNotMatch",
            )
        self._claimed = signature
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def end(self) -> None:
        body = f"{EMPTY_SHA256}\n{self._hash.hexdigest()}"
        self._previous = self._check("AWS4-HMAC-SHA256-PAYLOAD", body, self._claimed)

    def trailer(self, trailers: Mapping[str, str]) -> None:
        lines = "".join(
            f"{name}:{value}\n"
            for name, value in sorted(trailers.items())
            if name != "x-amz-trailer-signature"
        )
        body = hashlib.sha256(lines.encode()).hexdigest()
        self._check("AWS4-HMAC-SHA256-TRAILER", body, trailers.get("x-amz-trailer-signature"))

    def _check(self, algorithm: str, tail: str, claimed: str | None) -> str:
        ident = self._identity
        string_to_sign = f"{algorithm}\n{ident.amz_date}\n{ident.scope}\n{self._previous}\n{tail}"
        expected = hmac.new(ident.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if claimed is None or not hmac.compare_digest(expected, claimed):
            raise AuthError(
                "The chunk signature we calculated does not match the signature you provided.",
                code="SignatureDoesNotMatch",
            )
        return expected
