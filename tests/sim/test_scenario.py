"""Scenarios are checked once, at load: bad policy parameters are refused by the engine's own
validators with the field named; a scenario's own mistakes name theirs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.sim.builders import SEGMENT, scenario, target_tracking
from tideserve.errors import ValidationError
from tideserve.sim.scenario import load_scenario, scenario_from_dict


def refused(raw: dict) -> str:
    with pytest.raises(ValidationError) as info:
        scenario_from_dict(raw)
    return info.value.message


def one_set(**calls: object) -> dict:
    return {"name": "bad", "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 4},
            **calls}


@pytest.mark.parametrize(("calls", "expected"), [
    pytest.param({"put_scaling_policy": [{
        "PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantRPS"}}}]},
        "policy set 'bad', PutScalingPolicy #1: 1 validation error detected: Value "
        "'SageMakerVariantRPS' at 'targetTrackingScalingPolicyConfiguration."
        "predefinedMetricSpecification.predefinedMetricType' failed to satisfy constraint",
        id="unknown PredefinedMetricType"),
    pytest.param({"register_scalable_target": {"MinCapacity": 5, "MaxCapacity": 2}},
                 "policy set 'bad', RegisterScalableTarget: ", id="min above max"),
    pytest.param({"put_scaling_policy": [{**target_tracking(70.0), "PolicyType": "Predictive"}]},
                 "policy set 'bad', PutScalingPolicy #1: ", id="unknown policy type"),
    pytest.param({"put_metric_alarm": [{"AlarmName": "a", "Namespace": "AWS/SageMaker",
                                        "MetricName": "Invocations", "Statistic": "Sum",
                                        "Period": 45, "EvaluationPeriods": 1, "Threshold": 1,
                                        "ComparisonOperator": "GreaterThanThreshold"}]},
                 "policy set 'bad', PutMetricAlarm #1: ", id="alarm period not allowed"),
    pytest.param({"put_scheduled_action": [{"ScheduledActionName": "s",
                                            "Schedule": "cron(99 * * * ? *)",
                                            "ScalableTargetAction": {"MinCapacity": 1}}]},
                 "policy set 'bad', PutScheduledAction #1: ", id="bad cron"),
    pytest.param({"put_metric_alarm": [{"AlarmName": "a", "Namespace": "AWS/SageMaker",
                                        "MetricName": "Invocations", "Statistic": "Sum",
                                        "Period": 60, "EvaluationPeriods": 1, "Threshold": 1,
                                        "ComparisonOperator": "GreaterThanThreshold",
                                        "AlarmActions": ["${policy:nope}"]}]},
                 "${policy:nope} names no policy put before it", id="unknown policy placeholder"),
])
def test_policy_parameters_are_refused_by_the_engine(calls: dict, expected: str) -> None:
    merged = one_set()
    merged.update(calls)
    assert expected in refused(scenario(SEGMENT, merged))


def test_scenario_mistakes_name_their_field(tmp_path: Path) -> None:
    assert "scenario: unknown field(s) polices" in refused({**scenario(SEGMENT), "polices": []})
    assert "instance type is not in the price catalog" in refused(
        scenario(SEGMENT, endpoint={"instance_type": "ml.nope.large"}))
    assert "does not exist" in refused(scenario(tmp_path / "missing.csv"))
    assert "profile.concurrency" in refused(scenario(SEGMENT, profile={"concurrency": 0}))
    assert "at least two percentiles" in refused(
        scenario(SEGMENT, profile={"service_time": {"p50": 0.2}}))
    assert "simulation.mode" in refused(scenario(SEGMENT, simulation={"mode": "exact"}))
    bad = tmp_path / "bad.csv"
    bad.write_text("time,count\n0,1\n1,2\n")
    assert "header 't_seconds,requests'" in refused(scenario(bad))


def test_trace_paths_expand_the_environment_and_are_relative_to_the_scenario(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (f"name: s\ntrace: {{path: '${{SIM_TEST_DIR:-{SEGMENT.parent}}}/{SEGMENT.name}'}}\n"
            "endpoint: {instance_type: ml.m5.large}\n"
            "profile: {service_time: {constant: 0.1}, concurrency: 1, startup_seconds: 60}\n"
            "slo: {latency_seconds: 1}\n"
            "policy_sets: [{name: p, register_scalable_target: {MinCapacity: 1, "
            "MaxCapacity: 2}}]\n")
    (tmp_path / "s.yaml").write_text(text)
    assert load_scenario(tmp_path / "s.yaml").trace.duration_seconds == 1800
    monkeypatch.setenv("SIM_TEST_DIR", "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / SEGMENT.name).write_text("t_seconds,requests\n0,1\n1,1\n")
    assert load_scenario(tmp_path / "s.yaml").trace.duration_seconds == 2


def test_the_example_scenario_loads_on_the_checked_in_segment() -> None:
    # The shared traces may be absent where tests run: point the example at the segment.
    examples = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
    text = (examples / "azure_code_target_tracking.yaml").read_text()
    raw = yaml.safe_load(text.replace("azure_llm_code_2023_1s.csv", SEGMENT.name))
    raw["trace"]["path"] = str(SEGMENT)
    scn = scenario_from_dict(raw, examples)
    assert [p.name for p in scn.policy_sets] == ["aws-default", "tuned-tt", "step", "schedule"]
