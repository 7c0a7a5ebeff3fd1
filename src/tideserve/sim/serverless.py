"""A serverless variant on simulated time: concurrency-limited workers, one request each, as
the live pool runs them (serverless/pool.py).

A request takes an idle warm worker (the most recently used); else, below MaxConcurrency, it
starts a new worker and waits for it — a cold start of `cold_start_seconds` (ModelSetupTime)
added to its latency; else it is throttled (failed, over the SLO, and counted apart). A worker
idle for `keep_alive_seconds` stops unless it is one of the provisioned ones, which are warm
from the start. No queue. A policy set may scale ProvisionedConcurrency with Application Auto
Scaling, as live (request-level mode: serverless_loop.py).

Billing (sim.kinds has the rates): memory (GB) × request duration at the on-demand rate,
duration served on a provisioned worker at the provisioned-duration rate, plus provisioned
concurrency's always-on charge per GB-second. Cold starts are not billed, as live.

Two modes, as for real-time:

Fluid (per step, a loop over the steps). A request arriving in step k occupies a worker for
the share h[j] of step k+j, h[j] = (1/dt)∫_{j·dt}^{(j+1)·dt} P(S > u) du (Σ h·dt = E[S]); a
cold one for C + S (kernel hc). Workers busy from earlier arrivals are `busy_old`; workers
alive are the most needed (rounded up) in any step of the last keep-alive, so each has been
used within it. Idle warm workers take up to idle / h[0] requests in the step; the rest start
new workers while fewer than MaxConcurrency are alive, and the remainder is throttled. Worked
example: S = 0.2 s, dt = 1 s (h[0] = 0.2), one warm idle worker and 8 arrivals in a second:
it serves 1 / 0.2 = 5 of them one after another; 3 start their own workers (cold). With
MaxConcurrency 3 only 2 can start (1 + 2 alive), and 1 is throttled.

Requests (mode: requests, for traces up to about an hour): the same requests as the real-time
request-level mode (requests.draw_requests), one event each, against the live pool's own
decisions (serverless/admission.py, through serverless_workers.py), on the instance-based
event loop so that scaling policies on provisioned concurrency run through the live tick.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np

from tideserve.scaling.model import Activity
from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.fluid import StepLog, mixture_percentiles
from tideserve.sim.kinds import PROVISIONED_USD_PER_GB_SECOND, SERVERLESS, ServerlessSpec
from tideserve.sim.profile import Profile, ServiceTime
from tideserve.sim.result import PolicyRun, ServerlessFigures, Summary
from tideserve.sim.scenario import Scenario
from tideserve.sim.serverless_loop import ServerlessLoop
from tideserve.sim.serverless_workers import Tally, duration_rates

PERCENTS = (50.0, 90.0, 99.0)
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


def serve_fluid(log: StepLog, spec: ServerlessSpec, profile: Profile, slo: float,
                dt: float) -> Tally:
    """Fill the log step by step (see the module docstring)."""
    service = profile.service_time
    h, hc = occupancy_kernel(service, 0.0, dt), occupancy_kernel(service, spec.cold_start_seconds,
                                                                 dt)
    h0, hc0, tail, cold_tail = float(h[0]), float(hc[0]), h[1:].tolist(), hc[1:].tolist()
    n, top, floor = len(log.arrivals), spec.max_concurrency, spec.provisioned_concurrency
    future = [0.0] * (n + max(len(h), len(hc)) + 1)  # workers held by earlier arrivals
    keep = max(1, int(math.ceil(spec.keep_alive_seconds / dt - _EPS)))
    window: deque[tuple[int, int]] = deque()  # (step, workers used): a sliding maximum
    miss_warm = 1.0 - float(service.cdf(slo))
    miss_cold = 1.0 - float(service.cdf(slo - spec.cold_start_seconds))
    tally, alive = Tally.empty(log), floor
    rate, pc_rate = duration_rates(spec)
    arrivals = log.arrivals.tolist()
    for k in range(n):
        held, a = future[k], arrivals[k]
        used = math.ceil(held - _EPS)
        if a > 0:
            load = held + a * h0  # mean workers busy in the step if every request is served
            blocked, below_floor = _loss(alive, floor, load)
            warm = a * (1.0 - blocked)
            cold = min(a * blocked, float(max(0, top - alive)))
            throttled = a * blocked - cold
            on_pc = min(warm, a * below_floor)  # found fewer than the provisioned busy
            for j, x in enumerate(tail):
                future[k + 1 + j] += warm * x
            for j, x in enumerate(cold_tail):
                future[k + 1 + j] += cold * x
            _record(tally, k, warm, cold, throttled, miss_warm, miss_cold, spec, service.mean)
            tally.usd[k] = ((warm + cold - on_pc) * rate + on_pc * pc_rate) * service.mean
            busy = held + warm * h0 + cold * hc0
            # Distinct workers the step used: its busy count's mean plus two standard
            # deviations (Poisson), no more than existed.
            used = min(alive + math.ceil(cold - _EPS), math.ceil(busy + 2 * math.sqrt(busy)
                                                                 - _EPS))
        while window and window[-1][1] <= used:
            window.pop()
        window.append((k, used))
        while window[0][0] <= k - keep:
            window.popleft()
        alive = min(top, max(floor, window[0][1]))
        log.in_service[k] = log.billed[k] = alive
    return tally


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


def _record(tally: Tally, k: int, warm: float, cold: float, throttled: float,
            miss_warm: float, miss_cold: float, spec: ServerlessSpec, mean_s: float) -> None:
    log = tally.log
    served = warm + cold
    log.dropped[k] = throttled
    log.over[k] = warm * miss_warm + cold * miss_cold + throttled
    log.wait[k] = cold * spec.cold_start_seconds / served if served > 0 else 0.0
    log.busy[k] = served * mean_s
    tally.cold_starts += cold
    tally.served_warm += warm


def run_serverless(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray) -> PolicyRun:
    spec = policy_set.serverless
    assert spec is not None, policy_set.name
    opts, slo = scenario.options, scenario.slo.latency_seconds
    log = StepLog.empty(arrivals)
    # Latencies reach the cold start: widen the percentile grid's range to it.
    profile = replace(scenario.profile, timeout_seconds=max(scenario.profile.timeout_seconds,
                                                            spec.cold_start_seconds))
    activities: tuple[list[Activity], int] = ([], 0)
    if opts.mode == "requests":
        loop = ServerlessLoop(scenario, policy_set, arrivals)
        loop.run()
        log, tally, activities = loop.log, loop.workers.tally, loop.activities()
        pct = _exact_percentiles(loop.workers.latencies)
    else:
        tally = serve_fluid(log, spec, profile, slo, opts.step_seconds)
        tally.provisioned[:] = spec.provisioned_concurrency
        pct = mixture_percentiles(np.array([0.0, spec.cold_start_seconds]),
                                  np.array([tally.served_warm, tally.cold_starts]), profile,
                                  PERCENTS)
    run = _as_run(policy_set.name, spec, log, tally, pct, opts.step_seconds)
    run.activities, run.not_scaled = activities
    return run


def _exact_percentiles(latencies: list[float]) -> dict[float, float]:
    if not latencies:
        return {p: float("nan") for p in PERCENTS}
    values = np.percentile(np.array(latencies), PERCENTS)
    return {p: float(v) for p, v in zip(PERCENTS, values, strict=True)}


def _as_run(name: str, spec: ServerlessSpec, log: StepLog, tally: Tally,
            pct: dict[float, float], dt: float) -> PolicyRun:
    # Provisioned concurrency's always-on charge: the units configured in each step.
    provisioned = tally.provisioned * spec.memory_gb * PROVISIONED_USD_PER_GB_SECOND * dt
    usd = tally.usd + provisioned
    requests, throttled = float(log.arrivals.sum()), float(log.dropped.sum())
    mean_workers = float(log.in_service.mean()) if len(log.in_service) else 0.0
    summary = Summary(
        cost_usd=float(usd.sum()), instance_hours=0.0, mean_instances=0.0,
        mean_in_service=mean_workers, requests=requests, served=requests - throttled,
        dropped=throttled,
        over_slo_share=float(log.over.sum()) / requests if requests else 0.0,
        latency_p50=pct[50.0], latency_p90=pct[90.0], latency_p99=pct[99.0])
    figures = ServerlessFigures(
        cold_starts=tally.cold_starts, throttled=throttled,
        gb_seconds=float(log.busy.sum()) * spec.memory_gb,
        provisioned_usd=float(provisioned.sum()), mean_workers=mean_workers,
        peak_workers=int(log.in_service.max()) if len(log.in_service) else 0)
    return PolicyRun(name, summary, log, kind=SERVERLESS, figures=figures, usd=usd)
