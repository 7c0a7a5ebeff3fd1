"""From Application Auto Scaling request dicts (botocore member names) to typed objects.

Everything is checked here, once, before anything is stored; errors are ValidationError with
the field, the value and what is allowed (AWS's `1 validation error detected: …` wording for
model constraints). The put_* functions turn a validated request plus what exists into the
resource to store (update semantics included); ids come from `new_id` so the simulator can
make them deterministic. Scheduled actions are in validate_schedule.py.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from tideserve.autoscaling.fields import Request, constraint, optional_int
from tideserve.autoscaling.validate_metric import tracking_config
from tideserve.autoscaling.validate_predictive import predictive_config
from tideserve.autoscaling.validate_step import StepRequest, step_request
from tideserve.errors import LimitExceededError, ValidationError
from tideserve.scaling.model import (
    PREDICTIVE_SCALING,
    ROLE_ARN,
    SERVICE_NAMESPACE,
    STEP_SCALING,
    SUPPORTED_DIMENSIONS,
    TARGET_TRACKING,
    AdjustmentType,
    AlarmRef,
    ScalableTarget,
    ScalingPolicy,
    StepScalingConfig,
    SuspendedState,
    TargetKey,
    TargetTrackingConfig,
)
from tideserve.scaling.predictive_model import PredictiveConfig
from tideserve.scaling.step import check_steps
from tideserve.scaling.target_tracking import alarm_arn, alarm_name

MAX_POLICIES_PER_TARGET = 50
NewId = Callable[[], str]


def _uuid4() -> str:
    return str(uuid.uuid4())


def target_key(request: Request) -> TargetKey:
    """ServiceNamespace, ResourceId and ScalableDimension, checked against what tideserve
    scales: SageMaker variants' instance count and serverless provisioned concurrency."""
    namespace = request.get("ServiceNamespace")
    resource_id = request.get("ResourceId")
    dimension = request.get("ScalableDimension")
    for name, value in (("serviceNamespace", namespace), ("resourceId", resource_id),
                        ("scalableDimension", dimension)):
        if not isinstance(value, str) or not value:
            raise constraint(value, name, "Member must not be null")
    assert isinstance(namespace, str) and isinstance(resource_id, str)
    assert isinstance(dimension, str)
    if namespace != SERVICE_NAMESPACE or dimension not in SUPPORTED_DIMENSIONS:
        raise ValidationError("Unsupported service namespace, resource type or scalable dimension")
    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant" or "" in parts:
        raise ValidationError(
            f"Unsupported resource ID {resource_id!r}: a SageMaker variant is "
            "endpoint/<EndpointName>/variant/<VariantName>"
        )
    return TargetKey(namespace, resource_id, dimension)


# --- RegisterScalableTarget ---------------------------------------------------------------


@dataclass(frozen=True)
class RegisterRequest:
    key: TargetKey
    min_capacity: int | None
    max_capacity: int | None
    role_arn: str | None
    suspended: Mapping[str, bool]  # only the SuspendedState members given


def validate_register(request: Request) -> RegisterRequest:
    key = target_key(request)
    low = optional_int(request, "MinCapacity", minimum=0)
    high = optional_int(request, "MaxCapacity", minimum=0)
    if low is not None and high is not None and low > high:
        raise ValidationError("Minimum capacity cannot be greater than maximum capacity")
    suspended = request.get("SuspendedState") or {}
    allowed = {f"{w}Suspended" for w in ("DynamicScalingIn", "DynamicScalingOut",
                                         "ScheduledScaling")}
    for name, value in suspended.items():
        if name not in allowed or not isinstance(value, bool):
            raise constraint(value, f"suspendedState.{name}", "Member must be a boolean")
    role = request.get("RoleARN")
    return RegisterRequest(key, low, high, role if isinstance(role, str) else None,
                           dict(suspended))


