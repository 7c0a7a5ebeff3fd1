"""The serverless fluid mode (sim/serverless.py's docstring has the model): expected workers,
cold starts and throttles per step, step by step (`advance`), so that it serves on the event
loop as the request-level mode does, with ProvisionedConcurrency as the loop gives it.

Per metric period it keeps approximations of what the live variant publishes: with the busy
count of a step Poisson with mean b (its mean workers held, cold starts included),
executions on provisioned concurrency are E[min(N, PC)] (ServerlessProvisionedConcurrency-
Utilization is that over PC, averaged over the period's steps), their peak min(PC, the
step's workers used), and ServerlessConcurrentExecutionsUtilization b / MaxConcurrency.
Worked example: b = 1, PC = 1 -> E[min(N, 1)] = P(N ≥ 1) = 1 - e^-1 = 0.63.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from tideserve.sim.fluid import StepLog
from tideserve.sim.kinds import ServerlessSpec
from tideserve.sim.profile import Profile, ServiceTime
from tideserve.sim.serverless_workers import PeriodFigures, Tally, duration_rates

_EPS = 1e-9


def occupancy_kernel(service: ServiceTime, extra: float, dt: float) -> np.ndarray:
    """h[j]: the share of step j after its arrival step that one request holds a worker for,
    when it holds it `extra` + S seconds (S drawn from `service`)."""
    steps = int(math.ceil((extra + float(service.quantiles[-1])) / dt)) + 1
    fine = 64
    u = np.linspace(0.0, steps * dt, steps * fine + 1)
    survival = 1.0 - service.cdf(u - extra)
    areas = (survival[:-1] + survival[1:]) / 2 * (dt / fine)
    kernel: np.ndarray = areas.reshape(steps, fine).sum(axis=1) / dt
    return kernel


class FluidWorkers:
    """The fluid serverless variant, advanced step by step."""

    def __init__(self, log: StepLog, spec: ServerlessSpec, profile: Profile, slo: float,
                 dt: float, period: float) -> None:
        self.log, self.spec, self.dt = log, spec, dt
        service = profile.service_time
        self.mean_s = service.mean
        h = occupancy_kernel(service, 0.0, dt)
        hc = occupancy_kernel(service, spec.cold_start_seconds, dt)
        self.h0, self.hc0, self.tail, self.cold_tail = (float(h[0]), float(hc[0]),
                                                        h[1:].tolist(), hc[1:].tolist())
        n = len(log.arrivals)
        self.future = [0.0] * (n + max(len(h), len(hc)) + 1)  # workers held by earlier arrivals
        self.keep = max(1, int(math.ceil(spec.keep_alive_seconds / dt - _EPS)))
        self.window: deque[tuple[int, int]] = deque()  # (step, workers used): sliding maximum
        self.miss_warm = 1.0 - float(service.cdf(slo))
        self.miss_cold = 1.0 - float(service.cdf(slo - spec.cold_start_seconds))
        self.tally = Tally.empty(log)
        self.alive = spec.provisioned_concurrency
        self.rates = duration_rates(spec)
        self.arrivals = log.arrivals.tolist()
        self.per = max(1, int(round(period / dt)))
        self.figures = PeriodFigures([], [], [], np.zeros(n), np.zeros(n), np.zeros(n))
        self._period = [0.0, 0.0, 0.0]  # PC executions, peak, executions: this period so far

    def serve(self) -> Tally:
        """The whole trace at the spec's ProvisionedConcurrency."""
        self.advance(0, len(self.arrivals), self.spec.provisioned_concurrency)
        return self.tally

    def reconfigure(self, provisioned: int, now: float) -> float | None:
        """ProvisionedConcurrency will be `provisioned`: when the workers it lacks are warm
        (None: none lacks). It applies to the steps from then on (`advance`'s argument)."""
        return now + self.spec.cold_start_seconds if provisioned > self.alive else None

    def advance(self, start: int, stop: int, provisioned: int) -> None:
        self.tally.provisioned[start:stop] = provisioned
        for k in range(start, stop):
            self._step(k, provisioned)

    def _step(self, k: int, floor: int) -> None:
        log, spec, tally = self.log, self.spec, self.tally
        top, alive = spec.max_concurrency, self.alive
        held, a = self.future[k], self.arrivals[k]
        busy, used = held, math.ceil(held - _EPS)
        if a > 0:
            load = held + a * self.h0  # mean workers busy in the step if every one is served
            blocked, below_floor = _loss(alive, floor, load)
            warm = a * (1.0 - blocked)
            cold = min(a * blocked, float(max(0, top - alive)))
            throttled = a * blocked - cold
            on_pc = min(warm, a * below_floor)  # found fewer than the provisioned busy
            for j, x in enumerate(self.tail):
                self.future[k + 1 + j] += warm * x
            for j, x in enumerate(self.cold_tail):
                self.future[k + 1 + j] += cold * x
            self._record(k, warm, cold, throttled)
            on_demand, pc_rate = self.rates
            tally.usd[k] = ((warm + cold - on_pc) * on_demand + on_pc * pc_rate) * self.mean_s
            if floor:
                self.figures.on_pc[k], self.figures.spillover[k] = on_pc, warm + cold - on_pc
            busy = held + warm * self.h0 + cold * self.hc0
            # Distinct workers the step used: its busy count's mean plus two standard
            # deviations (Poisson), no more than existed.
            used = min(alive + math.ceil(cold - _EPS),
                       math.ceil(busy + 2 * math.sqrt(busy) - _EPS))
        window = self.window
        while window and window[-1][1] <= used:
            window.pop()
        window.append((k, used))
        while window[0][0] <= k - self.keep:
            window.popleft()
        self.alive = min(top, max(floor, window[0][1]))
        log.in_service[k] = log.billed[k] = self.alive
        self._meter(k, busy, used, floor)

    def _record(self, k: int, warm: float, cold: float, throttled: float) -> None:
        log, tally = self.log, self.tally
        served = warm + cold
        log.dropped[k] = throttled
        log.over[k] = warm * self.miss_warm + cold * self.miss_cold + throttled
        log.wait[k] = cold * self.spec.cold_start_seconds / served if served > 0 else 0.0
        log.busy[k] = served * self.mean_s
        self.figures.cold[k] = cold
        tally.cold_starts += cold
        tally.served_warm += warm

    def _meter(self, k: int, busy: float, used: int, floor: int) -> None:
        acc = self._period
        acc[0] += _mean_capped(busy, floor)
        acc[1] = max(acc[1], float(min(floor, used)))
        acc[2] += busy
        if (k + 1) % self.per:
            return
        fig = self.figures
        fig.concurrency.append(min(1.0, acc[2] / self.per / self.spec.max_concurrency))
        fig.pc_utilization.append(min(1.0, acc[0] / self.per / floor) if floor else math.nan)
        fig.pc_executions.append(acc[1] if floor else math.nan)
        self._period = [0.0, 0.0, 0.0]


