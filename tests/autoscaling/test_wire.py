"""boto3 and the `tideserve scaling` CLI against the real wire layer (SigV4, awsJson, CBOR)
on a loopback server: output shapes parse with botocore's own models, errors carry AAS's
codes, and the driver's activities come back through DescribeScalingActivities."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.autoscaling.conftest import Env
from tests.autoscaling.harness import RESOURCE, T0
from tests.support import serve_asgi
from tideserve.api.gateway import serve_rpc
from tideserve.api.rpc import OperationRegistry
from tideserve.autoscaling.cli import add_scaling_parser, run_scaling
from tideserve.autoscaling.driver import ScalingDriver
from tideserve.metrics.model import Datapoint
from tideserve.metrics.store import MetricStore

KEY, SECRET = "AKIDAUTOSCALINGTEST", "autoscaling-test-secret"


@contextlib.contextmanager
def serving(env: Env) -> Iterator[str]:
    registry = OperationRegistry()
    for op, fn in env.aas.operations().items():
        registry.register("application-autoscaling", op, fn)
    for op, fn in env.cw.operations().items():
        registry.register("monitoring", op, fn)

    async def rpc(request: Request) -> Response:
        return await serve_rpc(request, registry, {KEY: SECRET}.get, time.time())

    app = Starlette(routes=[Route("/", rpc, methods=["POST"]),
                            Route("/service/{rest:path}", rpc, methods=["POST"])])
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
def url(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    creds = env.path / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(env.path / "no-config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with serving(env) as base:
        yield base


def aws(service: str, url: str) -> Any:
    return boto3.session.Session().client(
        service, region_name="us-east-1", endpoint_url=url, aws_access_key_id=KEY,
        aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}))


def cli(url: str, state_dir: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_scaling_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scaling", *argv, "--url", url, "--state-dir", str(state_dir)])
    return run_scaling(args)


def test_boto3_round_trip_and_aas_error_codes(env: Env, url: str) -> None:
    aas, cw = aws("application-autoscaling", url), aws("cloudwatch", url)
    ids = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
           "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    tracking = {"TargetValue": 70.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    with pytest.raises(ClientError) as missing:
        aas.put_scaling_policy(**ids, PolicyName="p", PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=tracking)
    assert missing.value.response["Error"]["Code"] == "ObjectNotFoundException"
    aas.register_scalable_target(**ids, MinCapacity=1, MaxCapacity=4)
    out = aas.put_scaling_policy(**ids, PolicyName="p", PolicyType="TargetTrackingScaling",
                                 TargetTrackingScalingPolicyConfiguration=tracking)
    [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy["CreationTime"].timestamp() == T0
    alarms = cw.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(
        a["AlarmName"] for a in out["Alarms"])
    with pytest.raises(ClientError) as bad_token:
        aas.describe_scalable_targets(ServiceNamespace="sagemaker", NextToken="garbage")
    assert bad_token.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as invalid:
        aas.register_scalable_target(**ids, MinCapacity=5, MaxCapacity=2)
    assert invalid.value.response["Error"]["Code"] == "ValidationException"


def test_cli_registers_puts_a_policy_and_a_schedule_and_lists_activities(
        env: Env, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(url, env.path, "register", "ep", "--min", "1", "--max", "4") == 0
    assert cli(url, env.path, "policy", "ep", "--target-tracking", "InvocationsPerInstance=70",
               "--scale-in-cooldown", "600") == 0
    assert cli(url, env.path, "schedule", "ep", "evening", "--cron", "0 18 ? * MON-FRI *",
               "--min", "2", "--max", "4", "--timezone", "America/New_York") == 0
    [policy] = env.aas.describe_scaling_policies({"ServiceNamespace": "sagemaker"})[
        "ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (policy["PolicyName"], config["TargetValue"], config["ScaleInCooldown"]) == (
        "InvocationsPerInstance-target-tracking", 70.0, 600)
    metrics = MetricStore(env.engine)
    dims = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
    metrics.put([Datapoint("AWS/SageMaker", "InvocationsPerInstance", dims, T0 + 60 * m, "None",
                           1, 175, 175, 175) for m in range(3)])
    ScalingDriver(env.store, metrics, env.fleet, env.clock, env.settings).step(T0 + 182)
    capsys.readouterr()
    assert cli(url, env.path, "activities", "ep") == 0
    printed = capsys.readouterr().out
    assert "InProgress  Setting desired instance count to 4." in printed
    assert "cause: monitor alarm TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh-" in (
        printed)
    assert cli(url, env.path, "show", "ep") == 0
    shown = capsys.readouterr().out
    assert "schedule evening: cron(0 18 ? * MON-FRI *)" in shown
