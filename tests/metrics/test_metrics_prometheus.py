"""Prometheus exposition of the aggregator's cumulative totals."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.metrics.prometheus import render, snake

T0 = 1_700_000_040.0
V1 = dimensions(EndpointName="ep", VariantName="v1")


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counters_summaries_and_gauges_survive_flushes() -> None:
    agg = MetricAggregator(60)
    for t in (T0, T0 + 1, T0 + 61):
        agg.record(names.SAGEMAKER, names.INVOCATIONS, V1, 1.0, timestamp=t)
        agg.record(names.SAGEMAKER, names.MODEL_LATENCY, V1, 1500.0, names.MICROSECONDS,
                   timestamp=t)
    agg.record(names.ENDPOINT_INSTANCES, names.CPU_UTILIZATION, V1, 140.0, names.PERCENT,
               timestamp=T0)
    agg.ensure(names.SAGEMAKER, names.INVOCATION_5XX_ERRORS, V1, timestamp=T0)  # idle: absent
    v2 = dimensions(EndpointName="ep", VariantName="v2")
    agg.record(names.SAGEMAKER, names.INVOCATION_4XX_ERRORS, v2, 0.0, timestamp=T0)
    agg.flush(T0 + 60)
    body, content_type = render(agg)
    assert content_type.startswith("text/plain")
    got = samples(body)
    sm = (("endpoint", "ep"), ("namespace", "AWS/SageMaker"), ("variant", "v1"))
    inst = (("endpoint", "ep"), ("namespace", "/aws/sagemaker/Endpoints"), ("variant", "v1"))
    assert got[("tideserve_invocations_total", sm)] == 3
    assert got[("tideserve_model_latency_microseconds_count", sm)] == 3
    assert got[("tideserve_model_latency_microseconds_sum", sm)] == 4500
    assert got[("tideserve_cpu_utilization", inst)] == 140
    assert b"invocation_5xx_errors" not in body
    v2_labels = (("endpoint", "ep"), ("namespace", "AWS/SageMaker"), ("variant", "v2"))
    assert got[("tideserve_invocation_4xx_errors_total", v2_labels)] == 0
    assert b"# TYPE tideserve_invocations_total counter" in body


def test_snake_case_names() -> None:
    assert snake("InvocationsPerInstance") == "invocations_per_instance"
    assert snake("CPUUtilization") == "cpu_utilization"
    assert snake("Invocation4XXErrors") == "invocation_4xx_errors"


def test_backlog_levels_are_gauges_of_the_last_value() -> None:
    agg = MetricAggregator(60)
    ep = dimensions(EndpointName="queue")
    for t, size in ((T0, 703.0), (T0 + 60, 0.0)):  # a backlog drained to empty
        agg.record(names.SAGEMAKER, names.APPROXIMATE_BACKLOG_SIZE, ep, size, names.COUNT,
                   timestamp=t)
    got = samples(render(agg)[0])
    labels = (("endpoint", "queue"), ("namespace", "AWS/SageMaker"))
    assert got[("tideserve_approximate_backlog_size", labels)] == 0.0
    assert not any(name.endswith("_total") and "backlog" in name for name, _ in got)


def test_a_deleted_endpoints_series_leave_the_page() -> None:
    agg = MetricAggregator(60)
    gone = dimensions(EndpointName="Gone", VariantName="v1")
    agg.record(names.SAGEMAKER, names.INVOCATIONS, V1, 1.0, timestamp=T0)
    agg.record(names.SAGEMAKER, names.INVOCATIONS, gone, 1.0, timestamp=T0)
    agg.record("Custom/App", "Queue", dimensions(EndpointName="Gone"), 3.0, timestamp=T0)
    agg.forget_endpoints_except({"ep"}, frozenset({names.SAGEMAKER}))
    endpoints = {dict(labels).get("endpoint") for _, labels in samples(render(agg)[0])}
    # ours for a deleted endpoint go; a user's PutMetricData series are not ours to drop
    assert endpoints == {"ep", "Gone"}
    assert ("tideserve_invocations_total", (("endpoint", "Gone"), ("namespace", "AWS/SageMaker"),
            ("variant", "v1"))) not in samples(render(agg)[0])
