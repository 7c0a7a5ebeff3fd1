"""The stack engine and API over an in-memory stand-in for the services the providers call:
what an update replaces and what it changes in place, the cleanup phase, rollbacks, and the
delete order."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import create_engine

from tideserve.clock import FakeClock
from tideserve.db import metadata
from tideserve.errors import NotFoundError, ValidationError
from tideserve.stacks.api import CloudFormationApi
from tideserve.stacks.engine import StackEngine
from tideserve.stacks.store import StackStore
from tideserve.stacks.wiring import providers

REGION, ACCOUNT = "us-east-1", "123456789012"
_SEQ = itertools.count()


class FakeServices:
    """SageMaker, AAS and CloudWatch as dicts; every call is logged as `Operation:name`."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.things: dict[str, dict[str, Any]] = {}
        self.fail: set[str] = set()

    async def call(self, service: str, operation: str, params: dict[str, Any]
                   ) -> dict[str, Any]:
        await asyncio.sleep(0)  # a real call yields to the loop, letting siblings run
        name = next((str(params[k]) for k in ("EndpointName", "EndpointConfigName",
                                             "ModelName", "PolicyName", "ResourceId",
                                             "AlarmName") if k in params), "")
        if operation != "DescribeEndpoint":
            self.calls.append(f"{operation}:{name}")
        if operation in self.fail:
            raise ValidationError(f"{operation} refused")
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:thing/{name.lower()}"
        if operation.startswith("Create") or operation.startswith("Put") or \
                operation.startswith("Register"):
            self.things[name] = params
        if operation.startswith("Delete") or operation.startswith("Deregister"):
            self.things.pop(name, None)
        if operation == "DescribeEndpoint":
            if name not in self.things:
                raise NotFoundError("Could not find endpoint")
            return {"EndpointStatus": "InService"}
        key = {"CreateModel": "ModelArn", "CreateEndpointConfig": "EndpointConfigArn",
               "CreateEndpoint": "EndpointArn", "UpdateEndpoint": "EndpointArn",
               "PutScalingPolicy": "PolicyARN"}.get(operation)
        return {key: arn} if key else {}


def stack_api():
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    services = FakeServices()
    store = StackStore(engine)
    stack_engine = StackEngine(store, providers(buckets=None), services,  # type: ignore[arg-type]
                               FakeClock(1000.0), REGION, ACCOUNT, poll_seconds=0)
    return CloudFormationApi(store, stack_engine, FakeClock(1000.0), REGION, ACCOUNT), services


def template(image: str = "img:1", target: int = 40, model_name: str = "") -> str:
    name = f"\n      ModelName: {model_name}" if model_name else ""
    return f"""
Resources:
  Model:
    Type: AWS::SageMaker::Model
    Properties:{name}
      PrimaryContainer: {{Image: "{image}"}}
  Config:
    Type: AWS::SageMaker::EndpointConfig
    Properties:
      ProductionVariants:
        - {{VariantName: AllTraffic, ModelName: !GetAtt Model.ModelName,
           InstanceType: ml.m5.large, InitialInstanceCount: 1}}
  Endpoint:
    Type: AWS::SageMaker::Endpoint
    Properties: {{EndpointName: ep, EndpointConfigName: !GetAtt Config.EndpointConfigName}}
  Target:
    Type: AWS::ApplicationAutoScaling::ScalableTarget
    Properties:
      ServiceNamespace: sagemaker
      ScalableDimension: sagemaker:variant:DesiredInstanceCount
      ResourceId: !Sub endpoint/${{Endpoint.EndpointName}}/variant/AllTraffic
      MinCapacity: 1
      MaxCapacity: 3
  Policy:
    Type: AWS::ApplicationAutoScaling::ScalingPolicy
    Properties:
      PolicyName: tracking
      PolicyType: TargetTrackingScaling
      ScalingTargetId: !Ref Target
      TargetTrackingScalingPolicyConfiguration: {{TargetValue: {target}}}
"""


def run(coro):
    return asyncio.run(coro)


async def deploy(api: CloudFormationApi, body: str, kind: str, name: str = "s") -> dict:
    cs = api.create_change_set({"StackName": name, "ChangeSetName": f"c{next(_SEQ)}",
                                "TemplateBody": body, "ChangeSetType": kind})
    desc = api.describe_change_set({"ChangeSetName": cs["Id"]})
    if desc["Status"] == "CREATE_COMPLETE":
        await api.execute_change_set({"ChangeSetName": cs["Id"]})
        await api.engine.wait_idle()
    return desc


def status(api: CloudFormationApi, name: str = "s") -> str:
    return api.describe_stacks({"StackName": name})["Stacks"][0]["StackStatus"]


