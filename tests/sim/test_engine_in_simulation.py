"""The simulator drives the live scaling engine: spec §1.3's worked example, with the load
coming from a trace instead of hand-set metric values, and the metrics the engine sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim.builders import scenario, target_tracking, write_trace
from tideserve.sim.run import simulate
from tideserve.sim.scenario import scenario_from_dict


def test_spec_example_scales_two_to_five_then_fifteen_quiet_minutes_bring_it_to_three(
        tmp_path: Path) -> None:
    # Two instances, 175 invocations per instance per minute for ten minutes, then 40 per
    # instance (at five instances) for twenty: target 70.
    rates = [350 / 60] * 600 + [200 / 60] * 1200
    trace = write_trace(tmp_path / "spec.csv", rates)
    raw = scenario(trace, {"name": "tt", "register_scalable_target": {
        "MinCapacity": 1, "MaxCapacity": 10}, "put_scaling_policy": [target_tracking(70.0)]},
        endpoint={"initial_instances": 2},
        profile={"service_time": {"constant": 0.1}, "concurrency": 10})
    result = simulate(scenario_from_dict(raw))
    t0 = result.scenario.options.start_time
    [out, back] = result.runs[0].activities
    # The third breaching minute closes at 180 s and is evaluated 2 s later (the driver's
    # evaluation delay): ceil(2 × 175 / 70) = 5; the instances serve 120 s later.
    assert (out.start_time - t0, out.desired, out.end_time - t0) == (182, 5, 302)
    assert "AlarmHigh" in out.cause and out.status_code == "Successful"
    assert out.status_message.endswith(
        "The change took 120.0 s from decision to serving; instances started in 120.0 s.")
    # 40 < 63 (0.9 × 70) for the fifteen minutes 10..24 → at 25 min: ceil(5 × 40 / 70) = 3,
    # and a scale-in completes at once.
    assert (back.start_time - t0, back.desired, back.end_time - t0) == (1502, 3, 1502)
    assert "AlarmLow" in back.cause
    log = result.runs[0].log
    assert log.in_service[:302].tolist() == [2] * 302
    assert set(log.in_service[302:1502].tolist()) == {5}
    assert log.billed[182] == 5 and log.in_service[182] == 2  # billed from the decision
    assert result.runs[0].summary.instance_hours * 3600 == pytest.approx(
        182 * 2 + (1502 - 182) * 5 + (1800 - 1502) * 3)


def test_a_scheduled_action_fires_at_its_time_and_one_due_while_updating_fails(
        tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "flat.csv", [1.0] * 900)
    raw = scenario(trace, {"name": "sched", "register_scalable_target": {
        "MinCapacity": 1, "MaxCapacity": 10}, "put_scheduled_action": [
        {"ScheduledActionName": "up", "Schedule": "at(2024-01-01T00:05:00)",
         "ScalableTargetAction": {"MinCapacity": 4}},
        {"ScheduledActionName": "down", "Schedule": "at(2024-01-01T00:06:00)",
         "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 2}}]})
    result = simulate(scenario_from_dict(raw))
    t0 = result.scenario.options.start_time
    acts = [(a.start_time - t0, a.desired, a.status_code) for a in result.runs[0].activities]
    # At 300 s Min 4 raises the capacity (120 s start-up). At 360 s the endpoint is still
    # Updating, so the engine fails the action that lowers Max to 2, saying why.
    assert acts == [(300, 4, "Successful"), (360, 2, "Failed")]
    assert result.runs[0].activities[1].status_message.endswith(
        "is not scalable. Reason: the endpoint is Updating")
    assert result.runs[0].log.in_service[-1] == 4
