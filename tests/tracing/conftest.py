"""What the tracing tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from tideserve.tracing import spans
from tideserve.tracing.store import RecentTraces


@pytest.fixture
def store() -> Iterator[RecentTraces]:
    """Every span traced, into an in-memory store of recent traces, for one test."""
    kept = RecentTraces()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(kept)
    spans.use_provider(provider)
    yield kept
    spans._tracer = spans.trace.NoOpTracer()  # noqa: SLF001 - back to untraced
