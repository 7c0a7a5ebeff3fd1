"""The fluid queueing model: one time step (e.g. 1 s) at a time, requests as a continuous
quantity, NumPy over the steps between two capacity changes.

Per step t of length dt, with a_t requests arriving and n_t instances in service:

    μ_t        = n_t × concurrency / mean service time        (requests/s the fleet completes)
    q_{t+1}    = clip(q_t + a_t − μ_t·dt, 0, μ_t·timeout)     (backlog; the overflow fails)
    w_t        = (q_t + q_{t+1}) / (2 μ_t)                    (FIFO wait of step t's arrivals)
    over-SLO_t = (a_t − dropped_t) × P(S > SLO − w_t) + dropped_t

The wait is Little's law on the backlog the step's arrivals find, averaged over the step;
each request's latency is that wait plus a service time S drawn from the profile, so the share
over the SLO spreads w_t by the service-time distribution. What the fluid view leaves out is
the random queueing below saturation (an M/G/k at 80 % load still waits a little); the
request-level mode (requests.py) has it, and tests/sim shows the two agree where it matters
for scaling: capacity over time, instance-seconds and the SLO share, within stated tolerances.

Worked example: 2 instances × concurrency 4 / 0.5 s = 16 req/s. A 1-s step brings 40 requests
onto an empty backlog: 16 are served, q = 24, the step's wait is (0 + 24)/(2·16) = 0.75 s, so
with a constant 0.5-s service time their latency is 1.25 s: against a 1-s SLO all 40 miss.
The next step, with no arrivals, serves the 16 more it can (q = 8).

Between capacity changes μ is constant and the recursion is Lindley's, solved in closed form:
with S_k = q_0 + Σ_{i≤k}(a_i − μ·dt), q_{k+1} = S_k − min(0, min_{j≤k} S_j). Only when the
backlog would pass the timeout cap does a step-by-step loop run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tideserve.sim.profile import Profile

CHUNK_STEPS = 3600  # computed ahead at the current capacity; recomputed if capacity changes


@dataclass
class StepLog:
    """What happened in each step; both serving modes fill it, metrics and reports read it."""

    arrivals: np.ndarray  # requests arriving in the step
    in_service: np.ndarray  # instances serving (int)
    billed: np.ndarray  # instances billed (int): in service + starting + draining
    wait: np.ndarray  # mean seconds the step's served arrivals waited before service
    over: np.ndarray  # requests of the step over the SLO (dropped ones included)
    dropped: np.ndarray  # requests of the step that timed out waiting
    busy: np.ndarray  # slot-seconds of service begun in the step (for utilisation)
    backlog: np.ndarray  # requests waiting at the start of the step

    @classmethod
    def empty(cls, arrivals: np.ndarray) -> StepLog:
        n = len(arrivals)
        return cls(arrivals, np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n),
                   np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))

    @property
    def served(self) -> np.ndarray:
        served: np.ndarray = self.arrivals - self.dropped
        return served


class ComputedAhead:
    """Steps are computed in chunks ahead at the current capacity and kept while the capacity
    stays the same (most periods); `done` marks what is final. Subclasses give `log`, the
    counters (`done`, `ahead`, `ahead_n`) and `_compute(start, end, instances)`."""

    log: StepLog
    done: int
    ahead: int
    ahead_n: int

    def _compute(self, start: int, end: int, n: int) -> None:
        raise NotImplementedError

    def advance(self, start: int, stop: int, in_service: int) -> None:
        """Steps [start, stop) with `in_service` instances (start must be where we are)."""
        assert start == self.done, (start, self.done)
        if stop <= start:
            return
        if in_service != self.ahead_n or stop > self.ahead:
            end = min(len(self.log.arrivals), max(stop, start + CHUNK_STEPS))
            self._compute(start, end, in_service)
            self.ahead, self.ahead_n = end, in_service
        self.done = stop


class FluidModel(ComputedAhead):
    def __init__(self, log: StepLog, profile: Profile, slo_seconds: float, dt: float) -> None:
        self.log = log
        self.profile = profile
        self.slo = slo_seconds
        self.dt = dt
        self.mean_s = profile.service_time.mean
        self.q = np.zeros(len(log.arrivals) + 1)  # backlog at the start of each step
        self.done = 0  # steps final
        self.ahead = 0  # steps computed (those past `done` at capacity `ahead_n`)
        self.ahead_n = -1

    def _compute(self, start: int, end: int, n: int) -> None:
        instances = np.full(end - start, n, dtype=np.float64)
        self.q[start + 1:end + 1] = fill(self.log, self.profile, self.slo, self.dt, start,
                                         instances, float(self.q[start]))

    def latency_percentiles(self, percents: tuple[float, ...]) -> dict[float, float]:
        served = np.maximum(self.log.served, 0.0)
        return mixture_percentiles(self.log.wait, served, self.profile, percents)


def fill(log: StepLog, profile: Profile, slo: float, dt: float, start: int,
         instances: np.ndarray, q0: float) -> np.ndarray:
    """Fill the log's steps from `start` with `instances[i]` serving in step start+i, the
    backlog starting at q0; returns the backlog after each step."""
    end = start + len(instances)
    a = log.arrivals[start:end]
    mu = instances * profile.concurrency / profile.service_time.mean
    q_next, dropped = _lindley(q0, a - mu * dt, mu * profile.timeout_seconds)
    q_start = np.concatenate(([q0], q_next[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = np.where(mu > 0, (q_start + q_next) / (2 * mu), np.inf)
    served = a - dropped
    finite = np.isfinite(wait)
    miss = np.where(finite, 1.0 - profile.service_time.cdf(slo - np.where(finite, wait, 0)), 1.0)
    log.wait[start:end] = np.where(served > 0, wait, 0.0)
    log.over[start:end] = served * miss + dropped
    log.dropped[start:end] = dropped
    log.busy[start:end] = served * profile.service_time.mean
    log.backlog[start:end] = q_start
    return q_next


def _lindley(q0: float, x: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q_{k+1} = clip(q_k + x_k, 0, cap_k) and what the cap cut off, per step. With no
    instance serving (cap 0) the step's requests, and the backlog left, fail."""
    s = q0 + np.cumsum(x)
    q = s - np.minimum(0.0, np.minimum.accumulate(s))
    if len(q) == 0 or (q <= cap).all():
        return q, np.zeros(len(x))
    out, dropped = np.empty(len(x)), np.zeros(len(x))
    level = q0
    for k, (step, top) in enumerate(zip(x.tolist(), cap.tolist(), strict=True)):
        level = max(0.0, level + step)
        if level > top:
            dropped[k], level = level - top, top
        out[k] = level
    return out, dropped


