"""Application Auto Scaling and CloudWatch alarm handlers through their functions, on SQLite
and on the simulator's in-memory store alike: what is stored, what Describe* returns, what
goes with what, and the errors AWS gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.autoscaling.conftest import Env, make_env
from tests.autoscaling.harness import INVOCATIONS_70, RESOURCE, target_params
from tideserve.errors import LimitExceededError, NotFoundError, ValidationError


@pytest.fixture(params=["sqlite", "memory"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    """Every handler test on both stores: the simulator builds its world through these very
    handlers on MemoryScalingStore, so the two must store and describe alike."""
    return make_env(tmp_path, memory=request.param == "memory")


STEP = {"AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}


def register(env: Env, resource: str = RESOURCE, **extra: Any) -> str:
    out = env.aas.register_scalable_target({**target_params(resource), "MinCapacity": 1,
                                            "MaxCapacity": 4, **extra})
    return str(out["ScalableTargetARN"])


def put_tt(env: Env, name: str = "tt", resource: str = RESOURCE) -> dict[str, Any]:
    return env.aas.put_scaling_policy({
        **target_params(resource), "PolicyName": name, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": INVOCATIONS_70})


def put_step(env: Env, name: str = "step") -> dict[str, Any]:
    return env.aas.put_scaling_policy({**target_params(), "PolicyName": name,
                                       "PolicyType": "StepScaling",
                                       "StepScalingPolicyConfiguration": STEP})


def alarm_names(env: Env, **params: Any) -> list[str]:
    return [a["AlarmName"] for a in env.cw.describe_alarms(params)["MetricAlarms"]]


def test_register_then_describe_and_update_only_what_was_given(env: Env) -> None:
    arn = register(env)
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:123456789012:"
                          "scalable-target/")
    [target] = env.aas.describe_scalable_targets({"ServiceNamespace": "sagemaker"})[
        "ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        RESOURCE, 1, 4)
    assert target["RoleARN"].endswith(
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
    assert target["ScalableTargetARN"] == arn
    env.aas.register_scalable_target({**target_params(), "MaxCapacity": 8,
                                      "SuspendedState": {"DynamicScalingInSuspended": True}})
    [target] = env.aas.describe_scalable_targets({"ServiceNamespace": "sagemaker"})[
        "ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 8)
    assert target["SuspendedState"]["DynamicScalingInSuspended"] is True
    assert target["ScalableTargetARN"] == arn  # same target, updated in place


def test_register_needs_an_existing_variant_and_min_max_on_create(env: Env) -> None:
    with pytest.raises(ValidationError, match="doesn't exist: endpoint/nope/variant/AllTraffic"):
        register(env, "endpoint/nope/variant/AllTraffic")
    with pytest.raises(ValidationError, match="MinCapacity and MaxCapacity are required"):
        env.aas.register_scalable_target({**target_params(), "MaxCapacity": 3})
    with pytest.raises(ValidationError, match="Minimum capacity cannot be greater"):
        env.aas.register_scalable_target({**target_params(), "MinCapacity": 5, "MaxCapacity": 3})


def test_target_tracking_policy_returns_its_alarms_and_describe_alarms_lists_them(
        env: Env) -> None:
    register(env)
    out = put_tt(env)
    assert out["PolicyARN"].endswith(f":resource/sagemaker/{RESOURCE}:policyName/tt")
    names = [a["AlarmName"] for a in out["Alarms"]]
    assert [n.split("-")[2] for n in names] == ["AlarmHigh", "AlarmLow"]
    assert alarm_names(env) == sorted(names)
    high = env.cw.describe_alarms({"AlarmNames": [names[0]]})["MetricAlarms"][0]
    assert (high["Threshold"], high["EvaluationPeriods"], high["StateValue"]) == (
        70.0, 3, "INSUFFICIENT_DATA")
    assert high["AlarmActions"] == [f"{out['PolicyARN']}:createdBy/" +
                                    high["AlarmActions"][0].split(":createdBy/")[1]]
    [policy] = env.aas.describe_scaling_policies({"ServiceNamespace": "sagemaker"})[
        "ScalingPolicies"]
    assert [a["AlarmName"] for a in policy["Alarms"]] == names
    assert policy["TargetTrackingScalingPolicyConfiguration"]["ScaleOutCooldown"] == 300
    # Putting it again re-creates the alarms under new names; the old ones go.
    again = put_tt(env)
    assert again["PolicyARN"] == out["PolicyARN"]
    assert alarm_names(env) == sorted(a["AlarmName"] for a in again["Alarms"])
    assert set(alarm_names(env)).isdisjoint(names)


def test_policy_on_an_unregistered_target_is_object_not_found(env: Env) -> None:
    with pytest.raises(NotFoundError, match="No scalable target registered for service "
                       f"namespace: sagemaker, resource ID: {RESOURCE}, scalable dimension"):
        put_tt(env)


def test_deregister_deletes_policies_scheduled_actions_and_their_alarms(env: Env) -> None:
    register(env)
    put_tt(env)
    put_step(env)
    user = {"AlarmName": "mine", "Namespace": "AWS/SageMaker", "MetricName": "M",
            "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanThreshold"}
    env.cw.put_metric_alarm(user)
    env.aas.put_scheduled_action({**target_params(), "ScheduledActionName": "night",
                                  "Schedule": "cron(0 22 * * ? *)",
                                  "ScalableTargetAction": {"MinCapacity": 1}})
    env.aas.deregister_scalable_target(target_params())
    ns = {"ServiceNamespace": "sagemaker"}
    assert env.aas.describe_scalable_targets(ns)["ScalableTargets"] == []
    assert env.aas.describe_scaling_policies(ns)["ScalingPolicies"] == []
    assert env.aas.describe_scheduled_actions(ns)["ScheduledActions"] == []
    assert alarm_names(env) == ["mine"]  # the user's own alarm is theirs to delete
    with pytest.raises(NotFoundError, match="No scalable target registered"):
        env.aas.deregister_scalable_target(target_params())


def test_deleting_policies_target_tracking_takes_alarms_step_leaves_the_users_alarm(
        env: Env) -> None:
    register(env)
    put_tt(env)
    step_arn = put_step(env)["PolicyARN"]
    env.cw.put_metric_alarm({"AlarmName": "backlog", "Namespace": "AWS/SageMaker",
                             "MetricName": "HasBacklogWithoutCapacity", "Statistic": "Average",
                             "Period": 60, "EvaluationPeriods": 2, "Threshold": 1.0,
                             "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                             "AlarmActions": [step_arn, "arn:aws:sns:us-east-1:1:ops"]})
    env.aas.delete_scaling_policy({**target_params(), "PolicyName": "tt"})
    assert alarm_names(env) == ["backlog"]
    env.aas.delete_scaling_policy({**target_params(), "PolicyName": "step"})
    [alarm] = env.cw.describe_alarms({})["MetricAlarms"]
    assert alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:1:ops"]
    with pytest.raises(NotFoundError, match="No scaling policy found .* policy name: step"):
        env.aas.delete_scaling_policy({**target_params(), "PolicyName": "step"})


def test_describe_pagination_and_filters(env: Env) -> None:
    for name in ("ep", "other", "third"):
        register(env, f"endpoint/{name}/variant/AllTraffic")
        env.clock.advance(1)
    ns = {"ServiceNamespace": "sagemaker"}
    first = env.aas.describe_scalable_targets({**ns, "MaxResults": 2})
    assert [t["ResourceId"].split("/")[1] for t in first["ScalableTargets"]] == ["ep", "other"]
    rest = env.aas.describe_scalable_targets({**ns, "MaxResults": 2,
                                              "NextToken": first["NextToken"]})
    assert [t["ResourceId"].split("/")[1] for t in rest["ScalableTargets"]] == ["third"]
    assert "NextToken" not in rest
    picked = env.aas.describe_scalable_targets(
        {**ns, "ResourceIds": ["endpoint/third/variant/AllTraffic"]})["ScalableTargets"]
    assert [t["ResourceId"] for t in picked] == ["endpoint/third/variant/AllTraffic"]
    with pytest.raises(ValidationError) as bad:
        env.aas.describe_scalable_targets({**ns, "NextToken": "not-a-token"})
    assert bad.value.code == "InvalidNextTokenException"
    put_tt(env, "a")
    env.aas.put_scaling_policy({**target_params(), "PolicyName": "b",
                                "PolicyType": "TargetTrackingScaling",
                                "TargetTrackingScalingPolicyConfiguration": {
                                    "TargetValue": 50.0, "CustomizedMetricSpecification": {
                                        "MetricName": "CPUUtilization",
                                        "Namespace": "/aws/sagemaker/Endpoints",
                                        "Statistic": "Average"}}})
    names = env.aas.describe_scaling_policies({**ns, "PolicyNames": ["b"]})["ScalingPolicies"]
    assert [p["PolicyName"] for p in names] == ["b"]
    page = env.cw.describe_alarms({"MaxRecords": 3})
    assert len(page["MetricAlarms"]) == 3
    assert len(env.cw.describe_alarms({"NextToken": page["NextToken"]})["MetricAlarms"]) == 1
    assert alarm_names(env, AlarmNamePrefix="TargetTracking-endpoint/ep/") == alarm_names(env)
    assert alarm_names(env, StateValue="ALARM") == []


def test_validation_errors_name_the_field(env: Env) -> None:
    register(env)
    # Beyond AWS (ECS only there), predictive scaling is offered: its configuration is due.
    with pytest.raises(ValidationError, match="predictiveScalingPolicyConfiguration"):
        env.aas.put_scaling_policy({**target_params(), "PolicyName": "p",
                                    "PolicyType": "PredictiveScaling"})
    with pytest.raises(ValidationError, match="Unsupported service namespace"):
        env.aas.describe_scalable_targets({"ServiceNamespace": "ecs"})
    with pytest.raises(ValidationError, match="must also specify a resource ID"):
        env.aas.describe_scaling_activities({"ServiceNamespace": "sagemaker",
                                             "ScalableDimension": target_params()[
                                                 "ScalableDimension"]})
    with pytest.raises(ValidationError) as bad:
        env.cw.put_metric_alarm({"AlarmName": "x", "Namespace": "N", "MetricName": "M",
                                 "Statistic": "Average", "Period": 45, "EvaluationPeriods": 1,
                                 "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"})
    assert bad.value.code == "InvalidParameterValue"


def test_scheduled_actions_put_describe_delete(env: Env) -> None:
    register(env)
    env.aas.put_scheduled_action({**target_params(), "ScheduledActionName": "evening",
                                  "Schedule": "cron(0 18 ? * MON-FRI *)",
                                  "Timezone": "America/New_York",
                                  "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 4}})
    [action] = env.aas.describe_scheduled_actions({"ServiceNamespace": "sagemaker",
                                                   "ScheduledActionNames": ["evening"]})[
        "ScheduledActions"]
    assert action["Timezone"] == "America/New_York"
    assert action["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 4}
    env.aas.delete_scheduled_action({**target_params(), "ScheduledActionName": "evening"})
    with pytest.raises(NotFoundError, match="No scheduled action found"):
        env.aas.delete_scheduled_action({**target_params(), "ScheduledActionName": "evening"})


def test_tags_on_scalable_targets(env: Env) -> None:
    arn = register(env, Tags={"team": "ml"})
    assert env.aas.tagging.list_tags_for_resource({"ResourceARN": arn}) == {
        "Tags": {"team": "ml"}}
    env.aas.tagging.tag_resource({"ResourceARN": arn, "Tags": {"env": "dev", "team": "ops"}})
    env.aas.tagging.untag_resource({"ResourceARN": arn, "TagKeys": ["env"]})
    assert env.aas.tagging.list_tags_for_resource({"ResourceARN": arn})["Tags"] == {
        "team": "ops"}
    with pytest.raises(LimitExceededError) as many:
        env.aas.tagging.tag_resource({"ResourceARN": arn,
                                      "Tags": {f"k{i}": "v" for i in range(60)}})
    assert many.value.code == "TooManyTagsException"
    unknown = arn[:-4] + "zzzz"
    with pytest.raises(NotFoundError) as missing:
        env.aas.tagging.list_tags_for_resource({"ResourceARN": unknown})
    assert missing.value.code == "ResourceNotFoundException"


def test_alarm_actions_can_be_disabled_and_set_alarm_state_needs_an_alarm(env: Env) -> None:
    env.cw.put_metric_alarm({"AlarmName": "a", "Namespace": "N", "MetricName": "M",
                             "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1,
                             "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"})
    env.cw.disable_alarm_actions({"AlarmNames": ["a"]})
    assert env.cw.describe_alarms({})["MetricAlarms"][0]["ActionsEnabled"] is False
    env.cw.set_alarm_state({"AlarmName": "a", "StateValue": "ALARM", "StateReason": "test"})
    assert alarm_names(env, StateValue="ALARM") == ["a"]
    found = env.cw.describe_alarms_for_metric({"Namespace": "N", "MetricName": "M"})
    assert [a["AlarmName"] for a in found["MetricAlarms"]] == ["a"]
    assert env.cw.describe_alarms_for_metric({"Namespace": "N", "MetricName": "M",
                                              "Period": 300})["MetricAlarms"] == []
    with pytest.raises(NotFoundError):
        env.cw.set_alarm_state({"AlarmName": "b", "StateValue": "OK", "StateReason": "x"})
    env.cw.delete_alarms({"AlarmNames": ["a", "never-existed"]})
    assert alarm_names(env) == []
