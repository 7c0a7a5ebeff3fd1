"""PutMetricAlarm input → MetricAlarm, validated once (§5.8).

`params` uses botocore's member names (AlarmName, Period, Dimensions=[{Name, Value}], ...).
Every error is a `ValidationError` whose `code` is CloudWatch's: MissingParameter for an absent
required member, InvalidParameterValue for one bad member, InvalidParameterCombination for
members that contradict each other. The message names the field, the value and what is allowed.

tideserve stores single-metric, static-threshold alarms. Metric math (`Metrics`), anomaly
bands (`ThresholdMetricId`), Metrics Insights / PromQL (`EvaluationCriteria`) and the newer
evaluation options are refused with a clear message rather than silently ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from tideserve.errors import ValidationError
from tideserve.scaling.alarm_model import (
    BAND_OPERATORS,
    COMPARISON_OPERATORS,
    LOW_SAMPLE_COUNT_CHOICES,
    STATISTICS,
    TREAT_MISSING_DATA,
    MetricAlarm,
)

STANDARD_UNITS = (
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
)  # fmt: skip
MAX_ACTIONS = 5
MAX_DIMENSIONS = 30
MAX_TAGS = 50
HIGH_RESOLUTION_PERIODS = (10, 20, 30)
MAX_WINDOW_S = 604_800  # Period × EvaluationPeriods, 7 days
MAX_WINDOW_SHORT_PERIOD_S = 86_400  # ... and 1 day when Period < 3600 s

_UNSUPPORTED = (
    "Metrics",
    "ThresholdMetricId",
    "EvaluationCriteria",
    "EvaluationWindow",
    "WarmUpConfiguration",
    "EvaluationInterval",
    "ActionConfiguration",
)

# ExtendedStatistic forms PutMetricAlarm documents: p90, tm90, tc90, ts90, wm90, IQM, PR(n:m),
# and TC/TM/TS/WM(X%:X%) with 10 ≤ X ≤ 90.
_NUM = r"\d+(?:\.\d+)?"
_SHORT_STAT = re.compile(rf"^(p|tm|tc|ts|wm)({_NUM})$")
_RANGE_STAT = re.compile(rf"^(TC|TM|TS|WM)\(({_NUM})%:({_NUM})%\)$")
_RANK_STAT = re.compile(r"^PR\(([^:()]*):([^:()]*)\)$")


def _invalid(field: str, value: object, allowed: str) -> ValidationError:
    return ValidationError(
        f"Invalid value {value!r} for parameter {field}: {allowed}.", code="InvalidParameterValue"
    )


def _combination(message: str) -> ValidationError:
    return ValidationError(message, code="InvalidParameterCombination")


def _missing(field: str) -> ValidationError:
    return ValidationError(f"The parameter {field} is required.", code="MissingParameter")


def _text(params: Mapping[str, Any], field: str, lo: int, hi: int, *, required: bool) -> str | None:
    value = params.get(field)
    if value is None:
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, str) or not lo <= len(value) <= hi:
        raise _invalid(field, value, f"must be a string of {lo} to {hi} characters")
    return value


def _int(params: Mapping[str, Any], field: str, *, minimum: int = 1) -> int | None:
    value = params.get(field)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)  # the query protocol carries numbers as text
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _invalid(field, value, f"must be an integer of at least {minimum}")
    return value


def _float(params: Mapping[str, Any], field: str) -> float | None:
    value = params.get(field)
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise _invalid(field, value, "must be a finite number")
    return number


def _bool(params: Mapping[str, Any], field: str, default: bool) -> bool:
    value = params.get(field)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise _invalid(field, value, "must be true or false")
    return value


def _choice(params: Mapping[str, Any], field: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(field)
    if value is not None and value not in choices:
        raise _invalid(field, value, "must be one of " + ", ".join(choices))
    return value


def _actions(params: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = params.get(field) or []
    if not isinstance(value, list | tuple):
        raise _invalid(field, value, "must be a list of ARNs")
    if len(value) > MAX_ACTIONS:
        raise _invalid(field, len(value), f"at most {MAX_ACTIONS} actions are allowed")
    for arn in value:
        if not isinstance(arn, str) or not arn.startswith("arn:") or len(arn) > 1024:
            raise _invalid(field, arn, "each action must be an ARN of at most 1024 characters")
    return tuple(dict.fromkeys(value))  # AWS keeps one of each


def _dimensions(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = params.get("Dimensions") or []
    if not isinstance(value, list | tuple) or len(value) > MAX_DIMENSIONS:
        raise _invalid("Dimensions", value, f"must be a list of at most {MAX_DIMENSIONS}")
    pairs: dict[str, str] = {}
    for item in value:
        name = _text(item, "Name", 1, 255, required=True) if isinstance(item, Mapping) else None
        val = _text(item, "Value", 1, 1024, required=True) if isinstance(item, Mapping) else None
        if name is None or val is None:
            raise _invalid("Dimensions", item, "each dimension needs a Name and a Value")
        if name in pairs:
            raise _invalid("Dimensions", name, "each dimension name may appear once")
        pairs[name] = val
    return tuple(sorted(pairs.items()))


def _tags(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = params.get("Tags") or []
    if not isinstance(value, list | tuple) or len(value) > MAX_TAGS:
        raise _invalid("Tags", value, f"must be a list of at most {MAX_TAGS} tags")
    tags: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise _invalid("Tags", item, "each tag needs a Key and a Value")
        key = _text(item, "Key", 1, 128, required=True)
        val = _text(item, "Value", 0, 256, required=True)
        assert key is not None and val is not None  # required=True
        tags.append((key, val))
    return tuple(tags)


def _check_extended_statistic(value: str) -> None:
    short = _SHORT_STAT.match(value)
    if short and 0.0 <= float(short.group(2)) <= 100.0:
        return
    ranged = _RANGE_STAT.match(value)
    if ranged and all(10.0 <= float(g) <= 90.0 for g in ranged.group(2, 3)):
        return
    if value == "IQM" or _RANK_STAT.match(value):
        return
    raise _invalid(
        "ExtendedStatistic",
        value,
        "must be p0.0-p100, tmNN, tcNN, tsNN, wmNN, IQM, PR(n:m) or TC/TM/TS/WM(X%:X%) "
        "with X between 10 and 90",
    )


def _statistics(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    statistic = _choice(params, "Statistic", STATISTICS)
    extended = _text(params, "ExtendedStatistic", 1, 255, required=False)
    if (statistic is None) == (extended is None):
        raise _combination(
            "Exactly one of Statistic and ExtendedStatistic must be specified "
            f"(got Statistic={statistic!r}, ExtendedStatistic={extended!r})."
        )
    if extended is not None:
        _check_extended_statistic(extended)
    return statistic, extended


def _check_period(period: int, evaluation_periods: int) -> None:
    if period not in HIGH_RESOLUTION_PERIODS and period % 60 != 0:
        raise _invalid("Period", period, "must be 10, 20, 30 or a multiple of 60 seconds")
    window = period * evaluation_periods
    limit = MAX_WINDOW_SHORT_PERIOD_S if period < 3600 else MAX_WINDOW_S
    if window > limit:
        raise _combination(
            f"Period ({period} s) × EvaluationPeriods ({evaluation_periods}) = {window} s exceeds "
            f"{limit} s (one day for periods under an hour, seven days otherwise)."
        )


def _comparison(params: Mapping[str, Any]) -> str:
    operator = params.get("ComparisonOperator")
    if operator is None:
        raise _missing("ComparisonOperator")
    if operator in BAND_OPERATORS:
        raise _combination(
            f"ComparisonOperator {operator} needs ThresholdMetricId (an anomaly detection band), "
            "which tideserve does not support; use a static Threshold."
        )
    result = _choice(params, "ComparisonOperator", COMPARISON_OPERATORS)
    assert result is not None
    return result


def _refuse_unsupported(params: Mapping[str, Any]) -> None:
    for field in _UNSUPPORTED:
        if params.get(field) is not None:
            if field == "Metrics" and params.get("MetricName") is not None:
                raise _combination("Metrics cannot be combined with MetricName.")
            raise _invalid(
                field, "…", "tideserve supports single-metric alarms with a static Threshold only"
            )


def _counts(params: Mapping[str, Any]) -> tuple[int, int, int]:
    """(Period, EvaluationPeriods N, DatapointsToAlarm M), M defaulting to N."""
    period = _int(params, "Period")
    if period is None:
        raise _missing("Period")
    evaluation_periods = _int(params, "EvaluationPeriods")
    if evaluation_periods is None:
        raise _missing("EvaluationPeriods")
    datapoints = _int(params, "DatapointsToAlarm")
    if datapoints is None:
        datapoints = evaluation_periods
    if datapoints > evaluation_periods:
        raise _combination(
            f"DatapointsToAlarm ({datapoints}) must not exceed EvaluationPeriods "
            f"({evaluation_periods})."
        )
    _check_period(period, evaluation_periods)
    return period, evaluation_periods, datapoints


def validate_alarm(params: Mapping[str, Any], *, now: float | None = None) -> MetricAlarm:
    """PutMetricAlarm input → MetricAlarm. `now` (epoch s), when given, becomes the
    configuration-updated time DescribeAlarms reports."""
    name = _text(params, "AlarmName", 1, 255, required=True)
    assert name is not None
    if not name.isascii():
        raise _invalid("AlarmName", name, "alarm names must contain only ASCII characters")
    _refuse_unsupported(params)
    namespace = _text(params, "Namespace", 1, 255, required=True)
    assert namespace is not None
    if namespace.startswith(":"):
        raise _invalid("Namespace", namespace, "must not start with ':'")
    metric_name = _text(params, "MetricName", 1, 255, required=True)
    statistic, extended = _statistics(params)
    period, evaluation_periods, datapoints = _counts(params)
    threshold = _float(params, "Threshold")
    if threshold is None:
        raise _missing("Threshold")
    return MetricAlarm(
        name=name,
        namespace=namespace,
        metric_name=metric_name or "",
        dimensions=_dimensions(params),
        statistic=statistic,
        extended_statistic=extended,
        period=period,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints,
        threshold=threshold,
        comparison_operator=_comparison(params),
        treat_missing_data=_choice(params, "TreatMissingData", TREAT_MISSING_DATA) or "missing",
        evaluate_low_sample_count_percentile=(
            _choice(params, "EvaluateLowSampleCountPercentile", LOW_SAMPLE_COUNT_CHOICES)
            or "evaluate"
        ),
        actions_enabled=_bool(params, "ActionsEnabled", True),
        alarm_actions=_actions(params, "AlarmActions"),
        ok_actions=_actions(params, "OKActions"),
        insufficient_data_actions=_actions(params, "InsufficientDataActions"),
        unit=_choice(params, "Unit", STANDARD_UNITS),
        description=_text(params, "AlarmDescription", 0, 1024, required=False) or "",
        tags=_tags(params),
        configuration_updated_at=now,
    )
