"""The span API's two paths (a traced request builds a tree; an untraced one allocates
nothing), the in-memory store's bounds and queries, and the OTLP receiver's decoding."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from tideserve.tracing import spans
from tideserve.tracing.receiver import OtlpReceiver, decode
from tideserve.tracing.store import RecentTraces
from tideserve.tracing.view import render, trace_json


@pytest.fixture
def recent():
    """A provider that records every root, with a store on it; the no-op one afterwards."""
    store = RecentTraces(max_traces=3, max_spans=4)
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(store)
    spans.use_provider(provider)
    yield store
    spans._tracer = spans.trace.NoOpTracer()  # noqa: SLF001 - back to the untraced default


def request(name: str = "ep", headers: dict[str, str] | None = None) -> None:
    with spans.server_span("SageMaker Runtime.InvokeEndpoint", headers or {},
                           {"tideserve.endpoint": name}):
        with spans.span("route"):
            pass
        with spans.span("instance.invoke", kind=spans.CLIENT):
            spans.interval("queue", time.time_ns() - 1_000_000)


def test_a_traced_request_is_a_tree_under_its_callers_span(recent):
    request(headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    kept = recent.get(0x0af7651916cd43dd8448eb211c80319c)
    assert kept is not None and kept.endpoint == "ep"
    by_name = {s.name: s for s in kept.spans}
    root = by_name["SageMaker Runtime.InvokeEndpoint"]
    assert root.parent is not None and root.parent.span_id == 0xb7ad6b7169203331
    assert by_name["route"].parent.span_id == root.context.span_id
    assert by_name["queue"].parent.span_id == by_name["instance.invoke"].context.span_id
    assert by_name["queue"].end_time - by_name["queue"].start_time >= 1_000_000
    printed = render([trace_json(kept)])
    assert "└─ instance.invoke" in printed and "queue" in printed


def test_a_client_that_says_not_sampled_is_respected(recent):
    request(headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"})
    assert len(recent) == 0


def test_an_untraced_request_gets_the_shared_nothing():
    assert spans.server_span("x", {}) is spans.NOTHING  # no provider: the no-op tracer
    with spans.span("child") as child:
        assert not child.is_recording()
    assert spans.span("child") is spans.NOTHING
    assert spans.hop_headers() == b"" and spans.current_context() is None


def test_a_sampled_out_request_records_nothing_below_its_root(recent):
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(recent)
    spans.use_provider(provider)
    request()
    assert len(recent) == 0


def test_the_store_keeps_the_last_traces_and_bounds_each(recent):
    for i in range(5):
        request(f"ep{i}")
    assert len(recent) == 3
    assert [t.endpoint for t in recent.query()] == ["ep4", "ep3", "ep2"]  # newest first
    assert [t.endpoint for t in recent.query("EP3")] == ["ep3"]  # names are case-insensitive
    kept = recent.query(limit=1)[0]
    assert len(kept.spans) == 4 and kept.dropped == 0
    with spans.server_span("big", {}, {"tideserve.endpoint": "big"}):
        for _ in range(6):
            with spans.span("step"):
                pass
    big = recent.query("big")[0]
    assert len(big.spans) == 5 and big.dropped == 2  # the root is kept all the same
    assert big.spans[-1].name == "big"


def test_slowest_orders_by_trace_duration(recent):
    with spans.server_span("slow", {}, {"tideserve.endpoint": "slow"}):
        time.sleep(0.02)
    request("fast")
    assert [t.endpoint for t in recent.query(slowest=True)][0] == "slow"


def test_the_parked_contexts_are_bounded(recent):
    parked = spans.Parked(limit=2)
    for key in "abc":
        with spans.server_span(key, {}):
            parked.park(key)
    assert parked.take("a") is None and parked.take("c") is not None
    assert parked.take("c") is None  # taken once


def test_the_receiver_decodes_what_the_sdk_exports(recent):
    request("exported")
    original = recent.query("exported")[0].spans
    received = decode(encode_spans(original).SerializeToString())
    assert [(s.name, s.context.span_id, s.parent and s.parent.span_id, s.start_time,
             s.end_time, s.kind) for s in received] == \
        [(s.name, s.context.span_id, s.parent and s.parent.span_id, s.start_time,
          s.end_time, s.kind) for s in original]
    assert received[-1].attributes["tideserve.endpoint"] == "exported"


def asgi_post(app, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/traces", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def test_the_receiver_takes_spans_only_with_the_token_and_in_an_otlp_encoding():
    got: list = []
    receiver = OtlpReceiver("secret", got.extend)
    proto = [(b"content-type", b"application/x-protobuf")]
    token = [(b"x-tideserve-traces-token", b"secret")]
    assert asgi_post(receiver, proto, b"") == 403
    assert asgi_post(receiver, [*proto, (b"x-tideserve-traces-token", b"guess")], b"") == 403
    assert asgi_post(receiver, [(b"content-type", b"text/plain"), *token], b"{}") == 415
    assert asgi_post(receiver, [(b"content-type", b"application/json"), *token], b"[1]") == 400
    assert asgi_post(receiver, [*proto, *token], b"\xff\xff not protobuf") == 400
    assert asgi_post(receiver, [*proto, *token], b"") == 200 and got == []


def test_the_receiver_takes_otlp_json_with_hex_ids():
    got: list = []
    receiver = OtlpReceiver("secret", got.extend)
    body = json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "someone"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173", "name": "step", "kind": 2,
            "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000",
            "attributes": [{"key": "rows", "value": {"intValue": "3"}}],
            "status": {"code": 2, "message": "boom"}}]}]}]}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-tideserve-traces-token", b"secret")]
    assert asgi_post(receiver, headers, body) == 200
    [span] = got
    assert (span.context.trace_id, span.context.span_id, span.parent.span_id) == (
        0x5b8efff798038103d269b633813fc60c, 0xeee19b7ec3c1b174, 0xeee19b7ec3c1b173)
    assert span.kind.name == "SERVER" and span.attributes["rows"] == 3
    assert span.status.description == "boom"
    assert span.resource.attributes["service.name"] == "someone"
    assert span.end_time - span.start_time == 1_000_000_000
