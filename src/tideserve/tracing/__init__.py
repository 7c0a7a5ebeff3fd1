"""Tracing (X-Ray's role, on OpenTelemetry): every invocation is a trace.

    spans.py        the small API every path opens spans with (span, server_span, ...):
                    near-free when a request is not sampled
    propagation.py  traceparent and X-Amzn-Trace-Id, in from clients, out to instances
    setup.py        the server's SDK pipeline: sampler, OTLP/HTTP exporter, memory store
    store.py        the last N traces in memory (`tideserve traces`)
    receiver.py     POST /v1/traces: instances' spans into the same pipeline
    instance.py     an instance's provider, exporting to the server
    view.py         traces as JSON and as a printed tree
    cli.py          `tideserve traces`

Span names, so that every path reads alike in a trace:

    SageMaker Runtime.InvokeEndpoint[Async]   the request at the server (SERVER)
      sigv4.verify                            the signature's header checks (key, scope, date)
      read body                               the body received and hashed for the signature
      route                                   choice of variant and instance
      serverless.lease / cold start           a serverless worker (warm, or started for it)
      instance.invoke                         the hop to an instance (CLIENT), one per attempt
        instance /invocations                 at the instance (SERVER, service tideserve-instance)
          receive body, queue, decode, predict, encode, transform_fn
          model download, model load, model unload, model load wait   (multi-model)
          container.invoke                    a pipeline's hop to one container (CLIENT),
            instance /invocations             with that container's own spans below
      async.enqueue, async.queue, async.process, objectstore.head/get/put
    TransformJob object                       a transform job's input object (its own trace)
      TransformJob mini-batch                 one request: record range, bytes

For paths still to come, the same few calls: a hop through serving's InstanceClient is an
`instance.invoke` span with the context passed on (each pipeline container's call gets one
for free); a step inside a request is `with span("model load", {...}):` (a multi-model
endpoint's load, a container's turn); work with no request around it starts its own trace
with `span_under(None, "TransformJob record", {...})` (a job's record, a training epoch),
and work that continues a request later carries it with PARKED.park(key) / PARKED.take(key).
Attributes are named `tideserve.*` (tideserve.endpoint marks the trace's endpoint for
`tideserve traces ENDPOINT`).

Only this module's __init__ and spans/propagation are imported on the data path; the SDK is
imported where a provider is built (setup.py, instance.py).
"""

from tideserve.tracing.spans import (
    CLIENT,
    INTERNAL,
    NOTHING,
    PARKED,
    SERVER,
    SERVER_ERROR_TYPE,
    current_context,
    failed,
    failed_with,
    hop_header_dict,
    hop_headers,
    interval,
    now_ns,
    recording,
    run_in,
    server_span,
    span,
    span_under,
)

__all__ = [
    "CLIENT", "INTERNAL", "NOTHING", "PARKED", "SERVER", "SERVER_ERROR_TYPE",
    "current_context", "failed", "failed_with",
    "hop_header_dict", "hop_headers", "interval", "now_ns", "recording", "run_in",
    "server_span", "span", "span_under",
]
