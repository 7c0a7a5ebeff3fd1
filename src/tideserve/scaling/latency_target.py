"""tideserve extension (beyond AWS): target tracking on a latency percentile.

AWS target tracking scales by a ratio, ceil(C × M / T), which is right for a metric that is
proportional to load per instance and wrong for latency: latency stays flat until the fleet
nears saturation and then explodes. This policy instead computes the capacity a latency target
needs from a queueing model, with the *measured* arrival rate and service time:

    M/M/c with c = n × concurrency slots, each completing 1/S̄ requests per second
    (S̄ = measured mean service time), λ = measured arrivals per second.
    Erlang C:  P(wait > t) = C(c, λS̄) × exp(−(c/S̄ − λ) t)

The target "pNN latency ≤ L" leaves a tail share ε = 1 − NN/100 to miss. It is split evenly:
the service time itself may exceed S_tail (its measured 1 − ε/2 quantile) for ε/2 of the
requests, and the wait may exceed L − S_tail for ε/2. The capacity is the fewest instances n
with utilisation λS̄/c ≤ max_utilization and P(wait > L − S_tail) ≤ ε/2.

Worked example: λ = 30 req/s, S̄ = 1 s, concurrency 8, S_tail = 4 s, L = 8 s at p99
(ε/2 = 0.005). n = 4 (c = 32, ρ = 0.94): C ≈ 0.72, decay (32 − 30) × 4 s = 8 → P ≈ 0.72 ×
e^−8 = 2.4e-4 ≤ 0.005 — but ρ > max_utilization 0.9, so n = 5 (ρ = 0.75).

Feedback corrects what the model misses (burstier arrivals than Poisson, a heavier tail):
when the measured share of the last period's requests over L exceeds ε, the proposal is at
least one instance more than now. Scale-out is immediate; scale-in waits until the proposal
has stayed below the current capacity for `scale_in_window` seconds, and then goes to the
highest proposal of that window (Knative's stable window, Kubernetes' stabilisation window):
time, not tick counts.

Pure: plain values in, a decision with its reason out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from tideserve.errors import ValidationError


@dataclass(frozen=True)
class LatencyTargetConfig:
    latency_seconds: float  # L: the pNN latency the fleet is kept under
    percentile: float = 99.0  # NN
    max_utilization: float = 0.9  # the most of the slots the model may plan to keep busy
    scale_in_window: float = 600.0  # seconds a lower proposal must persist before scale-in
    min_capacity: int = 1
    max_capacity: int = 64

    def __post_init__(self) -> None:
        if self.latency_seconds <= 0:
            raise ValidationError(f"latency_target.latency_seconds {self.latency_seconds} "
                                  "must be > 0")
        if not 0 < self.percentile < 100:
            raise ValidationError(f"latency_target.percentile {self.percentile} must be "
                                  "between 0 and 100")
        if not 0 < self.max_utilization <= 1:
            raise ValidationError(f"latency_target.max_utilization {self.max_utilization} "
                                  "must be in (0, 1]")
        if not 0 <= self.min_capacity <= self.max_capacity:
            raise ValidationError("latency_target: min_capacity must be ≤ max_capacity")

    @property
    def tail_share(self) -> float:
        """ε: the share of requests the target lets exceed L."""
        return 1.0 - self.percentile / 100.0


@dataclass(frozen=True)
class ServiceMeasure:
    """What the fleet measured (the live driver: ModelLatency at low load and the router's
    counts; the simulator: the profile and its own log)."""

    arrival_rate: float  # requests/s over the last metric period
    service_mean: float  # seconds a request holds a slot, on average
    service_tail: float  # seconds: the service time's (1 − ε/2) quantile
    concurrency: int  # requests one instance serves at once
    over_share: float | None = None  # share of the last period's requests over L; None: no data


@dataclass(frozen=True)
class LatencyTargetState:
    # (time, proposal) of the recent ticks, oldest first, within scale_in_window
    proposals: tuple[tuple[float, int], ...] = ()
    started: float | None = None  # the first tick (epoch s): a window needs that much history


@dataclass(frozen=True)
class LatencyDecision:
    desired: int  # the capacity to ask for (may equal the current one: no change)
    proposal: int  # what the queueing model (and the feedback) alone asked for
    state: LatencyTargetState
    reason: str


def wait_tail(instances: int, measure: ServiceMeasure, wait_seconds: float) -> float:
    """M/M/c: P(a request waits longer than `wait_seconds`) with `instances` instances;
    1.0 when the fleet is saturated."""
    return next(_tails(measure, wait_seconds, instances, instances))[1]


def _tails(measure: ServiceMeasure, wait_seconds: float, first: int,
           last: int) -> Iterator[tuple[int, float]]:
    """(n, P(wait > t) with n instances) for n = first..last, in one pass of the stable
    Erlang B recursion B(k) = aB(k−1) / (k + aB(k−1)) over the slots (O(last × concurrency))."""
    a = measure.arrival_rate * measure.service_mean  # offered load, in busy slots
    erlang_b, k = 1.0, 0
    for n in range(first, last + 1):
        c = n * measure.concurrency
        if c == 0:
            yield n, 1.0 if measure.arrival_rate > 0 else 0.0
            continue
        if a >= c:
            yield n, 1.0
            continue
        if a == 0:
            yield n, 0.0
            continue
        while k < c:
            k += 1
            erlang_b = a * erlang_b / (k + a * erlang_b)
        rho = a / c
        erlang_c = erlang_b / (1.0 - rho * (1.0 - erlang_b))
        decay = (c / measure.service_mean - measure.arrival_rate) * max(0.0, wait_seconds)
        yield n, erlang_c * math.exp(-decay)


def queueing_capacity(config: LatencyTargetConfig, measure: ServiceMeasure) -> tuple[int, str]:
    """The fewest instances that meet the target by the model, within the bounds; and why."""
    budget = config.latency_seconds - measure.service_tail
    half = config.tail_share / 2.0
    if budget <= 0:
        return config.max_capacity, (
            f"the service time alone ({measure.service_tail:.2f} s at its tail) exceeds the "
            f"{config.latency_seconds:g}-s target: no capacity meets it")
    load = measure.arrival_rate * measure.service_mean
    low = max(config.min_capacity, math.ceil(load / (config.max_utilization *
                                                     measure.concurrency) - 1e-9))
    fits = (nt for nt in _tails(measure, budget, low, config.max_capacity) if nt[1] <= half)
    n, tail = next(fits, (config.max_capacity, 1.0))
    if n == config.max_capacity and low <= config.max_capacity:
        tail = wait_tail(n, measure, budget)
    return n, (f"M/M/c: {measure.arrival_rate:.2f} req/s × {measure.service_mean:.3f} s on "
               f"{n} × {measure.concurrency} slots keeps P(wait > {budget:.2f} s) at "
               f"{tail:.2g}")


def decide(config: LatencyTargetConfig, state: LatencyTargetState, measure: ServiceMeasure,
           current: int, now: float) -> LatencyDecision:
    """The capacity to ask for at `now` with `current` instances asked for."""
    proposal, why = queueing_capacity(config, measure)
    if measure.over_share is not None and measure.over_share > config.tail_share:
        if proposal <= current:
            proposal = min(config.max_capacity, current + 1)
            why = (f"{100 * measure.over_share:.2f} % of the last period's requests were over "
                   f"{config.latency_seconds:g} s (target ≤ {100 * config.tail_share:.2g} %): "
                   "one more instance than the model asks")
    since = now - config.scale_in_window
    recent = tuple(p for p in state.proposals if p[0] > since) + ((now, proposal),)
    started = now if state.started is None else state.started
    state = replace(state, proposals=recent, started=started)
    if proposal > current:
        return LatencyDecision(proposal, proposal, state, f"scale out to {proposal}: {why}")
    if proposal == current:
        return LatencyDecision(current, proposal, state, f"hold {current}: {why}")
    window_full = now - started >= config.scale_in_window - 1e-9
    highest = max(p for _, p in recent)
    if highest < current and window_full:
        return LatencyDecision(highest, proposal, state,
                               f"scale in to {highest}, the highest proposal of the last "
                               f"{config.scale_in_window:g} s: {why}")
    return LatencyDecision(current, proposal, state,
                           f"hold {current}: scale-in waits for {config.scale_in_window:g} s "
                           f"of lower proposals ({why})")
