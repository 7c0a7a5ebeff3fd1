"""What tracing costs a request, in CPU, measured in-process so that a busy machine's noise
stays out of it: the spans the router opens for one InvokeEndpoint (server span, sigv4.verify,
route, instance.invoke, the hop's headers) and those an instance opens (its server span,
receive body, queue, decode, predict, encode), under each sampling setting, with the spans
ending in the server's real processors (the in-memory store and a batch span processor). A
traced request's export is timed too: its OTLP protobuf encoding (the instance's exporter,
or the server's with --otlp-endpoint) and the server's decoding of an instance's export
(tracing/receiver.py). Prints figures; asserts nothing. bench/serving.py --tracing measures
the same end to end.

    .venv/bin/python bench/tracing_overhead.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from tideserve.tracing import spans
from tideserve.tracing.receiver import decode
from tideserve.tracing.sampling import ReservoirThenRate
from tideserve.tracing.store import RecentTraces


class Encoding(SpanExporter):
    """Encodes each batch as the OTLP exporter does (without sending it), timing that."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.blobs: list[bytes] = []

    def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
        t0 = time.thread_time()
        self.blobs.append(encode_spans(batch).SerializeToString())
        self.cpu += time.thread_time() - t0
        return SpanExportResult.SUCCESS


def router_request() -> None:
    with spans.server_span("SageMaker Runtime.InvokeEndpoint", {}, {"rpc.system": "aws-api"}) \
            as root:
        with spans.span("sigv4.verify"):
            pass
        root.set_attribute("tideserve.endpoint", "bench")
        with spans.span("route") as route:
            if route.is_recording():
                route.set_attributes({"tideserve.variant": "AllTraffic",
                                      "tideserve.instance_id": "bench-1"})
        with spans.span("instance.invoke", {"tideserve.instance_id": "bench-1"},
                        spans.CLIENT) as hop:
            spans.hop_headers()
            hop.set_attribute("http.response.status_code", 200)


_PARENT = set_span_in_context(NonRecordingSpan(SpanContext(1, 2, True, TraceFlags(1))))


def instance_request() -> None:
    with spans.span_under(_PARENT, "instance /invocations", {"tideserve.runtime": "sklearn"},
                          spans.SERVER):
        with spans.span("receive body") as body:
            body.set_attribute("tideserve.bytes", 209)
        traced = spans.current_context()

        def in_thread() -> None:
            spans.interval("queue", time.time_ns())
            for stage in ("decode", "predict", "encode"):
                with spans.span(stage):
                    pass

        spans.run_in(traced, in_thread)


def untraced_instance_request() -> None:
    """What an instance runs for a request without trace headers: the span sites, each a
    context lookup that finds nothing traced."""
    with spans.span("receive body") as body:
        body.set_attribute("tideserve.bytes", 209)
    spans.current_context()
    for stage in ("decode", "predict", "encode"):
        with spans.span(stage):
            pass


def measure(label: str, sampler: Sampler | None, request: Callable[[], Any], n: int) -> None:
    """CPU per request of `request` with `sampler` (None: tracing off, the no-op tracer)."""
    exporter = Encoding()
    provider = None
    if sampler is None:
        spans._tracer = spans.trace.NoOpTracer()  # noqa: SLF001 - what OTEL_SDK_DISABLED leaves
    else:
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(RecentTraces())
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
        spans.use_provider(provider)
    t0 = time.process_time()
    for _ in range(n):
        request()
    if provider is not None:
        provider.force_flush()
    cpu_us = (time.process_time() - t0) / n * 1e6
    line = f"{label:44} {cpu_us:7.1f} µs CPU/request"
    if exporter.blobs:
        t1 = time.process_time()
        for blob in exporter.blobs:
            decode(blob)
        line += (f"  (OTLP encoding {exporter.cpu / n * 1e6:.1f} of it; the server decoding "
                 f"an instance's export: {(time.process_time() - t1) / n * 1e6:.1f} more)")
    print(line, flush=True)
    if provider is not None:
        provider.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    n = ap.parse_args().requests
    print(f"{n} requests each, as fast as they go (the default sampler's reservoir of one a "
          "second is then negligible: its share is its 5%)")
    measure("router: tracing off (OTEL_SDK_DISABLED)", None, router_request, n)
    measure("router: sampled out (--trace-sample-ratio 0)", ParentBased(TraceIdRatioBased(0)),
            router_request, n)
    measure("router: default (1/s, then 5%)", ParentBased(ReservoirThenRate()),
            router_request, n)
    measure("router: every request (--trace-sample-ratio 1)",
            ParentBased(TraceIdRatioBased(1)), router_request, n)
    measure("instance: a traced request", ParentBased(ALWAYS_OFF), instance_request, n)
    measure("instance: an untraced request", ParentBased(ALWAYS_OFF),
            untraced_instance_request, n)


if __name__ == "__main__":
    main()
