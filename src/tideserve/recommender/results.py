"""A finished benchmark in AWS's figures (spec §11.5), and the scaling policy behind it
(§11.7). Pure functions of a step's record.

    CostPerHour      = on-demand price of the type x InitialInstanceCount
    CostPerInference = CostPerHour / (60 x MaxInvocations)        (AWS's sample rows obey it)
    MaxInvocations   = requests/min at the breaking window x InitialInstanceCount
    InitialInstanceCount = ceil(StoppingConditions.MaxInvocations / per-instance maximum) for
                     an Advanced job that names MaxInvocations, else 1 (AWS: UNCONFIRMED)
    ModelLatency     = the threshold's percentile (P95 unless P99) at that window, in ms,
                     measured by the load generator over loopback (so it includes the HTTP
                     round trip to the instance, not only the container's time)
    ModelSetupTime   = seconds from the instance's start request to its first good /ping

Worked example: ml.c5.large at $0.102/h breaking at 3 350 inv/min -> CostPerInference
0.102 / (60 x 3 350) = 5.07e-7 USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tideserve.cost.catalog import InstanceType

# The safety factor on the breaking point: a TargetValue of SageMakerVariantInvocationsPerInstance
# is at most half the per-instance breaking point, AWS's own manual rule (TargetValue = MAX_RPS
# x 0.5 x 60, base spec §6.5), so an instance scales out well before it saturates even when its
# CPU per core stays under the target (a latency-bound model, or a busy machine).
SAFETY_FACTOR = 0.5
DEFAULT_CPU_PER_CORE = 50  # GetScalingConfigurationRecommendation's default
COOLDOWN_SECONDS = 300  # SageMaker target tracking's default cooldowns


@dataclass(frozen=True)
class Point:
    """One measurement window of a step, as the record keeps it."""

    per_minute: float
    users: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_percent: float | None
    memory_percent: float | None


def instance_count(per_instance: float, max_invocations: int | None, advanced: bool) -> int:
    if not advanced or not max_invocations or per_instance <= 0:
        return 1
    return max(1, math.ceil(max_invocations / per_instance))


def metrics(result: Point, itype: InstanceType, count: int, percentile: str,
            setup_seconds: float | None) -> dict[str, Any]:
    max_invocations = round(result.per_minute * count)
    per_hour = itype.on_demand_hourly_usd * count
    out: dict[str, Any] = {
        "CostPerHour": per_hour,
        "CostPerInference": per_hour / (60.0 * max_invocations) if max_invocations else 0.0,
        "MaxInvocations": max_invocations,
        "ModelLatency": round(result.p99_ms if percentile == "P99" else result.p95_ms),
        "CpuUtilization": result.cpu_percent if result.cpu_percent is not None else math.nan,
        "MemoryUtilization": (result.memory_percent if result.memory_percent is not None
                              else math.nan),
    }
    if setup_seconds is not None:
        out["ModelSetupTime"] = round(setup_seconds)
    return out


def invocations_at_cpu(points: list[Point], breaking: Point, vcpu: int,
                       cpu_per_core: float) -> float:
    """The largest per-instance invocations/min whose CPU per core stays at or under
    `cpu_per_core` %, interpolated linearly between the step's windows up to its breaking
    point, and at most SAFETY_FACTOR x the breaking point. Example (2 vCPUs, target 50 %/core,
    breaking at 4 000/min): windows (1 200/min, 60 %) and (2 400/min, 140 %) are 30 and 70
    %/core, so 1 200 + (50-30)/(70-30) x 1 200 = 1 800/min (under 0.5 x 4 000 = 2 000)."""
    return min(_at_cpu(points, breaking, vcpu, cpu_per_core),
               SAFETY_FACTOR * breaking.per_minute)


def _at_cpu(points: list[Point], breaking: Point, vcpu: int, cpu_per_core: float) -> float:
    usable = sorted((p for p in points if p.cpu_percent is not None
                     and p.per_minute <= breaking.per_minute and p.per_minute > 0),
                    key=lambda p: p.per_minute)
    if not usable:
        return SAFETY_FACTOR * breaking.per_minute
    best = 0.0
    prev: Point | None = None
    for p in usable:
        per_core = (p.cpu_percent or 0.0) / vcpu
        if per_core <= cpu_per_core:
            best = max(best, p.per_minute)
        elif prev is not None:
            low = (prev.cpu_percent or 0.0) / vcpu
            if low <= cpu_per_core < per_core:
                share = (cpu_per_core - low) / (per_core - low)
                best = max(best, prev.per_minute + share * (p.per_minute - prev.per_minute))
        prev = p
    if best == 0.0:  # even the lightest window ran hotter: scale it down proportionally
        first = usable[0]
        best = first.per_minute * cpu_per_core / max((first.cpu_percent or 1.0) / vcpu, 1e-9)
    return best


def latency_at(points: list[Point], invocations: float, percentile: str) -> float:
    """The latency of the lightest window at or above `invocations` per minute."""
    above = sorted((p for p in points if p.per_minute >= invocations),
                   key=lambda p: p.per_minute)
    chosen = above[0] if above else max(points, key=lambda p: p.per_minute)
    return chosen.p99_ms if percentile == "P99" else chosen.p95_ms


def scaling_configuration(target: float, count: int,
                          objective: dict[str, Any] | None) -> dict[str, Any]:
    """DynamicScalingConfiguration for a per-instance TargetValue (spec §11.7)."""
    value = max(1, round(target))
    if objective and objective.get("MinInvocationsPerMinute") is not None:
        low = max(1, math.ceil(objective["MinInvocationsPerMinute"] / value))
    else:
        low = count
    if objective and objective.get("MaxInvocationsPerMinute") is not None:
        high = max(low, math.ceil(objective["MaxInvocationsPerMinute"] / value))
    else:
        high = low
    return {"MinCapacity": low, "MaxCapacity": high, "ScaleInCooldown": COOLDOWN_SECONDS,
            "ScaleOutCooldown": COOLDOWN_SECONDS,
            "ScalingPolicies": [{"TargetTracking": {
                "MetricSpecification": {"Predefined": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
                "TargetValue": float(value)}}]}
