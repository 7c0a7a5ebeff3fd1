"""Scenario builders for the simulator's tests: a scenario dict with sensible defaults, a
hand-made trace written to a temporary CSV, and the checked-in data folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
SEGMENT = DATA / "azure_llm_code_2023_1s_first30min.csv"
IPI = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def write_trace(path: Path, per_second: Sequence[float]) -> Path:
    lines = ["t_seconds,requests"] + [f"{t},{n:g}" for t, n in enumerate(per_second)]
    path.write_text("\n".join(lines) + "\n")
    return path


def target_tracking(target: float, **config: Any) -> dict[str, Any]:
    return {"PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": target, "PredefinedMetricSpecification": IPI, **config}}


def scenario(trace: Path, *policy_sets: dict[str, Any], **over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "test",
        "trace": {"path": str(trace), "rate_scale": 1},
        "endpoint": {"name": "ep", "variant": "AllTraffic", "instance_type": "ml.m5.large",
                     "initial_instances": 1},
        "profile": {"service_time": {"constant": 0.5}, "concurrency": 1,
                    "startup_seconds": 120},
        "slo": {"latency_seconds": 1.0, "percentile": 99},
        "policy_sets": list(policy_sets) or [{
            "name": "tt", "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 10},
            "put_scaling_policy": [target_tracking(70.0)]}],
    }
    for key, value in over.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) else value
    return raw
