"""Two `tideserve up` processes on one PostgreSQL: both serve the API and route to the same
instances; the leader is killed and the other takes over within two periods, with every
endpoint, policy and queued async request intact and each async output written once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.test_async_endpoints import (
    SLOW_HANDLER,
    deploy_async,
    object_path,
    put_input,
)
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import csv_rows, pack_skops, start_server, stop_server, train_breast_cancer

pytestmark = pytest.mark.integration

PERIOD = 2.0


def took_lead(server) -> bool:
    return "took the leader lock" in server.log_path.read_text(errors="replace")


def test_the_other_server_takes_over_with_nothing_lost(tmp_path, postgres_url):
    model, X = train_breast_cancer("logistic")
    archive = pack_skops(model, tmp_path / "model", {"code/inference.py": SLOW_HANDLER})
    state = tmp_path / "state"  # one machine: shared keys, models and embedded S3
    extra = ["--database-url", postgres_url]
    a = start_server(state, period=PERIOD, extra=extra)
    b = start_server(state, period=PERIOD, extra=extra)
    try:
        sm_a, sm_b = a.client("sagemaker"), b.client("sagemaker")
        deploy(sm_a, "shared", str(archive))
        deploy_async(sm_a, "queued", str(archive), max_concurrent=1, sleep=0.2)
        wait_in_service(sm_b, "shared")
        wait_in_service(sm_b, "queued")

        rt_b = b.client("sagemaker-runtime")
        deadline = time.monotonic() + 10  # B picks up A's instances from the shared table
        while True:
            try:
                rt_b.invoke_endpoint(EndpointName="shared", Body=csv_rows(X[:1]),
                                     ContentType="text/csv")
                break
            except rt_b.exceptions.ClientError:
                assert time.monotonic() < deadline, b.log()
                time.sleep(0.2)

        aas = b.client("application-autoscaling")
        resource = "endpoint/shared/variant/AllTraffic"
        aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, MinCapacity=1, MaxCapacity=3,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount")
        aas.put_scaling_policy(
            PolicyName="rps", ServiceNamespace="sagemaker", ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 1000.0, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})

        rt_b_async = b.client("sagemaker-runtime")
        outputs = []
        for i in range(10):
            location = put_input(b, f"queued/{i}.csv", csv_rows(X[i:i + 1]))
            outputs.append(rt_b_async.invoke_endpoint_async(
                EndpointName="queued", InputLocation=location, ContentType="text/csv",
                Accept="application/json")["OutputLocation"])
        deadline = time.monotonic() + 30
        while sum(object_path(a, u).exists() for u in outputs) < 2:
            assert time.monotonic() < deadline, "the leader never worked the queue:\n" + a.log()
            time.sleep(0.05)

        os.kill(a.proc.pid, signal.SIGKILL)  # the leader crashes; its instances die with it
        killed = time.monotonic()
        a.proc.wait(timeout=10)
        written = sum(object_path(a, u).exists() for u in outputs)
        assert written < len(outputs), "the queue was done before the kill: nothing tested"
        while not took_lead(b):
            assert time.monotonic() - killed < 2 * PERIOD, "no takeover in two periods"
            time.sleep(0.05)

        wait_in_service(sm_b, "shared")
        rt_b.invoke_endpoint(EndpointName="shared", Body=csv_rows(X[:1]), ContentType="text/csv")
        deadline = time.monotonic() + 40
        while not all(object_path(b, u).exists() for u in outputs):
            assert time.monotonic() < deadline, b.log()
            time.sleep(0.2)
        files = sorted(p.name for p in (state / "s3" / "results" / "queued").rglob("*")
                       if p.is_file())
        assert files == sorted(u.rsplit("/", 1)[1] for u in outputs)  # once each, no failures
        assert {e["EndpointName"] for e in sm_b.list_endpoints()["Endpoints"]} >= {
            "shared", "queued"}
        policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        assert [p["PolicyName"] for p in policies] == ["rps"]
        variant = sm_b.describe_endpoint(EndpointName="shared")["ProductionVariants"][0]
        assert variant["DesiredInstanceCount"] == 1  # no scaling action twice, none at all
    finally:
        stop_server(a)
        stop_server(b)
