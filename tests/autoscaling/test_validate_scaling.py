"""Validation at the edge (spec §1.2, §1.3.1, §1.10) and the Describe* shapes, checked against
botocore's application-autoscaling model."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from tests.scaling.builders import (
    ACCOUNT,
    REGION,
    RESOURCE,
    T0,
    fire,
    make_target,
    new_id,
    step_policy,
    tt_policy,
)
from tideserve.autoscaling.describe import (
    describe_scalable_target,
    describe_scaling_activity,
    describe_scaling_policy,
    describe_scheduled_action,
)
from tideserve.autoscaling.validate import (
    check_policy_fits,
    put_policy,
    register_target,
    validate_put_scaling_policy,
    validate_register,
)
from tideserve.autoscaling.validate_metric import ALL_METRIC_TYPES, METRICS_FOR_DIMENSION
from tideserve.autoscaling.validate_schedule import (
    put_scheduled_action,
    validate_put_scheduled_action,
)
from tideserve.errors import LimitExceededError, ValidationError
from tideserve.scaling.engine import TargetContext, TargetState, execute_policy
from tideserve.scaling.model import DIM_PROVISIONED_CONCURRENCY
from tideserve.scaling.target_tracking import PREDEFINED_METRICS

MODEL = botocore.session.get_session().get_service_model("application-autoscaling")
KEY = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
       "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


def tt_request(**config: Any) -> dict[str, Any]:
    spec = {"TargetValue": 70.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}, **config}
    return {**KEY, "PolicyName": "p", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": spec}


def test_predefined_sagemaker_metrics_are_exactly_botocores() -> None:
    enum = MODEL.shape_for("MetricType").enum
    assert tuple(enum) == ALL_METRIC_TYPES
    assert set(PREDEFINED_METRICS) == {m for m in enum if m.startswith("SageMaker")}
    variant_types = {m for m in enum if m.startswith("SageMakerVariant")}
    assert {m for ms in METRICS_FOR_DIMENSION.values() for m in ms} == variant_types


@pytest.mark.parametrize(
    "case, request_, message",
    [
        ("metric type that does not exist",
         tt_request(PredefinedMetricSpecification={
             "PredefinedMetricType": "SageMakerVariantUtilization"}),
         "failed to satisfy constraint: Member must satisfy enum value set"),
        ("another service's metric",
         tt_request(PredefinedMetricSpecification={
             "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}),
         "not supported for scalable dimension"),
        ("ResourceLabel is for ALB only",
         tt_request(PredefinedMetricSpecification={
             "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance",
             "ResourceLabel": "x"}), "ResourceLabel"),
        ("zero target", tt_request(TargetValue=0), "TargetValue"),
        ("negative target", tt_request(TargetValue=-5), "TargetValue"),
        ("negative cooldown", tt_request(ScaleInCooldown=-1), "scaleInCooldown"),
        ("both metric kinds", tt_request(CustomizedMetricSpecification={
            "MetricName": "m", "Namespace": "n", "Statistic": "Average"}), "Exactly one"),
        ("metric math", tt_request(PredefinedMetricSpecification=None,
                                   CustomizedMetricSpecification={"Metrics": [{"Id": "m1"}]}),
         "metric math"),
        ("customized without statistic", tt_request(
            PredefinedMetricSpecification=None,
            CustomizedMetricSpecification={"MetricName": "m", "Namespace": "n"}), "statistic"),
        ("predictive with a target-tracking configuration",
         {**tt_request(), "PolicyType": "PredictiveScaling"}, "does not match"),
        ("other namespace", {**tt_request(), "ServiceNamespace": "ecs"}, "Unsupported"),
        ("inference component dimension",
         {**tt_request(), "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount"},
         "Unsupported"),
        ("malformed resource id", {**tt_request(), "ResourceId": "endpoint/ep"}, "resource ID"),
        ("no policy name", {**tt_request(), "PolicyName": ""}, "policyName"),
        ("step config on a TT policy", {**tt_request(), "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity"}}, "does not match"),
    ],
)
def test_put_scaling_policy_refusals(case: str, request_: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_put_scaling_policy(request_)


def test_provisioned_concurrency_dimension_takes_its_own_metric() -> None:
    request = {**tt_request(PredefinedMetricSpecification={
        "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"}),
        "ScalableDimension": DIM_PROVISIONED_CONCURRENCY}
    req = validate_put_scaling_policy(request)
    assert req.tracking is not None and req.tracking.scale_in_cooldown == 300


def test_customized_metric_policy_alarm_carries_its_unit_and_dimensions() -> None:
    policy = tt_policy(target_value=5, CustomizedMetricSpecification={
        "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}], "Statistic": "Average",
        "Unit": "Count"})
    from tideserve.scaling.target_tracking import target_tracking_alarms
    high, _ = target_tracking_alarms(policy)
    assert (high.metric_name, high.statistic, high.unit, high.dimensions) == (
        "ApproximateBacklogSizePerInstance", "Average", "Count", (("EndpointName", "ep"),))


def test_register_create_needs_bounds_and_update_keeps_the_rest() -> None:
    with pytest.raises(ValidationError, match="required"):
        register_target(None, validate_register({**KEY, "MinCapacity": 1}), T0, REGION, ACCOUNT)
    with pytest.raises(ValidationError, match="Minimum capacity cannot be greater"):
        validate_register({**KEY, "MinCapacity": 5, "MaxCapacity": 2})
    with pytest.raises(ValidationError, match="minCapacity"):
        validate_register({**KEY, "MinCapacity": -1, "MaxCapacity": 2})
    target = register_target(None, validate_register({**KEY, "MinCapacity": 0, "MaxCapacity": 4}),
                             T0, REGION, ACCOUNT)
    assert target.arn.startswith(
        "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/")
    assert len(target.arn.rsplit("/", 1)[1]) == 36
    upd = register_target(target, validate_register(
        {**KEY, "SuspendedState": {"DynamicScalingInSuspended": True}}), T0 + 9, REGION, ACCOUNT)
    assert (upd.min_capacity, upd.max_capacity, upd.creation_time) == (0, 4, T0)
    assert upd.suspended.dynamic_scaling_in_suspended and upd.arn == target.arn
    with pytest.raises(ValidationError, match="greater"):
        register_target(target, validate_register({**KEY, "MinCapacity": 9}), T0, REGION, ACCOUNT)


def test_updating_a_tt_policy_keeps_arn_and_replaces_alarms() -> None:
    first = tt_policy(name="p")
    again = put_policy(first, validate_put_scaling_policy(tt_request(TargetValue=50)), T0 + 60,
                       REGION, ACCOUNT, new_id)
    assert (again.arn, again.creation_time, again.created_by) == (
        first.arn, first.creation_time, first.created_by)
    assert {a.name for a in again.alarms}.isdisjoint(a.name for a in first.alarms)


def test_step_update_changes_only_what_it_gives() -> None:
    first = step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], Cooldown=60)
    req = validate_put_scaling_policy({**KEY, "PolicyName": "step",
                                       "StepScalingPolicyConfiguration": {"Cooldown": 30}})
    upd = put_policy(first, req, T0, REGION, ACCOUNT, new_id)
    assert upd.step is not None and first.step is not None
    assert (upd.step.cooldown, upd.step.step_adjustments) == (30, first.step.step_adjustments)
    with pytest.raises(ValidationError, match="AdjustmentType is required"):
        put_policy(None, req, T0, REGION, ACCOUNT, new_id)


def test_two_tt_policies_on_one_metric_and_the_50_policy_quota() -> None:
    a = tt_policy(name="a")
    with pytest.raises(ValidationError, match="different metric"):
        check_policy_fits(tt_policy(name="b"), [a])
    many = [step_policy([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
                        name=f"s{i}") for i in range(50)]
    with pytest.raises(LimitExceededError):
        check_policy_fits(a, many)


def _check_shape(entry: dict[str, Any], shape_name: str) -> None:
    shape = MODEL.shape_for(shape_name)
    assert set(entry) <= set(shape.members), set(entry) - set(shape.members)
    assert set(shape.required_members) <= set(entry), set(shape.required_members) - set(entry)


def test_describe_entries_use_botocores_member_names() -> None:
    target = make_target()
    _check_shape(describe_scalable_target(target), "ScalableTarget")
    tt = describe_scaling_policy(tt_policy())
    _check_shape(tt, "ScalingPolicy")
    assert tt["CreationTime"].tzinfo is not None and len(tt["Alarms"]) == 2
    _check_shape(tt["TargetTrackingScalingPolicyConfiguration"],
                 "TargetTrackingScalingPolicyConfiguration")
    step = describe_scaling_policy(step_policy([{"MetricIntervalLowerBound": 0,
                                                 "ScalingAdjustment": 1}]))
    _check_shape(step["StepScalingPolicyConfiguration"], "StepScalingPolicyConfiguration")
    assert step["Alarms"] == []
    req = validate_put_scheduled_action({**KEY, "ScheduledActionName": "n",
                                         "Schedule": "rate(1 hour)", "StartTime": T0,
                                         "ScalableTargetAction": {"MinCapacity": 2}})
    _check_shape(describe_scheduled_action(
        put_scheduled_action(None, req, T0, REGION, ACCOUNT, new_id)), "ScheduledAction")
    d = execute_policy(TargetState(target), fire(tt_policy(), 500), TargetContext(10), T0)
    assert d.activity is not None
    entry = describe_scaling_activity(d.activity)
    _check_shape(entry, "ScalingActivity")
    _check_shape(entry["NotScaledReasons"][0], "NotScaledReason")
    assert entry["NotScaledReasons"][0] == {"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 10,
                                            "CurrentCapacity": 10}
