"""The simulator runs tideserve's latency target and burst mode: a policy set's
`tideserve_policy` decides on simulated time, the burst mode within seconds of a burst, the
latency target at the period's close."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tideserve.errors import ValidationError
from tideserve.sim.run import simulate
from tideserve.sim.scenario import load_scenario


def scenario(tmp_path: Path, policy: dict[str, object]) -> Path:
    # 10 req/s for 10 minutes, then 100 req/s from t = 600 s for 10 minutes
    rows = ["t_seconds,requests"] + [f"{t},{10 if t < 600 else 100}" for t in range(1200)]
    (tmp_path / "step.csv").write_text("\n".join(rows) + "\n")
    raw = {"name": "burst", "trace": {"path": "step.csv"},
           "endpoint": {"name": "ep", "instance_type": "ml.g5.xlarge", "initial_instances": 2},
           "profile": {"service_time": {"constant": 1.0}, "concurrency": 8,
                       "startup_seconds": 120},
           "slo": {"latency_seconds": 4.0, "percentile": 99},
           "policy_sets": [{"name": "p",
                            "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 32},
                            "tideserve_policy": policy}]}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def first_scale_out(path: Path) -> tuple[float, int]:
    result = simulate(load_scenario(path))
    t0 = result.scenario.options.start_time
    run = result.runs[0]
    out = next(a for a in run.activities if a.desired is not None and a.desired > 2)
    return out.start_time - t0, out.desired or 0


def test_the_burst_mode_scales_out_seconds_after_the_burst(tmp_path: Path) -> None:
    at, desired = first_scale_out(scenario(tmp_path, {
        "latency_target": {"scale_in_window": 300},
        "burst": {"window_seconds": 6, "threshold": 2, "stable_window": 60}}))
    # the 6-s window shows 100 req/s ≥ 2 × 2 instances' worth within seconds of t = 600
    assert 600 < at <= 606
    # at t = 603 the window holds 3 s at 10 and 3 s at 100 req/s: 55 busy slots, 7 instances
    # (the endpoint is then Updating for the start-up and takes no second change until then)
    assert desired == 7


def test_without_it_the_latency_target_waits_for_the_period(tmp_path: Path) -> None:
    at, desired = first_scale_out(scenario(tmp_path, {"latency_target": {}}))
    assert at == pytest.approx(660.0)  # the close of the first period with the burst in it
    assert desired >= 14  # 100 req/s × 1 s at ≤ 90 % of 8 slots


def test_a_tideserve_policy_beside_aas_policies_is_refused(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"latency_target": {}})
    raw = yaml.safe_load(path.read_text())
    raw["policy_sets"][0]["put_scaling_policy"] = [{
        "PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 100.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="tideserve_policy"):
        load_scenario(path)
    raw["policy_sets"][0].pop("put_scaling_policy")
    raw["policy_sets"][0]["tideserve_policy"] = {"latency_target": {"max_utilization": "x"}}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="max_utilization"):
        load_scenario(path)
