"""TargetTrackingScalingPolicyConfiguration → TargetTrackingConfig."""

from __future__ import annotations

from typing import Any

from tideserve.autoscaling.fields import Request, constraint, enum_value, optional_int, optional_str
from tideserve.errors import ValidationError
from tideserve.scaling.model import (
    DEFAULT_TT_COOLDOWN,
    DIM_PROVISIONED_CONCURRENCY,
    CustomizedMetric,
    PredefinedMetric,
    TargetTrackingConfig,
)

_TT = "targetTrackingScalingPolicyConfiguration"
STATISTICS = ("Average", "Minimum", "Maximum", "SampleCount", "Sum")

# botocore 1.44's application-autoscaling MetricType enum (all services), for AWS's own
# wording when a value is not in it; tests check it against botocore.
ALL_METRIC_TYPES = (
    "DynamoDBReadCapacityUtilization",
    "DynamoDBWriteCapacityUtilization",
    "ALBRequestCountPerTarget",
    "RDSReaderAverageCPUUtilization",
    "RDSReaderAverageDatabaseConnections",
    "EC2SpotFleetRequestAverageCPUUtilization",
    "EC2SpotFleetRequestAverageNetworkIn",
    "EC2SpotFleetRequestAverageNetworkOut",
    "SageMakerVariantInvocationsPerInstance",
    "ECSServiceAverageCPUUtilization",
    "ECSServiceAverageMemoryUtilization",
    "AppStreamAverageCapacityUtilization",
    "ComprehendInferenceUtilization",
    "LambdaProvisionedConcurrencyUtilization",
    "CassandraReadCapacityUtilization",
    "CassandraWriteCapacityUtilization",
    "KafkaBrokerStorageUtilization",
    "ElastiCacheEngineCPUUtilization",
    "ElastiCacheDatabaseMemoryUsagePercentage",
    "ElastiCachePrimaryEngineCPUUtilization",
    "ElastiCacheReplicaEngineCPUUtilization",
    "ElastiCacheDatabaseMemoryUsageCountedForEvictPercentage",
    "NeptuneReaderAverageCPUUtilization",
    "SageMakerVariantProvisionedConcurrencyUtilization",
    "ElastiCacheDatabaseCapacityUsageCountedForEvictPercentage",
    "SageMakerInferenceComponentInvocationsPerCopy",
    "WorkSpacesAverageUserSessionsCapacityUtilization",
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
    "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    "ECSServiceAverageCPUUtilizationHighResolution",
    "ECSServiceAverageMemoryUtilizationHighResolution",
)

# Which predefined types make sense for which SageMaker dimension (the variant-level ones of
# botocore's MetricType enum; the inference-component ones need an IC target, which tideserve
# does not register).
METRICS_FOR_DIMENSION = {
    "sagemaker:variant:DesiredInstanceCount": (
        "SageMakerVariantInvocationsPerInstance",
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    ),
    DIM_PROVISIONED_CONCURRENCY: ("SageMakerVariantProvisionedConcurrencyUtilization",),
}


def tracking_config(raw: Request, dimension: str) -> TargetTrackingConfig:
    target = raw.get("TargetValue")
    if target is None:
        raise constraint(None, f"{_TT}.targetValue", "Member must not be null")
    if isinstance(target, bool) or not isinstance(target, int | float) or not target > 0:
        raise ValidationError(
            f"TargetValue ({target}) must be a number greater than 0"
        )
    predefined = raw.get("PredefinedMetricSpecification")
    customized = raw.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(customized):
        raise ValidationError(
            "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification "
            "must be specified"
        )
    metric = (_predefined(predefined, dimension) if predefined
              else _customized(customized))
    cooldowns = [
        optional_int(raw, name, minimum=0, path=f"{_TT}.{name}")
        for name in ("ScaleOutCooldown", "ScaleInCooldown")
    ]
    disable = raw.get("DisableScaleIn", False)
    if not isinstance(disable, bool):
        raise constraint(disable, f"{_TT}.disableScaleIn", "Member must be a boolean")
    return TargetTrackingConfig(
        target_value=float(target),
        metric=metric,
        scale_out_cooldown=DEFAULT_TT_COOLDOWN if cooldowns[0] is None else cooldowns[0],
        scale_in_cooldown=DEFAULT_TT_COOLDOWN if cooldowns[1] is None else cooldowns[1],
        disable_scale_in=disable,
    )


def _predefined(spec: Any, dimension: str) -> PredefinedMetric:
    path = f"{_TT}.predefinedMetricSpecification"
    metric_type = spec.get("PredefinedMetricType")
    allowed = METRICS_FOR_DIMENSION.get(dimension, ())
    enum_value(metric_type, ALL_METRIC_TYPES, f"{path}.predefinedMetricType")
    if metric_type not in allowed:
        raise ValidationError(
            f"Predefined metric type {metric_type} is not supported for scalable dimension "
            f"{dimension}; use one of: {', '.join(allowed)}"
        )
    label = spec.get("ResourceLabel")
    if label is not None:
        raise ValidationError(
            f"ResourceLabel is only valid with predefined metric type ALBRequestCountPerTarget, "
            f"not {metric_type}"
        )
    return PredefinedMetric(metric_type)


def _customized(spec: Any) -> CustomizedMetric:
    path = f"{_TT}.customizedMetricSpecification"
    if spec.get("Metrics"):
        raise ValidationError(
            "CustomizedMetricSpecification.Metrics (metric math) is not supported by tideserve; "
            "give MetricName, Namespace, Dimensions and Statistic instead"
        )
    name = optional_str(spec, "MetricName", f"{path}.MetricName")
    namespace = optional_str(spec, "Namespace", f"{path}.Namespace")
    if name is None or namespace is None:
        raise ValidationError(
            "CustomizedMetricSpecification requires MetricName and Namespace (and Statistic)"
        )
    statistic = enum_value(spec.get("Statistic"), STATISTICS, f"{path}.statistic")
    dims = []
    for d in spec.get("Dimensions") or []:
        if not isinstance(d, dict) or not d.get("Name") or "Value" not in d:
            raise constraint(d, f"{path}.dimensions", "Each dimension needs Name and Value")
        dims.append((str(d["Name"]), str(d["Value"])))
    unit = optional_str(spec, "Unit", f"{path}.Unit")
    return CustomizedMetric(name, namespace, statistic, tuple(sorted(dims)), unit)
