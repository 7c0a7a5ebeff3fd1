"""What tracing and CloudWatch Logs show of multi-model endpoints, inference pipelines and
async endpoints, through a real `tideserve up`: an MME request for a cold model has its
download and load as spans, a warm one says it hit; a serial pipeline's request has one span
per container with that container's own spans below, and each container logs to a stream of
its own; an async endpoint writes one data-log line per request, carrying its inference id."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.test_async_endpoints import deploy_async, ensure_bucket
from tests.integration.test_multi_container import (  # noqa: F401 - a fixture
    csv,
    deploy,
    pipeline,
    pre_container,
    xgb_container,
)
from tests.integration.test_multi_model_endpoints import _skops_archive
from tests.integration.test_realtime_endpoints import wait_in_service
from tests.integration.test_tracing import by_name, wait_for_trace, with_headers
from tests.support import RunningServer, csv_rows

pytestmark = pytest.mark.integration

GROUP = "/aws/sagemaker/Endpoints/"


def traced(server: RunningServer, trace_id: str) -> Any:
    return with_headers(server.client("sagemaker-runtime"),
                        {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})


def events(logs: Any, group: str, stream: str, want: int = 1, timeout: float = 10.0
           ) -> list[str]:
    """The stream's messages once it has at least `want` (ingestion polls every 0.25 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = [e["message"] for e in logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=True)["events"]]
        except logs.exceptions.ResourceNotFoundException:
            found = []
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_a_cold_multi_model_request_shows_its_download_and_load(server: RunningServer,
                                                                trained):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression

    X, y = load_iris(return_X_y=True)
    s3 = ensure_bucket(server, "mme-traced")
    archive = _skops_archive(LinearRegression().fit(X, y))
    s3.put_object(Bucket="mme-traced", Key="m/a.tar.gz", Body=archive)
    sm = server.client("sagemaker")
    sm.create_model(ModelName="mme-traced", ExecutionRoleArn="arn:aws:iam::123456789012:role/t",
                    PrimaryContainer={"Image": "tideserve/sklearn", "Mode": "MultiModel",
                                      "ModelDataUrl": "s3://mme-traced/m/"})
    sm.create_endpoint_config(EndpointConfigName="mme-traced", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "mme-traced", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="mme-traced", EndpointConfigName="mme-traced")
    wait_in_service(sm, "mme-traced")

    cold, warm = "5759e988bd862e3fe1be46a994272793", "5759e988bd862e3fe1be46a994272794"
    for trace_id in (cold, warm):
        traced(server, trace_id).invoke_endpoint(
            EndpointName="mme-traced", TargetModel="a.tar.gz", Body=csv_rows(X[:2]),
            ContentType="text/csv")

    spans = by_name(wait_for_trace(server, cold, lambda n: {"model load", "predict"} <= n))
    instance = spans["instance /invocations"]
    assert spans["model download"]["ParentSpanId"] == instance["SpanId"]
    assert spans["model load"]["ParentSpanId"] == instance["SpanId"]
    assert spans["model load"]["Attributes"]["tideserve.target_model"] == "a.tar.gz"
    assert spans["model load"]["Attributes"]["tideserve.model_cache"] == "miss"
    assert spans["model load"]["Attributes"]["tideserve.bytes"] > 0
    assert spans["model download"]["Attributes"]["tideserve.bytes"] > 0
    assert instance["Attributes"]["tideserve.model_cache"] == "miss"
    assert spans["predict"]["ParentSpanId"] == instance["SpanId"]

    spans = by_name(wait_for_trace(server, warm, lambda n: "predict" in n))
    assert "model load" not in spans and "model download" not in spans
    assert spans["instance /invocations"]["Attributes"]["tideserve.model_cache"] == "hit"


def test_a_pipeline_request_is_a_span_per_container_and_each_container_logs_alone(
        server: RunningServer, pipeline):  # noqa: F811
    raw, sites, pre, model, *_ = pipeline
    sm, logs = server.client("sagemaker"), server.client("logs")
    deploy(sm, "pipe-observed", [pre_container(pre), xgb_container(model)])
    wait_in_service(sm, "pipe-observed")

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    traced(server, trace_id).invoke_endpoint(
        EndpointName="pipe-observed", Body=csv(raw[:5], sites[:5]), ContentType="text/csv")
    # The containers' spans and the front's hops arrive in separate exports: wait for both.
    deadline = time.monotonic() + 15
    while True:
        trace = wait_for_trace(server, trace_id, lambda n: {"predict", "decode",
                                                            "container.invoke"} <= n)
        hops = [s for s in trace["Spans"] if s["Name"] == "container.invoke"]
        fronts = [s for s in trace["Spans"] if s["Name"] == "instance /invocations"
                  and s["Attributes"].get("tideserve.runtime") == "containers (Serial)"]
        if (len(hops) == 2 and fronts) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [h["Attributes"]["tideserve.container_hostname"] for h in
            sorted(hops, key=lambda h: h["Attributes"]["tideserve.container_index"])] == [
        "pre", "xgb"]
    (front,) = fronts
    assert all(h["ParentSpanId"] == front["SpanId"] for h in hops)
    # Each container's own instance span (and its predict) under the hop to it.
    under = {s["ParentSpanId"]: s for s in trace["Spans"] if s["Name"] == "instance /invocations"}
    assert all(h["SpanId"] in under for h in hops)

    # A failure in `pre` is in pre's own stream, not xgb's, nor the front's.
    rt = server.client("sagemaker-runtime")
    with pytest.raises(rt.exceptions.ModelError):
        rt.invoke_endpoint(EndpointName="pipe-observed", Body=csv(raw[:1], ["boom"]),
                           ContentType="text/csv")
    group = GROUP + "pipe-observed"
    streams = {s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group)["logStreams"]}
    (instance,) = {s for s in streams if s.count("/") == 1}
    assert {f"{instance}/pre", f"{instance}/xgb"} <= streams
    deadline = time.monotonic() + 10
    while not any("unknown site boom" in m for m in events(logs, group, f"{instance}/pre")):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    assert not any("unknown site boom" in m for m in events(logs, group, f"{instance}/xgb"))
    front_lines = events(logs, group, instance)
    assert not any("unknown site boom" in m or m.startswith("[pre]") for m in front_lines)


def test_an_async_request_is_a_line_of_its_instances_data_log(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, logs = server.client("sagemaker"), server.client("logs")
    s3 = ensure_bucket(server, "inputs")
    ensure_bucket(server, "results")
    s3.put_object(Bucket="inputs", Key="data-log/rows.csv", Body=csv_rows(X[:3]).encode())
    deploy_async(sm, "async-logged", str(archive))
    wait_in_service(sm, "async-logged")
    rt = server.client("sagemaker-runtime")
    answer = rt.invoke_endpoint_async(EndpointName="async-logged", ContentType="text/csv",
                                      InputLocation="s3://inputs/data-log/rows.csv",
                                      InferenceId="observed-1")
    group = GROUP + "async-logged"
    deadline = time.monotonic() + 15
    while True:
        found = logs.filter_log_events(logGroupName=group,
                                       filterPattern='{ $.inferenceId = "observed-1" }')
        if found["events"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.25)
    (event,) = found["events"]
    assert event["logStreamName"].startswith("AllTraffic/") and \
        event["logStreamName"].endswith("/data-log")
    line = json.loads(event["message"])
    assert line == {"inferenceId": "observed-1", "status": "Succeeded",
                    "inputLocation": "s3://inputs/data-log/rows.csv",
                    "outputLocation": answer["OutputLocation"], "attempts": 1}
