"""Application Auto Scaling's resources as typed, frozen values.

Everything here is plain data: a scalable target, its scaling policies, its scheduled actions
and the scaling activities the engine records. Times are float seconds since the Unix epoch;
durations (cooldowns) are integer seconds exactly as AWS states them — the live server's time
compression is applied by the engine (`time_scale`), never stored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tideserve.scaling.predictive_model import PredictiveConfig

SERVICE_NAMESPACE = "sagemaker"
DIM_INSTANCES = "sagemaker:variant:DesiredInstanceCount"
DIM_PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"
SUPPORTED_DIMENSIONS = (DIM_INSTANCES, DIM_PROVISIONED_CONCURRENCY)

TARGET_TRACKING = "TargetTrackingScaling"
STEP_SCALING = "StepScaling"
PREDICTIVE_SCALING = "PredictiveScaling"

# SageMaker endpoint variants default both target-tracking cooldowns to 300 s
# (SageMaker developer guide, endpoint-auto-scaling-prerequisites).
DEFAULT_TT_COOLDOWN = 300
# StepScalingPolicyConfiguration.Cooldown's documented default.
DEFAULT_STEP_COOLDOWN = 300

AdjustmentType = Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"]
ActivityStatus = Literal[
    "Pending", "InProgress", "Successful", "Overridden", "Unfulfilled", "Failed"
]

ROLE_ARN = (
    "arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


@dataclass(frozen=True)
class TargetKey:
    """What identifies a scalable target: (ServiceNamespace, ResourceId, ScalableDimension)."""

    service_namespace: str
    resource_id: str
    scalable_dimension: str

    @property
    def endpoint_name(self) -> str:
        """`endpoint/<ep>/variant/<v>` → `<ep>`."""
        return self.resource_id.split("/")[1]

    @property
    def variant_name(self) -> str:
        return self.resource_id.split("/")[3]


@dataclass(frozen=True)
class SuspendedState:
    dynamic_scaling_in_suspended: bool = False
    dynamic_scaling_out_suspended: bool = False
    scheduled_scaling_suspended: bool = False


@dataclass(frozen=True)
class ScalableTarget:
    key: TargetKey
    min_capacity: int
    max_capacity: int
    role_arn: str
    creation_time: float
    arn: str
    suspended: SuspendedState = field(default_factory=SuspendedState)

    def clamp(self, capacity: int) -> int:
        return max(self.min_capacity, min(self.max_capacity, capacity))


@dataclass(frozen=True)
class PredefinedMetric:
    metric_type: str
    resource_label: str | None = None


@dataclass(frozen=True)
class CustomizedMetric:
    metric_name: str
    namespace: str
    statistic: str
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str | None = None


@dataclass(frozen=True)
class TargetTrackingConfig:
    target_value: float
    metric: PredefinedMetric | CustomizedMetric
    scale_out_cooldown: int = DEFAULT_TT_COOLDOWN  # seconds
    scale_in_cooldown: int = DEFAULT_TT_COOLDOWN  # seconds
    disable_scale_in: bool = False


@dataclass(frozen=True)
class StepAdjustment:
    """One step: applies when (metric − alarm threshold) lies in [lower, upper) above the
    threshold or (lower, upper] below it; None is −∞ / +∞."""

    scaling_adjustment: int
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class StepScalingConfig:
    adjustment_type: AdjustmentType
    step_adjustments: tuple[StepAdjustment, ...]
    min_adjustment_magnitude: int | None = None
    cooldown: int = DEFAULT_STEP_COOLDOWN  # seconds
    metric_aggregation_type: str | None = None  # None reads as "Average"


@dataclass(frozen=True)
class AlarmRef:
    """A managed alarm a target-tracking policy owns (DescribeScalingPolicies `Alarms`)."""

    name: str
    arn: str
    kind: Literal["high", "low"]


@dataclass(frozen=True)
class ScalingPolicy:
    name: str
    arn: str
    key: TargetKey
    policy_type: str  # TARGET_TRACKING | STEP_SCALING | PREDICTIVE_SCALING
    config: TargetTrackingConfig | StepScalingConfig | PredictiveConfig
    creation_time: float
    # Target tracking only: the uuid of `<PolicyARN>:createdBy/<uuid>` (the alarm action) and
    # the alarms made for the current revision of the policy.
    created_by: str = ""
    alarms: tuple[AlarmRef, ...] = ()

    @property
    def action_arn(self) -> str:
        """What the alarm's AlarmActions name; step policies are named by their bare ARN."""
        return f"{self.arn}:createdBy/{self.created_by}" if self.created_by else self.arn

    @property
    def tracking(self) -> TargetTrackingConfig | None:
        return self.config if isinstance(self.config, TargetTrackingConfig) else None

    @property
    def step(self) -> StepScalingConfig | None:
        return self.config if isinstance(self.config, StepScalingConfig) else None

    @property
    def predictive(self) -> PredictiveConfig | None:
        return self.config if isinstance(self.config, PredictiveConfig) else None

    def alarm(self, kind: Literal["high", "low"]) -> AlarmRef | None:
        return next((a for a in self.alarms if a.kind == kind), None)


