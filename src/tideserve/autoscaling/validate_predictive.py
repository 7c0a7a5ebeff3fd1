"""PredictiveScalingPolicyConfiguration (botocore's shape) into a typed PredictiveConfig.

Accepted as on AWS: one MetricSpecification with TargetValue and either a predefined metric
pair, or a load and a scaling metric (each predefined or customized), plus an optional
customized capacity metric; customized metrics are MetricDataQueries of which exactly one
returns data. AWS defines predefined types for ECS only; tideserve names its SageMaker ones
after the target-tracking metric:

    pair     SageMakerVariantInvocationsPerInstance   load: Invocations (Sum) of the variant,
                                                      scaling: InvocationsPerInstance
    load     SageMakerVariantTotalInvocations         Invocations (Sum) of the variant
    scaling  SageMakerVariantInvocationsPerInstance   InvocationsPerInstance (Average)

TargetValue is the scaling metric per unit of capacity per minute (instances, or provisioned
concurrency for a serverless variant): InvocationsPerInstance as target tracking reads it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tideserve.autoscaling.fields import Request, constraint, enum_value
from tideserve.errors import ValidationError
from tideserve.scaling.model import TargetKey
from tideserve.scaling.predictive_model import (
    DEFAULT_BUFFER_TIME,
    FORECAST_AND_SCALE,
    FORECAST_ONLY,
    HONOR_MAX,
    INCREASE_MAX,
    ExpressionQuery,
    MetricQuery,
    MetricStatQuery,
    PredictiveConfig,
    PredictiveMetricSpec,
)

_P = "predictiveScalingPolicyConfiguration"
PAIR_TYPES = ("SageMakerVariantInvocationsPerInstance",)
LOAD_TYPES = ("SageMakerVariantTotalInvocations",)
SCALING_TYPES = ("SageMakerVariantInvocationsPerInstance",)
MAX_BUFFER_TIME = 3600
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def predictive_config(raw: Request, key: TargetKey) -> PredictiveConfig:
    specs = raw.get("MetricSpecifications")
    if not specs:
        raise constraint(None, f"{_P}.metricSpecifications", "Member must not be null")
    if not isinstance(specs, list) or len(specs) != 1:
        raise constraint(specs, f"{_P}.metricSpecifications",
                         "Member must have length less than or equal to 1")
    mode = enum_value(raw.get("Mode", FORECAST_ONLY), (FORECAST_ONLY, FORECAST_AND_SCALE),
                      f"{_P}.mode")
    buffer_time = _int(raw, "SchedulingBufferTime", DEFAULT_BUFFER_TIME, 0, MAX_BUFFER_TIME)
    breach = enum_value(raw.get("MaxCapacityBreachBehavior", HONOR_MAX),
                        (HONOR_MAX, INCREASE_MAX), f"{_P}.maxCapacityBreachBehavior")
    max_buffer = _int(raw, "MaxCapacityBuffer", None, 0, 100)
    if max_buffer is not None and breach != INCREASE_MAX:
        raise ValidationError("MaxCapacityBuffer is only valid when MaxCapacityBreachBehavior "
                              "is IncreaseMaxCapacity")
    assert buffer_time is not None  # it has a default
    return PredictiveConfig((_spec(specs[0], key),), mode, buffer_time, breach, max_buffer)


def _int(raw: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    value = raw.get(name, default)
    path = f"{_P}.{name[:1].lower()}{name[1:]}"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise constraint(value, path, "Member must be an integer")
    if value > high:
        raise constraint(value, path, f"Member must have value less than or equal to {high}")
    if value < low:
        raise constraint(value, path, f"Member must have value greater than or equal to {low}")
    return value


def _spec(raw: Any, key: TargetKey) -> PredictiveMetricSpec:
    where = f"{_P}.metricSpecifications.1"
    if not isinstance(raw, dict):
        raise constraint(raw, where, "Member must be a structure")
    target = raw.get("TargetValue")
    if target is None:
        raise constraint(None, f"{where}.targetValue", "Member must not be null")
    if isinstance(target, bool) or not isinstance(target, int | float) or not target > 0:
        raise ValidationError(f"TargetValue ({target}) must be a number greater than 0")
    pair = raw.get("PredefinedMetricPairSpecification")
    load_pre, load_custom = (raw.get("PredefinedLoadMetricSpecification"),
                             raw.get("CustomizedLoadMetricSpecification"))
    scaling_pre, scaling_custom = (raw.get("PredefinedScalingMetricSpecification"),
                                   raw.get("CustomizedScalingMetricSpecification"))
    singles = [load_pre, load_custom, scaling_pre, scaling_custom]
    has_load = bool(load_pre) + bool(load_custom)
    has_scaling = bool(scaling_pre) + bool(scaling_custom)
    if pair and any(singles) or not pair and (has_load != 1 or has_scaling != 1):
        raise ValidationError(
            "Specify either a PredefinedMetricPairSpecification, or exactly one load metric "
            "(PredefinedLoadMetricSpecification or CustomizedLoadMetricSpecification) and "
            "exactly one scaling metric (PredefinedScalingMetricSpecification or "
            "CustomizedScalingMetricSpecification)")
    if pair:
        _predefined(pair, PAIR_TYPES, f"{where}.predefinedMetricPairSpecification")
        load = _variant_invocations(key)
    elif load_pre:
        _predefined(load_pre, LOAD_TYPES, f"{where}.predefinedLoadMetricSpecification")
        load = _variant_invocations(key)
    else:
        load = _queries(load_custom, f"{where}.customizedLoadMetricSpecification")
    if scaling_pre:
        _predefined(scaling_pre, SCALING_TYPES, f"{where}.predefinedScalingMetricSpecification")
    if scaling_custom:
        _queries(scaling_custom, f"{where}.customizedScalingMetricSpecification")
    capacity = raw.get("CustomizedCapacityMetricSpecification")
    if capacity:
        _queries(capacity, f"{where}.customizedCapacityMetricSpecification")
    return PredictiveMetricSpec(float(target), load, json.dumps(raw, sort_keys=True))


def _predefined(raw: Any, allowed: tuple[str, ...], where: str) -> None:
    kind = raw.get("PredefinedMetricType") if isinstance(raw, dict) else None
    enum_value(kind, allowed, f"{where}.predefinedMetricType")


def _variant_invocations(key: TargetKey) -> tuple[MetricQuery, ...]:
    dims = (("EndpointName", key.endpoint_name), ("VariantName", key.variant_name))
    return (MetricStatQuery("load", "AWS/SageMaker", "Invocations", "Sum", dims),)


def _queries(raw: Any, where: str) -> tuple[MetricQuery, ...]:
    queries = raw.get("MetricDataQueries") if isinstance(raw, dict) else None
    if not queries or not isinstance(queries, list):
        raise constraint(None, f"{where}.metricDataQueries", "Member must not be null")
    out = tuple(_query(q, f"{where}.metricDataQueries.{i + 1}") for i, q in enumerate(queries))
    returning = [q for q in out if q.return_data]
    if len(returning) != 1:
        raise ValidationError(
            f"Exactly one MetricDataQuery must return data (ReturnData true) in {where}; "
            f"{len(returning)} do")
    ids = [q.id for q in out]
    if len(set(ids)) != len(ids):
        raise ValidationError(f"MetricDataQuery ids must be unique in {where}")
    return out


def _query(raw: Any, where: str) -> MetricQuery:
    if not isinstance(raw, dict):
        raise constraint(raw, where, "Member must be a structure")
    qid = raw.get("Id")
    if not isinstance(qid, str) or not 1 <= len(qid) <= 255 or not _ID.match(qid):
        raise ValidationError(f"Invalid Id {qid!r} at {where}.id: an Id starts with a "
                              "lowercase letter and has letters, digits and underscores")
    expression, stat = raw.get("Expression"), raw.get("MetricStat")
    if bool(expression) == bool(stat):
        raise ValidationError(f"Exactly one of Expression and MetricStat must be specified "
                              f"in {where}")
    returns = raw.get("ReturnData", True)
    label = raw.get("Label")
    if expression:
        if not isinstance(expression, str) or len(expression) > 2048:
            raise constraint(expression, f"{where}.expression",
                             "Member must have length less than or equal to 2048")
        return ExpressionQuery(qid, expression, bool(returns), label)
    metric = stat.get("Metric") if isinstance(stat, dict) else None
    statistic = stat.get("Stat") if isinstance(stat, dict) else None
    if not isinstance(metric, dict) or not metric.get("MetricName") or not metric.get(
            "Namespace"):
        raise constraint(None, f"{where}.metricStat.metric", "Member must not be null")
    if not isinstance(statistic, str) or not statistic:
        raise constraint(None, f"{where}.metricStat.stat", "Member must not be null")
    dims = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions") or [])
    assert isinstance(stat, dict)
    return MetricStatQuery(qid, metric["Namespace"], metric["MetricName"], statistic, dims,
                           stat.get("Unit"), bool(returns), label)
