"""`aws cloudformation deploy` (the real v1 CLI) against a live server: a SageMaker endpoint
with a scalable target and two scaling policies is created, updated in place, rolled back on a
bad template, and deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.support import RunningServer

pytestmark = pytest.mark.integration
AWS = Path(sys.executable).with_name("aws")
DATA = Path(__file__).parent.parent / "data"

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  ModelData: {Type: String}
  TargetValue: {Type: Number, Default: 40}
  InstanceType: {Type: String, Default: ml.m5.large}
Resources:
  Model:
    Type: AWS::SageMaker::Model
    Properties:
      ExecutionRoleArn: !Sub arn:aws:iam::${AWS::AccountId}:role/test
      PrimaryContainer: {Image: tideserve/sklearn, ModelDataUrl: !Ref ModelData}
  Config:
    Type: AWS::SageMaker::EndpointConfig
    Properties:
      ProductionVariants:
        - {VariantName: AllTraffic, ModelName: !GetAtt Model.ModelName,
           InstanceType: !Ref InstanceType, InitialInstanceCount: 1}
  Endpoint:
    Type: AWS::SageMaker::Endpoint
    Properties: {EndpointConfigName: !GetAtt Config.EndpointConfigName}
  Target:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Properties:
      ServiceNamespace: sagemaker
      ScalableDimension: sagemaker:variant:DesiredInstanceCount
      ResourceId: !Sub endpoint/${Endpoint.EndpointName}/variant/AllTraffic
      MinCapacity: 1
      MaxCapacity: 3
  Tracking:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Properties:
      PolicyName: tracking
      PolicyType: TargetTrackingScaling
      ScalingTargetId: !Ref Target
      TargetTrackingScalingPolicyConfiguration:
        TargetValue: !Ref TargetValue
        PredefinedMetricSpecification:
          PredefinedMetricType: SageMakerVariantInvocationsPerInstance
  Step:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Properties:
      PolicyName: step
      PolicyType: StepScaling
      ScalingTargetId: !Ref Target
      StepScalingPolicyConfiguration:
        AdjustmentType: ChangeInCapacity
        Cooldown: 60
        StepAdjustments: [{MetricIntervalLowerBound: 0, ScalingAdjustment: 1}]
  Busy:
    Type: AWS::CloudWatch::Alarm
    Properties:
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      MetricName: InvocationsPerInstance
      Namespace: AWS/SageMaker
      Dimensions:
        - {Name: EndpointName, Value: !GetAtt Endpoint.EndpointName}
        - {Name: VariantName, Value: AllTraffic}
      Period: 60
      Statistic: Sum
      Threshold: 100
      AlarmActions: [!Ref Step]
Outputs:
  EndpointName: {Value: !GetAtt Endpoint.EndpointName}
  TrackingArn: {Value: !Ref Tracking}
"""


