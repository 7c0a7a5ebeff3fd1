"""`simulate(scenario) -> SimResult`: every policy set of a scenario run on simulated time,
with the clairvoyant baseline beside them.

The loop is event-driven: between two events the serving model advances over the steps at a
constant capacity (vectorised); at an event the endpoint completes what is due, the live
driver's tick runs (engine_adapter), and its SetCapacity effects are applied to the simulated
endpoint and reported back, as the driver does. Events are the alarms' evaluation slots (the
minute, plus the driver's evaluation delay), scheduled actions' fire times and the moment a
capacity change completes — where the live driver, ticking every second, would see them.
Simultaneous events are one tick; a change that completes at once (a scale-in) is seen by a
second tick at the same instant.
"""

from __future__ import annotations

import math
import time

import numpy as np

from tideserve.autoscaling.world import Applied, Observation, SetCapacity, TickResult, World
from tideserve.errors import ConflictError
from tideserve.scaling.alarms import evaluation_interval
from tideserve.scaling.model import Activity
from tideserve.scaling.schedule import next_fire_time
from tideserve.sim.baseline import clairvoyant
from tideserve.sim.endpoint import SimEndpoint
from tideserve.sim.engine_adapter import (
    PolicySet,
    build_world,
    report_outcomes,
    run_tick,
    tick_config,
)
from tideserve.sim.fluid import FluidModel, StepLog
from tideserve.sim.metrics import SimMetrics
from tideserve.sim.requests import RequestModel
from tideserve.sim.result import PolicyRun, SimResult, Summary
from tideserve.sim.scenario import Scenario

PERCENTS = (50.0, 90.0, 99.0)


def simulate(scenario: Scenario, only: str | None = None) -> SimResult:
    """Run every policy set (or the one named `only`) and the clairvoyant baseline."""
    started = time.perf_counter()
    arrivals = scenario.arrivals()
    runs = [run_policy_set(scenario, ps, arrivals) for ps in scenario.policy_sets
            if only is None or ps.name == only]
    baseline = clairvoyant(scenario, arrivals)
    return SimResult(scenario, runs, baseline, time.perf_counter() - started)


def serving_model(scenario: Scenario, log: StepLog) -> FluidModel | RequestModel:
    if scenario.options.mode == "requests":
        return RequestModel(log, scenario.profile, scenario.slo.latency_seconds,
                            scenario.options.step_seconds, scenario.options.start_time,
                            scenario.options.seed)
    return FluidModel(log, scenario.profile, scenario.slo.latency_seconds,
                      scenario.options.step_seconds)


class _Run:
    """One policy set on simulated time."""

    def __init__(self, scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray) -> None:
        opts, ep = scenario.options, scenario.endpoint
        self.scenario = scenario
        self.t0, self.dt = opts.start_time, opts.step_seconds
        self.steps = len(arrivals)
        self.config = tick_config(opts.metric_period)
        self.world: World = build_world(policy_set, ep.name, ep.variant, ep.initial_instances,
                                        self.t0)
        self.endpoint = SimEndpoint(ep.resource_id, ep.initial_instances,
                                    scenario.profile.startup_seconds,
                                    scenario.profile.shutdown_seconds)
        self.log = StepLog.empty(arrivals)
        self.model = serving_model(scenario, self.log)
        self.metrics = SimMetrics(self.log, self.t0, self.dt, ep.name, ep.variant,
                                  scenario.profile)
        self.history: dict[str, Activity] = {}
        self.step = 0
        slots = [self.config.evaluation_slot(evaluation_interval(r.alarm))
                 for r in self.world.alarms]
        self.slot = min(slots) if slots else math.inf
        self.fires = {a.arn: next_fire_time(a, self.t0) for a in self.world.actions}

    def run(self) -> None:
        now, end = self.t0, self.t0 + self.steps * self.dt
        while now < end:
            self._advance_to(now)
            self.endpoint.advance(now)
            for _ in range(3):  # a change that completed at once is seen at the same instant
                if not self._tick(now):
                    break
            now = self._next_event(now)
        self._advance_to(end)

    def _advance_to(self, t: float) -> None:
        stop = min(self.steps, int(math.ceil((t - self.t0) / self.dt - 1e-9)))
        if stop > self.step:
            self.log.in_service[self.step:stop] = self.endpoint.current
            self.log.billed[self.step:stop] = self.endpoint.billed
            self.model.advance(self.step, stop, self.endpoint.current)
            self.step = stop
            self.metrics.final_steps = stop

    def _tick(self, now: float) -> bool:
        """One tick as the driver runs it; True if a capacity change completed at once."""
        capacities = {r.key.resource_id: self.endpoint.capacity(r.key.resource_id)
                      for r in self.world.targets}
        obs = Observation(self.metrics.datapoints, capacities, self.endpoint.startup_seconds)
        result = run_tick(self.world, obs, now, self.config)
        self.world = result.world
        self._keep(result)
        applied = [self._apply(e, now) for e in result.effects if isinstance(e, SetCapacity)]
        if not applied:
            return False
        outcome = report_outcomes(self.world, applied, now, self.config)
        self.world = outcome.world
        self._keep(outcome)
        return self.endpoint.status == "InService"

    def _apply(self, effect: SetCapacity, now: float) -> Applied:
        try:
            self.endpoint.set_desired_capacity(effect.key.resource_id, effect.capacity, now)
        except ConflictError as exc:
            return Applied(effect, f"{exc.message} (Service: AmazonSageMaker; Error Code: "
                                   "ValidationException)")
        return Applied(effect)

    def _keep(self, result: TickResult) -> None:
        for a in result.activities:
            self.history[a.activity_id] = a

    def _next_event(self, now: float) -> float:
        delay = self.config.evaluation_delay
        candidates = [math.inf if math.isinf(self.slot) else
                      (math.floor((now - delay) / self.slot + 1e-9) + 1) * self.slot + delay]
        if self.endpoint.ready_at is not None:
            candidates.append(max(self.endpoint.ready_at, now))
        for arn, t in list(self.fires.items()):
            while t is not None and t <= now:
                action = next(a for a in self.world.actions if a.arn == arn)
                t = next_fire_time(action, now)
            self.fires[arn] = t
            if t is not None:
                candidates.append(t)
        nxt = min(candidates)
        return nxt if nxt > now else math.nextafter(now, math.inf)


def run_policy_set(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray) -> PolicyRun:
    run = _Run(scenario, policy_set, arrivals)
    run.run()
    acts = sorted(run.history.values(), key=lambda a: (a.start_time, a.activity_id))
    scaled = [a for a in acts if a.scaled]
    summary = summarize(scenario, run.log, run.model)
    return PolicyRun(policy_set.name, summary, run.log, scaled, len(acts) - len(scaled))


def summarize(scenario: Scenario, log: StepLog, model: FluidModel | RequestModel) -> Summary:
    dt = scenario.options.step_seconds
    instance_seconds = float(log.billed.sum()) * dt
    requests = float(log.arrivals.sum())
    served = float(log.served.sum())
    pct = model.latency_percentiles(PERCENTS)
    return Summary(
        cost_usd=instance_seconds * scenario.endpoint.hourly_usd / 3600.0,
        instance_hours=instance_seconds / 3600.0,
        mean_instances=float(log.billed.mean()),
        mean_in_service=float(log.in_service.mean()),
        requests=requests,
        served=served,
        dropped=requests - served,
        over_slo_share=float(log.over.sum()) / requests if requests else 0.0,
        latency_p50=pct[50.0], latency_p90=pct[90.0], latency_p99=pct[99.0],
    )
