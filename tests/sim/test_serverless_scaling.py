"""Application Auto Scaling of a serverless variant's provisioned concurrency, simulated
through the live tick (request-level mode), as tests/integration/test_serverless_scaling.py
runs it on a live server.

The traffic: 3 requests a second of 1 s each for 15 minutes (about 3 in flight), then 25
minutes quiet. ProvisionedConcurrency starts at 1, MaxConcurrency 8, target tracking on
SageMakerVariantProvisionedConcurrencyUtilization at 0.5 between 1 and 4:

- t = 182 s (the third minute above target, evaluated 2 s after the minute): PC 1 is busy
  nearly all the time, utilization ~1.0 -> ceil(1 x 1.0 / 0.5) = 2;
- t = 242 s (one more minute, the scale-out cooldown of 60 s having passed): ~0.9 at PC 2 ->
  ceil(2 x 0.9 / 0.5) = 4, the maximum; at 4 (~0.7) it asks for 6, beyond the maximum;
- t = 1802 s: AlarmLow has seen 15 quiet minutes (from 900 s) -> ceil(4 x 0 / 0.5) = 0 ->
  the minimum, 1.

The on-demand workers already alive cover each raised ProvisionedConcurrency (as live: the
pool counts them), so each change completes at once; a scheduled raise while idle shows the
other case, provisioned workers cold-started and the variant Updating meanwhile. The fluid
mode, whose utilization is an expectation (serverless_fluid.py), decides the same here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim.builders import scenario, write_trace
from tideserve.sim.kinds import PROVISIONED_USD_PER_GB_SECOND
from tideserve.sim.run import simulate
from tideserve.sim.scenario import DEFAULT_START, scenario_from_dict
from tideserve.sim.serverless_loop import ServerlessLoop

T0 = DEFAULT_START.timestamp()
PC_TRACKING = {
    "PolicyName": "pc", "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 0.5, "ScaleOutCooldown": 60, "ScaleInCooldown": 60,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"}}}


def serverless_set(**calls: object) -> dict:
    return {"name": "pc", "kind": "serverless",
            "serverless": {"memory_size_mb": 2048, "max_concurrency": 8,
                           "provisioned_concurrency": 1, "cold_start_seconds": 5,
                           "keep_alive_seconds": 120},
            "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 4}, **calls}


def raw_scenario(tmp_path: Path, rates: list[float], mode: str = "requests",
                 **calls: object) -> dict:
    trace = write_trace(tmp_path / "t.csv", rates)
    return scenario(trace, serverless_set(**calls), profile={"service_time": {"constant": 1.0}},
                    simulation={"mode": mode})


@pytest.mark.parametrize("mode", ["requests", "fluid"])
def test_target_tracking_scales_provisioned_concurrency_out_under_load_and_back_in(
        tmp_path: Path, mode: str) -> None:
    raw = raw_scenario(tmp_path, [3] * 900 + [0] * 1500, mode,
                       put_scaling_policy=[PC_TRACKING])
    run = simulate(scenario_from_dict(raw)).runs[0]
    acts = run.activities
    assert [(a.start_time - T0, a.desired, a.status_code) for a in acts] == [
        (182.0, 2, "Successful"), (242.0, 4, "Successful"), (1802.0, 1, "Successful")]
    assert [a.description for a in acts] == [
        f"Setting desired provisioned concurrency to {n}." for n in (2, 4, 1)]
    assert all(a.key.scalable_dimension == "sagemaker:variant:DesiredProvisionedConcurrency"
               for a in acts)
    assert ["AlarmHigh" in a.cause for a in acts] == [True, True, False]
    assert "AlarmLow" in acts[2].cause and "triggered policy pc" in acts[2].cause
    assert all("provisioned concurrency" in (a.status_message or "") for a in acts)
    # Provisioned concurrency is billed while configured: 1 unit for 182 s, 2 for 60 s, 4 for
    # 1560 s, 1 for the last 598 s -> 7140 unit-seconds at 2 GB.
    assert run.figures is not None
    assert run.figures.provisioned_usd == pytest.approx(
        7140 * 2 * PROVISIONED_USD_PER_GB_SECOND)
    # The pool kept ProvisionedConcurrency warm once the traffic stopped: 4 workers until the
    # scale-in, 1 after (the others expired after the 120-s keep-alive).
    assert set(run.log.in_service[1100:1800].tolist()) == {4}
    assert set(run.log.in_service[-300:].tolist()) == {1}


def test_a_scheduled_raise_cold_starts_the_provisioned_workers(tmp_path: Path) -> None:
    # Idle from the start; at 00:02 a scheduled action raises the minimum to 3: two workers
    # cold-start (5 s), the variant is Updating meanwhile, and the activity completes when
    # they are warm — billed from then on, as live (CurrentServerlessConfig).
    raw = raw_scenario(tmp_path, [0] * 300, put_scheduled_action=[{
        "ScheduledActionName": "prewarm", "Schedule": "at(2024-01-01T00:02:00)",
        "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 4}}])
    scn = scenario_from_dict(raw)
    loop = ServerlessLoop(scn, scn.policy_sets[0], scn.arrivals())
    loop.run()
    scaled, _ = loop.activities()
    assert [(a.start_time - T0, a.end_time and a.end_time - T0, a.desired) for a in scaled] == [
        (120.0, 125.0, 3)]
    assert "scheduled action name prewarm" in scaled[0].cause
    assert "took 5.0 s from decision to serving" in (scaled[0].status_message or "")
    assert loop.log.in_service[119] == 1 and loop.log.in_service[120] == 3  # starting count
    assert loop.workers.tally.provisioned[[119, 124, 125]].tolist() == [1, 1, 3]


def test_the_simulated_variant_publishes_the_live_serverless_metrics(tmp_path: Path) -> None:
    # Alarms (no actions) on what the live variant publishes, read after the run: 4 requests a
    # second against MaxConcurrency 8 throttles during the first cold starts (5 s), and those
    # count as Invocations with an Invocation4XXError each, as live.
    def alarm(name: str, metric: str, stat: str, namespace: str = "AWS/SageMaker") -> dict:
        return {"AlarmName": name, "MetricName": metric, "Namespace": namespace,
                "Statistic": stat, "Period": 60, "EvaluationPeriods": 1, "Threshold": 1e9,
                "ComparisonOperator": "GreaterThanThreshold",
                "Dimensions": [{"Name": "EndpointName", "Value": "${EndpointName}"},
                               {"Name": "VariantName", "Value": "${VariantName}"}]}

    raw = raw_scenario(tmp_path, [4] * 120, put_metric_alarm=[
        alarm("inv", "Invocations", "Sum"), alarm("4xx", "Invocation4XXErrors", "Sum"),
        alarm("pc", "ServerlessProvisionedConcurrencyUtilization", "Average"),
        alarm("exec", "ServerlessProvisionedConcurrencyExecutions", "Maximum"),
        alarm("conc", "ServerlessConcurrentExecutionsUtilization", "Average"),
        alarm("spill", "ServerlessProvisionedConcurrencySpilloverInvocations", "Sum"),
        alarm("setup", "ModelSetupTime", "Average"), alarm("lat", "ModelLatency", "Average"),
        alarm("ipi", "InvocationsPerInstance", "Sum")])
    raw["profile"]["memory_percent"] = 40.0
    scn = scenario_from_dict(raw)
    loop = ServerlessLoop(scn, scn.policy_sets[0], scn.arrivals())
    loop.run()
    alarms = {r.alarm.name: r.alarm for r in loop.world.alarms}
    end = T0 + 120 + 2

    def points(name: str) -> list[float]:
        return list(loop.metrics.datapoints(alarms[name], 60.0, end).values())

    throttled = float(loop.log.dropped[:60].sum())
    assert throttled > 0
    assert points("inv") == [float(loop.log.arrivals[:60].sum()), float(
        loop.log.arrivals[60:].sum())]
    assert points("4xx")[0] == throttled
    assert 0.9 < points("pc")[0] <= 1.0 and points("exec") == [1.0, 1.0]
    assert 0.3 < points("conc")[0] < 1.0
    on_pc = float(loop.workers.figures.on_pc[:60].sum())
    assert points("spill")[0] == float(loop.log.served[:60].sum()) - on_pc > 0
    assert points("setup")[0] == pytest.approx(5e6)  # the cold start, in microseconds
    assert points("lat") == pytest.approx([1e6, 1e6])  # the model's time only
    assert points("ipi") == []  # serverless variants do not publish it
