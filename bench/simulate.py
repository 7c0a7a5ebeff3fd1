"""Simulator benchmark: prints figures, never passes or fails on time.

1. Speed: a 30-day trace with 1-second bins (the Azure code trace's real per-second bursts,
   repeated end to end) and one policy set (AWS-default target tracking), fluid model.
2. AWS-default target tracking against the clairvoyant baseline on the real traces in
   examples/traces (and any `--traces DIR` given, looked in after it; a trace found in none
   is skipped: the Twitter and Wikipedia ones are not shipped, see examples/traces/README.md).
   The policy is InvocationsPerInstance at AWS's recommended target MAX_RPS × 0.5 × 60
   (spec §6.5) with 300-s cooldowns, where MAX_RPS = concurrency / mean service time of the
   profile. Each trace's rate is scaled so that its mean load needs four fully busy instances.

    .venv/bin/python bench/simulate.py [--traces DIR ...] [--days 30]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tideserve.sim.baseline import clairvoyant
from tideserve.sim.run import run_policy_set
from tideserve.sim.scenario import scenario_from_dict
from tideserve.sim.trace import load_trace

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "examples" / "traces"
PROFILE = {"service_time": {"p50": 0.8, "p90": 1.8, "p99": 3.5}, "concurrency": 8,
           "startup_seconds": 300}
MEAN_INSTANCES = 4.0  # the mean load, in fully busy instances
NAMES = ("azure_llm_code_2023_1s", "azure_llm_conv_2023_1s", "mooncake_conversation_3s",
         "servegen_mlarge_all_clients_10min", "twitter_2021_08_1min",
         "wikipedia_en_2010_11_to_2011_05_1h")


def raw_scenario(trace: Path, rate_scale: float, target: float, max_capacity: int,
                 step: float, **trace_extra: Any) -> dict[str, Any]:
    return {
        "name": trace.stem,
        "trace": {"path": str(trace), "rate_scale": rate_scale, **trace_extra},
        "endpoint": {"name": "bench", "instance_type": "ml.g5.xlarge", "initial_instances": 4},
        "profile": PROFILE,
        "slo": {"latency_seconds": 8.0, "percentile": 99},
        "simulation": {"step_seconds": step},
        "policy_sets": [{
            "name": "aws-default",
            "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": max_capacity},
            "put_scaling_policy": [{
                "PolicyName": "invocations", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": target, "ScaleOutCooldown": 300, "ScaleInCooldown": 300,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}]}],
    }


def aws_target() -> tuple[float, float]:
    """(MAX_RPS, AWS's recommended InvocationsPerInstance target) for PROFILE."""
    from tideserve.sim.profile import service_time_from

    max_rps = PROFILE["concurrency"] / service_time_from(PROFILE["service_time"]).mean
    return max_rps, max_rps * 0.5 * 60


def find_trace(folders: list[Path], name: str) -> Path | None:
    """The first `name.csv` among the folders, in order."""
    return next((f / f"{name}.csv" for f in folders if (f / f"{name}.csv").is_file()), None)


def speed(traces: list[Path], days: float) -> None:
    path = find_trace(traces, "azure_llm_code_2023_1s")
    if path is None:
        print(f"speed: azure_llm_code_2023_1s.csv is in none of {traces}, skipped")
        return
    max_rps, target = aws_target()
    rate = load_trace(path).counts.mean()
    raw = raw_scenario(path, MEAN_INSTANCES * max_rps / rate, target, 64, 1.0,
                       tile_to_seconds=days * 86400)
    scn = scenario_from_dict(raw)
    started = time.perf_counter()
    arrivals = scn.arrivals()
    run = run_policy_set(scn, scn.policy_sets[0], arrivals)
    took = time.perf_counter() - started
    started = time.perf_counter()
    clairvoyant(scn, arrivals)
    base = time.perf_counter() - started
    print(f"speed: {days:g} days of 1-s steps ({len(arrivals):,} steps, "
          f"{run.scaling_activities} scaling activities), one policy set, fluid model: "
          f"{took:.2f} s  (clairvoyant baseline: {base:.2f} s)")


def table(traces: list[Path]) -> None:
    max_rps, target = aws_target()
    print(f"\nAWS-default target tracking vs the clairvoyant baseline (ml.g5.xlarge, MAX_RPS "
          f"{max_rps:.2f} req/s, target {target:.1f} invocations/instance/min, cooldowns "
          f"300/300 s, start-up {PROFILE['startup_seconds']} s, SLO 8 s at p99)")
    header = ("trace", "scale", "req/s", "TT inst", "base inst", "cost ratio", "TT over SLO",
              "base over SLO", "activities", "sim s")
    rows = []
    for name in NAMES:
        path = find_trace(traces, name)
        if path is None:
            continue
        trace = load_trace(path)
        mean = trace.counts.mean() / trace.bin_seconds
        scale = MEAN_INSTANCES * max_rps / mean
        peak = trace.counts.max() / trace.bin_seconds * scale
        step = 1.0 if trace.bin_seconds <= 600 else 60.0
        scn = scenario_from_dict(raw_scenario(path, scale, target,
                                              max(8, math.ceil(2 * peak / max_rps)), step))
        scn = replace(scn, options=replace(scn.options, step_seconds=step))
        started = time.perf_counter()
        arrivals = scn.arrivals()
        run = run_policy_set(scn, scn.policy_sets[0], arrivals)
        took = time.perf_counter() - started
        base = clairvoyant(scn, arrivals)
        s, b = run.summary, base.summary
        rows.append((name, f"{scale:.3g}", f"{np.sum(arrivals) / len(arrivals) / step:.1f}",
                     f"{s.mean_instances:.2f}", f"{b.mean_instances:.2f}",
                     f"{s.cost_usd / b.cost_usd:.2f}x", f"{100 * s.over_slo_share:.2f}%",
                     f"{100 * b.over_slo_share:.2f}%", str(run.scaling_activities),
                     f"{took:.1f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, action="append", default=[],
                        help="another folder of traces, looked in after examples/traces")
    parser.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args()
    folders = [TRACES, *args.traces]
    speed(folders, args.days)
    table(folders)


if __name__ == "__main__":
    main()
