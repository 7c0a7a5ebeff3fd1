"""OTLP/HTTP trace receiver: `POST /v1/traces` on the server's port, where instances export
their spans (tracing/instance.py). Each ExportTraceServiceRequest is decoded (protobuf,
optionally gzip) into SDK spans and handed to the server's pipeline (setup.ServerTracing.
ingest): the in-memory store and the configured exporter.

Only holders of the server's traces token may post (instances get it in their environment);
anything else is 403, so a local user cannot plant spans in someone's traces. Bodies are
bounded (MAX_BODY_BYTES, the 20 MiB OTLP recommends, spec §6.4: 413, which exporters do not
retry). Both OTLP encodings are taken: application/x-protobuf, and application/json (OTLP/JSON:
ids as hex strings, which protobuf's own JSON mapping would read as base64); a body that is not
an ExportTraceServiceRequest is 400, another content type 415. Success is 200 with an (empty)
ExportTraceServiceResponse in the request's content type.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tideserve.tracing.instance import TOKEN_HEADER

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATH = "/v1/traces"
MAX_BODY_BYTES = 20 * 1024 * 1024
_TOKEN = TOKEN_HEADER.lower().encode()
_PROTOBUF = b"application/x-protobuf"
_JSON = b"application/json"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_REMOTE_PARENT = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK (OTLP 1.2)


class OtlpReceiver:
    def __init__(self, token: str, ingest: Callable[[list[ReadableSpan]], None]) -> None:
        self.token = token.encode()
        self.ingest = ingest

    @staticmethod
    def handles(scope: Scope) -> bool:
        return bool(scope["path"] == PATH and scope["method"] == "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        presented = headers.get(_TOKEN)
        if presented is None or not hmac.compare_digest(presented, self.token):
            await _answer(send, 403, b"this route takes spans from tideserve's instances only",
                          b"text/plain")
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in (_PROTOBUF, _JSON):
            await _answer(send, 415, b"send application/x-protobuf or application/json",
                          b"text/plain")
            return
        body = await _read(receive, MAX_BODY_BYTES)
        if body is None:
            await _answer(send, 413, b"larger than 20 MiB", b"text/plain")
            return
        try:
            if headers.get(b"content-encoding", b"").strip().lower() == b"gzip":
                body = _gunzip(body, MAX_BODY_BYTES)
            spans = await asyncio.to_thread(decode if content_type == _PROTOBUF else decode_json,
                                            body)
        except (DecodeError, json_format.ParseError, ValueError, TypeError, AttributeError,
                zlib.error) as exc:
            await _answer(send, 400, f"not an ExportTraceServiceRequest: {exc}".encode(),
                          b"text/plain")
            return
        self.ingest(spans)
        answer = (ExportTraceServiceResponse().SerializeToString() if content_type == _PROTOBUF
                  else b"{}")
        await _answer(send, 200, answer, content_type)


def decode(body: bytes) -> list[ReadableSpan]:
    """The spans of a protobuf ExportTraceServiceRequest, as the SDK's exporters take them."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return _spans_of(request)


def decode_json(body: bytes) -> list[ReadableSpan]:
    """The spans of an OTLP/JSON ExportTraceServiceRequest."""
    data = json.loads(body)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hex_ids_to_base64(span, "traceId", "spanId", "parentSpanId")
                for link in span.get("links", []):
                    _hex_ids_to_base64(link, "traceId", "spanId")
    request = json_format.ParseDict(data, ExportTraceServiceRequest(),
                                    ignore_unknown_fields=True)
    return _spans_of(request)


def _hex_ids_to_base64(item: dict[str, Any], *names: str) -> None:
    for name in names:
        if item.get(name):
            item[name] = base64.b64encode(bytes.fromhex(item[name])).decode()


def _spans_of(request: ExportTraceServiceRequest) -> list[ReadableSpan]:
    out: list[ReadableSpan] = []
    for resource_spans in request.resource_spans:
        resource = Resource(attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(scope_spans.scope.name,
                                         scope_spans.scope.version or None)
            out.extend(_span(s, resource, scope) for s in scope_spans.spans)
    return out


def _span(s: trace_pb2.Span, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    trace_id = _id(s.trace_id, 16)
    parent = None
    if s.parent_span_id:
        parent = SpanContext(trace_id, _id(s.parent_span_id, 8),
                             is_remote=bool(s.flags & _REMOTE_PARENT), trace_flags=_SAMPLED)
    return ReadableSpan(
        name=s.name,
        context=SpanContext(trace_id, _id(s.span_id, 8), is_remote=False, trace_flags=_SAMPLED),
        parent=parent,
        resource=resource,
        attributes=attributes(s.attributes),
        events=[Event(e.name, attributes(e.attributes), e.time_unix_nano) for e in s.events],
        links=[Link(SpanContext(_id(link.trace_id, 16), _id(link.span_id, 8), is_remote=True,
                                trace_flags=_SAMPLED), attributes(link.attributes))
               for link in s.links],
        kind=_KINDS.get(s.kind, SpanKind.INTERNAL),
        status=Status(_STATUS.get(s.status.code, StatusCode.UNSET), s.status.message or None),
        start_time=s.start_time_unix_nano,
        end_time=s.end_time_unix_nano,
        instrumentation_scope=scope,
    )


_KINDS = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER,
          5: SpanKind.CONSUMER}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


def _id(raw: bytes, size: int) -> int:
    if len(raw) != size:
        raise ValueError(f"an id of {len(raw)} bytes (expected {size})")
    return int.from_bytes(raw, "big")


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: value for kv in pairs if (value := _value(kv.value)) is not None}


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        items = [_value(x) for x in v.array_value.values]
        return tuple(i for i in items if isinstance(i, str | bool | int | float))
    if which == "kvlist_value":
        return str({kv.key: _value(kv.value) for kv in v.kvlist_value.values})
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which) if which else None


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise ValueError("inflates past 20 MiB")
    return out


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
