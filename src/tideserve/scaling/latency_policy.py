"""tideserve extension (beyond AWS): one evaluation of a latency target with an optional
burst mode — the composition the simulator (sim.extension) and the live driver
(autoscaling.latency_driver) both run, so the two decide alike on the same inputs.

At a metric period's close (`on_period`, or at the first evaluation) the latency target
decides from the period's measure; in between, its last proposal stands. The burst mode, when
configured, then reads the short window's arrival rate and may override it (scale out at
once, hold scale-in). The result is clamped to [min_capacity, max_capacity].

Pure: plain values in, a decision with its reason out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideserve.scaling.burst import BurstConfig, BurstState, decide_burst
from tideserve.scaling.latency_target import (
    LatencyTargetConfig,
    LatencyTargetState,
    ServiceMeasure,
    decide,
)


@dataclass(frozen=True)
class PolicyState:
    latency: LatencyTargetState = field(default_factory=LatencyTargetState)
    burst: BurstState = field(default_factory=BurstState)
    proposal: int | None = None  # the latency target's last desired capacity


@dataclass(frozen=True)
class PolicyDecision:
    desired: int
    state: PolicyState
    reason: str  # "" when nothing was decided anew (between periods, no burst)


def evaluate(config: LatencyTargetConfig, burst: BurstConfig | None, state: PolicyState,
             measure: ServiceMeasure, on_period: bool, short_rate: float, current: int,
             now: float) -> PolicyDecision:
    """`measure` is the last closed period's; `short_rate` the burst window's arrivals per
    second; `current` the capacity asked for now."""
    reason = ""
    lt_state, proposal = state.latency, state.proposal
    if on_period or proposal is None:
        d = decide(config, lt_state, measure, current, now)
        lt_state, proposal, reason = d.state, d.desired, d.reason
    desired = proposal
    burst_state = state.burst
    if burst is not None:
        b = decide_burst(burst, burst_state, short_rate, measure.service_mean,
                         measure.concurrency, current, desired, now)
        burst_state = b.state
        if b.active:
            desired, reason = b.desired, b.reason
    desired = max(config.min_capacity, min(config.max_capacity, desired))
    return PolicyDecision(desired, PolicyState(lt_state, burst_state, proposal), reason)
