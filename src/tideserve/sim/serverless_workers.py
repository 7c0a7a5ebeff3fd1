"""The serverless request-level mode: each request, in time order, against the variant's
workers — whose every decision (warm reuse, cold start or throttle, on provisioned
concurrency or not, keep-alive expiry, reaching ProvisionedConcurrency) is the live pool's own
serverless.admission.WorkerSet, on simulated time.

Events are a heap of (time, sequence): a cold start finishing (the worker serves the request
that waited for it, or joins idle when it was started for provisioned concurrency), and a
request finishing. Before each event and each arrival, idle workers past the keep-alive stop
(the live pool reaps about every second; here at the instants that matter). A worker counts
in the log's workers from the moment its cold start begins.

Per metric period it keeps what the live telemetry publishes for the variant
(serverless/telemetry.py): the time-weighted utilizations from the WorkerSet's meters and, per
step, the cold starts and the invocations on provisioned concurrency and beyond it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace

import numpy as np

from tideserve.serverless.admission import COLD_START, WARM, WorkerSet
from tideserve.sim.fluid import StepLog
from tideserve.sim.kinds import (
    ON_DEMAND_USD_PER_GB_SECOND,
    PROVISIONED_DURATION_USD_PER_GB_SECOND,
    ServerlessSpec,
)
from tideserve.sim.requests import Draws

_READY_BUSY, _DONE, _READY_IDLE = 0, 1, 2  # event kinds


@dataclass
class Tally:
    """Per-step and total outcomes both modes fill; the log gets the per-step arrays."""

    log: StepLog
    usd: np.ndarray  # duration cost begun in the step, USD
    provisioned: np.ndarray  # ProvisionedConcurrency units configured (billed) in the step
    cold_starts: float = 0.0
    served_warm: float = 0.0  # fluid: requests served without a cold start

    @classmethod
    def empty(cls, log: StepLog) -> Tally:
        n = len(log.arrivals)
        return cls(log, np.zeros(n), np.zeros(n))


def duration_rates(spec: ServerlessSpec) -> tuple[float, float]:
    """USD per second of request duration: on demand, and on a provisioned worker."""
    return (spec.memory_gb * ON_DEMAND_USD_PER_GB_SECOND,
            spec.memory_gb * PROVISIONED_DURATION_USD_PER_GB_SECOND)


@dataclass
class PeriodFigures:
    """What the variant publishes per metric period (NaN: no datapoint), and per step the
    counts its per-request metrics sum."""

    pc_utilization: list[float]  # ServerlessProvisionedConcurrencyUtilization, 0..1
    pc_executions: list[float]  # ServerlessProvisionedConcurrencyExecutions (peak)
    concurrency: list[float]  # ServerlessConcurrentExecutionsUtilization, 0..1
    cold: np.ndarray  # per step: requests that waited for a cold start (ModelSetupTime)
    on_pc: np.ndarray  # per step: ServerlessProvisionedConcurrencyInvocations
    spillover: np.ndarray  # per step: ...SpilloverInvocations


@dataclass
class _Step:
    """One step's requests as they are served: counts, and sums in seconds and USD."""

    served: int = 0
    throttled: int = 0
    over: int = 0  # served over the SLO
    cold: int = 0
    on_pc: int = 0
    spillover: int = 0
    wait: float = 0.0
    busy: float = 0.0
    usd: float = 0.0


