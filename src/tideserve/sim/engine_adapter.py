"""The simulator's doorway to the scaling engine: a policy set's world, built by the live
handlers.

A policy set is applied exactly as a boto3 user applies it to a live endpoint — through
Application Auto Scaling's and CloudWatch's own service layers (`AutoScalingApi`,
`CloudWatchAlarms`), on a throwaway in-memory store (autoscaling.storage: no database) — so
the validation, the target-tracking alarms AAS creates and their names are the live ones. The
world that comes out is then run with the live driver's step, `drive_once` (sim.loop; DESIGN.md
principle 1): if the simulator and the live system decide differently on the same inputs,
that is a bug.

Placeholders in a policy set's parameters, so a YAML can say what a boto3 script computes:
`${EndpointName}`, `${VariantName}`, `${ResourceId}`, and `${policy:NAME}` — the PolicyARN
that PutScalingPolicy returned for NAME (a step policy's alarm names it in AlarmActions).
ServiceNamespace, ResourceId and ScalableDimension may be left out of the AAS calls; they
default to the simulated variant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.autoscaling.aas_api import AutoScalingApi
from tideserve.autoscaling.alarms_api import CloudWatchAlarms
from tideserve.autoscaling.storage import MemoryScalingStore
from tideserve.clock import FakeClock
from tideserve.errors import TideserveError, ValidationError
from tideserve.scaling.model import DIM_INSTANCES, DIM_PROVISIONED_CONCURRENCY
from tideserve.scaling.ports import Capacity
from tideserve.scaling.world import TickConfig, World
from tideserve.settings import Settings
from tideserve.sim.kinds import ASYNC, REALTIME, SERVERLESS, AsyncSpec, ServerlessSpec

DIMENSION = DIM_INSTANCES
_PLACEHOLDER = re.compile(r"\$\{(policy:[^}]+|EndpointName|VariantName|ResourceId)\}")


@dataclass(frozen=True)
class PolicySet:
    """One candidate: the parameters of each boto3 call, in the order they are made, and the
    endpoint kind it serves on (sim.kinds): real-time unless `serverless` or `asynchronous`
    is given. A serverless candidate's calls, if any, scale its provisioned concurrency
    (sagemaker:variant:DesiredProvisionedConcurrency), as on a live serverless variant."""

    name: str
    register_scalable_target: Mapping[str, Any]
    put_scaling_policy: tuple[Mapping[str, Any], ...] = ()
    put_metric_alarm: tuple[Mapping[str, Any], ...] = ()
    put_scheduled_action: tuple[Mapping[str, Any], ...] = ()
    serverless: ServerlessSpec | None = None
    asynchronous: AsyncSpec | None = None
    # tideserve's own policy (sim.extension_spec.TideservePolicy): decides instead of the
    # AAS tick; the target's Min/Max still come from register_scalable_target
    extension: Any = None

    @property
    def dimension(self) -> str:
        """The scalable dimension the variant's capacity is in (the AAS calls' default)."""
        return DIM_PROVISIONED_CONCURRENCY if self.serverless is not None else DIM_INSTANCES

    @property
    def scales(self) -> bool:
        """True if the set registers a scalable target (a serverless one need not)."""
        return bool(self.register_scalable_target)

    @property
    def kind(self) -> str:
        if self.serverless is not None:
            return SERVERLESS
        return ASYNC if self.asynchronous is not None else REALTIME


def tick_config(period: float) -> TickConfig:
    """What the live ScalingDriver runs with for `Settings(period=period)`: one definition."""
    return TickConfig.for_period(period)


class _OneVariant:
    """The CapacityPort the API sees while the policy set is applied: only our variant, in
    its kind's dimension (instances, or a serverless variant's provisioned concurrency)."""

    def __init__(self, resource_id: str, instances: int, dimension: str) -> None:
        self.resource_id = resource_id
        self.instances = instances
        self.dimension = dimension

    def capacity(self, resource_id: str) -> Capacity | None:
        if resource_id != self.resource_id:
            return None
        return Capacity(self.instances, self.instances, "InService", self.dimension)

    def set_desired_capacity(self, resource_id: str, n: int) -> None:  # never called
        raise AssertionError("the API does not set capacity")


def build_world(
    policy_set: PolicySet, endpoint: str, variant: str, instances: int, now: float
) -> World:
    """Apply the policy set's calls at time `now`; ValidationError names the call that was
    refused and carries the engine's own message. `instances` is the variant's capacity in
    the set's dimension (a serverless set's ProvisionedConcurrency)."""
    if policy_set.serverless is not None and not policy_set.scales:
        return World()  # serverless without Application Auto Scaling: nothing to tick
    resource_id = f"endpoint/{endpoint}/variant/{variant}"
    store, clock, settings = MemoryScalingStore(), FakeClock(now), Settings()
    ids = iter(range(1, 1_000_000))
    aas = AutoScalingApi(store, _OneVariant(resource_id, instances, policy_set.dimension), clock,
                         settings,
                         new_id=lambda: f"00000000-0000-4000-8000-{next(ids):012d}")
    cw = CloudWatchAlarms(store, clock, settings)
    names = {"EndpointName": endpoint, "VariantName": variant, "ResourceId": resource_id}
    target = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id,
              "ScalableDimension": policy_set.dimension}

    def call(what: str, index: int, fn: Callable[[dict[str, Any]], Any],
             params: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
        filled = {**defaults, **_substitute(dict(params), names)}
        try:
            return fn(filled)
        except TideserveError as exc:
            raise ValidationError(f"policy set {policy_set.name!r}, {what}"
                                  f"{'' if index < 0 else f' #{index + 1}'}: {exc.message}",
                                  code=exc.code) from exc

    call("RegisterScalableTarget", -1, aas.register_scalable_target,
         policy_set.register_scalable_target, target)
    for i, params in enumerate(policy_set.put_scaling_policy):
        out = call("PutScalingPolicy", i, aas.put_scaling_policy, params, target)
        names[f"policy:{params.get('PolicyName')}"] = out["PolicyARN"]
    for i, params in enumerate(policy_set.put_metric_alarm):
        call("PutMetricAlarm", i, cw.put_metric_alarm, params, {})
    for i, params in enumerate(policy_set.put_scheduled_action):
        call("PutScheduledAction", i, aas.put_scheduled_action, params, target)
    return store.load_world()


def _substitute(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                raise ValidationError(f"{m.group(0)} names no policy put before it "
                                      f"(known: {sorted(k for k in names if ':' in k)})")
            return names[m.group(1)]
        return _PLACEHOLDER.sub(sub, value)
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value
