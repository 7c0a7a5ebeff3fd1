"""The stored form of autoscaling's typed values: frozen dataclasses ⇄ JSON text.

A dataclass is written as an object tagged with its class name (`"_t"`), tuples as arrays
(every sequence in these models is a tuple), everything else as JSON scalars. Only the
classes listed here can be read back: a row can never name an arbitrary class.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from tideserve.scaling.alarms import AlarmState, MetricAlarm
from tideserve.scaling.engine import InFlight, PolicyCooldown, TargetState
from tideserve.scaling.model import (
    Activity,
    AlarmRef,
    CustomizedMetric,
    NotScaledReason,
    PredefinedMetric,
    ScalableTarget,
    ScalingPolicy,
    ScheduledAction,
    StepAdjustment,
    StepScalingConfig,
    SuspendedState,
    TargetKey,
    TargetTrackingConfig,
)
from tideserve.scaling.predictive_model import (
    ExpressionQuery,
    Forecast,
    MetricStatQuery,
    PredictiveConfig,
    PredictiveMetricSpec,
)
from tideserve.scaling.world import AlarmRecord, TargetRecord

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Activity, AlarmRecord, AlarmRef, AlarmState, CustomizedMetric, InFlight, MetricAlarm,
        NotScaledReason, PolicyCooldown, PredefinedMetric, ScalableTarget, ScalingPolicy,
        ScheduledAction, StepAdjustment, StepScalingConfig, SuspendedState, TargetKey,
        TargetRecord, TargetState, TargetTrackingConfig, ExpressionQuery, Forecast,
        MetricStatQuery, PredictiveConfig, PredictiveMetricSpec,
    )
}  # fmt: skip
T = TypeVar("T")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        out = {"_t": type(value).__name__}
        out.update({f.name: _plain(getattr(value, f.name)) for f in fields(value)})
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _typed(data: Any) -> Any:
    if isinstance(data, dict):
        cls = _CLASSES[data["_t"]]
        return cls(**{k: _typed(v) for k, v in data.items() if k != "_t"})
    if isinstance(data, list):
        return tuple(_typed(v) for v in data)
    return data


def dumps(value: Any) -> str:
    return json.dumps(_plain(value), separators=(",", ":"), allow_nan=False)


def loads(text: str, expected: type[T]) -> T:
    value = _typed(json.loads(text))
    if not isinstance(value, expected):
        raise TypeError(f"stored value is a {type(value).__name__}, not a {expected.__name__}")
    return value
