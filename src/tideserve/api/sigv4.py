"""Server-side AWS Signature Version 4 verification (spec §7.4).

We recompute the signature exactly as botocore's `SigV4Auth` computes it and compare in constant
time. This runs on every InvokeEndpoint, so the expensive part — the four-HMAC signing-key chain —
is cached per (key id, secret, date, region, service); what remains per request is two SHA-256s
(body, canonical request) and one HMAC.

The payload hash is always the received body's SHA-256 (never X-Amz-Content-SHA256, which is
S3's; objectstore/s3_auth.py). check_headers() does everything that needs no body byte;
verify_payload() finishes with the body or a digest hashed as it streamed in (PayloadHash).
The scope's service and region are checked against the route's and the server's (api/scope.py).

Codes: no credentials at all -> MissingAuthenticationTokenException; a malformed or incomplete
Authorization (missing parts, `host` or the date not signed, no date) ->
IncompleteSignatureException; an unknown access key -> UnrecognizedClientException; a wrong
signature, a wrong scope or a clock skew beyond ±15 min -> InvalidSignatureException.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from tideserve.api.scope import region_allowed
from tideserve.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MISSING = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
# Paths made only of these characters need neither dot-segment removal nor re-encoding.
_SEGMENT = r"[A-Za-z0-9_~\-][A-Za-z0-9_~\-.]*"  # no leading dot: never "." or ".."
_PLAIN_PATH = re.compile(rf"/(?:{_SEGMENT}/)*(?:{_SEGMENT})?")
_WHITESPACE = re.compile(r"\s+")
_KEY_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Identity:
    """Who signed the request, and the scope they signed it for."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str  # YYYYMMDD from the credential scope
    region: str
    service: str
    signed_headers: str  # "host;x-amz-date", as sent
    signature: str
    amz_date: str | None  # set for presigned requests, where the date travels in the query
    expires: int | None  # presigned only: seconds after amz_date the URL stays valid


_signing_keys: dict[tuple[str, str, str, str, str], bytes] = {}
_parsed_heads: dict[str, _Authorization] = {}  # Authorization up to its Signature


@dataclass(frozen=True)
class SignedRequest:
    """What a request's line and headers alone prove: the signer's key exists, the date is
    current and the scope is ours. The signature itself covers the body, so it is checked by
    `verify_payload` once the body has been read (and hashed as it streamed in)."""

    identity: Identity
    amz_date: str
    scope: str  # YYYYMMDD/region/service/aws4_request
    unsigned_canonical: str  # the canonical request up to its payload-hash line
    signing_key: bytes = field(repr=False)
    signature: str = field(repr=False)


def verify(
    method: str,
    raw_path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: float,
    *,
    expected_service: str | None = None,
    regions: Collection[str] | None = None,
) -> Identity:
    """Check the request's SigV4 signature over its headers and `body`; return who signed it
    or raise AuthError. `raw_path` and `query_string` are exactly as received (still
    percent-encoded); `headers` are (name, value) pairs in any case; `now` is epoch seconds
    from the injected clock; `regions`, when given, are the regions a scope may name."""
    signed = check_headers(
        method, raw_path, query_string, headers, secret_for, now,
        expected_service=expected_service, regions=regions,
    )
    return verify_payload(signed, body)


