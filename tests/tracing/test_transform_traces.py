"""A transform job's objects are traces: each mini-batch request is a span of its object's
trace, naming its records and bytes, with the hop to the instance below it."""

from __future__ import annotations

from tests.transform.test_runner import Container, put, request, run, world  # noqa: F401


def test_each_object_is_a_trace_of_its_mini_batch_requests(world, store):  # noqa: F811
    _, objects = world
    lines = [f"{i:05d}" + "x" * 1000 for i in range(2_500)]  # 2.5 MB: three 1 MB requests
    put(objects, "p/big.csv", lines)
    put(objects, "p/small.csv", ["a", "b"])
    job, _ = run(world, Container(), request("traced", MaxPayloadInMB=1,
                                             MaxConcurrentTransforms=2))
    assert job.status == "Completed"

    traces = store.query()
    roots = {s.attributes["objectstore.uri"]: t for t in traces for s in t.spans
             if s.name == "TransformJob object"}
    assert set(roots) == {"s3://inputs/p/big.csv", "s3://inputs/p/small.csv"}
    big = roots["s3://inputs/p/big.csv"]
    root = next(s for s in big.spans if s.name == "TransformJob object")
    assert root.attributes["tideserve.transform_job"] == "traced"
    requests = sorted((s for s in big.spans if s.name == "TransformJob mini-batch"),
                      key=lambda s: s.attributes["tideserve.first_record"])
    assert len(requests) >= 3
    assert all(r.parent.span_id == root.context.span_id for r in requests)
    assert requests[0].attributes["tideserve.first_record"] == 1
    assert requests[-1].attributes["tideserve.last_record"] == len(lines)
    assert sum(r.attributes["tideserve.records"] for r in requests) == len(lines)
    assert all(r.attributes["tideserve.bytes"] <= 1024 * 1024 for r in requests)
    hops = [s for s in big.spans if s.name == "instance.invoke"]
    assert {h.parent.span_id for h in hops} == {r.context.span_id for r in requests}
