"""`simulate(scenario) -> SimResult`: every policy set of a scenario run on simulated time,
with the clairvoyant baseline beside them.

A real-time set runs in the event loop (loop.py) with the live engine's tick; an async set in
the same loop with its queue and backlog metrics (async_run.py); a serverless set in the same
loop with its workers and metrics, the tick scaling its provisioned concurrency if the set
registers a target (serverless.py, serverless_loop.py).
"""

from __future__ import annotations

import time

import numpy as np

from tideserve.cost.billing import SECONDS_PER_HOUR, usd_for_seconds
from tideserve.sim.async_run import run_async
from tideserve.sim.baseline import clairvoyant
from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.extension import run_extension
from tideserve.sim.fluid import FluidModel, StepLog
from tideserve.sim.loop import EndpointLoop, serving_model
from tideserve.sim.predictive import split_history
from tideserve.sim.requests import RequestModel
from tideserve.sim.result import PolicyRun, SimResult, Summary
from tideserve.sim.scenario import Scenario
from tideserve.sim.serverless import run_serverless

PERCENTS = (50.0, 90.0, 99.0)

__all__ = ["run_candidate", "run_policy_set", "serving_model", "simulate", "summarize"]


def simulate(scenario: Scenario, only: str | None = None) -> SimResult:
    """Run every policy set (or the one named `only`) and the clairvoyant baseline."""
    started = time.perf_counter()
    scenario, history, arrivals = split_history(scenario, scenario.arrivals())
    runs = [run_candidate(scenario, ps, arrivals, history) for ps in scenario.policy_sets
            if only is None or ps.name == only]
    baseline = clairvoyant(scenario, arrivals)
    return SimResult(scenario, runs, baseline, time.perf_counter() - started)


def run_candidate(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray,
                  history: np.ndarray | None = None) -> PolicyRun:
    """One policy set, on the endpoint kind it names. `history`: arrivals before the first
    step, for predictive policies (real-time and serverless; async ignores it)."""
    if policy_set.serverless is not None:
        return run_serverless(scenario, policy_set, arrivals, history)
    if policy_set.asynchronous is not None:
        return run_async(scenario, policy_set, arrivals)
    if policy_set.extension is not None:
        return run_extension(scenario, policy_set, arrivals)
    return run_policy_set(scenario, policy_set, arrivals, history)


def run_policy_set(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray,
                   history: np.ndarray | None = None) -> PolicyRun:
    """A real-time policy set."""
    run = EndpointLoop(scenario, policy_set, arrivals, history=history)
    run.run()
    scaled, not_scaled = run.activities()
    assert isinstance(run.model, (FluidModel, RequestModel))
    summary = summarize(scenario, run.log, run.model)
    return PolicyRun(policy_set.name, summary, run.log, scaled, not_scaled)


def summarize(scenario: Scenario, log: StepLog, model: FluidModel | RequestModel) -> Summary:
    dt = scenario.options.step_seconds
    instance_seconds = float(log.billed.sum()) * dt
    requests = float(log.arrivals.sum())
    served = float(log.served.sum())
    pct = model.latency_percentiles(PERCENTS)
    return Summary(
        cost_usd=usd_for_seconds(instance_seconds, scenario.endpoint.hourly_usd),
        instance_hours=instance_seconds / SECONDS_PER_HOUR,
        mean_instances=float(log.billed.mean()),
        mean_in_service=float(log.in_service.mean()),
        requests=requests,
        served=served,
        dropped=requests - served,
        over_slo_share=float(log.over.sum()) / requests if requests else 0.0,
        latency_p50=pct[50.0], latency_p90=pct[90.0], latency_p99=pct[99.0],
    )
