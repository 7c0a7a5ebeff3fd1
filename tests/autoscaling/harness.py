"""Test stand-ins for the world outside autoscaling: an endpoint that converges to what it is
asked for after a provisioning delay (the CapacityPort, implemented as plain code), metric
values per period, and a harness that runs the pure tick the way the driver does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.autoscaling.validate import (
    put_policy,
    register_target,
    validate_put_scaling_policy,
    validate_register,
)
from tideserve.autoscaling.validate_schedule import (
    put_scheduled_action,
    validate_put_scheduled_action,
)
from tideserve.errors import ConflictError
from tideserve.scaling.alarms import MetricAlarm, new_alarm_state
from tideserve.scaling.drive import drive_once
from tideserve.scaling.engine import TargetState
from tideserve.scaling.model import Activity, ScalingPolicy
from tideserve.scaling.ports import IN_SERVICE, Capacity
from tideserve.scaling.target_tracking import target_tracking_alarms
from tideserve.scaling.world import (
    AlarmRecord,
    Applied,
    Observation,
    SetCapacity,
    TargetRecord,
    TickConfig,
    TickResult,
    World,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
RESOURCE = "endpoint/ep/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
T0 = 1_700_000_040.0  # a minute boundary (1_700_000_040 = 28_333_334 × 60)
IDS = ("ServiceNamespace", "ResourceId", "ScalableDimension")


def target_params(resource: str = RESOURCE) -> dict[str, str]:
    return {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIM}


class FakeEndpoint:
    """One SageMaker variant: set_desired_capacity makes it Updating; `provision` seconds
    later every asked-for instance serves and it is InService again."""

    def __init__(self, instances: int, provision: float = 120.0) -> None:
        self.desired = self.current = instances
        self.status = IN_SERVICE
        self.provision = provision
        self.ready_at: float | None = None
        self.exists = True
        self.requests: list[int] = []

    def capacity(self, resource_id: str) -> Capacity | None:
        return Capacity(self.desired, self.current, self.status) if self.exists else None

    def set_desired_capacity(self, resource_id: str, n: int, now: float = 0.0) -> None:
        if self.status != IN_SERVICE:
            raise ConflictError(f'Cannot update in-progress endpoint "{resource_id}".')
        self.requests.append(n)
        self.desired, self.status = n, "Updating"
        self.ready_at = now + self.provision

    def advance(self, now: float) -> None:
        if self.ready_at is not None and now >= self.ready_at:
            self.current, self.status, self.ready_at = self.desired, IN_SERVICE, None


@dataclass
class Harness:
    """Runs the pure tick every `step` seconds as the driver would: tick, apply each
    SetCapacity to the endpoint, report the outcome."""

    world: World
    endpoint: FakeEndpoint
    config: TickConfig = field(default_factory=TickConfig)
    now: float = T0
    # (namespace, metric name) -> {period start: value}, the alarm's statistic per period
    metrics: dict[tuple[str, str], dict[float, float]] = field(default_factory=dict)
    history: dict[str, Activity] = field(default_factory=dict)
    results: list[TickResult] = field(default_factory=list)

    def datapoints(self, alarm: MetricAlarm, period: float, now: float) -> dict[float, float]:
        return dict(self.metrics.get((alarm.namespace, alarm.metric_name), {}))

    def put(self, metric: str, value: float, periods: int = 1, namespace: str = "AWS/SageMaker",
            period: float = 60.0) -> None:
        """`value` for the next `periods` periods starting at the current one; advances time
        to the end of them, ticking every `period / 6` seconds."""
        series = self.metrics.setdefault((namespace, metric), {})
        for _ in range(periods):
            start = math.floor(self.now / period + 1e-9) * period
            series[start] = value
            self.run_until(start + period)

    def run_until(self, until: float, step: float | None = None) -> None:
        step = step or 10.0 * self.config.time_scale
        start, count = self.now, int((until - self.now) / step + 1e-6)
        for i in range(1, count + 1):
            # Multiplied, not accumulated: a third of a second added 18 times to 1.7e9 drifts.
            self.now = until if i == count and abs(start + i * step - until) < 1e-6 else (
                start + i * step)
            self.tick()

    def tick(self) -> TickResult:
        self.endpoint.advance(self.now)
        result = drive_once(self.world, self._observe, self.now, self._apply, self.config)
        self.world = result.world
        self._keep(result.activities)
        self.results.append(result)
        return result

    def _observe(self, world: World) -> Observation:
        caps = {r.key.resource_id: self.endpoint.capacity(r.key.resource_id)
                for r in world.targets}
        return Observation(self.datapoints, caps)

    def _apply(self, effect: SetCapacity) -> Applied:
        try:
            self.endpoint.set_desired_capacity(effect.key.resource_id, effect.capacity, self.now)
        except ConflictError as exc:
            return Applied(effect, exc.message)
        return Applied(effect)

    def _keep(self, activities: tuple[Activity, ...]) -> None:
        for a in activities:
            self.history[a.activity_id] = a

    def scaled(self) -> list[Activity]:
        """Activities that set a capacity, oldest first."""
        return sorted((a for a in self.history.values() if a.scaled), key=lambda a: a.start_time)

    def not_scaled(self) -> list[Activity]:
        return sorted((a for a in self.history.values() if not a.scaled),
                      key=lambda a: a.start_time)

    def alarm(self, kind: str) -> AlarmRecord:
        return next(r for r in self.world.alarms if f"-Alarm{kind}-" in r.name)


_ids = iter(range(1, 10_000))


def new_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


def world_with(min_capacity: int = 1, max_capacity: int = 10, now: float = T0) -> World:
    req = validate_register({**target_params(), "MinCapacity": min_capacity,
                             "MaxCapacity": max_capacity})
    target = register_target(None, req, now, REGION, ACCOUNT)
    return World(targets=(TargetRecord(TargetState(target), schedule_checked=now),))


def with_policy(world: World, config: dict[str, Any], name: str = "tt",
                now: float = T0) -> tuple[World, ScalingPolicy]:
    kind = ("TargetTrackingScaling" if "TargetValue" in config else "StepScaling")
    member = ("TargetTrackingScalingPolicyConfiguration" if kind == "TargetTrackingScaling"
              else "StepScalingPolicyConfiguration")
    req = validate_put_scaling_policy({**target_params(), "PolicyName": name, "PolicyType": kind,
                                       member: config})
    policy = put_policy(None, req, now, REGION, ACCOUNT, new_id)
    alarms = tuple(AlarmRecord(a, new_alarm_state(now)) for a in target_tracking_alarms(policy)
                   ) if policy.tracking else ()
    return replace(world, policies=world.policies + (policy,),
                   alarms=world.alarms + alarms), policy


def with_alarm(world: World, params: dict[str, Any], now: float = T0) -> World:
    record = AlarmRecord(validate_alarm(params, now=now), new_alarm_state(now))
    return replace(world, alarms=world.alarms + (record,))


def with_schedule(world: World, name: str, schedule: str, now: float = T0,
                  **target_action: int) -> World:
    req = validate_put_scheduled_action({**target_params(), "ScheduledActionName": name,
                                         "Schedule": schedule,
                                         "ScalableTargetAction": target_action})
    action = put_scheduled_action(None, req, now, REGION, ACCOUNT, new_id)
    return replace(world, actions=world.actions + (action,))


INVOCATIONS_70 = {"TargetValue": 70.0, "PredefinedMetricSpecification": {
    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}


class Fleet:
    """Several variants by resource id: the CapacityPort as the API and the driver see it."""

    def __init__(self, clock: Any, **endpoints: FakeEndpoint) -> None:
        self.clock = clock
        self.endpoints = {f"endpoint/{name}/variant/AllTraffic": e for name, e in endpoints.items()}

    def capacity(self, resource_id: str) -> Capacity | None:
        endpoint = self.endpoints.get(resource_id)
        if endpoint is None:
            return None
        endpoint.advance(self.clock.now())
        return endpoint.capacity(resource_id)

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        self.endpoints[resource_id].set_desired_capacity(resource_id, n, self.clock.now())