def test_an_unnamed_model_change_replaces_model_and_config_and_updates_the_endpoint():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(), "CREATE")
        assert status(api) == "CREATE_COMPLETE"
        services.calls.clear()
        desc = await deploy(api, template(image="img:2"), "UPDATE")
        actions = {c["ResourceChange"]["LogicalResourceId"]:
                   (c["ResourceChange"]["Action"], c["ResourceChange"].get("Replacement"))
                   for c in desc["Changes"]}
        assert actions == {"Model": ("Modify", "True"), "Config": ("Modify", "Conditional"),
                           "Endpoint": ("Modify", "Conditional")}
        assert status(api) == "UPDATE_COMPLETE"
        ops = [c.split(":")[0] for c in services.calls]
        # New model and config, the endpoint repointed, and only then the old ones deleted.
        assert ops == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint",
                       "DeleteEndpointConfig", "DeleteModel"]
        events = api.describe_stack_events({"StackName": "s"})["StackEvents"]
        stack_statuses = [e["ResourceStatus"] for e in reversed(events)
                          if e["ResourceType"] == "AWS::CloudFormation::Stack"]
        assert stack_statuses[-3:] == ["UPDATE_IN_PROGRESS",
                                       "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE"]

    run(scenario())


def test_a_policy_target_change_is_in_place_and_an_identical_one_is_empty():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(), "CREATE")
        services.calls.clear()
        await deploy(api, template(target=70), "UPDATE")
        assert services.calls == ["PutScalingPolicy:tracking"]
        desc = await deploy(api, template(target=70), "UPDATE")
        assert desc["Status"] == "FAILED" and "didn't contain changes" in desc["StatusReason"]

    run(scenario())


def test_replacing_a_custom_named_model_fails_and_rolls_back():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(model_name="named"), "CREATE")
        services.calls.clear()
        await deploy(api, template(image="img:2", model_name="named"), "UPDATE")
        assert status(api) == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [e.get("ResourceStatusReason", "")
                   for e in api.describe_stack_events({"StackName": "s"})["StackEvents"]]
        assert any("custom-named resource requires replacing. Rename Model" in r
                   for r in reasons)
        assert services.calls == []

    run(scenario())


def test_a_failed_update_restores_what_it_changed():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(), "CREATE")
        services.fail.add("PutScalingPolicy")
        services.calls.clear()
        await deploy(api, template(image="img:2", target=70), "UPDATE")
        assert status(api) == "UPDATE_ROLLBACK_COMPLETE"
        ops = [c.split(":")[0] for c in services.calls]
        # The endpoint is pointed back at the old config before the new ones are deleted.
        assert ops == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint",
                       "PutScalingPolicy", "UpdateEndpoint", "DeleteEndpointConfig",
                       "DeleteModel"]

    run(scenario())


def test_delete_goes_in_reverse_dependency_order_and_the_name_is_then_unknown():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(), "CREATE")
        stack_id = api.describe_stacks({"StackName": "s"})["Stacks"][0]["StackId"]
        services.calls.clear()
        await api.delete_stack({"StackName": "s"})
        await api.engine.wait_idle()
        assert [c.split(":")[0] for c in services.calls] == [
            "DeleteScalingPolicy", "DeregisterScalableTarget", "DeleteEndpoint",
            "DeleteEndpointConfig", "DeleteModel"]
        with pytest.raises(ValidationError, match="Stack with id s does not exist"):
            api.describe_stacks({"StackName": "s"})
        assert status(api, stack_id) == "DELETE_COMPLETE"

    run(scenario())


def test_a_failed_create_rolls_back_and_can_then_only_be_deleted():
    api, services = stack_api()
    services.fail.add("CreateEndpoint")

    async def scenario():
        await deploy(api, template(), "CREATE")
        assert status(api) == "ROLLBACK_COMPLETE"
        assert services.things == {}
        with pytest.raises(ValidationError, match="ROLLBACK_COMPLETE state and can not be "
                                                  "updated"):
            await deploy(api, template(), "UPDATE")

    run(scenario())


EXPORTER = """
Resources:
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {AlarmName: shared, MetricName: M, Namespace: N, Statistic: Sum, Period: 60,
                 EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanThreshold}
Outputs:
  Name: {Value: !Ref Alarm, Export: {Name: shared-alarm}}
"""
IMPORTER = """
Resources:
  Meta:
    Type: AWS::CDK::Metadata
    Properties: {Uses: !ImportValue shared-alarm}
Outputs:
  Seen: {Value: !ImportValue shared-alarm}
"""


