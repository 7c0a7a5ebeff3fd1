"""The breaking point, the AWS figures and the scaling advice, as pure functions of a test's
windows (no server, no processes)."""

from __future__ import annotations

import pytest

from tideserve.cost.catalog import Catalog
from tideserve.errors import ValidationError
from tideserve.recommender.breaking import Window, verdict
from tideserve.recommender.results import (
    Point,
    instance_count,
    invocations_at_cpu,
    metrics,
    scaling_configuration,
)
from tideserve.recommender.spec import JobSpec, Stopping, Traffic, default_candidates

P95_50MS = Stopping(max_invocations=None, percentile="P95", latency_ms=50, flat_stop=True)


def window(users: int, per_minute: float, p95: float, errors: int = 0) -> Window:
    return Window(start=0.0, seconds=60.0, users=users, completed=int(per_minute),
                  errors=errors, p50_ms=p95 / 2, p95_ms=p95, p99_ms=p95 * 1.2,
                  cpu_percent=50.0, memory_percent=10.0)


def test_the_docstrings_worked_example_breaks_on_latency_at_the_fourth_window():
    ws = [window(1, 1800, 12), window(3, 3300, 25), window(5, 3350, 38)]
    assert not verdict(ws, P95_50MS, schedule_done=False).stop  # 3 350/3 300 < 5 %, 3 300/1 800 not
    ws.append(window(7, 3380, 61))
    v = verdict(ws, P95_50MS, schedule_done=False)
    assert (v.stop, v.reason, v.result, v.meets_threshold) == (True, "latency", ws[2], True)


@pytest.mark.parametrize("case, windows, stopping, reason, result_index, meets", [
    ("plateau: the best of the last three windows",
     [window(1, 3000, 5), window(2, 3050, 6), window(3, 3070, 7)], P95_50MS, "plateau", 2, True),
    ("target reached: MaxInvocations stops the test",
     [window(1, 1000, 5), window(2, 2100, 6)],
     Stopping(2000, "P95", 50, True), "target", 1, True),
    ("errors over 5 %: the window before",
     [window(1, 1000, 5), window(2, 2000, 6, errors=500)], P95_50MS, "errors", 0, True),
    ("the very first window too slow: never met",
     [window(1, 500, 80)], P95_50MS, "latency", 0, False),
])
def test_stop_rules(case, windows, stopping, reason, result_index, meets):
    v = verdict(windows, stopping, schedule_done=False)
    assert (v.stop, v.reason, v.result, v.meets_threshold) == (
        True, reason, windows[result_index], meets), case


def test_schedule_end_takes_the_best_window_under_the_threshold():
    ws = [window(1, 1000, 5), window(2, 1900, 6)]
    v = verdict(ws, P95_50MS, schedule_done=True)
    assert (v.reason, v.result) == ("schedule", ws[1])


def test_metrics_follow_aws_cost_formulas():
    c5 = Catalog.default().get("ml.c5.large")
    m = metrics(Point(3350, 5, 19, 38, 45, 150.0, 20.0), c5, 1, "P95", 2.4)
    assert m["CostPerHour"] == c5.on_demand_hourly_usd
    assert m["CostPerInference"] == pytest.approx(0.102 / (60 * 3350))
    assert (m["MaxInvocations"], m["ModelLatency"], m["ModelSetupTime"]) == (3350, 38, 2)
    assert instance_count(371, 1000, advanced=True) == 3  # AWS's sample: 3 x ~371 for 1 000
    assert instance_count(371, 1000, advanced=False) == 1


def test_target_value_interpolates_cpu_per_core_to_the_docstrings_example():
    points = [Point(1200, 1, 5, 6, 7, 60.0, 10.0), Point(2400, 2, 5, 8, 9, 140.0, 10.0),
              Point(4000, 4, 5, 8, 9, 190.0, 10.0)]
    assert invocations_at_cpu(points, points[2], vcpu=2, cpu_per_core=50) == pytest.approx(1800)
    cool = [Point(4000, 4, 5, 8, 9, 60.0, 10.0)]  # CPU never near the target: the safety factor
    assert invocations_at_cpu(cool, cool[0], vcpu=2, cpu_per_core=50) == 2000
    no_cpu = [Point(2400, 2, 5, 8, 9, None, None)]
    assert invocations_at_cpu(no_cpu, no_cpu[0], vcpu=2, cpu_per_core=50) == 1200  # x 0.5


def test_scaling_configuration_sizes_capacity_from_the_objective():
    config = scaling_configuration(1800, 1, {"MinInvocationsPerMinute": 1000,
                                             "MaxInvocationsPerMinute": 9000})
    assert (config["MinCapacity"], config["MaxCapacity"]) == (1, 5)
    tt = config["ScalingPolicies"][0]["TargetTracking"]
    assert tt["TargetValue"] == 1800.0
    assert tt["MetricSpecification"]["Predefined"]["PredefinedMetricType"] == \
        "SageMakerVariantInvocationsPerInstance"


