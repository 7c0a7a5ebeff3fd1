"""tideserve's latency-target policy (beyond AWS) on a live endpoint, through tideserve's own
API (PutLatencyTargetPolicy), on the session server whose metric period is 2 s: a model that
takes 0.3 s per request, under closed-loop load from 4 threads, breaks a 500-ms p99 bound on
one instance, and the policy scales the variant out."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.faulty_models import SLOW_HANDLER, deploy_python, model_tree
from tests.integration.test_autoscaling import Load, register, variant, wait_for
from tests.integration.test_realtime_endpoints import wait_in_service
from tests.support import RunningServer
from tideserve.client import tideserve_client

pytestmark = pytest.mark.integration


def error_code(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_latency_target_scales_out_when_latency_breaks_the_bound(server: RunningServer,
                                                                 tmp_path):
    sm, aas = server.client("sagemaker"), server.client("application-autoscaling")
    ts = tideserve_client(server.url, server.state_dir)
    name = "latency-live"
    deploy_python(sm, name, model_tree(tmp_path / "slow", SLOW_HANDLER), 1,
                  {"SLEEP_SECONDS": "0.3"})
    wait_in_service(sm, name)
    resource = f"endpoint/{name}/variant/AllTraffic"

    # Not registered yet: refused in AWS's words, as PutScalingPolicy would refuse.
    code, message = error_code(lambda: ts.put_latency_target_policy(
        ResourceId=resource, LatencyBoundMs=500))
    assert code == "ValidationException" and "No scalable target" in message
    register(aas, name, 1, 3)
    for bad, needle in (({"LatencyBoundMs": 0}, "LatencyBoundMs"),
                        ({"LatencyBoundMs": 500, "TargetShareOverBound": 0.9},
                         "TargetShareOverBound"),
                        ({"LatencyBoundMs": 500, "Burst": {"Threshold": 1}}, "Threshold")):
        code, message = error_code(lambda bad=bad: ts.put_latency_target_policy(
            ResourceId=resource, **bad))
        assert code == "ValidationException" and needle in message, message
    code, _ = error_code(lambda: ts.put_latency_target_policy(
        ResourceId="endpoint/x", LatencyBoundMs=500))
    assert code == "ValidationException"

    ts.put_latency_target_policy(ResourceId=resource, LatencyBoundMs=500,
                                 TargetShareOverBound=0.01, MetricName="ModelLatency",
                                 Burst={"Threshold": 2, "StableWindowSeconds": 60},
                                 ScaleInWindowSeconds=600)
    [policy] = ts.describe_latency_target_policies(ResourceIds=[resource])[
        "LatencyTargetPolicies"]
    assert policy["LatencyBoundMs"] == 500 and policy["Burst"]["Threshold"] == 2

    load = Load(server.client("sagemaker-runtime"), name, "1,2,3")
    load.start(threads=4, pause=0)
    try:
        wait_for(lambda: variant(sm, name)["DesiredInstanceCount"] > 1, 20,
                 "the latency-target policy to scale out")
    finally:
        load.stop()
    activities = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    causes = [a["Cause"] for a in activities]
    assert any("tideserve latency-target policy" in c for c in causes), causes
    assert variant(sm, name)["DesiredInstanceCount"] <= 3  # the target's MaxCapacity holds
    assert not load.failures, load.failures[:3]

    ts.delete_latency_target_policy(ResourceId=resource)
    assert ts.describe_latency_target_policies()["LatencyTargetPolicies"] == []
    code, _ = error_code(lambda: ts.delete_latency_target_policy(ResourceId=resource))
    assert code == "ResourceNotFoundException"