def test_an_imported_export_cannot_be_deleted_until_its_importer_is():
    api, _ = stack_api()

    async def scenario():
        await deploy(api, EXPORTER, "CREATE", name="exporter")
        assert api.list_exports({})["Exports"][0]["Value"] == "shared"
        await deploy(api, IMPORTER, "CREATE", name="importer")
        outputs = api.describe_stacks({"StackName": "importer"})["Stacks"][0]["Outputs"]
        assert outputs == [{"OutputKey": "Seen", "OutputValue": "shared"}]
        with pytest.raises(ValidationError, match="Export shared-alarm cannot be deleted as it "
                                                  "is in use by importer"):
            await api.delete_stack({"StackName": "exporter"})
        await api.delete_stack({"StackName": "importer"})
        await api.engine.wait_idle()
        await api.delete_stack({"StackName": "exporter"})
        await api.engine.wait_idle()
        assert api.list_exports({})["Exports"] == []

    run(scenario())


def test_a_stack_left_mid_operation_by_a_restart_ends_failed_and_can_be_deleted():
    api, _ = stack_api()

    async def scenario():
        await deploy(api, EXPORTER, "CREATE")
        stack = api.store.stack("s")
        stack.status = "UPDATE_IN_PROGRESS"
        api.store.put_stack(stack)
        api.engine.recover()
        assert status(api) == "UPDATE_ROLLBACK_FAILED"
        await api.delete_stack({"StackName": "s"})
        await api.engine.wait_idle()
        assert api.describe_stacks({})["Stacks"] == []

    run(scenario())


def test_a_resource_added_by_a_failed_update_leaves_no_trace():
    api, services = stack_api()
    alarm = """
  Busy:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: M, Namespace: N, Statistic: Sum, Period: 60,
                 EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanThreshold}
"""

    async def scenario():
        await deploy(api, template(), "CREATE")
        services.fail.add("PutMetricAlarm")
        await deploy(api, template(target=70) + alarm, "UPDATE")
        assert status(api) == "UPDATE_ROLLBACK_COMPLETE"
        listed = api.list_stack_resources({"StackName": "s"})["StackResourceSummaries"]
        assert sorted(r["LogicalResourceId"] for r in listed) == [
            "Config", "Endpoint", "Model", "Policy", "Target"]
        policy = services.things["tracking"]
        assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 40

    run(scenario())


def test_update_stack_without_a_change_set():
    api, services = stack_api()

    async def scenario():
        await deploy(api, template(), "CREATE")
        with pytest.raises(ValidationError, match="No updates are to be performed."):
            await api.update_stack({"StackName": "s", "TemplateBody": template()})
        await api.update_stack({"StackName": "s", "TemplateBody": template(target=55)})
        await api.engine.wait_idle()
        assert status(api) == "UPDATE_COMPLETE"
        assert services.things["tracking"]["TargetTrackingScalingPolicyConfiguration"][
            "TargetValue"] == 55

    run(scenario())


def test_scheduled_actions_of_a_scalable_target_are_put_and_removed_in_place():
    api, services = stack_api()
    body = template().replace("      MaxCapacity: 3\n", """      MaxCapacity: 3
      ScheduledActions:
        - ScheduledActionName: night
          Schedule: cron(0 22 * * ? *)
          ScalableTargetAction: {MinCapacity: 1, MaxCapacity: 1}
""")

    async def scenario():
        await deploy(api, body, "CREATE")
        assert "PutScheduledAction:endpoint/ep/variant/AllTraffic" in services.calls
        services.calls.clear()
        await deploy(api, template(), "UPDATE")
        assert [c.split(":")[0] for c in services.calls] == [
            "RegisterScalableTarget", "DeleteScheduledAction"]

    run(scenario())


def test_independent_resources_are_made_together_and_all_rolled_back_when_one_fails():
    api, services = stack_api()
    services.fail.add("PutMetricAlarm")
    body = template() + """
  Busy:
    Type: AWS::CloudWatch::Alarm
    Properties: {MetricName: M, Namespace: N, Statistic: Sum, Period: 60,
                 EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanThreshold}
"""

    async def scenario():
        await deploy(api, body, "CREATE")
        assert status(api) == "ROLLBACK_COMPLETE"
        events = api.describe_stack_events({"StackName": "s"})["StackEvents"]
        seen = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)]
        # Model and Busy need nothing: both start before either ends.
        assert seen.index(("Busy", "CREATE_IN_PROGRESS")) < seen.index(
            ("Model", "CREATE_COMPLETE"))
        assert ("Model", "DELETE_COMPLETE") in seen
        assert "Config" not in {name for name, _ in seen}
        reasons = [e.get("ResourceStatusReason") for e in events
                   if e["ResourceStatus"] == "ROLLBACK_IN_PROGRESS"]
        assert reasons == ["The following resource(s) failed to create: [Busy]. Rollback "
                           "requested by user."]
        assert services.things == {}

    run(scenario())
