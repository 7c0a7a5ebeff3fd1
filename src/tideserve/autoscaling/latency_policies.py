"""tideserve extension (beyond AWS): latency-target policies on live variants, through
tideserve's own API (service "tideserve", api/models/tideserve/2026-12-01/service-2.json):

    PutLatencyTargetPolicy(ResourceId="endpoint/E/variant/V", LatencyBoundMs=800,
                           TargetShareOverBound=0.01,          # p99 under 800 ms
                           MetricName="ModelLatency", Concurrency=1,
                           Burst={"Threshold": 2, "StableWindowSeconds": 60},
                           ScaleInWindowSeconds=600)
    DescribeLatencyTargetPolicies(ResourceIds=[...])   DeleteLatencyTargetPolicy(ResourceId=...)

Not a PutScalingPolicy type: AWS's model has no field for a latency bound or a panic window,
and a PolicyType AWS does not know would make a valid-looking AAS call fail on AWS. The
variant must be a registered scalable target (its Min/Max bound the policy); one policy per
variant. The driver (autoscaling.latency_driver) runs it. Durations are AWS seconds, scaled
by the server's time scale as cooldowns are.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from tideserve.autoscaling.tables import latency_policies
from tideserve.clock import Clock
from tideserve.errors import NotFoundError, ValidationError
from tideserve.scaling.burst import BurstState
from tideserve.scaling.latency_policy import PolicyState
from tideserve.scaling.latency_target import LatencyTargetState
from tideserve.scaling.model import TargetKey

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRICS = ("ModelLatency",)  # AWS/SageMaker's, per variant, in microseconds


@dataclass(frozen=True)
class LatencyPolicy:
    resource_id: str
    latency_bound_ms: float
    target_share_over_bound: float
    metric_name: str
    concurrency: int
    scale_in_window_seconds: float
    burst_threshold: float | None  # None: no burst mode
    burst_stable_window_seconds: float
    creation_time: float

    @property
    def percentile(self) -> float:
        return 100.0 * (1.0 - self.target_share_over_bound)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ResourceId": self.resource_id, "LatencyBoundMs": self.latency_bound_ms,
            "TargetShareOverBound": self.target_share_over_bound,
            "MetricName": self.metric_name, "Concurrency": self.concurrency,
            "ScaleInWindowSeconds": self.scale_in_window_seconds,
            "CreationTime": self.creation_time,
        }
        if self.burst_threshold is not None:
            out["Burst"] = {"Threshold": self.burst_threshold,
                            "StableWindowSeconds": self.burst_stable_window_seconds}
        return out


@dataclass(frozen=True)
class LatencyPolicyRecord:
    policy: LatencyPolicy
    state: PolicyState
    last_period: float | None = None  # the start of the last metric period decided on


def _number(p: dict[str, Any], name: str, default: float | None, low: float, high: float,
            *, open_low: bool = False) -> float:
    value = p.get(name, default)
    if value is None:
        raise ValidationError(f"1 validation error detected: Value null at '{name}' failed to "
                              "satisfy constraint: Member must not be null")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"Value {value!r} at '{name}' failed to satisfy constraint: "
                              "Member must be a number")
    bad = value <= low if open_low else value < low
    if bad or value > high:
        side = ">" if open_low else ">="
        raise ValidationError(f"1 validation error detected: Value {value} at '{name}' failed "
                              f"to satisfy constraint: Member must have value {side} {low:g} "
                              f"and <= {high:g}")
    return float(value)


def parse_policy(p: dict[str, Any], now: float) -> LatencyPolicy:
    """PutLatencyTargetPolicy's request → the policy; ValidationError in AWS's words."""
    resource_id = p.get("ResourceId")
    parts = resource_id.split("/") if isinstance(resource_id, str) else []
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant" or not all(parts):
        raise ValidationError(f"Unsupported resource ID {resource_id!r}: a SageMaker variant is "
                              "endpoint/<EndpointName>/variant/<VariantName>")
    assert isinstance(resource_id, str)
    metric = p.get("MetricName", "ModelLatency")
    if metric not in METRICS:
        raise ValidationError(f"1 validation error detected: Value {metric!r} at 'MetricName' "
                              f"failed to satisfy constraint: Member must satisfy enum value "
                              f"set: [{', '.join(METRICS)}]")
    bound = _number(p, "LatencyBoundMs", None, 0, 3_600_000, open_low=True)
    share = _number(p, "TargetShareOverBound", 0.01, 0, 0.5, open_low=True)
    concurrency = int(_number(p, "Concurrency", 1, 1, 10_000))
    scale_in = _number(p, "ScaleInWindowSeconds", 600, 0, 86_400)
    burst = p.get("Burst")
    threshold, stable = None, 60.0
    if burst is not None:
        if not isinstance(burst, dict):
            raise ValidationError("Burst must be a structure {Threshold, StableWindowSeconds}")
        threshold = _number(burst, "Threshold", 2.0, 1, 1000, open_low=True)
        stable = _number(burst, "StableWindowSeconds", 60, 0, 86_400)
    return LatencyPolicy(resource_id, bound, share, metric, concurrency, scale_in, threshold,
                         stable, now)


def _to_json(record: LatencyPolicyRecord) -> str:
    return json.dumps({"policy": asdict(record.policy), "last_period": record.last_period,
                       "proposal": record.state.proposal,
                       "proposals": list(record.state.latency.proposals),
                       "started": record.state.latency.started,
                       "triggered_at": record.state.burst.triggered_at})


def _from_json(text: str) -> LatencyPolicyRecord:
    d = json.loads(text)
    state = PolicyState(
        LatencyTargetState(tuple((float(t), int(n)) for t, n in d["proposals"]), d["started"]),
        BurstState(d["triggered_at"]), d["proposal"])
    return LatencyPolicyRecord(LatencyPolicy(**d["policy"]), state, d["last_period"])


class LatencyPolicyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.lock = threading.RLock()

    def get(self, resource_id: str) -> LatencyPolicyRecord | None:
        with self._engine.connect() as conn:
            text = conn.execute(select(latency_policies.c.record).where(
                latency_policies.c.resource_id == resource_id)).scalar()
        return None if text is None else _from_json(text)

    def all(self) -> list[LatencyPolicyRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(latency_policies.c.record).order_by(
                latency_policies.c.creation_time, latency_policies.c.resource_id)).scalars()
            return [_from_json(t) for t in rows]

    def put(self, record: LatencyPolicyRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(latency_policies).where(
                latency_policies.c.resource_id == record.policy.resource_id))
            conn.execute(latency_policies.insert().values(
                resource_id=record.policy.resource_id,
                creation_time=record.policy.creation_time, record=_to_json(record)))

    def delete(self, resource_id: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(delete(latency_policies).where(
                latency_policies.c.resource_id == resource_id))
        return bool(result.rowcount)


class TargetLookup:
    """What the API needs from Application Auto Scaling's store: is the variant registered."""

    def __init__(self, scaling_store: Any) -> None:
        self._store = scaling_store

    def registered(self, resource_id: str) -> bool:
        return self._store.target(TargetKey("sagemaker", resource_id, DIMENSION)) is not None


