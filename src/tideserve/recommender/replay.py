"""Beyond AWS: replay each recommendation in the simulator on a trace the user names, with
the scaling policy GetScalingConfigurationRecommendation gives it, and report the cost and
the share of requests over the latency threshold.

The simulated instance is calibrated from its benchmark: service time = the latencies of the
step's lightest window (one user: no queueing), and concurrency = breaking-point throughput x
mean service time (Little's law), so the simulated instance saturates at the measured
MaxInvocations per instance. Start-up = the measured ModelSetupTime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideserve.sim.run import simulate
from tideserve.sim.scenario import scenario_from_dict

DEFAULT_MAX_CAPACITY = 10


@dataclass(frozen=True)
class Replay:
    instance_type: str
    cost_usd: float
    over_slo_share: float  # requests over the threshold (or dropped) / requests
    mean_instances: float


def replay(candidate: dict[str, Any], points: list[dict[str, Any]], target_value: float,
           trace: Path, slo_ms: float, percentile: float, rate_scale: float = 1.0,
           max_capacity: int = DEFAULT_MAX_CAPACITY) -> Replay:
    endpoint = candidate["EndpointConfiguration"]
    metrics = candidate["Metrics"]
    count = int(endpoint.get("InitialInstanceCount", 1))
    light = min(points, key=lambda p: p["users"])
    p50, p90, p99 = (light["p50_ms"] / 1000, light["p95_ms"] / 1000, light["p99_ms"] / 1000)
    p90, p99 = max(p90, p50 * 1.001), max(p99, p90 * 1.001)
    per_second = metrics["MaxInvocations"] / count / 60.0
    concurrency = max(1, round(per_second * p50))
    scenario = scenario_from_dict({
        "name": f"recommend-{endpoint['InstanceType']}",
        "trace": {"path": str(trace), "rate_scale": rate_scale},
        "endpoint": {"name": "recommended", "variant": "AllTraffic",
                     "instance_type": endpoint["InstanceType"], "initial_instances": count},
        "profile": {"service_time": {"p50": p50, "p90": p90, "p99": p99},
                    "concurrency": concurrency,
                    "startup_seconds": float(metrics.get("ModelSetupTime", 60))},
        "slo": {"latency_seconds": slo_ms / 1000.0, "percentile": percentile},
        "policy_sets": [{
            "name": "recommended",
            "register_scalable_target": {"MinCapacity": count,
                                         "MaxCapacity": max(count, max_capacity)},
            "put_scaling_policy": [{
                "PolicyName": "recommended", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": float(target_value),
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}],
        }],
    })
    run = next(r for r in simulate(scenario, only="recommended").runs
               if r.name == "recommended")
    return Replay(endpoint["InstanceType"], run.summary.cost_usd, run.summary.over_slo_share,
                  run.summary.mean_instances)