def check_headers(
    method: str,
    raw_path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    secret_for: Callable[[str], str | None],
    now: float,
    *,
    expected_service: str | None = None,
    regions: Collection[str] | None = None,
) -> SignedRequest:
    """Everything verify() checks that needs no body byte; raise AuthError on failure."""
    header_map = headers_by_name(headers)
    auth = parse_authorization(header_map, query_string)
    _check_scope(auth, expected_service, regions)
    signed_names = auth.signed_headers.split(";")
    if "x-amz-security-token" in header_map and "x-amz-security-token" not in signed_names:
        # tideserve issues no session tokens, so one is never checked; but an unsigned one
        # could be swapped in transit, which AWS refuses too.
        raise AuthError("'x-amz-security-token' must be a 'SignedHeader'.", code=INCOMPLETE)
    amz_date = auth.amz_date or request_date(header_map, signed_names)
    _check_date(amz_date, auth.date, now, auth.expires)
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise AuthError("The security token included in the request is invalid.", code=UNRECOGNIZED)
    unsigned = _canonical_request_without_payload(
        method, raw_path, query_string, header_map, signed_names, auth
    )
    return SignedRequest(
        Identity(auth.access_key_id, auth.region, auth.service),
        amz_date,
        f"{auth.date}/{auth.region}/{auth.service}/aws4_request",
        unsigned,
        signing_key(secret, auth),
        auth.signature,
    )


