"""The S3 REST-XML API as a plain ASGI app: `S3App(root, secret_for, clock)`.

Every request is authenticated from its line and headers first (s3_auth), then routed by
method, addressing and sub-resource (`select_operation`, pure), then handled here. Upload
bodies stream to a temp file in 1 MiB batches hashed in a worker thread; no body is held in
memory except the small XML documents S3 takes. Bucket/object operations are in this module,
multipart ones in s3_multipart.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from tideserve.api.ports import AccessPort, ApiCall, AuditPort
from tideserve.clock import Clock
from tideserve.errors import NotFoundError, TideserveError, ValidationError
from tideserve.objectstore import conditions, s3_auth
from tideserve.objectstore import xml as s3xml
from tideserve.objectstore.body import expectations_from
from tideserve.objectstore.keys import bucket_from_host, is_folder_marker
from tideserve.objectstore.listing import ListRequest, list_page
from tideserve.objectstore.multipart import Multipart
from tideserve.objectstore.s3_auth import S3Identity
from tideserve.objectstore.s3_http import (
    Base,
    ClientDisconnected,
    Exchange,
    Receive,
    S3Request,
    Scope,
    Send,
    checksum_headers,
    error_code,
    new_request_id,
    object_attributes,
    parse_request,
    receive_body,
    respond,
    respond_file,
    send_xml,
    small_body,
)
from tideserve.objectstore.s3_multipart import MultipartHandlers
from tideserve.objectstore.store import ObjectInfo, ObjectStore
from tideserve.settings import DEFAULT_REGION

log = logging.getLogger("tideserve.objectstore")

MAX_OBJECT_BYTES = 5 * 1024**3  # single PutObject, as in S3
_UNSUPPORTED = frozenset(
    "acl tagging versioning versions policy cors lifecycle website logging notification "
    "encryption replication object-lock retention legal-hold torrent accelerate requestPayment "
    "ownershipControls publicAccessBlock intelligent-tiering inventory metrics analytics "
    "attributes restore select policyStatus".split()
)


def select_operation(request: S3Request) -> str:
    """The S3 operation a request names, from its method, addressing and sub-resources."""
    method, query = request.method, request.query
    if not request.bucket:
        return "ListBuckets" if method == "GET" else "MethodNotAllowed"
    if _UNSUPPORTED & query.keys():
        return "NotImplemented"
    if not request.key:
        if method == "GET":
            if "location" in query:
                return "GetBucketLocation"
            if "uploads" in query:
                return "NotImplemented"  # ListMultipartUploads
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        bucket_ops = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
        return bucket_ops.get(method, "MethodNotAllowed")
    upload = "uploadId" in query
    if method == "PUT":
        if upload and "partNumber" in query:
            return "UploadPart"
        return "NotImplemented" if "x-amz-copy-source" in request.headers else "PutObject"
    if method == "POST":
        return (
            "CreateMultipartUpload"
            if "uploads" in query
            else ("CompleteMultipartUpload" if upload else "MethodNotAllowed")
        )
    object_ops = {
        "GET": "ListParts" if upload else "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "AbortMultipartUpload" if upload else "DeleteObject",
    }
    return object_ops.get(method, "MethodNotAllowed")


def is_s3_request(scope: Scope, endpoint_hosts: tuple[str, ...] = ()) -> bool:
    """Whether the top-level app should hand this request to S3App (before reading its
    body): signed for service `s3` (header or presigned query), or addressed to a bucket by
    virtual-host-style Host."""
    authorization = host = None
    for name, value in scope.get("headers", ()):
        lname = name.lower()
        if lname == b"authorization":
            authorization = value.decode("latin-1")
        elif lname == b"host":
            host = value.decode("latin-1")
    if authorization is not None:
        return _credential_service(authorization.partition("Credential=")[2]) == "s3"
    query = scope.get("query_string", b"").decode("latin-1")
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "X-Amz-Credential":
            return _credential_service(unquote(value)) == "s3"
    return host is not None and bucket_from_host(host, endpoint_hosts) is not None


def _credential_service(credential: str) -> str | None:
    parts = credential.split(",", 1)[0].strip().split("/")
    return parts[3] if len(parts) == 5 else None


class S3App(MultipartHandlers):
    def __init__(
        self,
        root: Path,
        secret_for: Callable[[str], str | None],
        clock: Clock,
        *,
        endpoint_hosts: tuple[str, ...] = (),
        regions: Collection[str] | None = None,
    ) -> None:
        self.store = ObjectStore(root, clock)
        self.regions = regions  # the credential-scope regions accepted; None: any
        self.multipart = Multipart(self.store)
        self.secret_for = secret_for
        self.clock = clock
        self.endpoint_hosts = endpoint_hosts
        # Authorisation and the audit trail (access/, audit/); the wiring sets them.
        self.access: AccessPort | None = None
        self.audit: AuditPort | None = None

    def handles(self, scope: Scope) -> bool:
        """Whether the top-level app should hand this request here (see is_s3_request)."""
        return is_s3_request(scope, self.endpoint_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = new_request_id()
        exchange = Exchange(receive, send)
        request: S3Request | None = None
        audited: _Audited | None = None
        try:
            request = parse_request(scope, self.endpoint_hosts)
            identity = s3_auth.verify(
                request.method,
                request.raw_path,
                request.query_string,
                request.header_list,
                self.secret_for,
                self.clock.now(),
                self.regions,
            )
            operation = select_operation(request)
            if self.access is not None:
                audited = _Audited.start(self, scope, request, identity, operation, request_id)
                self.access.authorize(identity.access_key_id, "s3", operation,
                                      audited.params, audited.source_ip)
            handler = self._handler(operation)
            base = [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
            send_ = exchange.send if audited is None else audited.wrap(exchange.send)
            await handler(request, identity, exchange.receive, send_, base)
        except ClientDisconnected:
            return
        except TideserveError as exc:
            if audited is not None and not exchange.started:
                await audited.failed(error_code(exc), exc.message)
            await exchange.fail(request, error_code(exc), exc.message, request_id)
        except Exception:
            log.exception("S3 request %s failed", request_id)
            message = "We encountered an internal error. Please try again."
            await exchange.fail(request, "InternalError", message, request_id)

    def _handler(self, operation: str) -> Callable[..., Awaitable[None]]:
        if operation in ("NotImplemented", "MethodNotAllowed"):
            return _refuse(operation)
        handler: Callable[..., Awaitable[None]] = getattr(self, f"_{operation}")
        return handler

    # -- buckets --------------------------------------------------------------------------------

    async def _ListBuckets(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        buckets = await asyncio.to_thread(self.store.list_buckets)
        items: list[s3xml.Node] = [
            [
                ("Name", b.name),
                ("CreationDate", s3xml.iso_time(b.created)),
                ("BucketRegion", b.region),
            ]
            for b in buckets
        ]
        owner: list[s3xml.Node] = [
            ("ID", ident.access_key_id),
            ("DisplayName", ident.access_key_id),
        ]
        body = s3xml.render(
            "ListAllMyBucketsResult",
            [("Owner", owner), ("Buckets", s3xml.entries("Bucket", items))],
        )
        await send_xml(send, base, body)

    async def _CreateBucket(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        body = await small_body(req, ident, receive)
        region = s3xml.location_constraint(body) or DEFAULT_REGION
        bucket = req.bucket
        await asyncio.to_thread(self.store.create_bucket, bucket, region)
        await respond(send, 200, [*base, ("Location", f"/{bucket}")])

    async def _HeadBucket(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        info = await asyncio.to_thread(self.store.head_bucket, req.bucket)
        await respond(send, 200, [*base, ("x-amz-bucket-region", info.region)])

    async def _GetBucketLocation(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        info = await asyncio.to_thread(self.store.head_bucket, req.bucket)
        region = None if info.region == DEFAULT_REGION else info.region
        await send_xml(send, base, s3xml.render("LocationConstraint", region))

    async def _DeleteBucket(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await asyncio.to_thread(self.store.delete_bucket, req.bucket)
        await respond(send, 204, base)

    async def _ListObjectsV2(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await self._list(req, send, base, v2=True)

    async def _ListObjects(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await self._list(req, send, base, v2=False)

    async def _list(self, req: S3Request, send: Send, base: Base, v2: bool) -> None:
        q = req.query
        encoding = q.get("encoding-type")
        if encoding not in (None, "url"):
            raise ValidationError(
                f"Invalid Encoding Method specified in Request: {encoding!r}.",
                code="InvalidArgument",
            )
        listing = ListRequest(
            prefix=q.get("prefix", ""),
            delimiter=q.get("delimiter", ""),
            max_keys=_int_param(q, "max-keys", 1000),
            start_after=q.get("start-after" if v2 else "marker", ""),
            continuation_token=q.get("continuation-token") if v2 else None,
        )
        keys = await asyncio.to_thread(self.store.list_keys, req.bucket, listing.prefix)
        page = list_page(keys, listing)
        infos = await asyncio.to_thread(self._heads, req.bucket, page.keys)

        def enc(text: str) -> str:
            return quote(text, safe="/") if encoding else text

        contents = [
            (
                "Contents",
                [
                    ("Key", enc(i.key)),
                    ("LastModified", s3xml.iso_time(i.last_modified)),
                    ("ETag", s3xml.quoted_etag(i.etag)),
                    ("Size", i.size),
                    ("StorageClass", "STANDARD"),
                ],
            )
            for i in infos
        ]
        prefixes = [("CommonPrefixes", [("Prefix", enc(p))]) for p in page.common_prefixes]
        head: list[s3xml.Node] = [("Name", req.bucket), ("Prefix", enc(listing.prefix))]
        if v2:
            head += [("KeyCount", len(infos) + len(prefixes))]
            if listing.continuation_token is not None:
                head.append(("ContinuationToken", listing.continuation_token))
            if page.next_continuation_token:
                head.append(("NextContinuationToken", page.next_continuation_token))
            if listing.start_after:
                head.append(("StartAfter", enc(listing.start_after)))
        else:
            head.append(("Marker", enc(listing.start_after)))
            if page.is_truncated and listing.delimiter:
                last = max(
                    [*page.keys, *page.common_prefixes],
                    key=lambda k: k.encode("utf-8", "surrogatepass"),
                )
                head.append(("NextMarker", enc(last)))
        head += [("MaxKeys", listing.max_keys), ("IsTruncated", page.is_truncated)]
        if listing.delimiter:
            head.append(("Delimiter", enc(listing.delimiter)))
        if encoding:
            head.append(("EncodingType", encoding))
        body = s3xml.render("ListBucketResult", [*head, *contents, *prefixes])  # type: ignore[list-item]
        await send_xml(send, base, body)

    def _heads(self, bucket: str, keys: tuple[str, ...]) -> list[ObjectInfo]:
        infos = []
        for key in keys:
            try:
                infos.append(self.store.head(bucket, key))
            except NotFoundError:
                continue  # deleted since the listing walked the directory
        return infos

    # -- objects --------------------------------------------------------------------------------

    async def _PutObject(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        bucket, key = req.bucket, req.key
        await asyncio.to_thread(self.store.check_writable, bucket, key)
        temp = await asyncio.to_thread(self.store.new_temp)
        try:
            expect = expectations_from(req.headers)
            body = await receive_body(receive, expect, ident, temp.write, MAX_OBJECT_BYTES)
            if is_folder_marker(key) and body.size:
                raise ValidationError(
                    f"Object key {key!r} ends in '/', which tideserve keeps as a folder marker: "
                    "its body must be empty.",
                    code="InvalidArgument",
                )
            await asyncio.to_thread(temp.finish)
            attrs = object_attributes(req.headers, body.checksums)
            info = await asyncio.to_thread(
                self.store.commit, bucket, key, temp, body.md5_hex, attrs
            )
        except BaseException:
            temp.discard()
            raise
        headers = [*base, ("ETag", s3xml.quoted_etag(info.etag))]
        await respond(send, 200, headers + checksum_headers(body.checksums))

    async def _GetObject(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await self._serve(req, send, base, with_body=True)

    async def _HeadObject(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await self._serve(req, send, base, with_body=False)

    async def _serve(
        self, req: S3Request, send: Send, base: list[tuple[str, str]], with_body: bool
    ) -> None:
        f = await asyncio.to_thread(self.store.open, req.bucket, req.key)
        try:
            info = await asyncio.to_thread(self.store.head, req.bucket, req.key)
            headers = [*base, *_object_headers(info, req.query)]
            if conditions.precondition_status(req.headers, info.etag, info.last_modified):
                await respond(send, 304, headers[: len(base) + 2])  # ETag, Last-Modified
                return
            span = conditions.byte_range(req.headers.get("range"), info.size)
            status, start, length = 200, 0, info.size
            if span is not None:
                status, (start, length) = 206, span
                headers.append(("Content-Range", f"bytes {start}-{start + length - 1}/{info.size}"))
            elif req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
                headers += checksum_headers(info.attributes.checksums)
            if not with_body:
                await respond(send, status, headers, content_length=length)
                return
            await respond_file(send, status, headers, f, start, length)
        finally:
            f.close()

    async def _DeleteObject(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        await asyncio.to_thread(self.store.delete, req.bucket, req.key)
        await respond(send, 204, base)

    async def _DeleteObjects(
        self, req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        keys, quiet = s3xml.delete_request(await small_body(req, ident, receive))
        results = await asyncio.to_thread(self._delete_many, req.bucket, keys)
        items: list[s3xml.Node] = []
        for key, error in results:
            if error is not None:
                items.append(
                    (
                        "Error",
                        [("Key", key), ("Code", error_code(error)), ("Message", error.message)],
                    )
                )
            elif not quiet:
                items.append(("Deleted", [("Key", key)]))
        await send_xml(send, base, s3xml.render("DeleteResult", items))

    def _delete_many(self, bucket: str, keys: list[str]) -> list[tuple[str, TideserveError | None]]:
        self.store.head_bucket(bucket)
        out: list[tuple[str, TideserveError | None]] = []
        for key in keys:
            try:
                self.store.delete(bucket, key)
                out.append((key, None))
            except (ValidationError, NotFoundError) as exc:
                out.append((key, exc))
        return out


_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


class _Audited:
    """One authenticated S3 call as the audit trail sees it: a write is recorded when its
    success status is about to be sent (wrap) or before its error is (failed)."""

    def __init__(self, app: S3App, call: ApiCall) -> None:
        self.app, self.call = app, call
        self.params = call.params
        self.source_ip = call.source_ip

    @classmethod
    def start(cls, app: S3App, scope: Scope, request: S3Request, identity: S3Identity,
              operation: str, request_id: str) -> _Audited:
        assert app.access is not None
        params = {"Bucket": request.bucket, **({"Key": request.key} if request.key else {})}
        client = scope.get("client") or ("", 0)
        call = ApiCall("s3", operation, app.access.identify(identity.access_key_id), params,
                       None, None, None, request_id, client[0],
                       request.headers.get("user-agent", ""), identity.region)
        return cls(app, call)

    def _wanted(self) -> bool:
        return self.app.audit is not None and self.app.audit.records("s3", self.call.operation)

    def wrap(self, send: Send) -> Send:
        if not self._wanted():
            return send

        async def audited_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self._store(self.call)
            await send(message)
        return audited_send

    async def failed(self, code: str, message: str) -> None:
        if self._wanted():
            await self._store(dataclasses.replace(self.call, error_code=code,
                                                  error_message=message))

    async def _store(self, call: ApiCall) -> None:
        assert self.app.audit is not None
        await asyncio.to_thread(self.app.audit.record, call)


def _object_headers(info: ObjectInfo, query: Mapping[str, str]) -> list[tuple[str, str]]:
    attrs = info.attributes
    values = {"content-type": attrs.content_type, **attrs.headers}
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in query:
            values[header] = query[param]
    headers = [
        ("ETag", s3xml.quoted_etag(info.etag)),
        ("Last-Modified", s3xml.http_time(info.last_modified)),
        ("Accept-Ranges", "bytes"),
    ]
    headers += [(name, value) for name, value in values.items()]
    headers += [(f"x-amz-meta-{k}", v) for k, v in attrs.metadata.items()]
    return headers


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise ValidationError(
            f"Provided {name} not an integer or within integer range: {value!r}.",
            code="InvalidArgument",
        )
    return int(value)


def _refuse(operation: str) -> Callable[..., Awaitable[None]]:
    async def handler(
        req: S3Request, ident: S3Identity, receive: Receive, send: Send, base: Base
    ) -> None:
        if operation == "NotImplemented":
            raise TideserveError(
                "A header or query you provided implies functionality that tideserve's object "
                "store does not implement.",
                code="NotImplemented",
            )
        raise TideserveError(
            f"The specified method ({req.method}) is not allowed against this resource.",
            code="MethodNotAllowed",
        )

    return handler
