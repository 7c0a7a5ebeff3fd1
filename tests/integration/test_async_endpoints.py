"""Asynchronous endpoints through boto3 against real `tideserve up` processes: a backlog
accepted, processed and written to the output location; failures to the failure location and
the error topic; a server killed mid-backlog losing nothing; scaling from zero and back to zero
with the pattern AWS documents.

Input objects are written as files under <state-dir>/s3/<bucket>/<key> (the object store's
layout), which is where an S3 PutObject to the server would put them."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import wait_in_service
from tests.support import RunningServer, csv_rows, pack_skops, start_server, stop_server
from tideserve.state_files import write_private_file

pytestmark = pytest.mark.integration

SLOW_HANDLER = '''
import time

def predict_fn(data, model):
    time.sleep(float(__import__("os").environ.get("PREDICT_SLEEP", "0.2")))
    return model.predict(data)
'''
TOPIC = "arn:aws:sns:us-east-1:123456789012:{}"


@pytest.fixture(scope="module")
def slow_archive(trained, tmp_path_factory):
    model, _, _, _ = trained
    return pack_skops(model, tmp_path_factory.mktemp("slow"), {"code/inference.py": SLOW_HANDLER})


def deploy_async(sm, name: str, model_data: str, *, count: int = 1, max_concurrent: int = 2,
                 notifications: dict | None = None, sleep: float | None = None) -> None:
    env = {"PREDICT_SLEEP": str(sleep)} if sleep is not None else {}
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": model_data,
                                      "Environment": env})
    output = {"S3OutputPath": f"s3://results/{name}/out", "S3FailurePath":
              f"s3://results/{name}/failed"}
    if notifications:
        output["NotificationConfig"] = notifications
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": count}],
        AsyncInferenceConfig={"OutputConfig": output,
                              "ClientConfig": {"MaxConcurrentInvocationsPerInstance":
                                               max_concurrent}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def ensure_bucket(server: RunningServer, bucket: str) -> Any:
    """The server's S3 client, with `bucket` there (tests share the server)."""
    s3 = server.client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def put_input(server: RunningServer, key: str, text: str) -> str:
    """An input object, uploaded through the server's S3 API as a boto3 user would."""
    s3 = ensure_bucket(server, "inputs")
    s3.put_object(Bucket="inputs", Key=key, Body=text.encode())
    return f"s3://inputs/{key}"