class LatencyPolicyApi:
    def __init__(self, store: LatencyPolicyStore, targets: TargetLookup, clock: Clock) -> None:
        self.store, self.targets, self.clock = store, targets, clock

    def operations(self) -> dict[str, Any]:
        return {"PutLatencyTargetPolicy": self.put,
                "DescribeLatencyTargetPolicies": self.describe,
                "DeleteLatencyTargetPolicy": self.delete}

    def put(self, p: dict[str, Any]) -> dict[str, Any]:
        policy = parse_policy(p, self.clock.now())
        if not self.targets.registered(policy.resource_id):
            raise ValidationError(f"No scalable target registered for service namespace: "
                                  f"sagemaker, resource ID: {policy.resource_id}, scalable "
                                  f"dimension: {DIMENSION}")
        with self.store.lock:
            old = self.store.get(policy.resource_id)
            if old is not None:  # a new configuration keeps its creation time and its memory
                policy = replace(policy, creation_time=old.policy.creation_time)
                self.store.put(replace(old, policy=policy))
            else:
                self.store.put(LatencyPolicyRecord(policy, PolicyState()))
        return {"ResourceId": policy.resource_id}

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = p.get("ResourceIds") or None
        records = self.store.all()
        return {"LatencyTargetPolicies": [r.policy.describe() for r in records
                                          if wanted is None or r.policy.resource_id in wanted]}

    def delete(self, p: dict[str, Any]) -> dict[str, Any]:
        resource_id = p.get("ResourceId")
        if not isinstance(resource_id, str) or not self.store.delete(resource_id):
            raise NotFoundError(f"No latency-target policy on {resource_id!r}")
        return {}
