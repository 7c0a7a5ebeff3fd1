"""Trace context on the wire: W3C `traceparent` and AWS's `X-Amzn-Trace-Id`, read from a
client and written on the router -> instance hop.

    traceparent:      00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>
    X-Amzn-Trace-Id:  Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>

The two name the same ids (spec §6.3): the X-Ray root without its `1-` and second `-` is the
W3C trace id, so Root=1-5759e988-bd862e3fe1be46a994272793 is trace 5759e988bd862e3fe1be46a994272793.
A client's header is untrusted input: a malformed one is ignored whole (the request starts a
trace of its own), as OpenTelemetry's propagators do. X-Ray's grammar as they parse it: `;`
separated `key=value` parts, keys case-sensitive, unknown keys (Self=, Lineage=) ignored, any
malformed part or a Sampled other than 0/1 (X-Ray's `?`) invalidates the header, and no
Sampled means not sampled. traceparent wins when both are sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    set_span_in_context,
)

TRACEPARENT = "traceparent"
XRAY = "x-amzn-trace-id"
_HEX = frozenset("0123456789abcdef")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _hex(text: str, length: int) -> int | None:
    """`text` as a non-zero id of exactly `length` lower-case hex digits, else None."""
    if len(text) != length or not _HEX.issuperset(text):
        return None
    value = int(text, 16)
    return value or None


def parse_traceparent(value: str) -> SpanContext | None:
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or not _HEX.issuperset(parts[0]):
        return None
    if parts[0] == "00" and len(parts) != 4:  # version 00 has exactly four fields
        return None
    trace_id, span_id = _hex(parts[1], 32), _hex(parts[2], 16)
    if trace_id is None or span_id is None or len(parts[3]) != 2 \
            or not _HEX.issuperset(parts[3]):
        return None
    flags = TraceFlags(int(parts[3], 16) & TraceFlags.SAMPLED)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


def parse_xray(value: str) -> SpanContext | None:
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, eq, item = part.partition("=")
        if not eq:
            return None
        fields[key.strip()] = item.strip()
    root, parent = fields.get("Root", ""), fields.get("Parent", "")
    sampled = fields.get("Sampled", "0")
    if len(root) != 35 or not root.startswith("1-") or root[10] != "-" or sampled not in "01" \
            or len(sampled) != 1:
        return None
    trace_id = _hex((root[2:10] + root[11:]).lower(), 32)
    span_id = _hex(parent.lower(), 16)
    if trace_id is None or span_id is None:
        return None
    flags = _SAMPLED if sampled == "1" else _NOT_SAMPLED
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


def extract(headers: Mapping[str, str]) -> Context | None:
    """The caller's context from lower-cased request headers; None when it sent none that
    parses."""
    value = headers.get(TRACEPARENT)
    found = parse_traceparent(value) if value is not None else None
    if found is None:
        value = headers.get(XRAY)
        found = parse_xray(value) if value is not None else None
    if found is None:
        return None
    return set_span_in_context(NonRecordingSpan(found))


def extract_raw(traceparent: bytes | None, xray: bytes | None) -> Context | None:
    """extract() for an ASGI server's raw header values (the instance)."""
    found = parse_traceparent(traceparent.decode("latin-1")) if traceparent else None
    if found is None and xray:
        found = parse_xray(xray.decode("latin-1"))
    return None if found is None else set_span_in_context(NonRecordingSpan(found))


def traceparent(context: SpanContext) -> str:
    flags = "01" if context.trace_flags.sampled else "00"
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"


def xray_header(context: SpanContext) -> str:
    tid = f"{context.trace_id:032x}"
    sampled = "1" if context.trace_flags.sampled else "0"
    return f"Root=1-{tid[:8]}-{tid[8:]};Parent={context.span_id:016x};Sampled={sampled}"


def header_lines(context: SpanContext) -> bytes:
    """Both headers, as HTTP/1.1 lines for the hop to an instance: our own instance server
    reads traceparent; a user's own server may read either (an X-Ray SDK reads the second)."""
    return (f"traceparent: {traceparent(context)}\r\n"
            f"X-Amzn-Trace-Id: {xray_header(context)}\r\n").encode("latin-1")
