"""The last traces, kept in memory, so `tideserve traces` needs no collector.

A span processor on the server's tracer provider: every span that ends here, and every span
an instance exports to the server (tracing/receiver.py), is added to its trace. At most
`max_traces` traces are kept (the one least recently added to is dropped first) and at most
`max_spans` spans of each besides its roots (a runaway trace cannot crowd out the others);
1000 traces of ~10 spans are ~10 MB. Adding is an append under a lock: it runs on the
request's thread when a span ends, so it must cost next to nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

ENDPOINT_ATTRIBUTE = "tideserve.endpoint"
DEFAULT_MAX_TRACES = 1000
DEFAULT_MAX_SPANS = 512


@dataclass
class KeptTrace:
    trace_id: int
    spans: list[ReadableSpan] = field(default_factory=list)
    dropped: int = 0  # spans past max_spans
    endpoint: str | None = None

    @property
    def start_ns(self) -> int:
        return min(s.start_time or 0 for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_time or 0 for s in self.spans)

    @property
    def duration_ns(self) -> int:
        """From the first span's start to the last one's end: for an async request, from its
        InvokeEndpointAsync to its result written."""
        return self.end_ns - self.start_ns


class RecentTraces(SpanProcessor):
    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES,
                 max_spans: int = DEFAULT_MAX_SPANS) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._traces: OrderedDict[int, KeptTrace] = OrderedDict()
        self._lock = threading.Lock()

    # -- SpanProcessor ----------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self.add(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- the store --------------------------------------------------------------------------

    def add(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        with self._lock:
            kept = self._traces.get(context.trace_id)
            if kept is None:
                kept = self._traces[context.trace_id] = KeptTrace(context.trace_id)
                if len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(context.trace_id)
            if kept.endpoint is None and span.attributes:
                endpoint = span.attributes.get(ENDPOINT_ATTRIBUTE)
                if isinstance(endpoint, str):
                    kept.endpoint = endpoint
            # A request's own span ends last; a full trace still keeps it, so the tree has
            # its top and its total.
            root = span.parent is None or span.parent.is_remote
            if len(kept.spans) >= self.max_spans and not root:
                kept.dropped += 1
                return
            kept.spans.append(span)

    def get(self, trace_id: int) -> KeptTrace | None:
        with self._lock:
            kept = self._traces.get(trace_id)
            return None if kept is None else _copy(kept)

    def query(self, endpoint: str | None = None, slowest: bool = False,
              limit: int = 20) -> list[KeptTrace]:
        """Traces of `endpoint` (any, when None; case-insensitive as endpoint names are), the
        most recent first, or the longest first with `slowest`."""
        with self._lock:
            kept = [_copy(t) for t in self._traces.values()
                    if endpoint is None or (t.endpoint or "").lower() == endpoint.lower()]
        if slowest:
            kept.sort(key=lambda t: t.duration_ns, reverse=True)
        else:
            kept.sort(key=lambda t: t.start_ns, reverse=True)
        return kept[:limit]

    def __len__(self) -> int:
        return len(self._traces)


def _copy(kept: KeptTrace) -> KeptTrace:
    return KeptTrace(kept.trace_id, list(kept.spans), kept.dropped, kept.endpoint)
