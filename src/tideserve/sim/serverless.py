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

from dataclasses import replace

import numpy as np

from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.fluid import StepLog, mixture_percentiles
from tideserve.sim.kinds import PROVISIONED_USD_PER_GB_SECOND, SERVERLESS, ServerlessSpec
from tideserve.sim.result import PolicyRun, ServerlessFigures, Summary
from tideserve.sim.scenario import Scenario
from tideserve.sim.serverless_loop import ServerlessLoop
from tideserve.sim.serverless_workers import RequestWorkers, Tally

PERCENTS = (50.0, 90.0, 99.0)


def run_serverless(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray,
                   history: np.ndarray | None = None) -> PolicyRun:
    """`history`: arrivals before the first step, for a predictive provisioned-concurrency
    policy."""
    spec = policy_set.serverless
    assert spec is not None, policy_set.name
    opts = scenario.options
    # Latencies reach the cold start: widen the percentile grid's range to it.
    profile = replace(scenario.profile, timeout_seconds=max(scenario.profile.timeout_seconds,
                                                            spec.cold_start_seconds))
    loop = ServerlessLoop(scenario, policy_set, arrivals, history)
    loop.run()
    log, tally = loop.log, loop.workers.tally
    if isinstance(loop.workers, RequestWorkers):
        pct = _exact_percentiles(loop.workers.latencies)
    else:
        pct = mixture_percentiles(np.array([0.0, spec.cold_start_seconds]),
                                  np.array([tally.served_warm, tally.cold_starts]), profile,
                                  PERCENTS)
    run = _as_run(policy_set.name, spec, log, tally, pct, opts.step_seconds)
    run.activities, run.not_scaled = loop.activities()
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