def request(name="j", **config):
    return {"JobName": name, "JobType": "Advanced", "RoleArn": "arn:aws:iam::1:role/r",
            "InputConfig": {"ModelName": "m", "ContainerConfig": {"PayloadConfig": {
                "SamplePayloadUrl": "s3://b/p.tar.gz"}},
                "EndpointConfigurations": [{"InstanceType": "ml.c5.large"}], **config}}


def test_stairs_follow_the_guides_reading():
    spec = JobSpec.parse(request(TrafficPattern={"TrafficType": "STAIRS", "Stairs": {
        "DurationInSeconds": 600, "NumberOfSteps": 5, "UsersPerStep": 2}}),
        Catalog.default(), machine_cores=2)
    assert [p.duration_seconds for p in spec.traffic.phases] == [120] * 5
    assert [spec.traffic.users_at(t) for t in (0, 130, 599, 700)] == [2, 4, 10, 10]


def test_phases_ramp_by_spawn_rate_per_minute():
    traffic = JobSpec.parse(request(TrafficPattern={"Phases": [
        {"InitialNumberOfUsers": 1, "SpawnRate": 2, "DurationInSeconds": 120}]}),
        Catalog.default(), 2).traffic
    assert isinstance(traffic, Traffic)
    assert [traffic.users_at(t) for t in (0, 30, 60, 119)] == [1, 2, 3, 4]


def test_default_picks_the_cheapest_type_of_each_family_the_machine_holds():
    names = [c.instance_type.name for c in default_candidates({}, Catalog.default(), 2)]
    assert names == ["ml.c5.large", "ml.m5.large", "ml.r5.large"]


@pytest.mark.parametrize("case, config, message", [
    ("both model and package", {"ModelPackageVersionArn": "arn:aws:sagemaker:x"},
     "exactly one of ModelName and ModelPackageVersionArn"),
    ("traffic longer than the job", {"JobDurationInSeconds": 60},
     "greater than InputConfig.JobDurationInSeconds"),
    ("an existing endpoint", {"Endpoints": [{"EndpointName": "e"}]},
     "does not benchmark existing endpoints"),
    ("serverless", {"EndpointConfigurations": [{"ServerlessConfig": {
        "MemorySizeInMB": 1024, "MaxConcurrency": 1}}]}, "instance types only"),
])
def test_bad_requests(case, config, message):
    with pytest.raises(ValidationError, match=message):
        JobSpec.parse(request(**config), Catalog.default(), 2)


def test_a_recommendation_replays_in_the_simulator_on_a_named_trace():
    from pathlib import Path

    from tideserve.recommender.replay import replay

    trace = Path(__file__).parents[2] / "examples/traces/azure_llm_code_2023_1s.csv"
    rec = {"EndpointConfiguration": {"InstanceType": "ml.c5.large", "InitialInstanceCount": 1},
           "Metrics": {"MaxInvocations": 30000, "ModelSetupTime": 3}}
    points = [{"users": 1, "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": 4.0, "per_minute": 25000},
              {"users": 4, "p50_ms": 6.0, "p95_ms": 9.0, "p99_ms": 12.0, "per_minute": 30000}]
    r = replay(rec, points, 15000, trace, slo_ms=50, percentile=95)
    assert r.instance_type == "ml.c5.large"
    assert r.cost_usd > 0 and 0 <= r.over_slo_share <= 1 and r.mean_instances >= 1


def test_a_job_a_stopped_server_left_running_is_failed_on_restart(tmp_path):
    from tideserve.clock import FakeClock
    from tideserve.control.names import Arns
    from tideserve.recommender.record import JobFiles, JobRecord
    from tideserve.recommender.service import Recommender

    files = JobFiles(tmp_path)
    files.save(JobRecord("ran", "arn:x", request("ran"), "IN_PROGRESS", 1.0, 1.0))
    files.save(JobRecord("stopping", "arn:y", request("stopping"), "STOPPING", 1.0, 1.0))
    ir = Recommender(files, None, None, None, Catalog.default(),  # type: ignore[arg-type]
                     Arns("us-east-1", "123456789012"), FakeClock(100.0))
    ran = ir.describe({"JobName": "ran"})
    assert ran["Status"] == "FAILED"
    assert ran["FailureReason"] == "The server stopped while the job ran"
    assert ir.describe({"JobName": "stopping"})["Status"] == "STOPPED"
    assert [r.status for r in JobFiles(tmp_path).load_all()] == ["FAILED", "STOPPED"]