def aws(server: RunningServer, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    key_id, secret = server.credentials()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([str(AWS), *args, "--endpoint-url", server.url], env=env,
                          capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        events = subprocess.run([str(AWS), "cloudformation", "describe-stack-events",
                                 "--stack-name", args[args.index("--stack-name") + 1],
                                 "--endpoint-url", server.url], env=env, capture_output=True,
                                text=True).stdout if "--stack-name" in args else ""
        pytest.fail(f"aws {' '.join(args)} failed: {done.stdout}\n{done.stderr}\n{events}")
    return done


def deploy(server: RunningServer, path: Path, name: str, *overrides: str, check: bool = True
           ) -> subprocess.CompletedProcess:
    args = ["cloudformation", "deploy", "--template-file", str(path), "--stack-name", name]
    if overrides:
        args += ["--parameter-overrides", *overrides]
    return aws(server, *args, check=check)


def made_by(items: list[dict], key: str, prefix: str) -> list[dict]:
    return [item for item in items if item[key].startswith(prefix)]


def outputs(cfn, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_deploy_update_roll_back_and_delete(server: RunningServer, trained, tmp_path):
    _, _, archive, _ = trained
    cfn, sm, aas = (server.client(s) for s in
                    ("cloudformation", "sagemaker", "application-autoscaling"))
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE)
    deploy(server, path, "serving", f"ModelData={archive}")
    first = outputs(cfn, "serving")
    endpoint = sm.describe_endpoint(EndpointName=first["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"
    resource = f"endpoint/{first['EndpointName']}/variant/AllTraffic"
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                             ResourceId=resource)["ScalingPolicies"]
    assert {p["PolicyName"] for p in policies} == {"tracking", "step"}
    busy = cfn.describe_stack_resource(StackName="serving", LogicalResourceId="Busy")
    alarm = server.client("cloudwatch").describe_alarms(
        AlarmNames=[busy["StackResourceDetail"]["PhysicalResourceId"]])["MetricAlarms"][0]
    assert alarm["AlarmActions"] == [p["PolicyARN"] for p in policies
                                     if p["PolicyName"] == "step"]
    target = cfn.describe_stack_resource(StackName="serving", LogicalResourceId="Target")
    assert target["StackResourceDetail"]["PhysicalResourceId"] == (
        f"endpoint/{first['EndpointName']}/variant/AllTraffic|"
        "sagemaker:variant:DesiredInstanceCount|sagemaker")

    # The target value changes in place: same policy ARN, the endpoint untouched. ModelData
    # is left out: the CLI sends UsePreviousValue for it.
    deploy(server, path, "serving", "TargetValue=70")
    assert cfn.describe_stacks(StackName="serving")["Stacks"][0]["StackStatus"] == (
        "UPDATE_COMPLETE")
    assert outputs(cfn, "serving") == first
    tracking = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource,
                                             PolicyNames=["tracking"])["ScalingPolicies"][0]
    assert tracking["PolicyARN"] == first["TrackingArn"]
    assert tracking["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70
    after = sm.describe_endpoint(EndpointName=first["EndpointName"])
    assert after["LastModifiedTime"] == endpoint["LastModifiedTime"]
    again = deploy(server, path, "serving", "TargetValue=70", check=False)
    assert "No changes to deploy. Stack serving is up to date" in again.stdout + again.stderr

    aws(server, "cloudformation", "delete-stack", "--stack-name", "serving")
    cfn.get_waiter("stack_delete_complete").wait(StackName="serving",
                                                 WaiterConfig={"Delay": 0.5})
    # The shared server holds other tests' resources: only this stack's must be gone.
    assert not made_by(sm.list_endpoints()["Endpoints"], "EndpointName", "serving-")
    assert not made_by(sm.list_models()["Models"], "ModelName", "serving-")
    assert not made_by(sm.list_endpoint_configs()["EndpointConfigs"], "EndpointConfigName",
                       "serving-")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert not made_by(targets, "ResourceId", "endpoint/serving-")


def test_a_bad_resource_rolls_the_first_create_back(server: RunningServer, trained, tmp_path):
    _, _, archive, _ = trained
    cfn, sm = server.client("cloudformation"), server.client("sagemaker")
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE)
    # The model is made first; the config after it names an instance type that is no such
    # thing.
    failed = deploy(server, path, "broken", f"ModelData={archive}", "InstanceType=ml.huge",
                    check=False)
    assert failed.returncode != 0
    stack = cfn.describe_stacks(StackName="broken")["Stacks"][0]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="broken")["StackEvents"]
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)]
    assert ("Model", "CREATE_COMPLETE") in statuses
    assert ("Config", "CREATE_FAILED") in statuses
    assert statuses.index(("Model", "DELETE_COMPLETE")) > statuses.index(
        ("Config", "CREATE_FAILED"))
    assert not made_by(sm.list_models()["Models"], "ModelName", "broken-")
    retry = deploy(server, path, "broken", f"ModelData={archive}", check=False)
    assert "ROLLBACK_COMPLETE state and can not be updated" in retry.stderr
    cfn.delete_stack(StackName="broken")
    cfn.get_waiter("stack_delete_complete").wait(StackName="broken",
                                                 WaiterConfig={"Delay": 0.2})
    gone = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]
    assert gone["StackStatus"] == "DELETE_COMPLETE"