def read_object(server: RunningServer, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def object_path(server: RunningServer, uri: str) -> Path:
    return server.state_dir / "s3" / uri.removeprefix("s3://")


def wait_for_objects(server: RunningServer, uris: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(object_path(server, u).exists() for u in uris):
            return
        time.sleep(0.2)
    missing = [u for u in uris if not object_path(server, u).exists()]
    pytest.fail(f"{len(missing)} of {len(uris)} objects never appeared, e.g. {missing[:2]}")


class Callback:
    """A tiny HTTP server standing in for an SNS HTTP subscriber."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def callback():
    cb = Callback()
    try:
        yield cb
    finally:
        cb.close()


def predictions(server: RunningServer, uri: str) -> np.ndarray:
    return np.asarray(json.loads(read_object(server, uri))).ravel()


def test_an_async_endpoint_writes_each_result_and_notifies_the_success_topic(
        server: RunningServer, trained, callback):
    model, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    # A file the user adds to the state dir is theirs alone too (state_files.py).
    write_private_file(server.state_dir / "notification_endpoints.json",
                       json.dumps({"async-done": callback.url}).encode())
    deploy_async(sm, "asyncer", str(archive), notifications={
        "SuccessTopic": TOPIC.format("async-done"),
        "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"]})
    desc = wait_in_service(sm, "asyncer")
    assert desc["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == "s3://results/asyncer/out"
    location = put_input(server, "asyncer/rows.csv", csv_rows(X[:5]))
    by_s3 = rt.invoke_endpoint_async(EndpointName="asyncer", InputLocation=location,
                                     ContentType="text/csv", Accept="application/json",
                                     InferenceId="from-s3")
    assert by_s3["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert by_s3["InferenceId"] == "from-s3"
    assert by_s3["OutputLocation"].startswith("s3://results/asyncer/out/")
    assert by_s3["FailureLocation"].startswith("s3://results/asyncer/failed/")
    inline = rt.invoke_endpoint_async(EndpointName="asyncer", Body=csv_rows(X[5:7]).encode(),
                                      ContentType="text/csv", Accept="application/json")
    assert inline["OutputLocation"] == f"s3://results/asyncer/out/{inline['InferenceId']}.out"
    wait_for_objects(server, [by_s3["OutputLocation"], inline["OutputLocation"]], 30)
    np.testing.assert_array_equal(predictions(server, by_s3["OutputLocation"]),
                                  model.predict(X[:5]))
    np.testing.assert_array_equal(predictions(server, inline["OutputLocation"]),
                                  model.predict(X[5:7]))
    deadline = time.monotonic() + 10
    while len(callback.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = {json.loads(env["Message"])["inferenceId"]: (headers, env)
              for headers, env in callback.received}
    headers, envelope = events["from-s3"]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert envelope["TopicArn"] == TOPIC.format("async-done")
    event = json.loads(envelope["Message"])
    assert event["invocationStatus"] == "Completed"
    assert event["requestParameters"]["inputLocation"] == location
    assert event["responseParameters"]["outputLocation"] == by_s3["OutputLocation"]
    assert json.loads(event["responseBody"]["content"]) == model.predict(X[:5]).tolist()
    recorded = (server.state_dir / "notifications" / "async-done.jsonl").read_text().splitlines()
    assert {json.loads(line)["inferenceId"] for line in recorded} >= {"from-s3"}


def test_a_model_error_lands_in_the_failure_location_and_the_error_topic(
        server: RunningServer, trained):
    _, X, _, crashing = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy_async(sm, "async-crashy", str(crashing), notifications={
        "SuccessTopic": TOPIC.format("crashy-ok"), "ErrorTopic": TOPIC.format("crashy-errors")})
    wait_in_service(sm, "async-crashy")
    bad = X[:1].copy()
    bad[0, 0] = -1.0
    failed = rt.invoke_endpoint_async(EndpointName="async-crashy", ContentType="text/csv",
                                      InputLocation=put_input(server, "bad.csv", csv_rows(bad)))
    wait_for_objects(server, [failed["FailureLocation"]], 30)
    assert not object_path(server, failed["OutputLocation"]).exists()
    reason = read_object(server, failed["FailureLocation"]).decode()
    assert "Received server error (500)" in reason and "negative radius" in reason
    errors = server.state_dir / "notifications" / "crashy-errors.jsonl"
    deadline = time.monotonic() + 10
    while not errors.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    event = json.loads(errors.read_text().splitlines()[-1])
    assert event["invocationStatus"] == "Failed"
    assert event["inferenceId"] == failed["InferenceId"]
    assert "negative radius" in event["failureReason"]
    assert not (server.state_dir / "notifications" / "crashy-ok.jsonl").exists()


def test_bad_async_requests_are_refused_with_validation_errors(server: RunningServer, trained):
    _, X, archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy_async(sm, "async-strict", str(archive))
    wait_in_service(sm, "async-strict")
    cases = [
        dict(),  # neither InputLocation nor Body
        dict(Body=b"1,2", InputLocation=put_input(server, "strict.csv", "1,2")),  # both
        dict(InputLocation="s3://inputs/never-uploaded.csv"),
        dict(Body=b"1", RequestTTLSeconds=5),  # below AWS's minimum of 60
    ]
    unchecked = server.client("sagemaker-runtime", parameter_validation=False)
    for params in cases:  # botocore would refuse the last client-side: the server must too
        with pytest.raises(ClientError) as err:
            unchecked.invoke_endpoint_async(EndpointName="async-strict", ContentType="text/csv",
                                     **params)
        assert err.value.response["Error"]["Code"] == "ValidationError", params
    with pytest.raises(ClientError) as err:
        rt.invoke_endpoint(EndpointName="async-strict", Body=csv_rows(X[:1]),
                           ContentType="text/csv")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "InvokeEndpointAsync" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="cannot be combined with ServerlessConfig"):
        sm.create_endpoint_config(
            EndpointConfigName="async-serverless",
            ProductionVariants=[{"VariantName": "v", "ModelName": "async-strict",
                                 "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                      "MaxConcurrency": 2}}],
            AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/x"}})


def test_a_server_killed_mid_backlog_loses_nothing_and_writes_each_output_once(
        tmp_path, trained, slow_archive):
    model, X, _, _ = trained
    state = tmp_path / "state"
    first = start_server(state, period=2.0)
    second = None
    try:
        sm, rt = first.client("sagemaker"), first.client("sagemaker-runtime")
        deploy_async(sm, "durable", str(slow_archive), max_concurrent=2, sleep=0.15)
        wait_in_service(sm, "durable")
        accepted = []
        for i in range(30):
            location = put_input(first, f"durable/{i}.csv", csv_rows(X[i:i + 1]))
            accepted.append(rt.invoke_endpoint_async(
                EndpointName="durable", InputLocation=location, ContentType="text/csv",
                Accept="application/json"))
        outputs = [a["OutputLocation"] for a in accepted]
        deadline = time.monotonic() + 30
        while sum(object_path(first, u).exists() for u in outputs) < 3:
            assert time.monotonic() < deadline, "the backlog never started"
            time.sleep(0.05)
        os.kill(first.proc.pid, signal.SIGKILL)  # a crash: no shutdown, instances orphaned
        first.proc.wait(timeout=10)
        written = sum(object_path(first, u).exists() for u in outputs)
        assert written < 30, "the backlog finished before the kill; nothing was tested"

        second = start_server(state, period=2.0)
        wait_in_service(second.client("sagemaker"), "durable")
        wait_for_objects(second, outputs, 60)
        out_dir = state / "s3" / "results" / "durable"
        files = sorted(p.name for p in out_dir.rglob("*") if p.is_file())
        assert files == sorted(u.rsplit("/", 1)[1] for u in outputs)  # exactly once, no errors
        for i, uri in enumerate(outputs):
            np.testing.assert_array_equal(predictions(second, uri), model.predict(X[i:i + 1]))
    finally:
        stop_server(first)
        if second is not None:
            stop_server(second)


def scale_to_zero_policies(aas, cw, endpoint: str, max_capacity: int) -> str:
    """The pattern AWS documents for async endpoints (spec §1.8): MinCapacity 0, target
    tracking on ApproximateBacklogSizePerInstance, and a step policy behind an alarm on
    HasBacklogWithoutCapacity to leave zero."""
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                 ScalableDimension=dimension, MinCapacity=0,
                                 MaxCapacity=max_capacity)
    aas.put_scaling_policy(
        PolicyName="backlog-per-instance", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0,
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average"},
            "ScaleInCooldown": 60, "ScaleOutCooldown": 60})
    step = aas.put_scaling_policy(
        PolicyName="HasBacklogWithoutCapacity-ScalingPolicy", ServiceNamespace="sagemaker",
        ResourceId=resource, ScalableDimension=dimension, PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
            "Cooldown": 300,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    cw.put_metric_alarm(
        AlarmName=f"{endpoint}-has-backlog-without-capacity", Namespace="AWS/SageMaker",
        MetricName="HasBacklogWithoutCapacity",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}], Statistic="Average",
        Period=60, EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
        AlarmActions=[step["PolicyARN"]])
    return resource


def test_scales_from_zero_on_a_backlog_and_back_to_zero_when_it_is_done(
        tmp_path, trained, slow_archive):
    """Period 1 s: an AWS minute is a second, so AlarmLow's 15 minutes take 15 s."""
    model, X, _, _ = trained
    srv = start_server(tmp_path / "state", period=1.0)
    try:
        sm, rt, aas, cw = (srv.client(s) for s in (
            "sagemaker", "sagemaker-runtime", "application-autoscaling", "cloudwatch"))
        # 0.6 s a request, one at a time: 18 s of work for one instance, so the backlog per
        # instance stays above the target for many periods however fast the first starts.
        deploy_async(sm, "tide", str(slow_archive), max_concurrent=1, sleep=0.6)
        wait_in_service(sm, "tide")
        resource = scale_to_zero_policies(aas, cw, "tide", max_capacity=2)
        # Park the endpoint at zero instances, as an empty queue would after a quiet spell.
        sm.update_endpoint_weights_and_capacities(EndpointName="tide", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
        desc = wait_in_service(sm, "tide")
        assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 0

        outputs = []
        for i in range(30):
            outputs.append(rt.invoke_endpoint_async(
                EndpointName="tide", ContentType="text/csv", Accept="application/json",
                InputLocation=put_input(srv, f"tide/{i}.csv", csv_rows(X[i:i + 1])),
            )["OutputLocation"])
        seen, deadline = set(), time.monotonic() + 90
        while time.monotonic() < deadline:
            variant = sm.describe_endpoint(EndpointName="tide")["ProductionVariants"][0]
            seen.add(variant["CurrentInstanceCount"])
            done = all(object_path(srv, u).exists() for u in outputs)
            if done and variant["DesiredInstanceCount"] == 0 and (
                    variant["CurrentInstanceCount"] == 0):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no return to zero; instance counts seen {sorted(seen)}")
        assert max(seen) == 2, sorted(seen)  # backlog per instance > 5 pulled in a second
        for i, uri in enumerate(outputs):
            np.testing.assert_array_equal(predictions(srv, uri), model.predict(X[i:i + 1]))
        activities = aas.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
        # Every activity's cause by its description: a scale-in may pass through 1 again
        # (2 -> 1 -> 0), so one description can have several causes.
        causes: dict[str, list[str]] = {}
        for activity in reversed(activities):
            causes.setdefault(activity["Description"], []).append(activity["Cause"])

        def caused(count: int, by: str) -> bool:
            described = f"Setting desired instance count to {count}."
            return any(by in c for c in causes.get(described, []))

        assert caused(1, "tide-has-backlog-without-capacity"), causes
        assert caused(2, "AlarmHigh"), causes
        assert caused(0, "AlarmLow"), causes
        stats = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity",
            Dimensions=[{"Name": "EndpointName", "Value": "tide"}],
            StartTime=time.time() - 300, EndTime=time.time(), Period=1, Statistics=["Maximum"])
        assert {p["Maximum"] for p in stats["Datapoints"]} == {0.0, 1.0}
    finally:
        stop_server(srv)
