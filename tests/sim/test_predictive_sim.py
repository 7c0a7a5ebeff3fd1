"""A predictive policy decides the same live and simulated (DESIGN.md principle 1): the live
ScalingDriver, stepping every second on a fake clock with its metric store answering from the
trace, and the simulator's EndpointLoop on the same trace, its first two days taken as
history, record the same activities — ids, causes, capacities and times.

Trace: one-minute bins, 50 invocations a minute, rising from 01:00 over 20 minutes to 1,250
and back down from 01:50 each day. TargetValue 100 per instance per minute, buffer 300 s,
MaxCapacity 10: the policy steps the capacity up from 00:56 (one bin ahead of 01:01's 110), one
step per minute while the endpoint is InService (instances start in 120 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.sim.builders import scenario
from tideserve.autoscaling.driver import ScalingDriver
from tideserve.autoscaling.storage import MemoryScalingStore
from tideserve.clock import FakeClock
from tideserve.metrics.model import Dimensions
from tideserve.scaling.predictive_model import MetricStatQuery
from tideserve.settings import Settings
from tideserve.sim import scenario_from_dict
from tideserve.sim.endpoint import SimEndpoint
from tideserve.sim.engine_adapter import build_world
from tideserve.sim.loop import EndpointLoop
from tideserve.sim.predictive import TraceLoad, split_history
from tideserve.sim.run import simulate

DAY_MINUTES = 1440
EVALUATED_MINUTES = 180


def per_minute(minute_of_day: int) -> float:
    ramp = np.clip((minute_of_day - 60) / 20, 0, 1) - np.clip((minute_of_day - 110) / 20, 0, 1)
    return float(50 + 1200 * ramp)


def write_minutes(path: Path) -> Path:
    minutes = 2 * DAY_MINUTES + EVALUATED_MINUTES
    rows = [f"{60 * i},{per_minute(i % DAY_MINUTES):g}" for i in range(minutes)]
    path.write_text("t_seconds,requests\n" + "\n".join(rows) + "\n")
    return path


PREDICTIVE = {
    "name": "predictive", "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 10},
    "put_scaling_policy": [{
        "PolicyName": "forecast", "PolicyType": "PredictiveScaling",
        "PredictiveScalingPolicyConfiguration": {
            "MetricSpecifications": [{"TargetValue": 100.0, "PredefinedMetricPairSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}],
            "Mode": "ForecastAndScale", "SchedulingBufferTime": 300}}],
}


class TraceMetrics:
    """The live driver's MetricSeries, answering from the trace as the metric store would."""

    def __init__(self, load: TraceLoad) -> None:
        self.load = load

    def series(self, namespace: str, name: str, dims: Dimensions, stat: str, period: float,
               start: float, end: float, unit: str | None = None) -> list[tuple[float, float]]:
        q = MetricStatQuery("q", namespace, name, stat, dims, unit)
        return sorted(self.load.read(q, start, end, period).items())


class LivePort:
    """SageMaker's side of the live driver: the simulator's endpoint model at the clock."""

    def __init__(self, endpoint: SimEndpoint, clock: FakeClock) -> None:
        self.endpoint, self.clock = endpoint, clock

    def capacity(self, resource_id: str):
        return self.endpoint.capacity(resource_id)

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        self.endpoint.set_desired_capacity(resource_id, n, self.clock.now())


def test_the_simulator_and_the_live_driver_make_the_same_predictive_decisions(tmp_path):
    raw = scenario(write_minutes(tmp_path / "trace.csv"), PREDICTIVE,
                   simulation={"step_seconds": 60, "metric_period": 60,
                               "history_seconds": 2 * 86400})
    whole = scenario_from_dict(raw)
    evaluated, history, arrivals = split_history(whole, whole.arrivals())
    assert len(history) == 2 * DAY_MINUTES and len(arrivals) == EVALUATED_MINUTES

    simulated = EndpointLoop(evaluated, evaluated.policy_sets[0], arrivals, history=history)
    simulated.run()
    sim_activities, _ = simulated.activities()

    ep, t0 = evaluated.endpoint, evaluated.options.start_time
    store = MemoryScalingStore()
    world = build_world(evaluated.policy_sets[0], ep.name, ep.variant, 1, t0)
    for record in world.targets:
        store.put_target(record)
    for policy in world.policies:
        store.put_policy(policy)
    clock = FakeClock(t0)
    endpoint = SimEndpoint(ep.resource_id, 1, evaluated.profile.startup_seconds)
    load = TraceLoad(np.concatenate([history, arrivals]), t0 - len(history) * 60, 60.0,
                     ep.name, ep.variant)
    driver = ScalingDriver(store, TraceMetrics(load), LivePort(endpoint, clock), clock,
                           Settings(period=60.0), tick_seconds=1.0)
    live = {}
    for second in range(EVALUATED_MINUTES * 60):
        now = t0 + second
        clock.set(now)
        endpoint.advance(now)
        for a in driver.step(now).activities:
            live[a.activity_id] = a
    live_activities = sorted((a for a in live.values() if a.scaled),
                             key=lambda a: (a.start_time, a.activity_id))

    def decisions(acts):
        return [(a.activity_id, a.start_time, a.desired, a.cause, a.status_code, a.end_time)
                for a in acts]

    assert decisions(live_activities) == decisions(sim_activities)
    first = sim_activities[0]
    assert first.cause == "predictive scaling policy forecast forecasted capacity 2"
    assert first.start_time == t0 + 56 * 60 + 2  # 01:01's bin, 300 s ahead, at the slot
    assert max(a.desired for a in sim_activities) == 10  # HonorMaxCapacity


def test_a_serverless_variant_forecasts_its_provisioned_concurrency(tmp_path):
    """The same policy on a serverless variant's provisioned concurrency: TargetValue is
    invocations per minute per provisioned worker (1,250 at the peak / 400 → 4, its max)."""
    policy = {**PREDICTIVE["put_scaling_policy"][0]}
    config = policy["PredictiveScalingPolicyConfiguration"]
    spec = {**config["MetricSpecifications"][0], "TargetValue": 400.0}
    policy["PredictiveScalingPolicyConfiguration"] = {**config, "MetricSpecifications": [spec]}
    serverless = {"name": "pc", "kind": "serverless",
                  "serverless": {"memory_size_mb": 2048, "max_concurrency": 8,
                                 "provisioned_concurrency": 1, "cold_start_seconds": 5},
                  "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 4},
                  "put_scaling_policy": [policy]}
    raw = scenario(write_minutes(tmp_path / "trace.csv"), serverless,
                   simulation={"step_seconds": 60, "metric_period": 60,
                               "history_seconds": 2 * 86400})
    run = simulate(scenario_from_dict(raw)).runs[0]
    predicted = [a for a in run.activities if a.cause.startswith("predictive scaling policy")]
    assert predicted and predicted[0].description.startswith(
        "Setting desired provisioned concurrency to")
    assert max(a.desired for a in predicted) == 4
