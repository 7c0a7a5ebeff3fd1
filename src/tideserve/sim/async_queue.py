"""An asynchronous endpoint's durable queue in front of its instances, as a fluid FIFO.

Requests are accepted whatever the capacity (even at zero instances) and wait in the queue;
each instance serves `slots` at once — MaxConcurrentInvocationsPerInstance, but no more than
the model serves concurrently (profile.concurrency) — so the instances dispatch
μ = n × slots / E[S] requests per second. A request still queued RequestTTL after it arrived
expires (never served). Latency = time in the queue + service time.

With A(t) the requests arrived and D(t) the requests dispatched or expired by t (both
cumulative, piecewise linear between step boundaries), the queue is q = A − D, recursed per
step as Lindley's q_{k+1} = max(0, q_k + a_k − μ_k·dt) (closed form between capacity
changes, as fluid.py), and TTL holds D(t) ≥ A(t − TTL): what arrived before t − TTL and is
still queued expires at t. FIFO makes the wait of the request at position p the time from
A⁻¹(p) to D⁻¹(p). Worked example: 1 instance, 4 slots, E[S] = 0.5 s → μ = 8 req/s; 40 requests
in the first second: 8 go at once, 32 wait; D reaches 32 + 8 = 40 at t = 5 s, so the last
waits 4 s and the one in the middle (p = 20) waits (20 − 8)/8 + 1 − 0.5 = 2 s.

The backlog the metrics publish (ApproximateBacklogSize, spec §5.2) is queued + in
processing; in processing is Little's law on what was dispatched in the step
(dispatched/dt × E[S]), at most n × slots. The waits are computed by `finish` once D is known
to the end of the run (the scaling metrics read only the backlog).
"""

from __future__ import annotations

import numpy as np

from tideserve.sim.fluid import ComputedAhead, StepLog
from tideserve.sim.profile import Profile

EPS = 1e-9
POSITIONS = 8  # requests per arrival step whose wait is evaluated, evenly through it


