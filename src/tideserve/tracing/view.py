"""Traces as the `/tideserve/traces` route answers them (JSON) and as `tideserve traces`
prints them (a tree of spans with durations).

    trace 5759e988bd862e3fe1be46a994272793  my-endpoint  2026-12-04T18:00:00.123Z  1234.5 ms
      +0.0 ms   1234.5 ms  SageMaker Runtime.InvokeEndpoint
      +0.1 ms      0.2 ms  ├─ sigv4.verify
      ...

Times in the JSON: StartTime in epoch seconds, DurationMs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from tideserve.tracing.store import KeptTrace

# Attributes worth a column in the tree, in this order.
_SHOWN = ("tideserve.variant", "tideserve.instance_id", "tideserve.batch_size",
          "tideserve.cold_start", "tideserve.bytes", "objectstore.uri", "http.response.status_code",
          "error.type")


def trace_json(kept: KeptTrace) -> dict[str, Any]:
    return {
        "TraceId": f"{kept.trace_id:032x}",
        "Endpoint": kept.endpoint,
        "StartTime": kept.start_ns / 1e9,
        "DurationMs": kept.duration_ns / 1e6,
        "DroppedSpans": kept.dropped,
        "Spans": [span_json(s) for s in sorted(kept.spans, key=lambda s: s.start_time or 0)],
    }


def span_json(span: ReadableSpan) -> dict[str, Any]:
    context, parent = span.context, span.parent
    assert context is not None
    status = span.status
    service = span.resource.attributes.get("service.name") if span.resource else None
    return {
        "SpanId": f"{context.span_id:016x}",
        "ParentSpanId": f"{parent.span_id:016x}" if parent is not None else None,
        "Name": span.name,
        "Kind": span.kind.name,
        "Service": service,
        "StartTime": (span.start_time or 0) / 1e9,
        "DurationMs": ((span.end_time or 0) - (span.start_time or 0)) / 1e6,
        "Status": status.status_code.name if status.status_code != StatusCode.UNSET else "UNSET",
        "StatusMessage": status.description,
        "Attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        "Links": [{"TraceId": f"{link.context.trace_id:032x}",
                   "SpanId": f"{link.context.span_id:016x}"} for link in span.links],
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# -- the text tree (from the JSON, so the CLI needs nothing else) ------------------------------


def render(traces: Iterable[dict[str, Any]]) -> str:
    blocks = [render_trace(t) for t in traces]
    return "\n\n".join(blocks) if blocks else "no traces kept (yet)"


def render_trace(trace: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(trace["StartTime"], UTC)
    when = started.strftime("%Y-%m-%dT%H:%M:%S.") + f"{started.microsecond // 1000:03d}Z"
    head = (f"trace {trace['TraceId']}  {trace.get('Endpoint') or '-'}  {when}  "
            f"{trace['DurationMs']:.1f} ms")
    if trace.get("DroppedSpans"):
        head += f"  ({trace['DroppedSpans']} spans not kept)"
    spans = trace["Spans"]
    ids = {s["SpanId"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["ParentSpanId"] if s["ParentSpanId"] in ids else None
        children.setdefault(parent, []).append(s)
    lines = [head]
    origin = trace["StartTime"]

    def walk(parent: str | None, service: str | None, prefix: str, depth: int) -> None:
        kids = sorted(children.get(parent, []), key=lambda s: s["StartTime"])
        for i, s in enumerate(kids):
            last = i == len(kids) - 1
            branch = "" if depth == 0 else ("└─ " if last else "├─ ")
            offset = (s["StartTime"] - origin) * 1000
            lines.append(f"  +{offset:7.1f} ms {s['DurationMs']:9.1f} ms  "
                         f"{prefix}{branch}{_label(s, s.get('Service') != service)}")
            walk(s["SpanId"], s.get("Service"),
                 prefix + ("" if depth == 0 else ("   " if last else "│  ")), depth + 1)

    walk(None, "tideserve", "", 0)
    return "\n".join(lines)


def _label(span: dict[str, Any], new_service: bool) -> str:
    """Name, the service where it changes (an instance's spans under the router's), the
    attributes worth a glance, and an error."""
    attrs = span.get("Attributes") or {}
    shown = [f"{k.split('.')[-1]}={attrs[k]}" for k in _SHOWN if k in attrs]
    label = str(span["Name"])
    if span.get("Service") and new_service:
        label += f" [{span['Service']}]"
    if shown:
        label += "  " + " ".join(shown)
    if span.get("Status") == "ERROR":
        label += f"  ERROR: {span.get('StatusMessage') or ''}"
    return label