class RequestWorkers:
    """Requests of `draws` against the variant's workers, step by step (`advance`)."""

    def __init__(self, log: StepLog, spec: ServerlessSpec, slo: float, t0: float, dt: float,
                 draws: Draws, period: float) -> None:
        self.log, self.spec, self.slo, self.t0, self.dt = log, spec, slo, t0, dt
        self.per = max(1, int(round(period / dt)))  # steps per metric period
        n = len(log.arrivals)
        self.bounds = np.searchsorted(draws.step, np.arange(n + 1)).tolist()
        self.times, self.durations = draws.arrival.tolist(), draws.service.tolist()
        self.set: WorkerSet[int] = WorkerSet(spec, spec.keep_alive_seconds, t0)
        self.ids = 0
        for _ in range(self.set.provision()):  # provisioned workers are warm from the start
            self.set.started(self._new_id(), t0, busy=False)
        self.events: list[tuple[float, int, int, int, float]] = []  # time, seq, kind, id, s
        self.seq = 0
        self.time = t0  # simulated up to here
        self.tally = Tally.empty(log)
        self.latencies: list[float] = []
        self.figures = PeriodFigures([], [], [], np.zeros(n), np.zeros(n), np.zeros(n))
        self.rates = duration_rates(spec)

    def serve(self) -> Tally:
        """The whole trace at the spec's ProvisionedConcurrency."""
        self.advance(0, len(self.log.arrivals), self.spec.provisioned_concurrency)
        return self.tally

    def advance(self, start: int, stop: int, provisioned: int) -> None:
        """Steps [start, stop) with `provisioned` units configured (billed) in them (the
        ServingModel of sim.loop, whose third argument is the variant's current capacity)."""
        self.tally.provisioned[start:stop] = provisioned
        for k in range(start, stop):
            step = _Step()
            for i in range(self.bounds[k], self.bounds[k + 1]):
                self._one(step, self.times[i], self.durations[i])
            self._record(k, step)
            end = self.t0 + (k + 1) * self.dt
            self._settle(end)
            self.time = end
            self.log.in_service[k] = self.log.billed[k] = self.set.size + self.set.starting
            if (k + 1) % self.per == 0:
                self._publish(end)

    def reconfigure(self, provisioned: int, now: float) -> float | None:
        """ProvisionedConcurrency becomes `provisioned` at `now` (or where the steps already
        simulated end, if later): when the workers it needs to start are warm, None if it
        needs none. As live (pool.reconfigure), workers alive already count."""
        at = max(now, self.time)
        self._settle(at)
        self.spec = replace(self.spec, provisioned_concurrency=provisioned)
        self.set.reconfigure(self.spec, at)  # MaxConcurrency is unchanged: nothing stops
        starts = self.set.provision()
        for _ in range(starts):
            self._push(at + self.spec.cold_start_seconds, _READY_IDLE, self._new_id(), 0.0)
        return at + self.spec.cold_start_seconds if starts else None

    def _one(self, step: _Step, t: float, s: float) -> None:
        self._settle(t)
        spec = self.spec
        admission = self.set.admit(t)
        if admission.throttled:
            step.throttled += 1
            return
        if spec.provisioned_concurrency:
            if admission.provisioned:
                step.on_pc += 1
            else:
                step.spillover += 1
        if admission.outcome == WARM:
            assert admission.worker is not None
            wait = 0.0
            self._push(t + s, _DONE, admission.worker, 0.0)
        else:
            assert admission.outcome == COLD_START
            wait = spec.cold_start_seconds
            step.cold += 1
            self._push(t + wait, _READY_BUSY, self._new_id(), s)
        step.served += 1
        step.wait += wait
        step.busy += s
        step.over += wait + s > self.slo
        on_demand, on_pc = self.rates
        step.usd += s * (on_pc if admission.provisioned else on_demand)
        self.latencies.append(wait + s)

    def _record(self, k: int, step: _Step) -> None:
        """The step's requests into the log (once per step: numpy item writes are slow)."""
        log, fig = self.log, self.figures
        log.dropped[k] = step.throttled
        log.over[k] = step.over + step.throttled
        log.wait[k] = step.wait / step.served if step.served else 0.0
        log.busy[k] = step.busy
        self.tally.usd[k] = step.usd
        self.tally.cold_starts += step.cold
        fig.cold[k], fig.on_pc[k], fig.spillover[k] = step.cold, step.on_pc, step.spillover

    def _settle(self, t: float) -> None:
        """Events due by `t` happen, in order; idle workers past the keep-alive stop."""
        events, workers = self.events, self.set
        while events and events[0][0] <= t:
            when, _, kind, worker, s = heapq.heappop(events)
            self._expire(when)
            if kind == _READY_BUSY:
                workers.started(worker, when, busy=True)
                self._push(when + s, _DONE, worker, 0.0)
            elif kind == _DONE:
                workers.release(worker, when)
            else:
                workers.started(worker, when, busy=False)
        self._expire(t)

    def _expire(self, t: float) -> None:
        for worker in self.set.expired(t):
            self.set.remove(worker, t)

    def _publish(self, end: float) -> None:
        """The period ending at `end`, as serverless/telemetry.publish_period takes it."""
        fig = self.figures
        fig.concurrency.append(self.set.concurrency_utilization(end))
        if self.spec.provisioned_concurrency:
            utilization, peak = self.set.utilization(end)
            fig.pc_utilization.append(utilization)
            fig.pc_executions.append(float(peak))
        else:
            fig.pc_utilization.append(math.nan)
            fig.pc_executions.append(math.nan)

    def _push(self, t: float, kind: int, worker: int, s: float) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, worker, s))

    def _new_id(self) -> int:
        self.ids += 1
        return self.ids