class AsyncQueueModel(ComputedAhead):
    def __init__(self, log: StepLog, profile: Profile, slots: int, ttl_seconds: float,
                 dt: float) -> None:
        n = len(log.arrivals)
        self.log, self.profile, self.slots, self.dt = log, profile, slots, dt
        self.ttl_steps = ttl_seconds / dt
        self.mean_s = profile.service_time.mean
        self.arrived = np.concatenate(([0.0], np.cumsum(log.arrivals)))  # A at boundaries
        self.q = np.zeros(n + 1)  # queued at each step boundary
        self.size = np.zeros(n)  # ApproximateBacklogSize during each step
        self.expired = np.zeros(n)  # expired at the end of each step
        self.expiries: list[tuple[float, float]] = []  # (from, to) positions that expired
        self.done = self.ahead = 0
        self.ahead_n = -1

    def _compute(self, start: int, end: int, n: int) -> None:
        a, dt = self.log.arrivals[start:end], self.dt
        mu = n * self.slots / self.mean_s
        s = self.q[start] + np.cumsum(a - mu * dt)
        q = s - np.minimum(0.0, np.minimum.accumulate(s))
        # D(t) ≥ A(t − TTL): arrivals by TTL before each boundary (fractional step index).
        boundary = np.arange(start + 1, end + 1, dtype=np.float64)
        limit = np.interp(boundary - self.ttl_steps, np.arange(len(self.arrived)),
                          self.arrived, left=0.0)
        expired = np.zeros(end - start)
        if (self.arrived[start + 1:end + 1] - q < limit - EPS).any():
            q, expired = self._with_expiry(start, a, mu, limit)
        q_start = np.concatenate(([self.q[start]], q[:-1]))
        self.q[start + 1:end + 1] = q
        self.expired[start:end] = expired
        dispatched = np.maximum(q_start + a - q - expired, 0.0)
        in_processing = np.minimum(n * self.slots, dispatched / dt * self.mean_s)
        self.size[start:end] = q_start + in_processing
        self.log.backlog[start:end] = q_start
        self.log.busy[start:end] = dispatched * self.mean_s

    def _with_expiry(self, start: int, a: np.ndarray, mu: float,
                     limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The recursion step by step where the TTL cuts the queue (rare: hours of wait)."""
        self.expiries = [e for e in self.expiries if e[1] <= self.arrived[start] + EPS]
        level, out, expired = float(self.q[start]), np.empty(len(a)), np.zeros(len(a))
        for i, (arrived, due) in enumerate(zip(a.tolist(), limit.tolist(), strict=True)):
            level = max(0.0, level + arrived - mu * self.dt)
            done = float(self.arrived[start + i + 1]) - level
            if done < due - EPS:
                self.expiries.append((done, due))
                expired[i], level = due - done, float(self.arrived[start + i + 1]) - due
            out[i] = level
        return out, expired

    # --- after the run --------------------------------------------------------------------

    def finish(self, steps: int, slo: float) -> tuple[np.ndarray, np.ndarray]:
        """Fill the log's waits (mean per arrival step), expiries (by arrival step) and SLO
        misses for the first `steps` steps; returns (wait, weight) of every request slice
        for the latency percentiles. A step's arrivals are taken at POSITIONS fractions of
        the way through it: a burst inside one step spans a range of waits (0 to 4 s above)."""
        log, arrived = self.log, self.arrived[:steps + 1]
        dispatched = arrived - self.q[:steps + 1]  # D at the boundaries
        a = log.arrivals[:steps]
        lost = self._expired_by_arrival_step(arrived)
        served = np.maximum(a - lost, 0.0)
        u = (np.arange(POSITIONS) + 0.5) / POSITIONS
        k = np.arange(steps)[:, None]
        reach = _first_reach(dispatched, (arrived[:-1, None] + u * a[:, None]).ravel())
        wait = (reach.reshape(steps, POSITIONS) - (k + u)) * self.dt
        wait = np.where((a[:, None] > EPS) & np.isfinite(wait), np.maximum(wait, 0.0), 0.0)
        miss = (1.0 - self.profile.service_time.cdf(slo - wait)).mean(axis=1)
        log.dropped[:steps] = lost
        log.wait[:steps] = wait.mean(axis=1)
        log.over[:steps] = served * miss + lost
        weight = np.repeat(served / POSITIONS, POSITIONS)
        return wait.ravel(), weight

    def _expired_by_arrival_step(self, arrived: np.ndarray) -> np.ndarray:
        """Requests of each arrival step that expired: positions (A_k, A_k+1] overlapping
        the expired intervals (FIFO expires the oldest, so each is contiguous)."""
        lost = np.zeros(len(arrived) - 1)
        for low, high in self.expiries:
            lost += np.clip(np.minimum(arrived[1:], high) - np.maximum(arrived[:-1], low),
                            0.0, None)
        return lost

    def max_queue_age(self, steps: int) -> float:
        """The longest any request waited in the queue (s). Within an arrival step the wait
        is piecewise linear in the position, largest at the step's first or last request
        (worked example above: the last of the 40, 4 s). Expired requests count with the
        age at which they expired."""
        arrived = self.arrived[:steps + 1]
        dispatched = arrived - self.q[:steps + 1]
        k = np.flatnonzero(self.log.arrivals[:steps] > EPS)
        if len(k) == 0:
            return 0.0
        first = _first_reach(dispatched, arrived[k] + EPS) - k
        last = _first_reach(dispatched, arrived[k + 1]) - (k + 1)
        ages = np.concatenate((first, last))
        ages = ages[np.isfinite(ages)]
        return float(max(0.0, ages.max(initial=0.0))) * self.dt


def _first_reach(curve: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The (fractional) boundary index where the non-decreasing `curve` first reaches p;
    inf where it never does."""
    j = np.searchsorted(curve, p - EPS, side="left")
    out = np.full(len(p), np.inf)
    ok = (j > 0) & (j < len(curve))
    lo, hi = curve[j[ok] - 1], curve[j[ok]]
    out[ok] = j[ok] - 1 + np.clip((p[ok] - lo) / np.maximum(hi - lo, EPS), 0.0, 1.0)
    out[j == 0] = 0.0
    return out
