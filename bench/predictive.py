"""Predictive + target tracking against target tracking alone, in the simulator, on a
synthetic daily trace (prints figures, never passes or fails).

Trace: ten days of one-minute bins, Poisson around 30 requests a minute, rising each day
from 01:00 over 20 minutes to 750 and back down from 01:50; seven days are history, three are
scored. Instances start in 300 s and serve one request at a time in 0.5 s (SLO 1 s).

    PYTHONPATH=src python bench/predictive.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from tideserve.sim import scenario_from_dict
from tideserve.sim.run import simulate

HISTORY_DAYS, SCORED_DAYS = 7, 3
IPI = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
TT = {"PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
      "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 70.0,
                                                   "PredefinedMetricSpecification": IPI}}
PREDICTIVE = {"PolicyName": "forecast", "PolicyType": "PredictiveScaling",
              "PredictiveScalingPolicyConfiguration": {
                  "MetricSpecifications": [{"TargetValue": 70.0,
                                            "PredefinedMetricPairSpecification": IPI}],
                  "Mode": "ForecastAndScale", "SchedulingBufferTime": 300}}


def per_minute(minute_of_day: int) -> float:
    ramp = np.clip((minute_of_day - 60) / 20, 0, 1) - np.clip((minute_of_day - 110) / 20, 0, 1)
    return float(30 + 720 * ramp)


def main() -> None:
    rng = np.random.default_rng(0)
    minutes = (HISTORY_DAYS + SCORED_DAYS) * 1440
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "daily.csv"
        trace.write_text("t_seconds,requests\n" + "\n".join(
            f"{60 * i},{rng.poisson(per_minute(i % 1440))}" for i in range(minutes)) + "\n")
        bounds = {"MinCapacity": 1, "MaxCapacity": 20}
        raw = {
            "name": "daily", "trace": {"path": str(trace), "rate_scale": 1},
            "endpoint": {"name": "ep", "variant": "AllTraffic", "instance_type": "ml.m5.large",
                         "initial_instances": 1},
            "profile": {"service_time": {"constant": 0.5}, "concurrency": 1,
                        "startup_seconds": 300},
            "slo": {"latency_seconds": 1.0, "percentile": 99},
            "simulation": {"step_seconds": 60, "metric_period": 60,
                           "history_seconds": HISTORY_DAYS * 86400},
            "policy_sets": [
                {"name": "target-tracking", "register_scalable_target": bounds,
                 "put_scaling_policy": [TT]},
                {"name": "predictive+target-tracking", "register_scalable_target": bounds,
                 "put_scaling_policy": [PREDICTIVE, TT]},
            ],
        }
        started = time.perf_counter()
        result = simulate(scenario_from_dict(raw))
    base = result.baseline.summary.cost_usd
    print(f"{SCORED_DAYS} scored days after {HISTORY_DAYS} of history, "
          f"simulated in {time.perf_counter() - started:.1f} s")
    print(f"{'policy':28} {'cost / clairvoyant':>18} {'over SLO':>9}")
    for run in result.runs:
        s = run.summary
        print(f"{run.name:28} {s.cost_usd / base:18.2f} {100 * s.over_slo_share:8.2f}%")


if __name__ == "__main__":
    main()
