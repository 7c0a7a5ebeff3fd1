"""The one ASGI application `tideserve up` serves: health, Prometheus, the SageMaker Runtime
data plane (hot path, plain ASGI) and every AWS control-plane protocol, all behind SigV4."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Collection, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tideserve.api import sigv4
from tideserve.api.health import Readiness, health
from tideserve.api.limits import (
    MAX_CONTROL_BODY_BYTES,
    closing,
    declared_length,
    has_body,
    refuse_oversized_control,
)
from tideserve.api.ports import AccessPort, ApiCall, AsyncFrontPort, AuditPort, MountedApp
from tideserve.api.rpc import CallGuard, OperationRegistry, auth_error_response, handle_rpc
from tideserve.api.runtime_wire import endpoint_name_in, runtime_error_response
from tideserve.api.scope import signing_name
from tideserve.clock import Clock
from tideserve.errors import AccessDeniedError, TideserveError, ValidationError
from tideserve.serving.router import MAX_PAYLOAD_BYTES, Invocation, Router
from tideserve.settings import DEFAULT_REGION
from tideserve.tracing import SERVER_ERROR_TYPE, failed_with, server_span, span

log = logging.getLogger("tideserve.api")


RUNTIME_SIGNING_NAME = signing_name("sagemaker-runtime")  # "sagemaker"
# The runtime's requests as traces (tracing/__init__.py, spec §6.6): span names by path end.
_TRACED = {"/invocations": "SageMaker Runtime.InvokeEndpoint",
           "/async-invocations": "SageMaker Runtime.InvokeEndpointAsync"}
_TRACE_HEADERS = (b"traceparent", b"x-amzn-trace-id")


class PayloadTooLarge(ValidationError):
    pass


async def read_body(
    receive: Receive, limit: int, payload_hash: sigv4.PayloadHash | None = None
) -> bytes:
    """The whole body, refused past `limit` bytes; hashed chunk by chunk into `payload_hash`
    (for SigV4) in the same pass that reads it. A traced request's `read body` span."""
    with span("read body"):
        return await _read_body(receive, limit, payload_hash)


