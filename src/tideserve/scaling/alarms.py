"""CloudWatch metric alarms for tideserve: the one import for the model (`MetricAlarm`,
`AlarmState`), evaluation with AWS's missing-data rules,
SetAlarmState and the DescribeAlarms view (§5.8). Everything here is pure: time and data are
arguments. PutMetricAlarm's wire validation is the adapter's (autoscaling.alarm_validate).

    alarm = validate_alarm(put_metric_alarm_params, now=clock.now())   # autoscaling.alarm_validate
    state = new_alarm_state(clock.now())
    result = evaluate(alarm, state, {period_start: value, ...}, clock.now(), period=settings.period)
    for arn in result.actions: ...   # Auto Scaling ARNs come back on every tick while in ALARM
"""

from tideserve.scaling.alarm_eval import (
    EXTRA_PERIODS,
    DatapointQuery,
    Decision,
    breaches,
    datapoint_query,
    decide,
    evaluate,
    evaluation_interval,
    evaluation_range,
    set_alarm_state,
    window,
)
from tideserve.scaling.alarm_model import (
    ALARM_STATES,
    COMPARISON_OPERATORS,
    STATISTICS,
    TREAT_MISSING_DATA,
    AlarmEvaluation,
    AlarmState,
    AlarmStateValue,
    MetricAlarm,
    actions_to_run,
    alarm_arn,
    describe,
    is_autoscaling_action,
    new_alarm_state,
)

__all__ = [
    "ALARM_STATES",
    "COMPARISON_OPERATORS",
    "EXTRA_PERIODS",
    "STATISTICS",
    "TREAT_MISSING_DATA",
    "AlarmEvaluation",
    "AlarmState",
    "AlarmStateValue",
    "DatapointQuery",
    "Decision",
    "MetricAlarm",
    "actions_to_run",
    "alarm_arn",
    "breaches",
    "datapoint_query",
    "decide",
    "describe",
    "evaluate",
    "evaluation_interval",
    "evaluation_range",
    "is_autoscaling_action",
    "new_alarm_state",
    "set_alarm_state",
    "window",
]
