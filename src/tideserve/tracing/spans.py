"""The small tracing API every path of tideserve opens its spans with (the router, the
instance client, serverless workers, async dispatch, the instance's handler, and later
multi-model loads, pipeline containers and jobs).

    with span("predict", {"tideserve.rows": 3}):     # a child of the current span
        ...
    with server_span("SageMaker Runtime.InvokeEndpoint", headers, attrs):  # a request's root
        ...

Cost first: a request that is not sampled must pay almost nothing, so `span()` looks at the
current span once (one contextvar read) and, when it is not recording, returns a shared
do-nothing context manager; nothing is allocated and no id is drawn. Only a sampled request
builds OpenTelemetry spans, and those end in the SDK's processors: an in-memory store and a
BatchSpanProcessor whose exporter runs on its own thread (tracing/setup.py), so the request
never waits on an export.

Spans are OpenTelemetry's (opentelemetry-api), current in the usual contextvar, so code that
uses `from opentelemetry import trace` directly (a user's inference.py, a library) nests
under ours. Until a tracer provider is installed (`use_provider`), every span is a no-op.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from tideserve.tracing import propagation

Attributes = Mapping[str, AttributeValue]
T = TypeVar("T")

INTERNAL, SERVER, CLIENT = SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT
SCOPE = "tideserve"
_NO_PARENT = Context()
_tracer: trace.Tracer = trace.NoOpTracer()


def use_provider(provider: trace.TracerProvider) -> None:
    """Install the process's tracer provider: from now on sampled requests record spans."""
    global _tracer
    _tracer = provider.get_tracer(SCOPE)


class _Open:
    """A started span, made current on entry; ended (with an error status if the block
    raised) on exit."""

    __slots__ = ("span", "_token")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None:
            failed(self.span, exc)
        self.span.end()


class _Nothing:
    """What a span is when the request is not sampled: enters as the invalid span."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        return None


NOTHING = _Nothing()
Opened = _Open | _Nothing


def recording() -> bool:
    """Whether the current request is being traced."""
    return get_current_span().is_recording()


def span(name: str, attributes: Attributes | None = None, kind: SpanKind = INTERNAL,
         links: Sequence[Link] = ()) -> Opened:
    """A child of the current span, or nothing when the current request is not traced."""
    if not get_current_span().is_recording():
        return NOTHING
    return _Open(_tracer.start_span(name, kind=kind, attributes=attributes, links=links))


def server_span(name: str, headers: Mapping[str, str], attributes: Attributes | None = None
                ) -> Opened:
    """A request's first span here, its parent the caller's (traceparent, else
    X-Amzn-Trace-Id, from lower-cased `headers`); the sampler decides whether it records."""
    # No caller's context: a new trace, whatever happens to be current here.
    started = _tracer.start_span(name, context=propagation.extract(headers) or _NO_PARENT,
                                 kind=SERVER, attributes=attributes)
    if not started.is_recording():
        return NOTHING
    return _Open(started)


def span_under(parent: Context | None, name: str, attributes: Attributes | None = None,
               kind: SpanKind = INTERNAL, start_ns: int | None = None) -> Opened:
    """A span whose parent is `parent` (a context carried across a queue or a process), or a
    new trace's root when there is none (the sampler decides)."""
    started = _tracer.start_span(name, context=parent or _NO_PARENT, kind=kind,
                                 attributes=attributes, start_time=start_ns)
    if not started.is_recording():
        return NOTHING
    return _Open(started)


def interval(name: str, start_ns: int, end_ns: int | None = None,
             attributes: Attributes | None = None, links: Sequence[Link] = ()) -> None:
    """A finished child of the current span for a wait measured elsewhere (a queue): it
    began at `start_ns` (time.time_ns()) and ends at `end_ns` (default now)."""
    if not get_current_span().is_recording():
        return
    done = _tracer.start_span(name, attributes=attributes, start_time=start_ns, links=links)
    done.end(end_time=end_ns)


def failed(span: Span, exc: BaseException) -> None:
    """Mark `span` as failed by `exc`: the error's type and first line, never its payload."""
    if not span.is_recording():
        return
    message = getattr(exc, "message", None) or str(exc)
    first = message.strip().splitlines()[0][:200] if message.strip() else type(exc).__name__
    span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, first))


def failed_with(span: Span, error_type: str, message: str | None = None) -> None:
    """Mark `span` as failed with an error code (an AWS error's, a status's)."""
    if not span.is_recording():
        return
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message or error_type))


SERVER_ERROR_TYPE = "_OTHER"  # OpenTelemetry's error.type when nothing names the error


def current_context() -> Context | None:
    """The current context when it is being traced (to carry into a thread or a queue)."""
    return otel_context.get_current() if get_current_span().is_recording() else None


def run_in(context: Context | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` with `context` current (in a worker thread, which does not inherit the
    caller's contextvars)."""
    if context is None:
        return fn(*args)
    token = otel_context.attach(context)
    try:
        return fn(*args)
    finally:
        otel_context.detach(token)


def hop_headers() -> bytes:
    """The trace headers for a request this span sends to an instance, as HTTP/1.1 lines
    (b"" when not traced)."""
    current = get_current_span()
    if not current.is_recording():
        return b""
    return propagation.header_lines(current.get_span_context())


def hop_header_dict() -> dict[str, str]:
    """hop_headers() for a client that takes a dict."""
    current = get_current_span()
    if not current.is_recording():
        return {}
    ctx = current.get_span_context()
    return {"traceparent": propagation.traceparent(ctx),
            "X-Amzn-Trace-Id": propagation.xray_header(ctx)}


def now_ns() -> int:
    return time.time_ns()


class Parked:
    """Contexts of traced work that continues later in this process (an async request from
    its 202 to its dispatch), by key, at most `limit` of them (the oldest are dropped: a
    request dispatched after that starts a trace of its own). In memory only: after a restart
    the dispatch is a new trace."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._contexts: OrderedDict[str, Context] = OrderedDict()
        self._lock = threading.Lock()

    def park(self, key: str) -> None:
        """Keep the current context under `key` when the current request is traced."""
        context = current_context()
        if context is None:
            return
        with self._lock:
            self._contexts[key] = context
            while len(self._contexts) > self.limit:
                self._contexts.popitem(last=False)

    def take(self, key: str) -> Context | None:
        with self._lock:
            return self._contexts.pop(key, None)


PARKED = Parked()
