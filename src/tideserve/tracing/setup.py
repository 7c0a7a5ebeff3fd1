"""The server's tracing pipeline: one OpenTelemetry SDK tracer provider, and the places its
spans go.

    spans ended in the server ─┐
                               ├─► RecentTraces (memory: `tideserve traces`)
    spans an instance exports ─┘   BatchSpanProcessor ─► OTLP/HTTP exporter (optional)
    to POST /v1/traces (receiver.py)

So there is one pipeline: an instance's spans (decode, predict, a user's own) and the
router's reach the same store and the same collector, in one trace.

Configuration, flags first, then the standard variables (spec §6.5):

- export: `--otlp-endpoint URL` (a base URL gets `/v1/traces` appended, as
  OTEL_EXPORTER_OTLP_ENDPOINT does; a URL with a path is used as given), else
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT. With none of them set,
  nothing is exported (traces are still kept in memory): no errors against a collector
  nobody started. OTEL_TRACES_EXPORTER=none turns export off, `console` prints spans.
  OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION and OTEL_BSP_* work as the SDK reads them.
  Only OTLP over HTTP/protobuf is shipped; a grpc protocol setting is warned about and HTTP
  is used.
- sampling: `--trace-sample-ratio R` is parentbased_traceidratio with R; else
  OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG when set; else X-Ray's default rule, the
  first request each second and 5% of the rest (sampling.py). Always parent-based: a
  client's sampled flag decides for its request.
- OTEL_SDK_DISABLED=true: no tracing at all (no spans, nothing kept).
- OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES name the server (default service.name
  `tideserve`); instances report as `tideserve-instance`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from tideserve.errors import ValidationError
from tideserve.tracing import instance as instance_side
from tideserve.tracing.sampling import ReservoirThenRate
from tideserve.tracing.spans import use_provider
from tideserve.tracing.store import DEFAULT_MAX_TRACES, RecentTraces

log = logging.getLogger("tideserve.tracing")

SERVICE_NAME = "tideserve"
TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class TracingConfig:
    otlp_endpoint: str | None = None  # --otlp-endpoint
    sample_ratio: float | None = None  # --trace-sample-ratio; None: OTEL_TRACES_SAMPLER
    max_traces: int = DEFAULT_MAX_TRACES


class ServerTracing:
    """The provider, the in-memory store, the exporter's processor (None: no export) and
    the token instances present when they export to the server."""

    def __init__(self, provider: TracerProvider, recent: RecentTraces,
                 exporting: BatchSpanProcessor | None, token: str) -> None:
        self.provider = provider
        self.recent = recent
        self.exporting = exporting
        self.token = token

    def ingest(self, spans: Sequence[ReadableSpan]) -> None:
        """Spans another process recorded (an instance's): the same places as ours."""
        for span in spans:
            self.recent.add(span)
            if self.exporting is not None:
                self.exporting.on_end(span)

    def instance_environment(self, server_url: str) -> dict[str, str]:
        """What an instance needs to export its spans here (tracing/instance.py)."""
        return {instance_side.ENDPOINT_ENV: server_url.rstrip("/") + TRACES_PATH,
                instance_side.TOKEN_ENV: self.token}

    def shutdown(self) -> None:
        self.provider.shutdown()


def disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def build_server_tracing(config: TracingConfig,
                         environ: Mapping[str, str] = os.environ) -> ServerTracing | None:
    """The server's pipeline, installed as the process's; None when OTEL_SDK_DISABLED."""
    if disabled(environ):
        log.info("tracing is off (OTEL_SDK_DISABLED=true)")
        return None
    recent = RecentTraces(config.max_traces)
    provider = TracerProvider(sampler=_sampler(config.sample_ratio, environ),
                              resource=_resource())
    provider.add_span_processor(recent)
    exporting = None
    exporter = _exporter(config.otlp_endpoint, environ)
    if exporter is not None:
        exporting = BatchSpanProcessor(exporter)
        provider.add_span_processor(exporting)
    use_provider(provider)
    return ServerTracing(provider, recent, exporting, secrets.token_urlsafe(32))


def share_with_instances(tracing: ServerTracing, server_url: str,
                         environ: MutableMapping[str, str] = os.environ) -> None:
    """Instances inherit the server's environment (fleet/local.py): put there where and how
    they export. The token is taken out of an instance's environment before its model loads
    (tracing/instance.py)."""
    environ.update(tracing.instance_environment(server_url))


def otlp_traces_url(url: str) -> str:
    """`--otlp-endpoint`: a base URL (no path) gets /v1/traces; a URL with a path is kept."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            f"--otlp-endpoint {url!r} is not an http(s) URL, e.g. http://localhost:4318.")
    if parts.path in ("", "/"):
        return url.rstrip("/") + TRACES_PATH
    return url


def _sampler(ratio: float | None, environ: Mapping[str, str]) -> Sampler | None:
    if ratio is None:
        if environ.get("OTEL_TRACES_SAMPLER", "").strip():
            return None  # the SDK reads OTEL_TRACES_SAMPLER / _ARG
        return ParentBased(ReservoirThenRate())
    if not 0.0 <= ratio <= 1.0:
        raise ValidationError(f"--trace-sample-ratio {ratio} must be between 0 and 1.")
    return ParentBased(TraceIdRatioBased(ratio))


def _resource() -> Resource:
    resource = Resource.create({})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    return resource


def _exporter(flag: str | None, environ: Mapping[str, str]) -> SpanExporter | None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if flag:
        return OTLPSpanExporter(endpoint=otlp_traces_url(flag))
    kinds = [k.strip() for k in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if k.strip()]
    if "none" in kinds:
        return None
    if "console" in kinds:
        return ConsoleSpanExporter()
    configured = (environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                  or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if not configured:
        return None
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol != "http/protobuf":
        log.warning("OTLP protocol %s is not shipped with tideserve; exporting over "
                    "http/protobuf to %s", protocol, configured)
    return OTLPSpanExporter()
