"""Input builders for the scaling tests: every object is made through the same public
validate/put functions the API uses, with deterministic ids."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from tideserve.autoscaling.validate import (
    put_policy,
    register_target,
    validate_put_scaling_policy,
    validate_register,
)
from tideserve.scaling.alarms import AlarmEvaluation, AlarmState, MetricAlarm
from tideserve.scaling.engine import (
    Decision,
    Firing,
    TargetContext,
    TargetState,
    complete_activity,
    execute_policies,
)
from tideserve.scaling.model import (
    DIM_INSTANCES,
    Activity,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
)
from tideserve.scaling.target_tracking import target_tracking_alarms

REGION, ACCOUNT = "us-east-1", "123456789012"
RESOURCE = "endpoint/ep/variant/AllTraffic"
T0 = 1_700_000_000.0
_ids = itertools.count(1)


def new_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


def make_target(min_capacity: int = 1, max_capacity: int = 10, dimension: str = DIM_INSTANCES,
                **suspended: bool) -> ScalableTarget:
    req = validate_register({
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": dimension,
        "MinCapacity": min_capacity, "MaxCapacity": max_capacity,
    })
    target = register_target(None, req, T0, REGION, ACCOUNT)
    return replace(target, suspended=SuspendedState(**suspended)) if suspended else target


def tt_policy(name: str = "tt", target_value: float = 70.0, metric: str | None = None,
              dimension: str = DIM_INSTANCES, **config: Any) -> ScalingPolicy:
    spec: dict[str, Any] = {"TargetValue": target_value, **config}
    if "CustomizedMetricSpecification" not in config:
        spec["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": metric or "SageMakerVariantInvocationsPerInstance"}
    req = validate_put_scaling_policy({
        "PolicyName": name, "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
        "ScalableDimension": dimension, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": spec,
    })
    return put_policy(None, req, T0, REGION, ACCOUNT, new_id)


def step_policy(steps: list[dict[str, Any]], name: str = "step",
                adjustment: str = "ChangeInCapacity", **config: Any) -> ScalingPolicy:
    req = validate_put_scaling_policy({
        "PolicyName": name, "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
        "ScalableDimension": DIM_INSTANCES, "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": adjustment, "StepAdjustments": steps, **config},
    })
    return put_policy(None, req, T0, REGION, ACCOUNT, new_id)


def user_alarm(threshold: float, name: str = "user-alarm", op: str = "GreaterThanThreshold",
               actions: tuple[str, ...] = ()) -> MetricAlarm:
    return MetricAlarm(name=name, namespace="AWS/SageMaker", metric_name="M",
                       dimensions=(), statistic="Average", extended_statistic=None, period=60,
                       evaluation_periods=1, datapoints_to_alarm=1, threshold=threshold,
                       comparison_operator=op, alarm_actions=actions)


def alarm_of(policy: ScalingPolicy, kind: str) -> MetricAlarm:
    ref = policy.alarm("high" if kind == "high" else "low")
    assert ref is not None
    return next(a for a in target_tracking_alarms(policy) if a.name == ref.name)


def evaluation(value: float | None, state: str = "ALARM",
               points: tuple[float, ...] | None = None) -> AlarmEvaluation:
    pts = points if points is not None else (() if value is None else (value,))
    return AlarmEvaluation(
        state=AlarmState(state, "test", "", T0),  # type: ignore[arg-type]
        transitioned=False,
        actions=(),
        evaluated=tuple((T0 + 60 * i, v) for i, v in enumerate(pts)),
        latest_value=value,
    )


def fire(policy: ScalingPolicy, value: float, kind: str = "high",
         alarm: MetricAlarm | None = None, points: tuple[float, ...] | None = None) -> Firing:
    return Firing(policy, alarm or alarm_of(policy, kind), evaluation(value, points=points))


@dataclass
class Endpoint:
    """A toy stand-in for the driver: it applies decisions at once and reports each activity
    finished `provision` seconds later (SageMaker brings instances InService)."""

    state: TargetState
    capacity: int
    provision: float = 0.0
    activities: list[Activity] = field(default_factory=list)
    pending: list[tuple[float, Activity]] = field(default_factory=list)

    def advance(self, now: float) -> None:
        for due, act in list(self.pending):
            if due <= now:
                self.pending.remove((due, act))
                self.state, done = complete_activity(self.state, act, due)
                self._store(done)

    def apply(self, decision: Decision, now: float) -> Decision:
        self.state = decision.state
        for old in decision.overridden:
            self.pending = [(d, a) for d, a in self.pending if a.activity_id != old]
        if decision.activity is not None:
            self._store(decision.activity)
            if decision.desired is not None:
                self.capacity = decision.desired
                self.pending.append((now + self.provision, decision.activity))
        self.advance(now)
        return decision

    def tick(self, now: float, *firings: Firing, ctx: TargetContext | None = None) -> Decision:
        self.advance(now)
        context = ctx or TargetContext(self.capacity)
        context = replace(context, current_capacity=self.capacity)
        return self.apply(execute_policies(self.state, firings, context, now), now)

    def _store(self, act: Activity) -> None:
        self.activities = [a for a in self.activities if a.activity_id != act.activity_id]
        self.activities.append(act)
