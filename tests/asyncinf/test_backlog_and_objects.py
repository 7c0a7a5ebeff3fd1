"""Backlog metrics as the scale-to-zero pattern reads them, and atomic object writes."""

from __future__ import annotations

import pytest

from tideserve.asyncinf.backlog import backlog_sample, record_backlog
from tideserve.asyncinf.dispatcher import pick_backend
from tideserve.asyncinf.notify import inference_event
from tideserve.asyncinf.objects import LocalObjects
from tideserve.asyncinf.queue import Backlog
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serving.routes import Backend, EndpointRoute, VariantRoute

NOW = 1_700_000_100.0


@pytest.mark.parametrize("backlog, instances, expected", [
    # name: (size, per instance, age of oldest, has backlog without capacity)
    (None, 0, (0, 0.0, 0.0, 0)),  # empty at zero instances: nothing to scale out for
    (Backlog(7, NOW - 30), 0, (7, 7.0, 30.0, 1)),  # queued at zero: scale from zero
    (Backlog(7, NOW - 30), 2, (7, 3.5, 30.0, 0)),  # shared by two instances
    (None, 3, (0, 0.0, 0.0, 0)),  # empty with capacity: target tracking scales in
])
def test_backlog_sample(backlog, instances, expected):
    s = backlog_sample(backlog, instances, NOW)
    assert (s.size, s.per_instance, s.age_of_oldest, s.without_capacity) == expected


def test_backlog_metrics_carry_only_the_endpoint_dimension():
    metrics = MetricAggregator(2.0)
    record_backlog(metrics, "ep", backlog_sample(Backlog(4, NOW - 1), 0, NOW), NOW)
    record_backlog(metrics, "ep", backlog_sample(None, 1, NOW + 1), NOW + 1)
    points = {p.metric_name: p for p in metrics.flush(NOW + 10)}
    assert set(points) == {"ApproximateBacklogSize", "ApproximateBacklogSizePerInstance",
                           "ApproximateAgeOfOldestRequest", "HasBacklogWithoutCapacity"}
    assert all(p.dimensions == (("EndpointName", "ep"),) for p in points.values())
    # Two samples in the period: the Average is the backlog over the period.
    assert points["ApproximateBacklogSize"].average == 2.0
    assert points["HasBacklogWithoutCapacity"].maximum == 1.0


def test_a_free_slot_is_the_least_busy_instance_under_the_limit():
    busy, idle, gone = Backend("a", "u1", in_flight=2), Backend("b", "u2", 1), Backend("c", "u3")
    gone.reachable = False
    route = EndpointRoute("ep", [VariantRoute("v", 1.0, [busy, idle, gone]),
                                 VariantRoute("off", 0.0, [Backend("d", "u4")])])
    assert pick_backend(route, 2) == ("v", idle)
    idle.in_flight = 2
    assert pick_backend(route, 2) is None  # all full; weight-0 variants take nothing
    assert pick_backend(None, 2) is None  # zero instances


def test_objects_appear_whole_or_not_at_all(tmp_path):
    objects = LocalObjects(tmp_path)
    uri = "s3://results/out/a.out"
    with pytest.raises(RuntimeError), objects.writer(uri) as out:
        out.write(b"half")
        raise RuntimeError("crash mid-write")
    assert not objects.exists(uri)
    assert list((tmp_path / "results" / "out").iterdir()) == []  # no temp file left
    objects.put_bytes(uri, b"first")
    objects.put_bytes(uri, b"second")  # a re-run rewrites the same object
    assert objects.path(uri).read_bytes() == b"second"
    assert [p.name for p in (tmp_path / "results" / "out").iterdir()] == ["a.out"]


def test_the_notification_event_has_aws_shape():
    from tests.asyncinf.conftest import request

    req = request("r1", NOW - 2, body=None)
    event = inference_event(req, "ep", "us-east-1", NOW, ok=True, content_type="text/csv",
                            response=b"0\n")
    assert event["invocationStatus"] == "Completed"
    assert event["eventName"] == "InferenceResult" and event["eventSource"] == "aws:sagemaker"
    assert event["responseParameters"] == {"contentType": "text/csv",
                                           "outputLocation": "s3://results/out/r1.out"}
    assert event["receivedTime"].endswith("Z") and event["inferenceId"] == "r1"
    assert event["responseBody"] == {"content": "0\n", "encoding": "UTF-8"}
    failed = inference_event(req, "ep", "us-east-1", NOW, ok=False, failure_reason="boom")
    assert failed["invocationStatus"] == "Failed" and failed["failureReason"] == "boom"
    assert "responseBody" not in failed
