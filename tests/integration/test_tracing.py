"""Tracing through real servers and instances: a slow inference.py is the long span of its
trace in `tideserve traces` and through the signed route; a client's traceparent and
X-Amzn-Trace-Id name the trace; an async request's object-store read and write are spans of
its trace; and with --otlp-endpoint the same spans, the instance's among them, arrive at an
OTLP/HTTP receiver (a tiny one here, decoding the protobuf with opentelemetry-proto)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.credentials import Credentials
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.integration.test_async_endpoints import deploy_async, ensure_bucket
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows, free_port, pack_skops, start_server, stop_server
from tideserve.tracing.cli import fetch_traces

pytestmark = pytest.mark.integration

SLEEP_S = 0.4
SLOW_PREDICT = f'''
import time
from opentelemetry import trace

tracer = trace.get_tracer("user-code")

def predict_fn(data, model):
    with tracer.start_as_current_span("user.sleep"):
        time.sleep({SLEEP_S})
    return model.predict(data)
'''
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
XRAY_ROOT, XRAY_PARENT = "1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"


def with_headers(client: Any, headers: dict[str, str]) -> Any:
    """`client` sending `headers` besides its own, after signing (as botocore sends trace
    headers: never signed)."""

    def add(request: Any, **kwargs: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-send", add)
    return client


def traces_of(server: RunningServer, **query: Any) -> list[dict[str, Any]]:
    creds = Credentials(*server.credentials())
    return list(fetch_traces(server.url, server.state_dir, credentials=creds, **query)["Traces"])


def wait_for_trace(server: RunningServer, trace_id: str, has: Callable[[set[str]], bool],
                   timeout: float = 15.0) -> dict[str, Any]:
    """The kept trace once its span names satisfy `has` (an instance's spans arrive a moment
    after the response: they are exported in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        found = traces_of(server, trace_id=trace_id)
        if found and has({s["Name"] for s in found[0]["Spans"]}):
            return found[0]
        assert time.monotonic() < deadline, f"trace {trace_id}: {found}"
        time.sleep(0.2)


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Name"]: s for s in trace["Spans"]}


@pytest.fixture(scope="module")
def slow_endpoint(server: RunningServer, trained, tmp_path_factory) -> Iterator[str]:
    model, _, _, _ = trained
    archive = pack_skops(model, tmp_path_factory.mktemp("slow-traced"),
                         {"code/inference.py": SLOW_PREDICT})
    sm = server.client("sagemaker")
    deploy(sm, "traced-slow", str(archive))
    wait_in_service(sm, "traced-slow")
    yield "traced-slow"
    sm.delete_endpoint(EndpointName="traced-slow")


@pytest.fixture(autouse=True)
def delete_endpoints_afterwards():
    """Overrides conftest's: this module's endpoint lives for all of its tests."""
    yield


def test_a_slow_predict_is_the_long_span_and_the_clients_trace_id_is_kept(
        server: RunningServer, trained, slow_endpoint: str):
    _, X, _, _ = trained
    rt = with_headers(server.client("sagemaker-runtime"),
                      {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    rt.invoke_endpoint(EndpointName=slow_endpoint, Body=csv_rows(X[:2]), ContentType="text/csv")

    trace = wait_for_trace(server, CLIENT_TRACE, lambda names: "user.sleep" in names)
    spans = by_name(trace)
    root = spans["SageMaker Runtime.InvokeEndpoint"]
    assert root["ParentSpanId"] == CLIENT_SPAN  # the client's span is the parent
    assert root["Attributes"]["tideserve.endpoint"] == slow_endpoint
    assert {"sigv4.verify", "route", "instance.invoke", "instance /invocations", "queue",
            "decode", "predict", "encode"} <= set(spans)
    # The chain: router -> hop -> instance -> predict -> the user's own span.
    assert spans["instance.invoke"]["ParentSpanId"] == root["SpanId"]
    assert spans["instance /invocations"]["ParentSpanId"] == spans["instance.invoke"]["SpanId"]
    assert spans["predict"]["ParentSpanId"] == spans["instance /invocations"]["SpanId"]
    assert spans["user.sleep"]["ParentSpanId"] == spans["predict"]["SpanId"]
    assert spans["instance /invocations"]["Service"] == "tideserve-instance"
    # Below the spans that wrap it, predict is where the time went.
    wrappers = {"SageMaker Runtime.InvokeEndpoint", "instance.invoke", "instance /invocations"}
    leaves = {n: s["DurationMs"] for n, s in spans.items() if n not in wrappers}
    assert max(leaves, key=lambda n: leaves[n]) in ("predict", "user.sleep")
    assert spans["predict"]["DurationMs"] >= SLEEP_S * 1000
    assert spans["decode"]["DurationMs"] < 100 and spans["sigv4.verify"]["DurationMs"] < 100

    # The same, as `tideserve traces` prints it.
    out = subprocess.run(
        [sys.executable, "-m", "tideserve.cli", "traces", slow_endpoint, "--slowest",
         "--limit", "1", "--url", server.url, "--state-dir", str(server.state_dir)],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("trace ")
    predict_line = next(line for line in out.splitlines() if line.rstrip().endswith("predict"))
    assert float(predict_line.split("ms")[1]) >= SLEEP_S * 1000


def test_x_amzn_trace_id_names_the_trace_and_a_malformed_one_starts_a_new_one(
        server: RunningServer, trained, slow_endpoint: str):
    _, X, _, _ = trained
    header = f"Root={XRAY_ROOT};Parent={XRAY_PARENT};Sampled=1"
    rt = with_headers(server.client("sagemaker-runtime"), {"X-Amzn-Trace-Id": header})
    rt.invoke_endpoint(EndpointName=slow_endpoint, Body=csv_rows(X[:1]), ContentType="text/csv")
    trace_id = XRAY_ROOT[2:10] + XRAY_ROOT[11:]
    trace = wait_for_trace(server, trace_id, lambda names: "predict" in names)
    assert by_name(trace)["SageMaker Runtime.InvokeEndpoint"]["ParentSpanId"] == XRAY_PARENT

    # X-Ray's "Sampled=?" is not a valid header for OpenTelemetry's grammar (spec §6.1): the
    # request is traced under an id of its own.
    other = "1-5759e988-000000000000000000000abc"
    rt = with_headers(server.client("sagemaker-runtime"),
                      {"X-Amzn-Trace-Id": f"Root={other};Parent={XRAY_PARENT};Sampled=?"})
    rt.invoke_endpoint(EndpointName=slow_endpoint, Body=csv_rows(X[:1]), ContentType="text/csv")
    assert traces_of(server, trace_id=other[2:10] + other[11:]) == []


def test_the_traces_route_wants_a_signature(server: RunningServer):
    answer = httpx.get(server.url + "/tideserve/traces")
    assert answer.status_code == 403
    assert answer.json()["__type"] == "MissingAuthenticationTokenException"


def test_an_async_requests_object_store_read_and_write_are_spans_of_its_trace(
        server: RunningServer, trained):
    _, X, archive, _ = trained
    sm = server.client("sagemaker")
    deploy_async(sm, "traced-async", str(archive))
    s3 = ensure_bucket(server, "inputs")
    rows = np.repeat(np.asarray(X[:50]), 400, axis=0)  # 20 000 rows, ~8 MB of CSV
    body = csv_rows(rows).encode()
    s3.put_object(Bucket="inputs", Key="traced/large.csv", Body=body)
    wait_in_service(sm, "traced-async")
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    rt = with_headers(server.client("sagemaker-runtime"),
                      {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    rt.invoke_endpoint_async(EndpointName="traced-async", ContentType="text/csv",
                             InputLocation="s3://inputs/traced/large.csv")
    try:
        trace = wait_for_trace(server, trace_id, lambda names: {"objectstore.put",
                                                                "predict"} <= names, 45)
    finally:
        sm.delete_endpoint(EndpointName="traced-async")
    spans = by_name(trace)
    assert {"SageMaker Runtime.InvokeEndpointAsync", "objectstore.head", "async.enqueue",
            "async.process", "async.queue", "objectstore.get", "instance.invoke",
            "receive body"} <= set(spans)
    assert spans["objectstore.get"]["Attributes"]["tideserve.bytes"] == len(body)
    assert spans["objectstore.head"]["Attributes"]["tideserve.bytes"] == len(body)
    assert spans["receive body"]["Attributes"]["tideserve.bytes"] == len(body)
    assert spans["objectstore.put"]["Attributes"]["tideserve.bytes"] > 20_000
    assert spans["async.process"]["Attributes"]["tideserve.endpoint"] == "traced-async"
    # One trace from the 202 to the result written: it outlasts its first request.
    assert trace["DurationMs"] > spans["SageMaker Runtime.InvokeEndpointAsync"]["DurationMs"]


def test_a_serverless_cold_start_is_a_span_of_the_request_that_waited_for_it(
        server: RunningServer, trained):
    _, X, archive, _ = trained
    sm = server.client("sagemaker")
    sm.create_model(ModelName="traced-sl", ExecutionRoleArn="arn:aws:iam::123456789012:role/t",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive)})
    sm.create_endpoint_config(EndpointConfigName="traced-sl", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "traced-sl",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    sm.create_endpoint(EndpointName="traced-sl", EndpointConfigName="traced-sl")
    try:
        wait_in_service(sm, "traced-sl")
        trace_id = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
        rt = with_headers(server.client("sagemaker-runtime"),
                          {"traceparent": f"00-{trace_id}-{CLIENT_SPAN}-01"})
        rt.invoke_endpoint(EndpointName="traced-sl", Body=csv_rows(X[:1]),
                           ContentType="text/csv")
        trace = wait_for_trace(server, trace_id, lambda names: "predict" in names)
    finally:
        sm.delete_endpoint(EndpointName="traced-sl")
    spans = by_name(trace)
    cold = spans["cold start"]
    assert cold["Attributes"]["tideserve.cold_start"] is True
    assert cold["ParentSpanId"] == spans["SageMaker Runtime.InvokeEndpoint"]["SpanId"]
    assert cold["DurationMs"] > spans["predict"]["DurationMs"]  # a process start, then a model
    cold_end = cold["StartTime"] + cold["DurationMs"] / 1e3
    assert spans["instance.invoke"]["StartTime"] >= cold_end - 1e-3  # the hop waited for it


# -- export to a collector ---------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP receiver: POST /v1/traces, protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, ExportTraceServiceRequest]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                collector.requests.append((self.path, self.headers["Content-Type"], message))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.http = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def spans(self, trace_id: str) -> dict[str, tuple[str, Any]]:
        """name -> (service.name, span) of the trace's spans received so far."""
        out = {}
        for _, _, message in list(self.requests):
            for resource_spans in message.resource_spans:
                service = next(a.value.string_value for a in resource_spans.resource.attributes
                               if a.key == "service.name")
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        if s.trace_id.hex() == trace_id:
                            out[s.name] = (service, s)
        return out


def test_with_otlp_endpoint_the_same_spans_reach_a_collector(trained, tmp_path, monkeypatch):
    _, X, archive, _ = trained
    collector = Collector()
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the server's batch processor
    server = start_server(tmp_path / "state", extra=[
        "--otlp-endpoint", f"http://127.0.0.1:{collector.port}"])
    try:
        sm = server.client("sagemaker")
        deploy(sm, "exported", str(archive))
        wait_in_service(sm, "exported")
        rt = with_headers(server.client("sagemaker-runtime"),
                          {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
        rt.invoke_endpoint(EndpointName="exported", Body=csv_rows(X[:1]), ContentType="text/csv")
        deadline = time.monotonic() + 15
        while not {"predict", "SageMaker Runtime.InvokeEndpoint"} <= set(
                collector.spans(CLIENT_TRACE)):
            assert time.monotonic() < deadline, collector.spans(CLIENT_TRACE).keys()
            time.sleep(0.1)
        got = collector.spans(CLIENT_TRACE)
        assert {path for path, _, _ in collector.requests} == {"/v1/traces"}
        assert {ctype for _, ctype, _ in collector.requests} == {"application/x-protobuf"}
        assert got["SageMaker Runtime.InvokeEndpoint"][0] == "tideserve"
        assert got["SageMaker Runtime.InvokeEndpoint"][1].parent_span_id.hex() == CLIENT_SPAN
        assert got["predict"][0] == "tideserve-instance"  # relayed by the server's pipeline
        hop = got["instance.invoke"][1]
        assert got["instance /invocations"][1].parent_span_id == hop.span_id
        # ...and the same trace is kept for `tideserve traces` on that server.
        assert wait_for_trace(server, CLIENT_TRACE, lambda names: "predict" in names)
    finally:
        stop_server(server)
