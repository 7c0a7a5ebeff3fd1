"""A batch of traced requests: each keeps its own tree (queue, decode, batch predict, encode),
the joined predict lives in one of them and is linked from the others."""

from __future__ import annotations

import asyncio
import contextlib
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from tests.serving import builders
from tests.serving.builders import csv_rows, iris
from tideserve.serving.abandonable import AbandonableWork
from tideserve.serving.batching import Request, run_batch
from tideserve.serving.instance import load_runtime
from tideserve.tracing import spans
from tideserve.tracing.store import RecentTraces


def test_a_batch_of_traced_requests_shares_one_predict(tmp_path):
    store = RecentTraces()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(store)
    spans.use_provider(provider)
    loop = asyncio.new_event_loop()
    try:
        runtime = load_runtime(builders.sklearn_dir(tmp_path / "m"), "sklearn", {})
        _, X = iris()
        batch, roots = [], []
        with contextlib.ExitStack() as open_spans:  # the requests are in flight meanwhile
            for i in range(3):
                roots.append(open_spans.enter_context(
                    spans.server_span("instance /invocations", {})))
                batch.append(Request(csv_rows(X[i:i + 2]), "text/csv", "application/json",
                                     None, AbandonableWork(float("inf"), time.monotonic),
                                     loop.create_future(), 0.0, spans.current_context(),
                                     time.time_ns()))
            outcomes = run_batch(runtime, batch)
    finally:
        loop.close()
        spans._tracer = spans.trace.NoOpTracer()  # noqa: SLF001 - back to untraced
    assert all(not isinstance(o, BaseException) for o in outcomes)
    trees = [store.get(r.get_span_context().trace_id) for r in roots]
    names = [sorted(s.name for s in t.spans) for t in trees if t is not None]
    assert names[0] == ["batch predict", "decode", "encode", "instance /invocations",
                        "predict", "queue"]
    assert names[1] == names[2] == ["batch predict", "decode", "encode",
                                    "instance /invocations", "queue"]
    shared = next(s for s in trees[0].spans if s.name == "batch predict")
    assert shared.attributes["tideserve.batch_size"] == 3
    assert {link.context.trace_id for link in shared.links} == {
        r.get_span_context().trace_id for r in roots[1:]}
    follower = next(s for s in trees[1].spans if s.name == "batch predict")
    assert [link.context.span_id for link in follower.links] == [shared.context.span_id]
