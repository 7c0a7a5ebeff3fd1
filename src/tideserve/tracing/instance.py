"""Tracing inside an instance process: its spans are exported to the server that started it.

The server puts two variables in every instance's environment (setup.share_with_instances):
where to export (`TIDESERVE_TRACES_ENDPOINT`, the server's own POST /v1/traces) and the token
that route wants (`TIDESERVE_TRACES_TOKEN`, taken out of the environment here, before the
model's code is imported). The instance installs an SDK tracer provider as OpenTelemetry's
global one, so a user's inference.py can do

    from opentelemetry import trace
    tracer = trace.get_tracer(__name__)

    def predict_fn(data, model):
        with tracer.start_as_current_span("my-step"):
            ...

and its span is a child of the instance's `predict` span, in the request's trace, kept by
`tideserve traces` and exported with the rest to the server's collector. The instance never
decides to trace: its sampler follows the router's choice (parent-based, off without a
parent), so a span opened outside a request (in model_fn, say) is not recorded.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

ENDPOINT_ENV = "TIDESERVE_TRACES_ENDPOINT"
TOKEN_ENV = "TIDESERVE_TRACES_TOKEN"
TOKEN_HEADER = "X-Tideserve-Traces-Token"
SERVICE_NAME = "tideserve-instance"
# An instance's spans reach `tideserve traces` within about this (the SDK's default, 5 s, is
# long for someone watching a request they just made).
SCHEDULE_DELAY_MS = 200


def setup_instance_tracing(environ: MutableMapping[str, str] = os.environ) -> Any:
    """Install the exporting provider when the server asked for it; returns it (or None)."""
    endpoint = environ.get(ENDPOINT_ENV)
    token = environ.pop(TOKEN_ENV, None)
    if not endpoint or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    from tideserve.tracing.spans import use_provider

    resource = Resource({"service.name": SERVICE_NAME,
                         "tideserve.instance_id": environ.get("TIDESERVE_INSTANCE_ID", "")})
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF), resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5,
                                headers={TOKEN_HEADER: token} if token else None)
    provider.add_span_processor(BatchSpanProcessor(exporter,
                                                   schedule_delay_millis=SCHEDULE_DELAY_MS))
    trace.set_tracer_provider(provider)
    use_provider(provider)
    return provider
