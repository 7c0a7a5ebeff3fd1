"""Target tracking: the managed alarms a policy owns and the capacity it proposes.

The alarms reproduce AWS's shape (spec §1.3.2): AlarmHigh is 3 of 3 periods above the target,
AlarmLow 15 of 15 periods below 90 % of it, both `TreatMissingData=missing`, actions
`<PolicyARN>:createdBy/<uuid>`. Alarm periods are AWS's (60 s; 10 s for the high-resolution
metrics): a live server that compresses time passes `period=alarm.period * time_scale` to
`alarms.evaluate`, so what DescribeAlarms shows stays what AWS would show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tideserve.scaling.alarms import MetricAlarm
from tideserve.scaling.model import (
    CustomizedMetric,
    PredefinedMetric,
    ScalingPolicy,
    TargetTrackingConfig,
)

HIGH_EVALUATION_PERIODS = 3
LOW_EVALUATION_PERIODS = 15


@dataclass(frozen=True)
class MetricSource:
    """What a predefined metric type watches in CloudWatch."""

    namespace: str
    metric_name: str
    statistic: str
    high_period: int  # seconds, AlarmHigh
    per: str  # "variant" (EndpointName, VariantName) | "component" (InferenceComponentName)


# Statistic and periods for the high-resolution and provisioned-concurrency types are
# UNCONFIRMED (spec §1.3.1): Average over 10 s for AlarmHigh; AlarmLow stays at 60 s because
# AWS says scale-in "proceeds at the same speed as standard metrics".
PREDEFINED_METRICS: dict[str, MetricSource] = {
    "SageMakerVariantInvocationsPerInstance": MetricSource(
        "AWS/SageMaker", "InvocationsPerInstance", "Sum", 60, "variant"
    ),
    "SageMakerVariantProvisionedConcurrencyUtilization": MetricSource(
        "AWS/SageMaker", "ServerlessProvisionedConcurrencyUtilization", "Average", 60, "variant"
    ),
    "SageMakerVariantConcurrentRequestsPerModelHighResolution": MetricSource(
        "AWS/SageMaker", "ConcurrentRequestsPerModel", "Average", 10, "variant"
    ),
    "SageMakerInferenceComponentInvocationsPerCopy": MetricSource(
        "AWS/SageMaker", "InvocationsPerCopy", "Sum", 60, "component"
    ),
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution": MetricSource(
        "AWS/SageMaker", "ConcurrentRequestsPerCopy", "Average", 10, "component"
    ),
}

LOW_PERIOD = 60


def low_threshold(target_value: float) -> float:
    """90 % of the target; written as T*9/10 so that T=70 gives exactly 63.0 (0.9*70 does not)."""
    return target_value * 9 / 10


def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def alarm_name(resource_id: str, kind: str, uuid: str) -> str:
    """`TargetTracking-endpoint/<ep>/variant/<v>-AlarmHigh-<uuid>`."""
    return f"TargetTracking-{resource_id}-Alarm{'High' if kind == 'high' else 'Low'}-{uuid}"


def _metric_fields(
    config: TargetTrackingConfig, resource_id: str
) -> tuple[str, str, tuple[tuple[str, str], ...], str, str | None, int]:
    """(namespace, metric name, dimensions, statistic, unit, AlarmHigh period)."""
    metric = config.metric
    if isinstance(metric, CustomizedMetric):
        dims = tuple(sorted(metric.dimensions))
        return metric.namespace, metric.metric_name, dims, metric.statistic, metric.unit, 60
    assert isinstance(metric, PredefinedMetric)
    source = PREDEFINED_METRICS[metric.metric_type]
    parts = resource_id.split("/")
    if source.per == "component":
        dims = (("InferenceComponentName", parts[1]),)
    else:
        dims = (("EndpointName", parts[1]), ("VariantName", parts[3]))
    return source.namespace, source.metric_name, dims, source.statistic, None, source.high_period


def target_tracking_alarms(policy: ScalingPolicy) -> tuple[MetricAlarm, ...]:
    """The alarms to create for `policy` (AlarmHigh, then AlarmLow unless DisableScaleIn —
    with scale-in disabled there is nothing for AlarmLow to do; UNCONFIRMED but it is what
    other emulators do). Their names come from `policy.alarms`."""
    config = policy.tracking
    assert config is not None, "target_tracking_alarms needs a target-tracking policy"
    namespace, metric, dims, statistic, unit, high_period = _metric_fields(
        config, policy.key.resource_id
    )
    description = (
        f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy.action_arn}."
    )
    alarms = []
    for ref in policy.alarms:
        high = ref.kind == "high"
        periods = HIGH_EVALUATION_PERIODS if high else LOW_EVALUATION_PERIODS
        alarms.append(
            MetricAlarm(
                name=ref.name,
                namespace=namespace,
                metric_name=metric,
                dimensions=dims,
                statistic=statistic,
                extended_statistic=None,
                period=high_period if high else LOW_PERIOD,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                threshold=config.target_value if high else low_threshold(config.target_value),
                comparison_operator="GreaterThanThreshold" if high else "LessThanThreshold",
                treat_missing_data="missing",
                alarm_actions=(policy.action_arn,),
                unit=unit,
                description=description,
            )
        )
    return tuple(alarms)


def tracking_proposal(
    config: TargetTrackingConfig, capacity: int, metric: float, scale_out: bool
) -> int:
    """The capacity that brings `metric` back to the target: ceil(C × M / T).

    One expression for both directions (AWS: "rounding up or down conservatively so as not to
    add too little or remove too much"): C=2, M=175, T=70 → ceil(5.0) = 5 (add 3);
    C=5, M=40, T=70 → ceil(2.857) = 3 (remove 2, i.e. floor(5 − 2.857)). AlarmHigh never
    proposes less than C and AlarmLow never more. From zero capacity the ratio is useless:
    AlarmHigh proposes 1 (UNCONFIRMED; the safest documented-compatible choice)."""
    if capacity == 0:
        return 1 if scale_out and metric > config.target_value else 0
    raw = capacity * metric / config.target_value
    # A hair of tolerance so that 3 × 70 / 70 stays 3 despite binary floating point.
    proposed = math.ceil(raw - 1e-9)
    return max(proposed, capacity) if scale_out else min(proposed, capacity)
