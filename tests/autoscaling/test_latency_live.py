"""The live latency-target policy (autoscaling.latency_driver) on a fake clock and a fake
metric store: its decision equals the simulator's on the same inputs, it respects the target's
bounds, and PutLatencyTargetPolicy refuses bad parameters in AWS's words."""

from __future__ import annotations

import pytest

from tests.autoscaling.conftest import Env
from tests.autoscaling.harness import RESOURCE, T0, target_params
from tideserve.autoscaling.latency_driver import (
    LatencyPolicyRunner,
    build_latency_policies,
    share_over,
)
from tideserve.autoscaling.latency_policies import LatencyPolicyApi
from tideserve.errors import ValidationError
from tideserve.metrics.model import Datapoint, Dimensions
from tideserve.metrics.sketch import SketchBuilder
from tideserve.scaling.latency_policy import PolicyState, evaluate
from tideserve.scaling.latency_target import ServiceMeasure
from tideserve.sim.extension_spec import parse_tideserve_policy

PERIOD = 60.0


class Metrics:
    """Datapoints per (metric, period start), as the metric store aggregates them."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, float], Datapoint] = {}

    def put_period(self, start: float, requests: int, latencies_s: list[float]) -> None:
        dims = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
        self.points[("Invocations", start)] = Datapoint(
            "AWS/SageMaker", "Invocations", dims, start, "None", 1, requests, requests, requests)
        b = SketchBuilder()
        for v in latencies_s:
            b.add(v * 1e6)
        us = [v * 1e6 for v in latencies_s]
        self.points[("ModelLatency", start)] = Datapoint(
            "AWS/SageMaker", "ModelLatency", dims, start, "Microseconds", len(us), sum(us),
            min(us), max(us), b.freeze())

    def aggregate(self, namespace: str, name: str, dims: Dimensions, start: float, end: float,
                  period: float, unit: str | None = None, *,
                  with_sketch: bool = True) -> list[Datapoint]:
        return [p for (n, t), p in sorted(self.points.items(), key=lambda kv: kv[0][1])
                if n == name and start <= t < end]


def setup(env: Env, lo: int = 1, hi: int = 10) -> tuple[LatencyPolicyRunner, LatencyPolicyApi,
                                                       Metrics]:
    env.aas.register_scalable_target({**target_params(), "MinCapacity": lo, "MaxCapacity": hi})
    metrics = Metrics()
    runner, ops = build_latency_policies(env.engine, env.store, metrics, env.fleet, env.clock,
                                         env.settings)
    api = ops["PutLatencyTargetPolicy"].__self__
    assert isinstance(api, LatencyPolicyApi)
    return runner, api, metrics


def test_the_live_decision_equals_the_simulators_on_the_same_inputs(env: Env):
    runner, api, metrics = setup(env)
    api.put({"ResourceId": RESOURCE, "LatencyBoundMs": 8000, "TargetShareOverBound": 0.01,
             "Concurrency": 8, "ScaleInWindowSeconds": 600})
    # The last closed minute: 1800 requests (30 req/s), each 1 s, tail 4 s.
    latencies = [1.0] * 1700 + [4.0] * 100
    metrics.put_period(T0, 1800, latencies)
    now = T0 + PERIOD + 5  # after the evaluation delay
    env.clock.set(now)
    [activity] = runner.run(now)

    # The simulator's path: its scenario config and a measure of the same numbers.
    sim = parse_tideserve_policy({"latency_target": {"latency_seconds": 8, "percentile": 99,
                                                      "scale_in_window": 600}},
                                 "p", {"MinCapacity": 1, "MaxCapacity": 10}, (8.0, 99.0))
    mean = sum(latencies) / len(latencies)
    tail = max(latencies)  # the 0.995 quantile of this sample is its 4-s mode
    expected = evaluate(sim.latency_target, None, PolicyState(),
                        ServiceMeasure(30.0, mean, tail, 8, 0.0), True, 30.0, 2, now)
    assert activity.desired == expected.desired > 2
    assert activity.cause.startswith("tideserve latency-target policy on "
                                      f"{RESOURCE} (p99 ModelLatency ≤ 8000 ms)")
    assert env.fleet.endpoints[RESOURCE].desired == expected.desired


def test_the_target_max_bounds_the_policy_and_a_breach_scales_out(env: Env):
    runner, api, metrics = setup(env, 1, 3)
    api.put({"ResourceId": RESOURCE, "LatencyBoundMs": 500})
    # 0.6-s service: over the bound alone — the model asks for everything, the max caps it.
    metrics.put_period(T0, 60, [0.6] * 60)
    env.clock.set(T0 + PERIOD + 5)
    [activity] = runner.run(T0 + PERIOD + 5)
    assert activity.desired == 3 and "exceeds" in activity.cause
    assert runner.run(T0 + PERIOD + 6) == []  # same period: nothing new


def test_share_over_reads_the_sketch():
    b = SketchBuilder()
    for v in [100.0] * 98 + [1000.0] * 2:
        b.add(v)
    assert share_over(b.freeze(), 500.0) == pytest.approx(0.02)
    assert share_over(b.freeze(), 2000.0) == 0.0


@pytest.mark.parametrize("params, needle", [
    ({"LatencyBoundMs": 0}, "LatencyBoundMs"),
    ({"LatencyBoundMs": 100, "TargetShareOverBound": 0}, "TargetShareOverBound"),
    ({"LatencyBoundMs": 100, "MetricName": "CPUUtilization"}, "MetricName"),
    ({"LatencyBoundMs": 100, "Burst": {"Threshold": 0.5}}, "Threshold"),
    ({"LatencyBoundMs": 100, "ResourceId": "endpoint/ep"}, "Unsupported resource ID"),
    ({"LatencyBoundMs": 100, "ResourceId": "endpoint/other/variant/AllTraffic"},
     "No scalable target"),
])
def test_put_refuses_bad_parameters(env: Env, params, needle):
    _, api, _ = setup(env)
    with pytest.raises(ValidationError, match=needle):
        api.put({"ResourceId": RESOURCE, **params})
