"""Real-time, serverless and async on one trace: the checked-in Azure segment at half its rate
then half an hour quiet (examples/scenarios/compare_kinds.yaml pointed at tests/data), and the
serverless and async models on hand-made traces whose answers are worked out below.

What is asserted about the comparison is what the model makes robust, not its exact figures:
- loose SLO (15 s at p99): serverless costs its GB-seconds (2 GB × ~0.18 s × 2870 requests ×
  $0.00002 ≈ $0.02) while real-time pays at least one instance for the whole 1.5 h
  (0.115 $/h ≈ $0.17): five times more, whatever the cold starts do;
- tight SLO (2 s at p99.9): a cold start (8 s) alone misses it, and about 0.7 % of the
  requests start a worker (fluid; 1.2 % request-level) — far above the 0.1 % allowed — while
  four instances absorb the bursts (34 req/s at most, 45 req/s of capacity) with no queue;
- async: the queue accepts everything at zero instances; the HasBacklogWithoutCapacity step
  policy leaves zero, target tracking on the backlog per instance returns to it once the
  queue stays empty in the quiet half hour.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.sim.builders import SEGMENT, scenario, write_trace
from tideserve.errors import ValidationError
from tideserve.sim.async_queue import AsyncQueueModel
from tideserve.sim.compare import cheapest, comparison_dict, kind_rows, verdict
from tideserve.sim.fluid import StepLog
from tideserve.sim.kinds import PROVISIONED_USD_PER_GB_SECOND
from tideserve.sim.profile import Profile, ServiceTime
from tideserve.sim.report import print_table, summary_dict
from tideserve.sim.result import AsyncFigures, ServerlessFigures
from tideserve.sim.run import simulate
from tideserve.sim.scenario import Slo, scenario_from_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "compare_kinds.yaml"
TIGHT = Slo(2.0, 99.9)


def on_segment(mode: str = "fluid", seed: int = 0) -> dict:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["trace"]["path"] = str(SEGMENT)
    raw["simulation"].update(mode=mode, seed=seed)
    return raw


@pytest.fixture(scope="module")
def loose():
    return simulate(scenario_from_dict(on_segment()))


@pytest.fixture(scope="module")
def tight():
    scn = scenario_from_dict(on_segment())
    return simulate(replace(scn, slo=TIGHT))


def by_name(result):
    return {r.name: r for r in result.runs}


def test_at_a_loose_slo_serverless_is_cheapest_and_meets_it(loose) -> None:
    rows = {r.name: r for r in kind_rows(loose)}
    assert [r.kind for r in rows.values()] == ["realtime", "realtime", "serverless", "async"]
    serverless, realtime = rows["serverless-2gb"], rows["realtime-tt"]
    assert serverless.meets_slo and realtime.meets_slo
    assert serverless.cost_usd * 4 < realtime.cost_usd
    assert cheapest(kind_rows(loose)).name == "serverless-2gb"
    assert "serverless-2gb (serverless)" in verdict(loose)
    # The serverless bill is its GB-seconds: 2 GB × the request duration, at $0.00002.
    figures = by_name(loose)["serverless-2gb"].figures
    assert isinstance(figures, ServerlessFigures)
    mean_s = loose.scenario.profile.service_time.mean
    assert figures.gb_seconds == pytest.approx(2 * mean_s * 2870, rel=1e-6)
    assert serverless.cost_usd == pytest.approx(figures.gb_seconds * 0.00002, rel=1e-6)


def test_at_a_tight_slo_only_real_time_capacity_held_for_the_bursts_meets_it(tight) -> None:
    rows = {r.name: r for r in kind_rows(tight)}
    serverless = rows["serverless-2gb"]
    # Every cold start misses a 2-s SLO: the share over it is at least the cold-start share.
    assert serverless.over_slo_share >= serverless.cold_starts / 2870 - 1e-9
    assert serverless.over_slo_share > 0.003 and not serverless.meets_slo
    assert rows["realtime-fixed-4"].over_slo_share == 0.0
    assert not rows["realtime-tt"].meets_slo  # one instance queues the bursts
    assert cheapest(kind_rows(tight)).name == "realtime-fixed-4"


def test_async_accepts_everything_at_zero_scales_out_and_back_to_zero(loose) -> None:
    run = by_name(loose)["async-scale-to-zero"]
    figures = run.figures
    assert isinstance(figures, AsyncFigures)
    assert run.summary.requests == pytest.approx(2870)
    assert run.summary.dropped == 0.0 and figures.expired == 0.0
    assert run.summary.served == pytest.approx(run.summary.requests)
    first, *_ = run.activities
    assert (first.desired, first.status_code) == (1, "Successful")
    assert "has-backlog-without-capacity" in first.cause
    serving = run.log.in_service
    assert serving[0] == 0 and serving.max() >= 2  # target tracking adds to the first one
    back = int(np.flatnonzero(serving > 0)[-1]) + 1
    assert 1800 < back < len(serving) and serving[-1] == 0  # zero again in the quiet tail
    assert any(a.desired == 0 for a in run.activities)
    # The first requests waited for the alarm (2 minutes) and an instance's 180-s start-up.
    assert figures.max_queue_age_seconds >= 180
    assert run.summary.cost_usd == pytest.approx(
        run.log.billed.sum() * loose.scenario.endpoint.hourly_usd / 3600)


def test_the_report_carries_the_comparison_and_each_kind_its_figures(loose) -> None:
    summary = summary_dict(loose, timing=False)
    comparison = summary["comparison"]
    assert comparison["cheapest_meeting_slo"] == "serverless-2gb"
    assert comparison["serverless_prices"]["on_demand_usd_per_gb_second"] == 0.00002
    entries = {p["name"]: p for p in summary["policy_sets"]}
    assert "kind" not in entries["realtime-tt"]
    assert entries["serverless-2gb"]["kind"] == "serverless"
    assert entries["async-scale-to-zero"]["figures"]["expired"] == 0.0
    assert comparison_dict(loose)["rows"][2]["cold_starts"] > 0
    out = io.StringIO()
    print_table(loose, out)
    lines = out.getvalue().splitlines()
    assert lines[3].split()[:4] == ["serverless-2gb", "0.02", "0.18x", "-"]  # no instances
    assert lines[-1].startswith("cheapest meeting the SLO (99 % of requests within 15 s): "
                                "serverless-2gb (serverless) at $0.02")


def test_fluid_and_request_level_serverless_agree_on_cost_and_workers(loose) -> None:
    fluid = by_name(loose)["serverless-2gb"]
    exact = [by_name(simulate(scenario_from_dict(on_segment("requests", seed)),
                              only="serverless-2gb"))["serverless-2gb"] for seed in (0, 1, 2)]
    assert fluid.summary.cost_usd == pytest.approx(
        np.mean([r.summary.cost_usd for r in exact]), rel=0.03)
    assert fluid.figures.mean_workers == pytest.approx(
        np.mean([r.figures.mean_workers for r in exact]), rel=0.15)
    # Cold starts are the fluid model's weak spot (Erlang B on a per-second Poisson load):
    # within a factor of two of the request-level mean.
    started = np.mean([r.figures.cold_starts + r.figures.throttled for r in exact])
    assert 0.5 < (fluid.figures.cold_starts + fluid.figures.throttled) / started < 2


# --- hand-made traces -------------------------------------------------------------------------


def serverless_only(tmp_path: Path, rates: list[float], mode: str = "requests",
                    **settings) -> dict:
    trace = write_trace(tmp_path / "t.csv", rates)
    config = {"memory_size_mb": 2048, "max_concurrency": 2, "cold_start_seconds": 5,
              "keep_alive_seconds": 10, **settings}
    return scenario(trace, {"name": "sl", "kind": "serverless", "serverless": config},
                    profile={"service_time": {"constant": 1.0}}, simulation={"mode": mode})


def test_serverless_cold_starts_throttles_and_keep_alive(tmp_path: Path) -> None:
    # 1-s service, 5-s cold start, at most 2 workers, kept 10 s idle. One request in each of
    # seconds 0, 1, 2 and 30: the first two start a worker each (6 s latency), the third finds
    # both starting and is throttled; by second 30 both have been idle > 10 s and stopped.
    rates = [1, 1, 1] + [0] * 27 + [1] + [0] * 9
    run = simulate(scenario_from_dict(serverless_only(tmp_path, rates))).runs[0]
    assert (run.figures.cold_starts, run.figures.throttled) == (3, 1)
    assert run.summary.latency_p50 == pytest.approx(6.0)
    assert run.summary.over_slo_share == 1.0  # every request missed the 1-s SLO
    assert run.log.in_service[10] == 2 and run.log.in_service[25] == 0
    assert run.summary.cost_usd == pytest.approx(3 * 1.0 * 2 * 0.00002)  # 3 s at 2 GB


def test_provisioned_workers_stay_warm_and_are_billed_while_idle(tmp_path: Path) -> None:
    rates = [1] + [0] * 99 + [1] + [0] * 19
    raw = serverless_only(tmp_path, rates, provisioned_concurrency=1)
    run = simulate(scenario_from_dict(raw)).runs[0]
    assert run.figures.cold_starts == 0 and run.summary.latency_p99 == pytest.approx(1.0)
    assert set(run.log.in_service.tolist()) == {1}
    assert run.figures.provisioned_usd == pytest.approx(120 * 2 * PROVISIONED_USD_PER_GB_SECOND)


def test_a_steady_trickle_during_cold_starts_starts_a_worker_per_request(
        tmp_path: Path) -> None:
    # One request a second, 1-s service, 5-s cold start, at most 5 workers: each of the first
    # five requests finds the workers before it still starting, and starts its own; the 6th
    # arrives before the first is ready and is throttled (the 7th too unless it comes later
    # in its second than the first did in its own). After that one warm worker suffices.
    exact = simulate(scenario_from_dict(serverless_only(tmp_path, [1] * 60,
                                                        max_concurrency=5))).runs[0]
    assert exact.figures.cold_starts == 5 and exact.figures.throttled in (1, 2)
    assert exact.log.in_service[:5].tolist() == [1, 2, 3, 4, 5]
    # The fluid model sees the same ramp, a little gentler (Erlang B on a Poisson load).
    fluid = simulate(scenario_from_dict(serverless_only(tmp_path, [1] * 60, mode="fluid",
                                                        max_concurrency=5))).runs[0]
    assert fluid.log.in_service[:5].tolist() == [1, 2, 3, 4, 5]
    assert 3 < fluid.figures.cold_starts + fluid.figures.throttled < 8
    for run in (exact, fluid):  # billed: 1 s of duration per served request at 2 GB
        assert run.summary.cost_usd == pytest.approx(run.summary.served * 2 * 0.00002)


def test_the_async_queue_worked_example() -> None:
    # 1 instance, 4 slots, 0.5 s → 8 req/s; 40 requests in the first second: the queue
    # empties at 5 s, the last request waited 4 s, and against a 3-s SLO the requests that
    # waited over 2.5 s (3 of the 8 slices evaluated) miss it.
    log = StepLog.empty(np.array([40.0] + [0.0] * 9))
    model = AsyncQueueModel(log, Profile("ml.m5.large", ServiceTime.constant(0.5), 4, 60.0),
                            4, 21_600, 1.0)
    model.advance(0, 10, 1)
    assert model.q[:6].tolist() == [0, 32, 24, 16, 8, 0]
    assert model.size[1] == 32 + 4  # queued + in processing
    wait, _ = model.finish(10, 3.0)
    assert log.wait[0] == pytest.approx(2.0) and model.max_queue_age(10) == pytest.approx(4.0)
    assert log.over[0] == pytest.approx(15.0)


def test_async_requests_expire_after_their_ttl_when_no_policy_leaves_zero(
        tmp_path: Path) -> None:
    # Target tracking alone (target 5) never leaves zero for a backlog of 3: after the 60-s
    # TTL the three requests expire, and the run ends there.
    trace = write_trace(tmp_path / "t.csv", [1, 1, 1] + [0] * 57)
    raw = scenario(trace, {"name": "a", "kind": "async",
                           "async": {"initial_instances": 0, "request_ttl_seconds": 60},
                           "register_scalable_target": {"MinCapacity": 0, "MaxCapacity": 2},
                           "put_scaling_policy": [{
                               "PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
                               "TargetTrackingScalingPolicyConfiguration": {
                                   "TargetValue": 5.0, "CustomizedMetricSpecification": {
                                       "MetricName": "ApproximateBacklogSizePerInstance",
                                       "Namespace": "AWS/SageMaker", "Statistic": "Average",
                                       "Dimensions": [{"Name": "EndpointName",
                                                       "Value": "${EndpointName}"}]}}}]})
    run = simulate(scenario_from_dict(raw)).runs[0]
    assert run.figures.expired == pytest.approx(3.0) and run.summary.served == 0.0
    assert run.summary.cost_usd == 0.0 and run.figures.max_queue_age_seconds == pytest.approx(60)


@pytest.mark.parametrize(("policy_set", "expected"), [
    ({"kind": "lambda"}, "kind 'lambda' is not one of realtime, serverless, async"),
    ({"kind": "serverless"}, "serverless: missing (memory_size_mb and max_concurrency"),
    ({"kind": "serverless", "serverless": {"memory_size_mb": 1000, "max_concurrency": 1}},
     "memory_size_mb' failed to satisfy constraint: Member must be one of [1024"),
    ({"kind": "serverless", "serverless": {"memory_size_mb": 1024, "max_concurrency": 1,
                                           "provisioned_concurrency": 2}},
     "provisioned_concurrency (2) must be less than or equal to max_concurrency (1)"),
    ({"kind": "serverless", "serverless": {"memory_size_mb": 1024, "max_concurrency": 1}},
     "(the profile's startup_seconds) failed to satisfy constraint: a serverless cold start"),
    ({"kind": "serverless", "serverless": {"memory_size_mb": 1024, "max_concurrency": 1,
                                           "cold_start_seconds": 5},
      "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 2}},
     "MaxCapacity (2) must be less than or equal to serverless.max_concurrency (1)"),
    ({"kind": "serverless", "serverless": {"memory_size_mb": 1024, "max_concurrency": 1,
                                           "cold_start_seconds": 5},
      "put_scaling_policy": [{"PolicyName": "p"}]},
     "put_scaling_policy given without register_scalable_target"),
    ({"kind": "async", "async": {"request_ttl_seconds": 30},
      "register_scalable_target": {"MinCapacity": 0, "MaxCapacity": 2}},
     "request_ttl_seconds' failed to satisfy constraint: Member must be between 60 and 21600"),
    ({"serverless": {"memory_size_mb": 1024, "max_concurrency": 1},
      "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 2}},
     "serverless: only for a policy set with kind: serverless"),
], ids=["unknown kind", "no serverless block", "memory size", "provisioned above max",
        "cold start over 3 min", "pc target above max concurrency",
        "pc policy without a target", "ttl", "block on realtime"])
def test_kind_settings_are_checked_at_load(policy_set: dict, expected: str) -> None:
    raw = scenario(SEGMENT, {"name": "k", **policy_set}, profile={"startup_seconds": 300})
    with pytest.raises(ValidationError) as info:
        scenario_from_dict(raw)
    assert expected in info.value.message
