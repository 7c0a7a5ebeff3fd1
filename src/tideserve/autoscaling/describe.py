"""The Describe* entries with botocore's application-autoscaling member names; timestamps are
aware UTC datetimes (the wire layer writes them as epoch seconds)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tideserve.scaling.model import (
    Activity,
    CustomizedMetric,
    ScalableTarget,
    ScalingPolicy,
    ScheduledAction,
    StepScalingConfig,
    TargetTrackingConfig,
)
from tideserve.scaling.predictive_model import PredictiveConfig


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def describe_scalable_target(target: ScalableTarget) -> dict[str, Any]:
    s = target.suspended
    return {
        "ServiceNamespace": target.key.service_namespace,
        "ResourceId": target.key.resource_id,
        "ScalableDimension": target.key.scalable_dimension,
        "MinCapacity": target.min_capacity,
        "MaxCapacity": target.max_capacity,
        "RoleARN": target.role_arn,
        "CreationTime": _utc(target.creation_time),
        "SuspendedState": {
            "DynamicScalingInSuspended": s.dynamic_scaling_in_suspended,
            "DynamicScalingOutSuspended": s.dynamic_scaling_out_suspended,
            "ScheduledScalingSuspended": s.scheduled_scaling_suspended,
        },
        "ScalableTargetARN": target.arn,
    }


def describe_scaling_policy(policy: ScalingPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyARN": policy.arn,
        "PolicyName": policy.name,
        "ServiceNamespace": policy.key.service_namespace,
        "ResourceId": policy.key.resource_id,
        "ScalableDimension": policy.key.scalable_dimension,
        "PolicyType": policy.policy_type,
    }
    if isinstance(policy.config, StepScalingConfig):
        out["StepScalingPolicyConfiguration"] = _step(policy.config)
    elif isinstance(policy.config, PredictiveConfig):
        out["PredictiveScalingPolicyConfiguration"] = describe_predictive(policy.config)
    else:
        out["TargetTrackingScalingPolicyConfiguration"] = _tracking(policy.config)
    out["Alarms"] = [{"AlarmName": a.name, "AlarmARN": a.arn} for a in policy.alarms]
    out["CreationTime"] = _utc(policy.creation_time)
    return out


def describe_predictive(c: PredictiveConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "MetricSpecifications": [json.loads(s.echo) for s in c.metric_specifications],
        "Mode": c.mode,
        "SchedulingBufferTime": c.scheduling_buffer_time,
        "MaxCapacityBreachBehavior": c.max_capacity_breach_behavior,
    }
    if c.max_capacity_buffer is not None:
        out["MaxCapacityBuffer"] = c.max_capacity_buffer
    return out


def _tracking(c: TargetTrackingConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"TargetValue": c.target_value}
    m = c.metric
    if isinstance(m, CustomizedMetric):
        spec: dict[str, Any] = {
            "MetricName": m.metric_name,
            "Namespace": m.namespace,
            "Dimensions": [{"Name": n, "Value": v} for n, v in m.dimensions],
            "Statistic": m.statistic,
        }
        if m.unit is not None:
            spec["Unit"] = m.unit
        out["CustomizedMetricSpecification"] = spec
    else:
        out["PredefinedMetricSpecification"] = {"PredefinedMetricType": m.metric_type}
    out.update(ScaleOutCooldown=c.scale_out_cooldown, ScaleInCooldown=c.scale_in_cooldown,
               DisableScaleIn=c.disable_scale_in)
    return out


def _step(c: StepScalingConfig) -> dict[str, Any]:
    steps = []
    for s in c.step_adjustments:
        step: dict[str, Any] = {}
        if s.lower_bound is not None:
            step["MetricIntervalLowerBound"] = s.lower_bound
        if s.upper_bound is not None:
            step["MetricIntervalUpperBound"] = s.upper_bound
        step["ScalingAdjustment"] = s.scaling_adjustment
        steps.append(step)
    out: dict[str, Any] = {"AdjustmentType": c.adjustment_type, "StepAdjustments": steps}
    if c.min_adjustment_magnitude is not None:
        out["MinAdjustmentMagnitude"] = c.min_adjustment_magnitude
    out["Cooldown"] = c.cooldown
    if c.metric_aggregation_type is not None:
        out["MetricAggregationType"] = c.metric_aggregation_type
    return out


def describe_scheduled_action(action: ScheduledAction) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ScheduledActionName": action.name,
        "ScheduledActionARN": action.arn,
        "ServiceNamespace": action.key.service_namespace,
        "Schedule": action.schedule,
        "ResourceId": action.key.resource_id,
        "ScalableDimension": action.key.scalable_dimension,
    }
    if action.timezone is not None:
        out["Timezone"] = action.timezone
    if action.start_time is not None:
        out["StartTime"] = _utc(action.start_time)
    if action.end_time is not None:
        out["EndTime"] = _utc(action.end_time)
    target_action: dict[str, Any] = {}
    if action.min_capacity is not None:
        target_action["MinCapacity"] = action.min_capacity
    if action.max_capacity is not None:
        target_action["MaxCapacity"] = action.max_capacity
    out["ScalableTargetAction"] = target_action
    out["CreationTime"] = _utc(action.creation_time)
    return out


def describe_scaling_activity(activity: Activity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ActivityId": activity.activity_id,
        "ServiceNamespace": activity.key.service_namespace,
        "ResourceId": activity.key.resource_id,
        "ScalableDimension": activity.key.scalable_dimension,
        "Description": activity.description,
        "Cause": activity.cause,
        "StartTime": _utc(activity.start_time),
    }
    if activity.end_time is not None:
        out["EndTime"] = _utc(activity.end_time)
    out["StatusCode"] = activity.status_code
    if activity.status_message is not None:
        out["StatusMessage"] = activity.status_message
    if activity.details is not None:
        out["Details"] = activity.details
    if activity.not_scaled_reasons:
        out["NotScaledReasons"] = [_reason(r) for r in activity.not_scaled_reasons]
    return out


def _reason(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Code": r.code}
    for member, value in (("MaxCapacity", r.max_capacity), ("MinCapacity", r.min_capacity),
                          ("CurrentCapacity", r.current_capacity)):
        if value is not None:
            out[member] = value
    return out