def verify_payload(
    signed: SignedRequest, body: bytes | None = None, *, digest: str | None = None
) -> Identity:
    """Finish verify(): the signature must hold over the body actually received, given as
    its bytes or as the hex SHA-256 `digest` computed while it streamed in (PayloadHash).

    The payload hash is always the received body's own: X-Amz-Content-SHA256 is S3's header,
    and trusting it here would let a captured request be replayed with any other body (the
    signature would cover the header's value, not the bytes). So a header that disagrees with
    the body, or says UNSIGNED-PAYLOAD, fails as a signature mismatch, as AWS's JSON and
    Query services answer it."""
    if digest is None:
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    canonical_hash = hashlib.sha256((signed.unsigned_canonical + digest).encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{signed.amz_date}\n{signed.scope}\n{canonical_hash}"
    expected = hmac.new(signed.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise AuthError(_SIGNATURE_MISMATCH, code=INVALID)
    return signed.identity


class PayloadHash:
    """SHA-256 of a body fed chunk by chunk as it is received, so the body is hashed in the
    same pass that reads it; `hexdigest()` goes to verify_payload(digest=...)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _check_scope(
    auth: _Authorization, expected_service: str | None, regions: Collection[str] | None
) -> None:
    """AWS's wording (JSON services: InvalidSignatureException; Query: SignatureDoesNotMatch)."""
    if expected_service is not None and auth.service != expected_service:
        raise AuthError(
            f"Credential should be scoped to correct service: '{expected_service}'.",
            code=INVALID,
        )
    if regions is not None and not region_allowed(auth.region, auth.service, regions):
        raise AuthError(
            f"Credential should be scoped to a valid region, not '{auth.region}'.", code=INVALID
        )


def scope_service(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    """The service named in the Authorization header's credential scope, or None.

    Cheap and unverified: used only to pick which service's dispatcher handles the request
    (and so which error dialect a failure is reported in) before verify() runs.
    """
    value = _authorization_value(headers)
    if value is None:
        return None
    start = value.find("Credential=")
    if start < 0:
        return None
    end = value.find(",", start)
    credential = value[start + 11 : end if end >= 0 else len(value)].strip()
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else None


def clear_key_cache() -> None:
    _signing_keys.clear()
    _parsed_heads.clear()


# -- parsing ------------------------------------------------------------------------------------


def headers_by_name(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in out:
            out[lname].append(value)
        else:
            out[lname] = [value]
    return out


def _authorization_value(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    if isinstance(headers, Mapping):
        value = headers.get("authorization")
        return value if value is not None else headers.get("Authorization")
    for name, value in headers:
        if name.lower() == "authorization":
            return value
    return None


def parse_authorization(header_map: dict[str, list[str]], query_string: str) -> _Authorization:
    values = header_map.get("authorization")
    if values:
        return _parse_header_authorization(values[0])
    if "X-Amz-Signature=" in query_string or "x-amz-signature=" in query_string.lower():
        return _parse_query_authorization(query_string)
    raise AuthError("Missing Authentication Token", code=MISSING)


def _parse_header_authorization(value: str) -> _Authorization:
    """Every request of one signer and scope carries the same Authorization up to its
    Signature (key id, date, region, service, the names it signed): that part is parsed and
    checked once and cached, and only the signature, last as botocore writes it, is read per
    request. The signature itself is still verified on every request."""
    cut = value.rfind(", Signature=")
    if cut > 0 and "," not in value[cut + 12 :]:
        head = value[:cut]
        known = _parsed_heads.get(head)
        if known is not None:
            k = known
            return _Authorization(k.access_key_id, k.date, k.region, k.service,
                                  k.signed_headers, value[cut + 12 :].strip(), None, None)
        auth = _parse_full_authorization(value)
        if len(_parsed_heads) >= _KEY_CACHE_LIMIT:
            _parsed_heads.clear()
        _parsed_heads[head] = auth
        return auth
    return _parse_full_authorization(value)


def _parse_full_authorization(value: str) -> _Authorization:
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        raise AuthError(
            f"Unsupported authorization type: '{scheme}'; only {ALGORITHM} is accepted.",
            code=INCOMPLETE,
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if f not in fields]
    if missing:
        raise AuthError(
            " ".join(f"Authorization header requires '{f}' parameter." for f in missing)
            + f" Authorization={value}",
            code=INCOMPLETE,
        )
    return _authorization_from(
        fields["Credential"], fields["SignedHeaders"], fields["Signature"], None, None
    )


def _parse_query_authorization(query_string: str) -> _Authorization:
    """Presigned URLs (§7.4 item 7): the same fields travel as X-Amz-* query parameters."""
    params = {}
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        params[unquote(name)] = unquote(value)
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise AuthError(f"X-Amz-Algorithm must be {ALGORITHM}.", code=INCOMPLETE)
    needed = ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date")
    missing = [n for n in needed if n not in params]
    if missing:
        raise AuthError(
            " ".join(f"Query-string authentication requires the {n} parameter." for n in missing),
            code=INCOMPLETE,
        )
    return _authorization_from(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        _expires(params.get("X-Amz-Expires", "900")),
    )


def _expires(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 604800:
        raise AuthError(
            f"X-Amz-Expires must be between 1 and 604800 seconds; got '{value}'.",
            code=INCOMPLETE,
        )
    return int(value)


def _authorization_from(
    credential: str,
    signed_headers: str,
    signature: str,
    amz_date: str | None,
    expires: int | None,
) -> _Authorization:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise AuthError(
            f"Credential should be scoped to a valid region, service and 'aws4_request' "
            f"terminator; got '{credential}'.",
            code=INCOMPLETE,
        )
    names = signed_headers.split(";")
    if "host" not in names:
        raise AuthError(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            code=INCOMPLETE,
        )
    return _Authorization(
        parts[0], parts[1], parts[2], parts[3], signed_headers, signature, amz_date, expires
    )


def request_date(header_map: dict[str, list[str]], signed_names: list[str]) -> str:
    """The request time as YYYYMMDDTHHMMSSZ, from X-Amz-Date or else Date; it must be signed."""
    if "x-amz-date" in header_map:
        name, value = "x-amz-date", header_map["x-amz-date"][0].strip()
    elif "date" in header_map:
        name, value = "date", _http_date_to_amz(header_map["date"][0])
    else:
        raise AuthError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            code=INCOMPLETE,
        )
    if name not in signed_names:
        raise AuthError(
            f"'{name}' must be a 'SignedHeader' in the AWS Authorization.", code=INCOMPLETE
        )
    return value


def _http_date_to_amz(value: str) -> str:
    try:
        return parsedate_to_datetime(value).strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError) as exc:
        message = f"Date header is not a valid HTTP date: '{value}'."
        raise AuthError(message, code=INCOMPLETE) from exc


def amz_epoch(amz_date: str) -> int:
    if len(amz_date) != 16 or amz_date[8] != "T" or amz_date[15] != "Z":
        raise ValueError(amz_date)
    d, t = amz_date[:8], amz_date[9:15]
    fields = (int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]))
    return calendar.timegm(fields)


def _format_amz(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _check_date(amz_date: str, scope_date: str, now: float, expires: int | None) -> None:
    try:
        when = amz_epoch(amz_date)
    except ValueError as exc:
        raise AuthError(
            f"X-Amz-Date must be in ISO8601 basic format (YYYYMMDD'T'HHMMSS'Z'); got '{amz_date}'.",
            code=INCOMPLETE,
        ) from exc
    if amz_date[:8] != scope_date:
        raise AuthError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
            code=INVALID,
        )
    if expires is not None:
        if when + expires < now:
            raise AuthError(f"Request has expired: {amz_date} + {expires} s.", code=INVALID)
        if when > now + MAX_SKEW_SECONDS:
            raise AuthError(f"Request is not yet valid: {amz_date}.", code=INVALID)
        return
    if when < now - MAX_SKEW_SECONDS:
        raise AuthError(
            f"Signature expired: {amz_date} is now earlier than "
            f"{_format_amz(now - MAX_SKEW_SECONDS)} ({_format_amz(now)} - 15 min.)",
            code=INVALID,
        )
    if when > now + MAX_SKEW_SECONDS:
        raise AuthError(
            f"Signature not yet current: {amz_date} is still later than "
            f"{_format_amz(now + MAX_SKEW_SECONDS)} ({_format_amz(now)} + 15 min.)",
            code=INVALID,
        )


# -- canonical request --------------------------------------------------------------------------


def _canonical_request_without_payload(
    method: str,
    raw_path: str,
    query_string: str,
    header_map: dict[str, list[str]],
    signed_names: list[str],
    auth: _Authorization,
) -> str:
    """The canonical request up to and including the newline before the payload hash."""
    query = canonical_query(query_string, drop_signature=auth.amz_date is not None)
    headers = canonical_headers(header_map, signed_names)
    return (
        f"{method.upper()}\n{canonical_uri(raw_path)}\n{query}\n{headers}\n{auth.signed_headers}\n"
    )


def canonical_uri(raw_path: str) -> str:
    """The path as received, dot segments and empty segments removed, percent-encoded again
    (so `%` becomes `%25`), as botocore does for every service but S3."""
    if not raw_path:
        return "/"
    if _PLAIN_PATH.fullmatch(raw_path):
        return raw_path
    return quote(_remove_dot_segments(raw_path), safe="/~")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


def canonical_query(query_string: str, *, drop_signature: bool = False) -> str:
    if not query_string:
        return ""
    pairs = []
    for pair in query_string.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if drop_signature and name == "X-Amz-Signature":
            continue
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_headers(header_map: dict[str, list[str]], signed_names: list[str]) -> str:
    lines = []
    for name in signed_names:
        values = header_map.get(name)
        if values is None:
            raise AuthError(f"Signed header '{name}' is not present in the request.", code=INVALID)
        lines.append(f"{name}:{','.join(_trim(v) for v in values)}\n")
    return "".join(lines)


def _trim(value: str) -> str:
    if "  " in value or "\t" in value or value != value.strip():
        return _WHITESPACE.sub(" ", value.strip())
    return value


def signing_key(secret: str, auth: _Authorization) -> bytes:
    cache_key = (auth.access_key_id, secret, auth.date, auth.region, auth.service)
    key = _signing_keys.get(cache_key)
    if key is None:
        key = hmac.digest(("AWS4" + secret).encode(), auth.date.encode(), "sha256")
        for part in (auth.region, auth.service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        if len(_signing_keys) >= _KEY_CACHE_LIMIT:
            # Keys are per day, so an unbounded cache would only grow; dropping all of them
            # costs four HMACs per key on the next request.
            _signing_keys.clear()
        _signing_keys[cache_key] = key
    return key
