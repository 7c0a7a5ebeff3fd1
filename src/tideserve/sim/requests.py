"""The request-level mode: a discrete-event simulation of each request, for traces up to
about an hour — the check on the fluid model's approximations.

Each step's requests (a fractional count rounds up with the probability of its fraction)
arrive at instants drawn uniformly inside the step; each takes a service time drawn from the
profile (inverse transform, seeded). The variant is `in service × concurrency` slots fed from
one FIFO queue (the router's least-outstanding choice, idealised). Events are ordered by
(time, priority, sequence): at the same instant a completion (priority 0) frees its slot
before an arrival (priority 1) looks for one; completions at one instant are interchangeable.
A request still queued after `timeout_seconds` fails when its turn comes. When capacity falls,
busy slots finish their request and are not refilled.

The log is filled per arrival step, as the fluid model fills it, when each request starts
(its wait is known then); the exact latencies are kept for the percentiles.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from tideserve.sim.fluid import StepLog
from tideserve.sim.profile import Profile


@dataclass(frozen=True, eq=False)
class Draws:
    """The requests of a trace, drawn once per seed (every kind's request-level mode draws
    the same ones): instants sorted, each with its step and service time."""

    arrival: np.ndarray  # epoch seconds
    step: np.ndarray  # the step each arrives in (int64, non-decreasing)
    service: np.ndarray  # seconds


def draw_requests(log: StepLog, profile: Profile, dt: float, t0: float, seed: int) -> Draws:
    """Round the log's arrivals to whole requests (in place) and draw their instants and
    service times."""
    rng = np.random.default_rng(seed)
    whole = np.floor(log.arrivals)
    counts = (whole + (rng.random(len(whole)) < log.arrivals - whole)).astype(np.int64)
    log.arrivals[:] = counts
    steps = np.repeat(np.arange(len(counts)), counts)
    arrival = np.sort(steps + rng.random(len(steps))) * dt + t0
    step = np.floor((arrival - t0) / dt).astype(np.int64)
    return Draws(arrival, step, profile.service_time.sample(rng, len(steps)))


class RequestModel:
    def __init__(self, log: StepLog, profile: Profile, slo_seconds: float, dt: float,
                 t0: float, seed: int) -> None:
        draws = draw_requests(log, profile, dt, t0, seed)
        self.arrival = draws.arrival
        self.arrival_step = draws.step.tolist()
        self.service = draws.service.tolist()
        self.arrival_list = self.arrival.tolist()
        self.log, self.profile, self.slo, self.dt, self.t0 = log, profile, slo_seconds, dt, t0
        self.started = np.zeros(len(log.arrivals))
        self.wait_sum = np.zeros(len(log.arrivals))
        self.latencies: list[float] = []
        self.queue: deque[int] = deque()
        self.completions: list[float] = []  # heap of completion times
        self.next_arrival = 0
        self.slots = 0
        self.done = 0

    def advance(self, start: int, stop: int, in_service: int) -> None:
        """Steps [start, stop) with `in_service` instances."""
        assert start == self.done, (start, self.done)
        if stop <= start:
            return
        self.slots = in_service * self.profile.concurrency
        self.log.backlog[start:stop] = len(self.queue)
        self._start_queued(self.t0 + start * self.dt)
        self._run_until(self.t0 + stop * self.dt)
        self.done = stop
        if stop == len(self.log.arrivals):
            self._run_until(float("inf"))  # what is still queued is served (or times out)

    def _run_until(self, until: float) -> None:
        arrivals, total, heap = self.arrival_list, len(self.arrival_list), self.completions
        while True:
            t_arrival = arrivals[self.next_arrival] if self.next_arrival < total else float("inf")
            t_done = heap[0] if heap else float("inf")
            t = min(t_arrival, t_done)
            if t >= until or t == float("inf"):
                break
            if t_done <= t_arrival:  # priority 0: the slot frees first
                heapq.heappop(heap)
            else:
                self.queue.append(self.next_arrival)
                self.next_arrival += 1
            self._start_queued(t)
        if until == float("inf"):
            while self.queue:  # nothing will serve them any more
                self._drop(self.queue.popleft())

    def _start_queued(self, now: float) -> None:
        while self.queue and len(self.completions) < self.slots:
            i = self.queue.popleft()
            wait = now - self.arrival_list[i]
            if wait > self.profile.timeout_seconds:
                self._drop(i)
                continue
            service = self.service[i]
            heapq.heappush(self.completions, now + service)
            self._record(i, wait, service)

    def _record(self, i: int, wait: float, service: float) -> None:
        k, log = self.arrival_step[i], self.log
        latency = wait + service
        self.latencies.append(latency)
        self.started[k] += 1
        self.wait_sum[k] += wait
        log.wait[k] = self.wait_sum[k] / self.started[k]
        log.busy[k] += service
        if latency > self.slo:
            log.over[k] += 1

    def _drop(self, i: int) -> None:
        k = self.arrival_step[i]
        self.log.dropped[k] += 1
        self.log.over[k] += 1

    def latency_percentiles(self, percents: tuple[float, ...]) -> dict[float, float]:
        if not self.latencies:
            return {p: float("nan") for p in percents}
        values = np.percentile(np.array(self.latencies), percents)
        return {p: float(v) for p, v in zip(percents, values, strict=True)}
