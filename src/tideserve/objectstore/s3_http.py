"""The HTTP edge of the S3 API: a request's addressing parsed from the ASGI scope, bodies
streamed through the aws-chunked decoder and the digests into a sink, responses and S3's XML
errors sent back. No S3 operation logic lives here."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote

from tideserve.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    AuthError,
    ConflictError,
    LimitExceededError,
    NotFoundError,
    TideserveError,
    ValidationError,
)
from tideserve.objectstore.body import (
    AwsChunkedDecoder,
    BodyExpectations,
    ChunkStart,
    Digests,
    expectations_from,
)
from tideserve.objectstore.keys import bucket_from_host
from tideserve.objectstore.s3_auth import ChunkVerifier, S3Identity
from tideserve.objectstore.store import DEFAULT_CONTENT_TYPE, ObjectAttributes
from tideserve.objectstore.xml import Node, render_plain

# Starlette's ASGI types, so the top-level app and this one agree.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Base = list[tuple[str, str]]  # headers every response carries (the request ids)

MAX_XML_BYTES = 4 * 1024 * 1024  # CompleteMultipartUpload with 10 000 parts fits
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
BATCH_BYTES = 1024 * 1024  # decoded bytes handed to a worker thread at a time
READ_BYTES = 1024 * 1024  # bytes per read when streaming a file out

# S3's status for each error code we raise; a code not listed falls back by exception class.
STATUS = {
    "AccessDenied": 403,
    "InvalidAccessKeyId": 403,
    "SignatureDoesNotMatch": 403,
    "RequestTimeTooSkewed": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "InvalidRequest": 400,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "BadDigest": 400,
    "InvalidDigest": 400,
    "XAmzContentSHA256Mismatch": 400,
    "IncompleteBody": 400,
    "MalformedTrailerError": 400,
    "EntityTooSmall": 400,
    "EntityTooLarge": 400,
    "MaxMessageLengthExceeded": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "MethodNotAllowed": 405,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "XTideserveKeyConflict": 409,
    "PreconditionFailed": 412,
    "InvalidRange": 416,
    "InternalError": 500,
    "NotImplemented": 501,
}
_CLASS_CODES: list[tuple[type[TideserveError], str]] = [
    (AuthError, "AccessDenied"),
    (AccessDeniedError, "AccessDenied"),
    (NotFoundError, "NoSuchKey"),
    (AlreadyExistsError, "BucketAlreadyOwnedByYou"),
    (ConflictError, "OperationAborted"),
    (LimitExceededError, "EntityTooLarge"),
    (ValidationError, "InvalidArgument"),
]
STATUS["OperationAborted"] = 409


class ClientDisconnected(Exception):
    pass


@dataclass(frozen=True)
class ReceivedBody:
    size: int  # decoded bytes
    md5_hex: str  # the ETag of a single-part object or a part
    checksums: dict[str, str]  # verified (or unverifiable) flexible checksums: alg -> base64


@dataclass(frozen=True)
class S3Request:
    method: str
    bucket: str  # "": the request names the service (ListBuckets)
    key: str  # "": the request names a bucket, not an object
    query: dict[str, str]  # decoded; flags such as ?uploads map to ""
    headers: dict[str, str]  # lowercase names; repeated headers joined with ","
    header_list: list[tuple[str, str]]
    raw_path: str
    query_string: str
    virtual_host: bool


def parse_request(scope: Scope, endpoint_hosts: tuple[str, ...] = ()) -> S3Request:
    header_list = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    headers: dict[str, str] = {}
    for name, value in header_list:
        lname = name.lower()
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query_string = scope.get("query_string", b"").decode("latin-1")
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    host_bucket = bucket_from_host(headers.get("host", ""), endpoint_hosts)
    path = raw_path.split("?", 1)[0]
    if host_bucket is not None:
        bucket, key = host_bucket, unquote(path[1:], errors="surrogateescape")
    else:
        first, _, rest = path.lstrip("/").partition("/")
        bucket, key = unquote(first), unquote(rest, errors="surrogateescape")
    method = scope["method"].upper()
    virtual = host_bucket is not None
    return S3Request(
        method, bucket, key, query, headers, header_list, raw_path, query_string, virtual
    )


# -- bodies ---------------------------------------------------------------------------------------


async def receive_body(
    receive: Receive,
    expect: BodyExpectations,
    identity: S3Identity,
    sink: Callable[[bytes], None],
    limit: int,
) -> ReceivedBody:
    """Stream the request body into `sink` (called in a worker thread, 1 MiB at a time),
    verifying every promise the headers made before returning."""
    digests = Digests(expect)
    decoder = AwsChunkedDecoder() if expect.chunked else None
    chunks = ChunkVerifier(identity) if expect.signed_chunks else None
    batch: list[bytes] = []
    pending = 0

    def consume(data: bytes) -> None:
        digests.update(data)
        sink(data)

    async for raw in _raw_chunks(receive):
        for event in decoder.feed(raw) if decoder else (raw,):
            if isinstance(event, bytes):
                if chunks is not None:
                    chunks.update(event)
                batch.append(event)
                pending += len(event)
            elif chunks is not None and isinstance(event, ChunkStart):
                chunks.start(event.signature)
            elif chunks is not None:
                chunks.end()
        if digests.size + pending > limit:
            raise _too_large(limit)
        if pending >= BATCH_BYTES:
            await asyncio.to_thread(consume, b"".join(batch))
            batch, pending = [], 0
    if batch:
        await asyncio.to_thread(consume, b"".join(batch))
    trailers: dict[str, str] = {}
    if decoder is not None:
        decoder.finish()
        trailers = decoder.trailers
        if chunks is not None and expect.content_sha256.endswith("-TRAILER"):
            chunks.trailer(trailers)
    checksums = digests.verify(trailers)
    return ReceivedBody(digests.size, digests.md5.hexdigest(), checksums)


def _too_large(limit: int) -> ValidationError:
    return ValidationError(
        f"Your proposed upload exceeds the maximum allowed size ({limit} bytes).",
        code="EntityTooLarge",
    )


async def _raw_chunks(receive: Receive) -> Any:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


# -- responses ------------------------------------------------------------------------------------


def new_request_id() -> str:
    return secrets.token_hex(8).upper()


async def respond(
    send: Send,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    content_length: int | None = None,
) -> None:
    length = len(body) if content_length is None else content_length
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers]
    raw.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_file(
    send: Send, status: int, headers: list[tuple[str, str]], f: BinaryIO, start: int, length: int
) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers]
    raw.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await asyncio.to_thread(f.seek, start)
    remaining = length
    while remaining > 0:
        data = await asyncio.to_thread(f.read, min(READ_BYTES, remaining))
        if not data:  # the file shrank under us; the client sees a short body and retries
            break
        remaining -= len(data)
        await send({"type": "http.response.body", "body": data, "more_body": remaining > 0})
    if remaining > 0 or length == 0:
        await send({"type": "http.response.body", "body": b""})


def error_code(exc: TideserveError) -> str:
    if exc.code is not None and exc.code in STATUS:
        return exc.code
    for cls, code in _CLASS_CODES:
        if isinstance(exc, cls):
            return code
    return "InternalError"


class Exchange:
    """One request's ASGI channels, noting whether the response has started and whether the
    request body was read to its end."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        self.started = False
        self.body_read = False

    async def receive(self) -> MutableMapping[str, Any]:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_read = True
        return message

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.started = True
        await self._send(message)

    async def fail(
        self, request: S3Request | None, code: str, message: str, request_id: str
    ) -> None:
        """Send S3's error document, unless a response is already under way. An error sent
        before the body was read closes the connection: the client may already be sending
        that body (or, after `Expect: 100-continue`, may not), and either way the next bytes
        on this connection are not a request."""
        if self.started:
            return
        unread = not self.body_read and request is not None and _has_body(request)
        await respond_error(self._send, request, code, message, request_id, close=unread)


