"""GET /tideserve/traces's query: which traces, in which order, and its refusals."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tideserve.api.traces import TracesFront
from tideserve.clock import FakeClock
from tideserve.errors import ValidationError
from tideserve.tracing import spans
from tideserve.tracing.setup import ServerTracing
from tideserve.tracing.store import RecentTraces


@pytest.fixture
def front():
    recent = RecentTraces()
    provider = TracerProvider()
    provider.add_span_processor(recent)
    spans.use_provider(provider)
    for name in ("a", "b", "a"):
        with spans.server_span("SageMaker Runtime.InvokeEndpoint", {},
                               {"tideserve.endpoint": name}):
            pass
    yield TracesFront(ServerTracing(provider, recent, None, "t"), lambda key: None,
                      FakeClock(0.0), {"us-east-1"})
    spans._tracer = spans.trace.NoOpTracer()  # noqa: SLF001


def test_traces_of_an_endpoint_newest_first(front):
    answer = front.answer({"endpoint": ["a"]})
    assert [t["Endpoint"] for t in answer["Traces"]] == ["a", "a"]
    assert answer["Traces"][0]["StartTime"] >= answer["Traces"][1]["StartTime"]
    assert len(front.answer({"limit": ["1"]})["Traces"]) == 1


def test_one_trace_by_id_or_none(front):
    some = front.answer({})["Traces"][0]
    assert front.answer({"trace_id": [some["TraceId"]]})["Traces"][0]["TraceId"] == some["TraceId"]
    assert front.answer({"trace_id": ["0" * 31 + "1"]}) == {"Traces": []}


@pytest.mark.parametrize("query", [{"limit": ["0"]}, {"limit": ["1001"]}, {"limit": ["x"]},
                                   {"trace_id": ["not-hex"]}])
def test_a_bad_query_is_refused(front, query):
    with pytest.raises(ValidationError):
        front.answer(query)