async def _read_body(
    receive: Receive, limit: int, payload_hash: sigv4.PayloadHash | None
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"Received payload size exceeds the maximum allowed payload size of "
                    f"{limit} bytes."
                )
            chunks.append(chunk)
            if payload_hash is not None:
                payload_hash.update(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_RUNTIME_SCOPE = f"/{RUNTIME_SIGNING_NAME}/aws4_request".encode()


def _runtime_invocation(scope: Scope, path: str) -> bool:
    """POST /endpoints/<name>/invocations whose Authorization is scoped to SageMaker: S3
    claims only requests signed for `s3` (objectstore.s3_api.is_s3_request), so this one can
    skip that check. Anything else takes the general route below."""
    if scope["method"] != "POST" or not path.startswith("/endpoints/") \
            or not path.endswith("/invocations"):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            return _RUNTIME_SCOPE in value.partition(b",")[0]
    return False


class KeyCache:
    """Secrets by access key id, read from the store once (keys change rarely)."""

    def __init__(self, lookup: Callable[[str], str | None]) -> None:
        self._lookup = lookup
        self._known: dict[str, str] = {}

    def forget(self) -> None:
        """Drop every cached secret (a key was disabled or deleted)."""
        self._known.clear()

    def __call__(self, key_id: str) -> str | None:
        secret = self._known.get(key_id)
        if secret is None:
            secret = self._lookup(key_id)
            if secret is not None:
                self._known[key_id] = secret
        return secret


class TideserveApp:
    def __init__(
        self,
        router: Router,
        registry: OperationRegistry,
        secret_for: Callable[[str], str | None],
        clock: Clock,
        metrics_text: Callable[[], tuple[bytes, str]],
        lifespan: Callable[[], Any] | None = None,
    ) -> None:
        self.router = router
        self.registry = registry
        self.secret_for = KeyCache(secret_for)
        self.clock = clock
        self.metrics_text = metrics_text
        self.lifespan = lifespan
        self._span_attributes = {"rpc.system": "aws-api", "rpc.service": "SageMaker Runtime",
                                 "cloud.region": router.region}
        self.ready = False
        # What /healthz reports once started (api/health.py); server.py sets the controller's.
        self.readiness: Callable[[], Readiness] = Readiness
        self.async_front: AsyncFrontPort | None = None  # InvokeEndpointAsync; server.py sets it
        # The S3 API (tideserve.objectstore), served on the same port; server.py sets it.
        self.s3: MountedApp | None = None
        # Further signed routes of tideserve's own (transform progress); server.py adds them.
        self.mounts: list[MountedApp] = []
        # The regions a credential scope may name (api/scope.py); server.py sets them.
        self.regions: Collection[str] = frozenset({DEFAULT_REGION})
        # Authorisation after SigV4 and the audit trail (access/, audit/); server.py sets them.
        self.access: AccessPort | None = None
        self.audit: AuditPort | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if _runtime_invocation(scope, path):  # the hot path: signed for SageMaker, so not S3's
            await self._traced(self._invoke, scope, receive, send)
            return
        # Before anything else: a bucket may be named "endpoints" or "healthz".
        if self.s3 is not None and self.s3.handles(scope):
            await self.s3(scope, receive, send)
            return
        for mount in self.mounts:
            if mount.handles(scope):
                await mount(scope, receive, send)
                return
        method: str = scope["method"]
        if method == "GET" and path == "/healthz":
            status, report = health(self.ready, self.readiness())
            body = json.dumps(report).encode()
            await send_bytes(send, status, body, [(b"content-type", b"application/json")])
            return
        if method == "GET" and path == "/metrics":
            text, ctype = self.metrics_text()
            await send_bytes(send, 200, text, [(b"content-type", ctype.encode())])
            return
        if path.startswith("/endpoints/") and path.endswith("/invocations") and method == "POST":
            await self._traced(self._invoke, scope, receive, send)
            return
        if (path.startswith("/endpoints/") and path.endswith("/async-invocations")
                and method == "POST" and self.async_front is not None):
            front = self.async_front
            await self._traced(lambda sc, rc, sn: self._invoke_async(sc, rc, sn, front), scope,
                               receive, send)
            return
        await self._control(scope, receive, send)

    def _check_headers(
        self, scope: Scope, headers: list[tuple[str, str]], service: str | None = None
    ) -> sigv4.SignedRequest:
        """SigV4 over the request line and headers, before any body byte is read (so an
        unsigned body is never buffered); `service`: the signing name the route requires
        (None: the RPC dispatcher follows the scope's). verify_payload finishes the check.
        A traced request's `sigv4.verify` span (the body's hash is its `read body`)."""
        raw_path = scope.get("raw_path") or scope["path"].encode()
        with span("sigv4.verify"):
            return sigv4.check_headers(
                scope["method"],
                raw_path.decode("latin-1"),
                scope.get("query_string", b"").decode(),
                headers,
                self.secret_for,
                self.clock.now(),
                expected_service=service,
                regions=self.regions,
            )

    async def _traced(self, handler: Callable[[Scope, Receive, Send], Any], scope: Scope,
                      receive: Receive, send: Send) -> None:
        """A runtime request as a trace: `handler` in a SERVER span whose parent is the
        caller's (traceparent, else X-Amzn-Trace-Id), marked with the endpoint and the
        answer's status (an error from 400 up, named by its x-amzn-ErrorType). An untraced
        request pays the sampler's decision and a scan of its header names."""
        path: str = scope["path"]
        suffix = "/async-invocations" if path.endswith("/async-invocations") else "/invocations"
        carried = {k.decode("latin-1"): v.decode("latin-1")
                   for k, v in scope["headers"] if k in _TRACE_HEADERS}
        with server_span(_TRACED[suffix], carried, self._span_attributes) as root:
            if not root.is_recording():
                await handler(scope, receive, send)
                return
            root.set_attribute("tideserve.endpoint", path[len("/endpoints/"):-len(suffix)])

            async def noting_status(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    root.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 400:
                        failed_with(root, _error_type(message.get("headers", [])))
                await send(message)

            await handler(scope, receive, noting_status)

    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.perf_counter()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {k.lower(): v for k, v in headers}
        body_read = False
        try:
            signed = self._check_headers(scope, headers, RUNTIME_SIGNING_NAME)
            declared = declared_length(lowered)
            if declared > MAX_PAYLOAD_BYTES:
                raise PayloadTooLarge(
                    f"Received payload size ({declared} bytes) exceeds the maximum allowed "
                    f"payload size of {MAX_PAYLOAD_BYTES} bytes."
                )
            digest = sigv4.PayloadHash()
            body = await read_body(receive, MAX_PAYLOAD_BYTES, digest)
            body_read = True
            identity = sigv4.verify_payload(signed, digest=digest.hexdigest())
            name = endpoint_name_in(scope["path"], "/endpoints/", "/invocations")
            if self.access is not None:
                await self._authorize_invoke(scope, identity, "InvokeEndpoint", name, lowered)
            if self.async_front is not None:
                self.async_front.refuse_sync(name)
            result = await self.router.invoke(Invocation(name, body, lowered, received))
        except TideserveError as exc:
            response = runtime_error_response(exc)
            if not body_read and has_body(lowered):
                closing(response)
            await response(scope, receive, send)
            return
        out = [
            (b"content-type", result.content_type.encode("latin-1")),
            (b"x-amzn-invoked-production-variant", result.variant.encode("latin-1")),
        ]
        if result.custom_attributes is not None:
            out.append(
                (b"x-amzn-sagemaker-custom-attributes", result.custom_attributes.encode("latin-1"))
            )
        await send_bytes(send, 200, result.body, out)

    async def _invoke_async(
        self, scope: Scope, receive: Receive, send: Send, front: AsyncFrontPort
    ) -> None:
        """InvokeEndpointAsync: 202 only once the request is committed to the queue."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {k.lower(): v for k, v in headers}
        body_read = False
        try:
            signed = self._check_headers(scope, headers, RUNTIME_SIGNING_NAME)
            declared = declared_length(lowered)
            if declared > front.max_inline_bytes:
                raise PayloadTooLarge(
                    f"Received payload size ({declared} bytes) exceeds the maximum allowed "
                    f"payload size of {front.max_inline_bytes} bytes."
                )
            digest = sigv4.PayloadHash()
            body = await read_body(receive, front.max_inline_bytes, digest)
            body_read = True
            identity = sigv4.verify_payload(signed, digest=digest.hexdigest())
            name = endpoint_name_in(scope["path"], "/endpoints/", "/async-invocations")
            if self.access is not None:
                await self._authorize_invoke(scope, identity, "InvokeEndpointAsync", name,
                                             lowered)
            accepted = await asyncio.to_thread(front.accept, name, lowered, body)
        except TideserveError as exc:
            response = runtime_error_response(exc)
            if not body_read and has_body(lowered):
                closing(response)
            await response(scope, receive, send)
            return
        await send_bytes(send, 202, accepted.body(), accepted.headers())

    async def _authorize_invoke(self, scope: Scope, identity: sigv4.Identity, operation: str,
                                name: str, headers: dict[str, str]) -> None:
        """sagemaker:InvokeEndpoint[Async] on the endpoint (a cached decision on the hot path);
        a refusal is recorded in the audit trail (as a data event) before it is answered."""
        assert self.access is not None
        client = scope.get("client") or ("", 0)
        try:
            self.access.authorize(identity.access_key_id, "sagemaker-runtime", operation,
                                  {"EndpointName": name}, client[0])
        except AccessDeniedError as exc:
            if self.audit is not None:
                call = ApiCall("sagemaker-runtime", operation,
                               self.access.identify(identity.access_key_id),
                               {"EndpointName": name}, None, "AccessDeniedException",
                               exc.message, str(uuid.uuid4()), client[0],
                               headers.get("user-agent", ""), identity.region)
                await asyncio.to_thread(self.audit.record, call)
            raise

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        lowered = {k.lower(): v for k, v in headers}
        body_read = False
        try:
            signed = self._check_headers(scope, headers)
            refuse_oversized_control(lowered)
            digest = sigv4.PayloadHash()
            body = await read_body(receive, MAX_CONTROL_BODY_BYTES, digest)
            body_read = True
            identity = sigv4.verify_payload(signed, digest=digest.hexdigest())
        except TideserveError as exc:
            response: Response = auth_error_response(request, exc)
            if not body_read and has_body(lowered):
                closing(response)
            await response(scope, receive, send)
            return
        guard = CallGuard(self.access, self.audit)
        response = await handle_rpc(request, body, identity.service, self.registry, identity,
                                    guard)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.lifespan is not None:
                        self._lifespan_cm = self.lifespan()
                        await self._lifespan_cm.__aenter__()
                    self.ready = True
                except Exception as exc:  # noqa: BLE001 - reported to the server
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                if self.lifespan is not None:
                    await self._lifespan_cm.__aexit__(None, None, None)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _error_type(headers: list[tuple[bytes, bytes]]) -> str:
    """The AWS error code of a runtime error response (its x-amzn-ErrorType, up to ':')."""
    for name, value in headers:
        if name.lower() == b"x-amzn-errortype":
            return value.decode("latin-1").partition(":")[0]
    return SERVER_ERROR_TYPE