def serve_fluid(log: StepLog, spec: ServerlessSpec, profile: Profile, slo: float,
                dt: float) -> Tally:
    """Fill the log step by step at the spec's ProvisionedConcurrency."""
    return FluidWorkers(log, spec, profile, slo, dt, dt).serve()


def _mean_capped(load: float, cap: int) -> float:
    """E[min(N, cap)] for N Poisson with mean `load`: Σ_{i<cap} P(N > i)."""
    if cap <= 0 or load <= 0:
        return 0.0
    term, cdf, total = math.exp(-load), 0.0, 0.0
    for i in range(cap):
        cdf += term
        total += 1.0 - cdf
        term *= load / (i + 1)
    return total


def _loss(workers: int, floor: int, load: float) -> tuple[float, float]:
    """(Erlang B: the share of arrivals that find all `workers` busy when the busy count is
    Poisson with mean `load` — M/G/c/c, whatever the service-time distribution; the share
    that find fewer than `floor` busy). Worked example: 1 worker, load 0.25 → B = 0.25 / 1.25
    = 0.2; 2 workers → 0.2 × 0.25 / (2 + 0.05) = 0.024."""
    blocked, poisson_term, below = 1.0, math.exp(-load), 0.0
    for i in range(1, max(workers, floor) + 1):
        if i <= floor:
            below += poisson_term
            poisson_term *= load / i
        if i <= workers:
            blocked = load * blocked / (i + load * blocked)
            if blocked < 1e-12 and i >= floor:
                return 0.0, below
    return blocked, below
