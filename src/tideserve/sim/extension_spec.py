"""The `tideserve_policy` entry of a scenario's policy set, checked into the pure engine's
configs (sim.extension has the YAML and runs it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tideserve.errors import ValidationError
from tideserve.scaling.burst import BurstConfig
from tideserve.scaling.latency_target import LatencyTargetConfig

KEY = "tideserve_policy"
LATENCY_FIELDS = ("latency_seconds", "percentile", "max_utilization", "scale_in_window")
BURST_FIELDS = ("window_seconds", "threshold", "stable_window", "utilization")


@dataclass(frozen=True)
class TideservePolicy:
    latency_target: LatencyTargetConfig
    burst: BurstConfig | None = None


def parse_tideserve_policy(raw: Any, where: str, target: dict[str, Any],
                           slo: tuple[float, float]) -> TideservePolicy:
    if not isinstance(raw, dict):
        raise ValidationError(f"{where}: expected a mapping with latency_target (and burst)")
    unknown = sorted(set(raw) - {"latency_target", "burst"})
    if unknown or "latency_target" not in raw:
        raise ValidationError(f"{where}: give latency_target (and optionally burst); unknown: "
                              f"{', '.join(unknown) or 'none'}")
    bounds = {"min_capacity": int(target.get("MinCapacity", 1)),
              "max_capacity": int(target.get("MaxCapacity", 64))}
    lt = _numbers(raw["latency_target"], f"{where}.latency_target", LATENCY_FIELDS)
    lt.setdefault("latency_seconds", slo[0])
    lt.setdefault("percentile", slo[1])
    latency = LatencyTargetConfig(**lt, **bounds)
    burst = None
    if raw.get("burst") is not None:
        b = _numbers(raw["burst"], f"{where}.burst", BURST_FIELDS)
        burst = BurstConfig(**b, max_capacity=bounds["max_capacity"])
    return TideservePolicy(latency, burst)


def _numbers(raw: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: "
                              f"{', '.join(allowed)})")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValidationError(f"Value {v!r} at '{where}.{k}' failed to satisfy "
                                  "constraint: Member must be a number")
        out[k] = float(v)
    return out