def policy_arn_of_action(action_arn: str) -> str:
    """An alarm action names `<PolicyARN>:createdBy/<uuid>` for target tracking; strip it."""
    head, sep, _ = action_arn.partition(":createdBy/")
    return head if sep else action_arn


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    arn: str
    key: TargetKey
    schedule: str  # the expression as given: at(...), rate(...), cron(...)
    creation_time: float
    timezone: str | None = None  # IANA name; None is UTC
    start_time: float | None = None
    end_time: float | None = None
    min_capacity: int | None = None
    max_capacity: int | None = None


NOT_SCALED_CODES = (
    "AutoScalingAnticipatedFlapping",
    "TargetServicePutResourceAsUnscalable",
    "AlreadyAtMaxCapacity",
    "AlreadyAtMinCapacity",
    "AlreadyAtDesiredCapacity",
)


@dataclass(frozen=True)
class NotScaledReason:
    code: str
    max_capacity: int | None = None
    min_capacity: int | None = None
    current_capacity: int | None = None


@dataclass(frozen=True)
class Activity:
    """A scaling activity as DescribeScalingActivities reports it. A "not scaled" record has
    `not_scaled_reasons` and is listed only with IncludeNotScaledActivities=true."""

    activity_id: str
    key: TargetKey
    description: str
    cause: str
    start_time: float
    status_code: ActivityStatus
    desired: int | None = None  # the capacity this activity sets; None for not-scaled records
    end_time: float | None = None
    status_message: str | None = None
    details: str | None = None
    not_scaled_reasons: tuple[NotScaledReason, ...] = ()
    policy_arn: str | None = None  # which policy started it (cooldowns start on completion)

    @property
    def scaled(self) -> bool:
        return not self.not_scaled_reasons


def capacity_noun(dimension: str) -> str:
    """The words SageMaker activities use for the dimension: 'instance count' for variants
    (observed); 'provisioned concurrency' by analogy (UNCONFIRMED wording)."""
    if dimension == DIM_PROVISIONED_CONCURRENCY:
        return "provisioned concurrency"
    if dimension == "sagemaker:inference-component:DesiredCopyCount":
        return "copy count"
    return "instance count"


@dataclass(frozen=True)
class DeregisterPlan:
    """What DeregisterScalableTarget deletes along with the target."""

    policy_arns: tuple[str, ...]
    scheduled_action_names: tuple[str, ...]
    alarm_names: tuple[str, ...]


@dataclass(frozen=True)
class DeletePolicyPlan:
    """DeleteScalingPolicy: a target-tracking policy takes its alarms with it; a step policy
    leaves the user's alarm and only its ARN is removed from that alarm's actions."""

    alarm_names: tuple[str, ...]
    detach_action_arn: str | None


def deregister_plan(
    target: ScalableTarget,
    policies: tuple[ScalingPolicy, ...] | list[ScalingPolicy],
    actions: tuple[ScheduledAction, ...] | list[ScheduledAction],
) -> DeregisterPlan:
    """Everything that belongs to `target` among `policies` and `actions` (others ignored)."""
    mine = [p for p in policies if p.key == target.key]
    return DeregisterPlan(
        policy_arns=tuple(p.arn for p in mine),
        scheduled_action_names=tuple(a.name for a in actions if a.key == target.key),
        alarm_names=tuple(a.name for p in mine for a in p.alarms),
    )


def delete_policy_plan(policy: ScalingPolicy) -> DeletePolicyPlan:
    if policy.policy_type == TARGET_TRACKING:
        return DeletePolicyPlan(tuple(a.name for a in policy.alarms), None)
    if policy.policy_type == PREDICTIVE_SCALING:  # no alarms: the forecast drives it
        return DeletePolicyPlan((), None)
    return DeletePolicyPlan((), policy.arn)
