"""How the server's pipeline reads its configuration (spec §6.5): flags first, then the
standard OTEL_* variables, and nothing exported when nothing says where."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased

from tideserve.errors import ValidationError
from tideserve.tracing.setup import (
    TracingConfig,
    _exporter,
    _sampler,
    build_server_tracing,
    otlp_traces_url,
)


@pytest.mark.parametrize(("flag", "url"), [
    ("http://collector:4318", "http://collector:4318/v1/traces"),
    ("http://collector:4318/", "http://collector:4318/v1/traces"),
    ("https://otel.example.com/custom/path", "https://otel.example.com/custom/path"),
])
def test_an_otlp_endpoint_flag_is_a_base_url_unless_it_has_a_path(flag, url):
    assert otlp_traces_url(flag) == url


def test_an_otlp_endpoint_that_is_not_http_is_refused():
    with pytest.raises(ValidationError, match="not an http"):
        otlp_traces_url("collector:4318")


def test_nothing_is_exported_unless_something_says_where(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert _exporter(None, {}) is None
    assert isinstance(_exporter(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}),
                      OTLPSpanExporter)
    assert _exporter(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                            "OTEL_TRACES_EXPORTER": "none"}) is None
    assert isinstance(_exporter(None, {"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)
    flagged = _exporter("http://c:4318", {"OTEL_TRACES_EXPORTER": "none"})  # the flag wins
    assert isinstance(flagged, OTLPSpanExporter)
    assert flagged._endpoint == "http://c:4318/v1/traces"  # noqa: SLF001


def test_sampling_is_the_flag_then_otel_traces_sampler_then_xrays_rule():
    assert "TraceIdRatioBased{0.25}" in _sampler(0.25, {}).get_description()
    assert _sampler(None, {"OTEL_TRACES_SAMPLER": "always_off"}) is None  # the SDK reads it
    default = _sampler(None, {})
    assert isinstance(default, ParentBased) and "ReservoirThenRate" in default.get_description()
    with pytest.raises(ValidationError):
        _sampler(1.5, {})


def test_otel_sdk_disabled_turns_tracing_off():
    assert build_server_tracing(TracingConfig(), {"OTEL_SDK_DISABLED": "TRUE"}) is None