def register_target(
    existing: ScalableTarget | None, req: RegisterRequest, now: float, region: str,
    account: str,
) -> ScalableTarget:
    """Create (Min and Max required) or update (only what was given changes)."""
    if existing is None:
        if req.min_capacity is None or req.max_capacity is None:
            raise ValidationError(
                "MinCapacity and MaxCapacity are required when registering a new scalable target"
            )
        token = hashlib.sha256(f"{req.key}|{now!r}".encode()).hexdigest()[:36]
        existing = ScalableTarget(
            key=req.key, min_capacity=req.min_capacity, max_capacity=req.max_capacity,
            role_arn=ROLE_ARN.format(account=account), creation_time=now,
            arn=f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{token}",
        )
    low = existing.min_capacity if req.min_capacity is None else req.min_capacity
    high = existing.max_capacity if req.max_capacity is None else req.max_capacity
    if low > high:
        raise ValidationError("Minimum capacity cannot be greater than maximum capacity")
    s = existing.suspended
    suspended = SuspendedState(
        req.suspended.get("DynamicScalingInSuspended", s.dynamic_scaling_in_suspended),
        req.suspended.get("DynamicScalingOutSuspended", s.dynamic_scaling_out_suspended),
        req.suspended.get("ScheduledScalingSuspended", s.scheduled_scaling_suspended),
    )
    return replace(existing, min_capacity=low, max_capacity=high, suspended=suspended)


# --- PutScalingPolicy ---------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyRequest:
    key: TargetKey
    name: str
    policy_type: str | None  # None on an update that leaves the type alone
    tracking: TargetTrackingConfig | None
    step: StepRequest | None
    predictive: PredictiveConfig | None = None


def validate_put_scaling_policy(request: Request) -> PolicyRequest:
    key = target_key(request)
    name = request.get("PolicyName")
    if not isinstance(name, str) or not 1 <= len(name) <= 256 or not name.isprintable():
        raise constraint(name, "policyName",
                         "Member must have length between 1 and 256 and be printable")
    policy_type = request.get("PolicyType")
    tt_raw = request.get("TargetTrackingScalingPolicyConfiguration")
    step_raw = request.get("StepScalingPolicyConfiguration")
    pred_raw = request.get("PredictiveScalingPolicyConfiguration")
    if policy_type == PREDICTIVE_SCALING or pred_raw:
        # Beyond AWS (which offers predictive scaling for ECS only): SageMaker variants too,
        # in AWS's wire shape.
        if policy_type != PREDICTIVE_SCALING:
            raise ValidationError("PredictiveScalingPolicyConfiguration is only valid with "
                                  "PolicyType PredictiveScaling")
        if tt_raw or step_raw:
            raise ValidationError("The configuration given does not match PolicyType "
                                  "PredictiveScaling")
        if not isinstance(pred_raw, dict):
            raise constraint(None, "predictiveScalingPolicyConfiguration",
                             "Member must not be null")
        return PolicyRequest(key, name, policy_type, None, None,
                             predictive_config(pred_raw, key))
    if policy_type not in (None, TARGET_TRACKING, STEP_SCALING):
        raise constraint(policy_type, "policyType", "Member must satisfy enum value set: "
                         "[StepScaling, TargetTrackingScaling, PredictiveScaling]")
    if policy_type is None:
        policy_type = TARGET_TRACKING if tt_raw else STEP_SCALING if step_raw else None
    if policy_type == TARGET_TRACKING and step_raw or policy_type == STEP_SCALING and tt_raw:
        raise ValidationError(f"The configuration given does not match PolicyType {policy_type}")
    if policy_type == TARGET_TRACKING and not tt_raw:
        raise ValidationError(
            "TargetTrackingScalingPolicyConfiguration is required for TargetTrackingScaling"
        )
    tracking = tracking_config(tt_raw, key.scalable_dimension) if tt_raw else None
    step = step_request(step_raw) if step_raw else None
    return PolicyRequest(key, name, policy_type, tracking, step)


