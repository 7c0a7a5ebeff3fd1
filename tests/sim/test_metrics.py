"""The datapoints the engine reads from a simulated variant, per period, as the live metric
store would hold them (metrics.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.sim.fluid import FluidModel, StepLog
from tideserve.sim.metrics import SimMetrics
from tideserve.sim.profile import Profile, ServiceTime

T0 = 1_704_067_200.0
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def alarm(metric: str, stat: str = "Sum", namespace: str = "AWS/SageMaker", **extra):
    params = {"AlarmName": "a", "Namespace": namespace, "MetricName": metric, "Period": 60,
              "EvaluationPeriods": 3, "Threshold": 1, "Dimensions": DIMS,
              "ComparisonOperator": "GreaterThanThreshold", **extra}
    if stat.startswith("p"):
        params["ExtendedStatistic"] = stat
    else:
        params["Statistic"] = stat
    return validate_alarm(params, now=T0)


@pytest.fixture
def three_minutes() -> SimMetrics:
    """2 req/s for a minute on 2 instances, nothing for a minute, 6 req/s on 3 instances; a
    constant 0.25-s service, concurrency 2 (8 req/s per instance: no queueing)."""
    arrivals = np.array([2.0] * 60 + [0.0] * 60 + [6.0] * 60)
    log = StepLog.empty(arrivals)
    profile = Profile("ml.m5.large", ServiceTime.constant(0.25), 2, 60.0, vcpu=2)
    model = FluidModel(log, profile, 1.0, 1.0)
    for start, n in ((0, 2), (60, 2), (120, 3)):
        log.in_service[start:start + 60] = n
        model.advance(start, start + 60, n)
    metrics = SimMetrics(log, T0, 1.0, "ep", "AllTraffic", profile)
    metrics.final_steps = 180
    return metrics


def test_invocations_per_instance_sums_one_over_instances_per_request_and_zero_fills(
        three_minutes: SimMetrics) -> None:
    points = three_minutes.datapoints(alarm("InvocationsPerInstance"), 60, T0 + 182)
    assert points == {T0: pytest.approx(60.0), T0 + 60: 0.0, T0 + 120: pytest.approx(120.0)}
    invocations = three_minutes.datapoints(alarm("Invocations"), 60, T0 + 182)
    assert list(invocations.values()) == [pytest.approx(120), 0.0, pytest.approx(360)]


def test_only_closed_periods_are_seen(three_minutes: SimMetrics) -> None:
    assert list(three_minutes.datapoints(alarm("Invocations"), 60, T0 + 119)) == [T0]


def test_model_latency_in_microseconds_and_missing_without_traffic(
        three_minutes: SimMetrics) -> None:
    points = three_minutes.datapoints(alarm("ModelLatency", "Average"), 60, T0 + 182)
    assert points == {T0: pytest.approx(250_000), T0 + 120: pytest.approx(250_000)}
    p99 = three_minutes.datapoints(alarm("ModelLatency", "p99"), 60, T0 + 182)
    assert p99[T0] == pytest.approx(250_000, rel=0.01)


def test_cpu_is_the_busy_share_of_concurrency_slots_and_other_dimensions_see_nothing(
        three_minutes: SimMetrics) -> None:
    cpu = alarm("CPUUtilization", "Average", namespace="/aws/sagemaker/Endpoints")
    points = three_minutes.datapoints(cpu, 60, T0 + 182)
    # 2 req/s × 0.25 s over 2 instances × 2 slots = 12.5 %; 6 × 0.25 / (3 × 2) = 25 %.
    assert points[T0] == pytest.approx(12.5) and points[T0 + 120] == pytest.approx(25.0)
    other = alarm("Invocations", Dimensions=[{"Name": "EndpointName", "Value": "other"}])
    assert three_minutes.datapoints(other, 60, T0 + 182) == {}


def with_profile(metrics: SimMetrics, **fields: float) -> SimMetrics:
    out = SimMetrics(metrics.log, T0, 1.0, "ep", "AllTraffic", replace(metrics.profile, **fields))
    out.final_steps = metrics.final_steps
    return out


def test_the_metrics_live_publishes_beside_latency_are_there_in_rehearsal(
        three_minutes: SimMetrics) -> None:
    """An alarm on 4XX errors, overhead or memory finds data as it would live, not
    INSUFFICIENT_DATA."""
    errors = three_minutes.datapoints(alarm("Invocation4XXErrors"), 60, T0 + 182)
    assert errors == {T0: 0.0, T0 + 60: 0.0, T0 + 120: 0.0}
    profiled = with_profile(three_minutes, overhead_seconds=0.002, memory_percent=41.5)
    overhead = profiled.datapoints(alarm("OverheadLatency", "Average"), 60, T0 + 182)
    assert overhead == {T0: pytest.approx(2_000), T0 + 120: pytest.approx(2_000)}
    memory = alarm("MemoryUtilization", "Maximum", namespace="/aws/sagemaker/Endpoints")
    assert profiled.datapoints(memory, 60, T0 + 182) == {
        T0: pytest.approx(41.5), T0 + 60: pytest.approx(41.5), T0 + 120: pytest.approx(41.5)}
    assert three_minutes.datapoints(memory, 60, T0 + 182) == {}
