"""CloudWatch metric alarms: what PutMetricAlarm stores, the alarm's state, and the
DescribeAlarms view of both (§5.8). Validation lives in `alarm_validate`, evaluation in
`alarm_eval`; `tideserve.scaling.alarms` is the one import for all of it.

Units are AWS's: `period` is the alarm's Period in seconds as the user gave it (60 even when the
server compresses time; `alarm_eval.evaluate` takes the compressed period separately).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
ALARM_STATES: tuple[AlarmStateValue, ...] = ("OK", "ALARM", "INSUFFICIENT_DATA")

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISON_OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
# Anomaly-detection band operators need ThresholdMetricId, which tideserve does not model.
BAND_OPERATORS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
TREAT_MISSING_DATA = ("missing", "ignore", "breaching", "notBreaching")
LOW_SAMPLE_COUNT_CHOICES = ("evaluate", "ignore")

# Application Auto Scaling and EC2 Auto Scaling policy ARNs share this shape, e.g.
# arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:<uuid>:resource/sagemaker/...
_AUTOSCALING_ARN = re.compile(r"^arn:aws[a-z-]*:autoscaling:[^:]*:[^:]*:scalingPolicy:")


@dataclass(frozen=True)
class MetricAlarm:
    """What PutMetricAlarm stored (AWS units: seconds)."""

    name: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted by name
    statistic: str | None  # SampleCount|Average|Sum|Minimum|Maximum
    extended_statistic: str | None  # e.g. "p99"
    period: int  # seconds (AWS's value, e.g. 60)
    evaluation_periods: int  # N
    datapoints_to_alarm: int  # M; defaults to evaluation_periods
    threshold: float
    comparison_operator: str
    treat_missing_data: str = "missing"
    evaluate_low_sample_count_percentile: str = "evaluate"
    actions_enabled: bool = True
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    unit: str | None = None
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()  # PutMetricAlarm Tags, in the order given
    configuration_updated_at: float | None = None  # epoch s of the last PutMetricAlarm

    def actions_for(self, state: AlarmStateValue) -> tuple[str, ...]:
        """The action list a transition into `state` runs."""
        if state == "ALARM":
            return self.alarm_actions
        if state == "OK":
            return self.ok_actions
        return self.insufficient_data_actions


@dataclass(frozen=True)
class AlarmState:
    value: AlarmStateValue
    reason: str
    reason_data: str  # JSON text, as StateReasonData ("" when there is none)
    updated_at: float  # epoch s of the last state change


@dataclass(frozen=True)
class AlarmEvaluation:
    state: AlarmState  # the new state (the same values as before when unchanged)
    transitioned: bool
    # Actions to execute now: on a transition, the new state's action list; and while in ALARM,
    # Auto Scaling policy ARNs again on every evaluation (§5.8). Empty when actions are disabled.
    actions: tuple[str, ...]
    # (period start, value or None = missing/filled), oldest first: the points the decision used.
    evaluated: tuple[tuple[float, float | None], ...]
    # The most recent real datapoint in the evaluation range: step scaling uses
    # value - threshold, target tracking uses it as the metric value. None when the range is empty.
    latest_value: float | None


def new_alarm_state(now: float) -> AlarmState:
    """The state PutMetricAlarm gives a new alarm."""
    return AlarmState("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", "", now)


def alarm_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def is_autoscaling_action(arn: str) -> bool:
    """Auto Scaling policy actions run on every evaluation while in ALARM, not only on the
    transition ("Except for Auto Scaling actions, the actions happen only on state transitions")."""
    return _AUTOSCALING_ARN.match(arn) is not None


def actions_to_run(
    alarm: MetricAlarm, before: AlarmStateValue, after: AlarmStateValue
) -> tuple[str, ...]:
    """On a change, the new state's whole list; staying in ALARM, only the Auto Scaling ones."""
    if not alarm.actions_enabled:
        return ()
    if before != after:
        return alarm.actions_for(after)
    if after == "ALARM":
        return tuple(a for a in alarm.alarm_actions if is_autoscaling_action(a))
    return ()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def describe(alarm: MetricAlarm, state: AlarmState, region: str, account: str) -> dict[str, Any]:
    """The DescribeAlarms `MetricAlarms[]` entry (botocore cloudwatch `MetricAlarm` members)."""
    out: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm_arn(region, account, alarm.name),
    }
    if alarm.description:
        out["AlarmDescription"] = alarm.description
    if alarm.configuration_updated_at is not None:
        out["AlarmConfigurationUpdatedTimestamp"] = _utc(alarm.configuration_updated_at)
    out.update(
        ActionsEnabled=alarm.actions_enabled,
        OKActions=list(alarm.ok_actions),
        AlarmActions=list(alarm.alarm_actions),
        InsufficientDataActions=list(alarm.insufficient_data_actions),
        StateValue=state.value,
        StateReason=state.reason,
    )
    if state.reason_data:
        out["StateReasonData"] = state.reason_data
    out.update(
        StateUpdatedTimestamp=_utc(state.updated_at),
        MetricName=alarm.metric_name,
        Namespace=alarm.namespace,
    )
    if alarm.statistic is not None:
        out["Statistic"] = alarm.statistic
    if alarm.extended_statistic is not None:
        out["ExtendedStatistic"] = alarm.extended_statistic
        out["EvaluateLowSampleCountPercentile"] = alarm.evaluate_low_sample_count_percentile
    out["Dimensions"] = [{"Name": n, "Value": v} for n, v in alarm.dimensions]
    out["Period"] = alarm.period
    if alarm.unit is not None:
        out["Unit"] = alarm.unit
    out.update(
        EvaluationPeriods=alarm.evaluation_periods,
        DatapointsToAlarm=alarm.datapoints_to_alarm,
        Threshold=float(alarm.threshold),
        ComparisonOperator=alarm.comparison_operator,
        TreatMissingData=alarm.treat_missing_data,
        StateTransitionedTimestamp=_utc(state.updated_at),
    )
    return out