def put_policy(
    existing: ScalingPolicy | None,
    req: PolicyRequest,
    now: float,
    region: str,
    account: str,
    new_id: NewId = _uuid4,
) -> ScalingPolicy:
    """The policy to store. An update keeps the ARN and CreationTime; a target-tracking
    policy gets new alarms (new names) on every put, as AWS re-creates them."""
    policy_type = req.policy_type or (existing.policy_type if existing else None)
    if policy_type is None:
        raise ValidationError("PolicyType is required when creating a scaling policy")
    arn = existing.arn if existing else (
        f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{new_id()}:resource/"
        f"{req.key.service_namespace}/{req.key.resource_id}:policyName/{req.name}"
    )
    created = existing.creation_time if existing else now
    if existing is not None and policy_type != existing.policy_type:
        raise ValidationError(f"Policy {req.name} is a {existing.policy_type} policy; delete "
                              "it to put a policy of another type under its name")
    if policy_type == PREDICTIVE_SCALING:
        if req.predictive is None:
            raise ValidationError("PredictiveScalingPolicyConfiguration is required for "
                                  "PredictiveScaling")
        return ScalingPolicy(req.name, arn, req.key, PREDICTIVE_SCALING, req.predictive, created)
    if policy_type == STEP_SCALING:
        old = existing.step if existing else None
        config = _merge_step(old, req.step)
        return ScalingPolicy(req.name, arn, req.key, STEP_SCALING, config, created)
    assert req.tracking is not None
    created_by = existing.created_by if existing and existing.created_by else new_id()
    kinds = ("high",) if req.tracking.disable_scale_in else ("high", "low")
    alarms = []
    for kind in kinds:
        name = alarm_name(req.key.resource_id, kind, new_id())
        alarms.append(AlarmRef(name, alarm_arn(region, account, name), cast(Any, kind)))
    return ScalingPolicy(req.name, arn, req.key, TARGET_TRACKING, req.tracking, created,
                         created_by, tuple(alarms))


def _merge_step(old: StepScalingConfig | None, req: StepRequest | None) -> StepScalingConfig:
    """Creating needs AdjustmentType and StepAdjustments; an update changes what it gives."""
    req = req or StepRequest()
    adjustment = req.adjustment_type or (old.adjustment_type if old else None)
    steps = req.step_adjustments if req.step_adjustments is not None else (
        old.step_adjustments if old else None)
    if adjustment is None:
        raise ValidationError("AdjustmentType is required when creating a step scaling policy")
    if not steps:
        raise ValidationError("StepAdjustments is required when creating a step scaling policy")
    check_steps(steps, adjustment)
    magnitude = req.min_adjustment_magnitude if req.min_adjustment_magnitude is not None else (
        old.min_adjustment_magnitude if old else None)
    if magnitude is not None and adjustment != "PercentChangeInCapacity":
        raise ValidationError(
            "MinAdjustmentMagnitude is only supported with AdjustmentType PercentChangeInCapacity"
        )
    cooldown = req.cooldown if req.cooldown is not None else (old.cooldown if old else None)
    aggregation = req.metric_aggregation_type or (old.metric_aggregation_type if old else None)
    config = StepScalingConfig(cast(AdjustmentType, adjustment), tuple(steps), magnitude,
                               metric_aggregation_type=aggregation)
    return config if cooldown is None else replace(config, cooldown=cooldown)


def check_policy_fits(policy: ScalingPolicy, others: Sequence[ScalingPolicy]) -> None:
    """Quotas and cross-policy rules: at most 50 policies per target, and target-tracking
    policies on one target each track a different metric."""
    mine = [p for p in others if p.key == policy.key and p.arn != policy.arn]
    if len(mine) >= MAX_POLICIES_PER_TARGET:
        raise LimitExceededError(
            f"A scalable target can have at most {MAX_POLICIES_PER_TARGET} scaling policies",
            code="LimitExceededException",
        )
    tracking = policy.tracking
    if tracking is None:
        return
    for other in mine:
        if other.tracking is not None and other.tracking.metric == tracking.metric:
            raise ValidationError(
                f"Policy {other.name} already tracks this metric; target tracking policies on "
                "one scalable target must each use a different metric"
            )