def _has_body(request: S3Request) -> bool:
    length = request.headers.get("content-length", "0")
    return "transfer-encoding" in request.headers or (length.isdigit() and int(length) > 0)


async def respond_error(
    send: Send,
    request: S3Request | None,
    code: str,
    message: str,
    request_id: str,
    close: bool = False,
) -> None:
    status = STATUS.get(code, 500)
    headers = [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
    if close:
        headers.append(("connection", "close"))
    if request is not None and request.method == "HEAD":
        await respond(send, status, headers)  # S3 sends HEAD errors without a body
        return
    resource = request.raw_path if request is not None else "/"
    children: list[Node] = [
        ("Code", code),
        ("Message", message),
        ("Resource", resource),
        ("RequestId", request_id),
    ]
    if request is not None and request.bucket and code == "NoSuchBucket":
        children.insert(2, ("BucketName", request.bucket))
    if request is not None and request.key and code == "NoSuchKey":
        children.insert(2, ("Key", request.key))
    body = render_plain("Error", children)
    await respond(send, status, [*headers, ("content-type", "application/xml")], body)


# -- shared by the handlers ------------------------------------------------------------------


def object_attributes(headers: Mapping[str, str], checksums: Mapping[str, str]) -> ObjectAttributes:
    stored = {n: headers[n] for n in STORED_HEADERS if n in headers}
    encoding = ",".join(
        e.strip()
        for e in stored.pop("content-encoding", "").split(",")
        if e.strip() and e.strip() != "aws-chunked"
    )
    if encoding:
        stored["content-encoding"] = encoding
    metadata = {k[11:]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    return ObjectAttributes(
        content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        headers=stored,
        checksums=dict(checksums),
    )


def checksum_headers(checksums: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(f"x-amz-checksum-{alg.lower()}", value) for alg, value in checksums.items()]


async def small_body(req: S3Request, ident: S3Identity, receive: Receive) -> bytes:
    chunks: list[bytes] = []
    await receive_body(receive, expectations_from(req.headers), ident, chunks.append, MAX_XML_BYTES)
    return b"".join(chunks)


async def send_xml(send: Send, base: list[tuple[str, str]], body: bytes) -> None:
    await respond(send, 200, [*base, ("content-type", "application/xml")], body)