def test_a_cdk_synthesised_template_deploys_unchanged(server: RunningServer):
    cfn = server.client("cloudformation")
    body = (DATA / "cdk_synth_stack.json").read_text()
    json.loads(body)
    cfn.create_stack(StackName="CdkStack", TemplateBody=body)
    cfn.get_waiter("stack_create_complete").wait(StackName="CdkStack",
                                                 WaiterConfig={"Delay": 0.2})
    stack = cfn.describe_stacks(StackName="CdkStack")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p for p in stack["Parameters"]}
    assert params["BootstrapVersion"]["ParameterValue"] == "/cdk-bootstrap/hnb659fds/version"
    alarm = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["AlarmName"]
    cw = server.client("cloudwatch")
    assert cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    cfn.delete_stack(StackName="CdkStack")
    cfn.get_waiter("stack_delete_complete").wait(StackName="CdkStack",
                                                 WaiterConfig={"Delay": 0.2})
    assert not cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]


ALARM_TEMPLATE = """\
Parameters:
  Threshold: {Type: Number, Default: 5}
Resources:
  Busy:
    Type: AWS::CloudWatch::Alarm
    Properties:
      ComparisonOperator: GreaterThanThreshold
      EvaluationPeriods: 1
      MetricName: Invocations
      Namespace: AWS/SageMaker
      Period: 60
      Statistic: Sum
      Threshold: !Ref Threshold
Outputs:
  Alarm: {Value: !Ref Busy, Export: {Name: busy-alarm}}
"""


def tideserve(server: RunningServer, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "tideserve.cli", *args, "--url", server.url,
                           "--state-dir", str(server.state_dir)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_tideserve_stack_deploy_and_delete_print_the_events(server: RunningServer, tmp_path):
    cfn, cw = server.client("cloudformation"), server.client("cloudwatch")
    path = tmp_path / "alarms.yaml"
    path.write_text(ALARM_TEMPLATE)
    created = tideserve(server, "stack", "deploy", str(path), "--param", "Threshold=9")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "CREATE_COMPLETE" in created.stdout and "Busy" in created.stdout
    export = cfn.list_exports()["Exports"]
    alarm = next(e["Value"] for e in export if e["Name"] == "busy-alarm")
    assert cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["Threshold"] == 9
    updated = tideserve(server, "stack", "deploy", str(path), "--param", "Threshold=12")
    assert "UPDATE_COMPLETE" in updated.stdout, updated.stdout + updated.stderr
    assert cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["Threshold"] == 12
    same = tideserve(server, "stack", "deploy", str(path), "--param", "Threshold=12")
    assert "No changes to deploy" in same.stdout
    deleted = tideserve(server, "stack", "delete", "alarms")
    assert deleted.returncode == 0 and "DELETE_COMPLETE" in deleted.stdout
    assert cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []


def test_a_stack_acts_with_its_callers_permissions(server: RunningServer, trained):
    """CloudFormation makes resources with its caller's credentials: a key that may only use
    cloudformation gets its stack rolled back on the first SageMaker call it was not given."""
    _, _, archive, _ = trained
    iam, sm = server.client("iam"), server.client("sagemaker")
    iam.create_user(UserName="stacker")
    iam.put_user_policy(UserName="stacker", PolicyName="cfn", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cloudformation:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="stacker")["AccessKey"]
    cfn = boto3.client("cloudformation", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    body = TEMPLATE.split("  Config:")[0]  # the parameters and the model alone
    cfn.create_stack(StackName="no-rights", TemplateBody=body,
                     Parameters=[{"ParameterKey": "ModelData", "ParameterValue": str(archive)}])
    deadline = time.monotonic() + 30  # (boto3's stack_rollback_complete is for updates)
    while (status := cfn.describe_stacks(StackName="no-rights")["Stacks"][0]["StackStatus"]
           ).endswith("IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="no-rights")["StackEvents"]
    failed = next(e for e in events if e["ResourceStatus"] == "CREATE_FAILED")
    assert "not authorized to perform: sagemaker:CreateModel" in failed["ResourceStatusReason"]
    assert not made_by(sm.list_models()["Models"], "ModelName", "no-rights-")
    cfn.delete_stack(StackName="no-rights")
    cfn.get_waiter("stack_delete_complete").wait(StackName="no-rights",
                                                 WaiterConfig={"Delay": 0.2})
