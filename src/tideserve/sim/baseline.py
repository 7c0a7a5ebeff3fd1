"""The clairvoyant baseline: the cheapest capacity schedule that meets the SLO with perfect
knowledge of the trace and the same start-up delay — what a policy's cost is measured
against.

1. Per evaluation period p (the metric period, 60 s), the fewest instances n_p (at least
   `MIN_INSTANCES`) such that, in the fluid model, no request of the period waits longer than
   W = SLO latency − the profile's service time at the SLO percentile: then at least that
   share of requests is within the SLO (waits at most W, serves within S_q). A backlog left
   by period p−1 is carried in; a period that the carried backlog pushes over W gets one more
   instance until none does.
2. Capacity must be requested start-up seconds before it serves, and billed from then, so
   the billed count at time t is the most needed at any time in [t, t + start-up]
   (a forward-looking maximum). An instance that will be needed again within the start-up
   delay is kept rather than released and re-requested. The first period's instances are in
   service at the start, as a policy set's initial instances are.

Worked example (tests/sim/test_baseline.py): constant 0.5-s service, concurrency 1 → 2 req/s
per instance; SLO 1 s at p99 → W = 0.5 s. Five minutes at 3, 7, 3, 0, 3 req/s need
n = 2, 4, 2, 1, 2 (one instance at 3 req/s builds a backlog of 1 request per second: the
second second's arrivals wait (1 + 2)/(2·2) = 0.75 s > W). With a 90-s start-up, the 4
instances of minute 1 are billed from t = 0 (requested at −30 s) to 120 s, then 2 to the end
(the dip to 1 in minute 3 is shorter than the start-up of the instance minute 4 needs again):
4 × 120 + 2 × 180 = 840 instance-seconds.
"""

from __future__ import annotations

import math

import numpy as np

from tideserve.cost.billing import SECONDS_PER_HOUR, usd_for_seconds
from tideserve.sim.fluid import StepLog, fill, mixture_percentiles
from tideserve.sim.result import PolicyRun, Summary
from tideserve.sim.scenario import Scenario

MIN_INSTANCES = 1  # a real-time variant keeps one instance (AWS's MinCapacity floor is 1)
NAME = "clairvoyant"


def needed_per_period(scenario: Scenario, arrivals: np.ndarray) -> np.ndarray:
    """n_p for each metric period (the last one may be partial)."""
    profile, dt = scenario.profile, scenario.options.step_seconds
    per = int(round(scenario.options.metric_period / dt))
    periods = math.ceil(len(arrivals) / per)
    padded = np.zeros(periods * per)
    padded[:len(arrivals)] = arrivals
    a = padded.reshape(periods, per)
    rate = profile.rate_per_instance  # requests/s one instance completes
    limit = max_wait(scenario)
    per_period = np.ceil(a.sum(axis=1) / (rate * per * dt) - 1e-9)
    n: np.ndarray = np.maximum(MIN_INSTANCES, per_period).astype(int)
    bad = ~_fits(a, n * rate, dt, limit)
    while bad.any():  # each period from an empty backlog
        n[bad] += 1
        bad[bad] = ~_fits(a[bad], n[bad] * rate, dt, limit)
    for _ in range(100):  # now with the backlog each period hands to the next
        waits = _waits(arrivals, np.repeat(n, per)[:len(arrivals)] * rate, dt)
        over = np.zeros(periods * per, dtype=bool)
        over[:len(arrivals)] = waits > limit + 1e-9
        late = over.reshape(periods, per).any(axis=1)
        if not late.any():
            break
        n[late] += 1
    return n


def max_wait(scenario: Scenario) -> float:
    """W: the longest wait that still meets the SLO at its percentile (0 if service alone
    misses it: then the baseline queues nothing)."""
    q = scenario.profile.service_time.quantile(scenario.slo.percentile / 100.0)
    return max(0.0, scenario.slo.latency_seconds - q)


def _fits(a: np.ndarray, mu: np.ndarray, dt: float, limit: float) -> np.ndarray:
    """Rows (periods) whose fluid wait from an empty backlog stays within `limit` seconds,
    with `mu` requests/s served in each row (the fluid model's recursion, per row)."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    s = np.cumsum(a - (mu * dt)[:, None], axis=1)
    q = s - np.minimum(0.0, np.minimum.accumulate(s, axis=1))
    q_start = np.concatenate((np.zeros((len(a), 1)), q[:, :-1]), axis=1)
    wait = (q_start + q) / (2 * mu[:, None])
    fits: np.ndarray = (wait <= limit + 1e-9).all(axis=1)
    return fits


def _waits(arrivals: np.ndarray, mu: np.ndarray, dt: float) -> np.ndarray:
    """Per-step wait (s) along the whole trace with the backlog carried, `mu` per step."""
    s = np.cumsum(arrivals - mu * dt)
    q = s - np.minimum(0.0, np.minimum.accumulate(s))
    q_start = np.concatenate(([0.0], q[:-1]))
    waits: np.ndarray = (q_start + q) / (2 * mu)
    return waits


def forward_max(x: np.ndarray, width: int) -> np.ndarray:
    """out[t] = max(x[t : t + width]) (shorter at the end), in log2(width) passes."""
    out, span = x.copy(), 1
    while span < width:
        step = min(span, width - span)
        shifted = np.concatenate((out[step:], out[-step:]))  # the tail repeats: a shorter window
        out = np.maximum(out, shifted)
        span += step
    return out


def clairvoyant(scenario: Scenario, arrivals: np.ndarray) -> PolicyRun:
    """The baseline as a PolicyRun (no activities; report.capacity_changes counts its
    steps)."""
    dt = scenario.options.step_seconds
    per = int(round(scenario.options.metric_period / dt))
    needed = np.repeat(needed_per_period(scenario, arrivals), per)[:len(arrivals)]
    log = StepLog.empty(arrivals)
    log.in_service[:] = needed
    log.billed[:] = forward_max(needed, int(math.ceil(scenario.profile.startup_seconds / dt)) + 1)
    fill(log, scenario.profile, scenario.slo.latency_seconds, dt, 0,
         needed.astype(np.float64), 0.0)
    served = np.maximum(log.served, 0.0)
    pct = mixture_percentiles(log.wait, served, scenario.profile, (50.0, 90.0, 99.0))
    seconds = float(log.billed.sum()) * dt
    requests = float(arrivals.sum())
    summary = Summary(usd_for_seconds(seconds, scenario.endpoint.hourly_usd),
                      seconds / SECONDS_PER_HOUR,
                      float(log.billed.mean()), float(log.in_service.mean()), requests,
                      float(log.served.sum()), float(log.dropped.sum()),
                      float(log.over.sum()) / requests if requests else 0.0,
                      pct[50.0], pct[90.0], pct[99.0])
    return PolicyRun(NAME, summary, log)
