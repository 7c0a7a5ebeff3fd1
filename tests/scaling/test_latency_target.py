"""tideserve's latency target: capacity from M/M/c with the measured service time, feedback
from the measured share over the target, scale-in after a window of lower proposals."""

from __future__ import annotations

import math

import pytest

from tideserve.errors import ValidationError
from tideserve.scaling.latency_target import (
    LatencyTargetConfig,
    LatencyTargetState,
    ServiceMeasure,
    decide,
    queueing_capacity,
    wait_tail,
)

CONFIG = LatencyTargetConfig(latency_seconds=8.0, percentile=99.0, max_utilization=0.9,
                             scale_in_window=600.0, min_capacity=1, max_capacity=64)


def measure(rate: float, over: float | None = None) -> ServiceMeasure:
    return ServiceMeasure(arrival_rate=rate, service_mean=1.0, service_tail=4.0,
                          concurrency=8, over_share=over)


def test_wait_tail_is_erlang_c_times_the_exponential_decay() -> None:
    # one slot, λ = 0.5, S̄ = 1: M/M/1, C = ρ = 0.5; P(W > 2) = 0.5 e^{-(1 - 0.5) 2}
    one = ServiceMeasure(0.5, 1.0, 1.0, 1)
    assert wait_tail(1, one, 2.0) == pytest.approx(0.5 * math.exp(-1.0))
    assert wait_tail(1, ServiceMeasure(1.0, 1.0, 1.0, 1), 0.0) == 1.0  # saturated
    assert wait_tail(0, one, 1.0) == 1.0


def test_worked_example_utilisation_cap_binds_before_the_tail() -> None:
    # 30 req/s × 1 s = 30 busy slots; 4 instances (32 slots) meet the tail (P ≈ 2e-4) but
    # run at 94 % > 90 %: 5 instances.
    assert wait_tail(4, measure(30.0), 4.0) < 0.005
    n, why = queueing_capacity(CONFIG, measure(30.0))
    assert n == 5 and "M/M/c" in why


def test_the_tail_binds_when_the_budget_is_tight() -> None:
    tight = LatencyTargetConfig(latency_seconds=4.05, max_utilization=1.0)
    n, _ = queueing_capacity(tight, measure(30.0))
    # a 0.05-s wait budget: P(wait > 0.05 s) is 0.57 with 4 instances, 0.034 with 5 (both
    # over ε/2 = 0.005 though 5 run at 75 %), 6.5e-4 with 6
    assert n == 6
    assert wait_tail(5, measure(30.0), 0.05) > 0.005 >= wait_tail(6, measure(30.0), 0.05)


def test_a_target_below_the_service_time_asks_for_the_maximum() -> None:
    n, why = queueing_capacity(LatencyTargetConfig(latency_seconds=3.0), measure(10.0))
    assert n == 64 and "exceeds" in why


def test_scale_out_is_immediate_and_scale_in_waits_for_the_window() -> None:
    state, now = LatencyTargetState(), 0.0
    d = decide(CONFIG, state, measure(30.0), current=2, now=now)
    assert d.desired == 5 and d.reason.startswith("scale out")  # t=0: out at once
    state = d.state
    for now in (60.0, 300.0, 599.0):  # load falls to 5 req/s: proposal 1, but hold 5
        d = decide(CONFIG, state, measure(5.0), current=5, now=now)
        assert d.desired == 5 and d.proposal == 1, now
        state = d.state
    d = decide(CONFIG, state, measure(5.0), current=5, now=660.0)  # window passed
    assert d.desired == 1 and "scale in" in d.reason


def test_a_proposal_within_the_window_sets_the_scale_in_floor() -> None:
    state = decide(CONFIG, LatencyTargetState(), measure(5.0), 5, 0.0).state
    state = decide(CONFIG, state, measure(20.0), 5, 300.0).state  # proposes 3
    d = decide(CONFIG, state, measure(5.0), 5, 700.0)
    assert d.desired == 3  # the highest proposal of (100, 700]


def test_measured_misses_add_an_instance_the_model_did_not_ask_for() -> None:
    d = decide(CONFIG, LatencyTargetState(), measure(5.0, over=0.03), current=3, now=0.0)
    assert d.desired == 4 and "over" in d.reason
    d = decide(CONFIG, LatencyTargetState(), measure(5.0, over=0.005), current=3, now=0.0)
    assert d.desired == 3  # within the 1 % the target allows: hold


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="max_utilization"):
        LatencyTargetConfig(latency_seconds=1.0, max_utilization=1.5)
    with pytest.raises(ValidationError, match="percentile"):
        LatencyTargetConfig(latency_seconds=1.0, percentile=100)