def mixture_percentiles(
    wait: np.ndarray, weight: np.ndarray, profile: Profile, percents: tuple[float, ...]
) -> dict[float, float]:
    """Percentiles of latency = wait + service time over all served requests: the waits are
    binned (zero exactly, then log-spaced up to the timeout), each bin's requests spread by
    the service-time CDF; the mixture CDF is inverted on a grid."""
    total = float(weight.sum())
    if total <= 0:
        return {p: float("nan") for p in percents}
    edges = np.concatenate(([0.0, 1e-9], np.geomspace(1e-4, max(profile.timeout_seconds,
                                                                1e-3) * 2, 240)))
    w = np.clip(wait, 0.0, edges[-1] * 0.999)
    mass, _ = np.histogram(w, edges, weights=weight)
    moment, _ = np.histogram(w, edges, weights=weight * w)
    keep = mass > 0
    centres, mass = moment[keep] / mass[keep], mass[keep]
    q = profile.service_time.quantiles
    top = q[-1] + centres.max()
    grid = np.unique(np.concatenate((np.linspace(0, q[-1], 2000),
                                     q[0] + np.geomspace(1e-4, top, 2000))))
    cdf = (profile.service_time.cdf(grid[None, :] - centres[:, None]) * mass[:, None]).sum(
        axis=0) / total
    return {p: float(np.interp(p / 100.0, cdf, grid)) for p in percents}
