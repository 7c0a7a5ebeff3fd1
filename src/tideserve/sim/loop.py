"""The event loop that runs one instance-based policy set (real-time, or async through
async_run's hooks) on simulated time.

Between two events the serving model advances over the steps at a constant capacity
(vectorised); at an event the endpoint completes what is due and the live driver's step runs
(scaling.drive.drive_once): the tick, its SetCapacity effects applied to the simulated endpoint,
their outcomes recorded. Events are the alarms' evaluation slots (the minute, plus
the driver's evaluation delay), scheduled actions' fire times and the moment a capacity change
completes — where the live driver, ticking every second, would see them. Simultaneous events
are one tick; a change that completes at once (a scale-in) is seen by a second tick at the
same instant.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from tideserve.errors import ConflictError
from tideserve.forecasting.holt_winters import model as forecast_model
from tideserve.scaling.alarms import evaluation_interval
from tideserve.scaling.drive import drive_once, refused
from tideserve.scaling.forecast import Forecaster
from tideserve.scaling.model import Activity
from tideserve.scaling.schedule import next_fire_time
from tideserve.scaling.world import Applied, Observation, SetCapacity, World
from tideserve.sim.endpoint import SimEndpoint
from tideserve.sim.engine_adapter import PolicySet, build_world, tick_config
from tideserve.sim.fluid import FluidModel, StepLog
from tideserve.sim.metrics import SimMetrics
from tideserve.sim.predictive import TraceLoad
from tideserve.sim.requests import RequestModel
from tideserve.sim.scenario import Scenario


class ServingModel(Protocol):
    """Fills the log's steps [start, stop) served by `in_service` instances."""

    def advance(self, start: int, stop: int, in_service: int) -> None: ...


def serving_model(scenario: Scenario, log: StepLog) -> FluidModel | RequestModel:
    if scenario.options.mode == "requests":
        return RequestModel(log, scenario.profile, scenario.slo.latency_seconds,
                            scenario.options.step_seconds, scenario.options.start_time,
                            scenario.options.seed)
    return FluidModel(log, scenario.profile, scenario.slo.latency_seconds,
                      scenario.options.step_seconds)


class EndpointLoop:
    """One policy set on simulated time. Subclasses choose the serving model and the metrics
    (`make_model`, `make_metrics`) and may end the run early (`finished`)."""

    def __init__(self, scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray,
                 initial_instances: int | None = None,
                 history: np.ndarray | None = None) -> None:
        """`history`: the arrivals per step just before the trace's first step (the history
        prefix, sim.predictive.split_history) that predictive policies forecast from."""
        opts, ep = scenario.options, scenario.endpoint
        instances = ep.initial_instances if initial_instances is None else initial_instances
        self.scenario = scenario
        self.t0, self.dt = opts.start_time, opts.step_seconds
        self.steps = len(arrivals)
        self.config = tick_config(opts.metric_period)
        self.world: World = build_world(policy_set, ep.name, ep.variant, instances, self.t0)
        self.endpoint = SimEndpoint(ep.resource_id, instances, scenario.profile.startup_seconds,
                                    scenario.profile.shutdown_seconds)
        self.log = StepLog.empty(arrivals)
        self.model: ServingModel = self.make_model()
        self.metrics: SimMetrics = self.make_metrics()
        self.history: dict[str, Activity] = {}
        self.step = 0
        slots = [self.config.evaluation_slot(evaluation_interval(r.alarm))
                 for r in self.world.alarms]
        self.forecaster: Forecaster | None = None
        if any(p.predictive is not None for p in self.world.policies):
            # Forecasts as the live driver makes them, decided on every metric period.
            self.forecaster = Forecaster(forecast_model(), opts.metric_period,
                                         self.config.time_scale, self.config.evaluation_delay)
            before = np.zeros(0) if history is None else np.asarray(history, dtype=float)
            self.load = TraceLoad(np.concatenate([before, arrivals]),
                                  self.t0 - len(before) * self.dt, self.dt, ep.name, ep.variant)
            slots.append(opts.metric_period)
        self.slot = min(slots) if slots else math.inf
        self.fires = {a.arn: next_fire_time(a, self.t0) for a in self.world.actions}

    def make_model(self) -> ServingModel:
        return serving_model(self.scenario, self.log)

    def make_metrics(self) -> SimMetrics:
        ep = self.scenario.endpoint
        return SimMetrics(self.log, self.t0, self.dt, ep.name, ep.variant, self.scenario.profile)

    def finished(self, now: float) -> bool:
        """True to end the run at `now`, before the last step (steps are final up to now)."""
        return False

    def run(self) -> None:
        now, end = self.t0, self.t0 + self.steps * self.dt
        while now < end:
            self._advance_to(now)
            if self.finished(now):
                return
            self.endpoint.advance(now)
            self._tick(now)  # a change that completes at once is seen at the same instant
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

    def _tick(self, now: float) -> None:
        """One drive_once, as the driver runs it (forecasts remade first where due)."""
        if self.forecaster is not None:
            self.forecaster.refresh(self.world.policies, self.load.read, now)
        result = drive_once(self.world, self._observe, now, lambda e: self._apply(e, now),
                            self.config)
        self.world = result.world
        for a in result.activities:
            self.history[a.activity_id] = a

    def _observe(self, world: World) -> Observation:
        capacities = {r.key.resource_id: self.endpoint.capacity(r.key.resource_id)
                      for r in world.targets}
        forecasts = dict(self.forecaster.forecasts) if self.forecaster is not None else {}
        return Observation(self.metrics.datapoints, capacities, self.endpoint.startup_seconds,
                           forecasts)

    def _apply(self, effect: SetCapacity, now: float) -> Applied:
        try:
            self.endpoint.set_desired_capacity(effect.key.resource_id, effect.capacity, now)
        except ConflictError as exc:
            return refused(effect, exc)
        return Applied(effect)

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

    def activities(self) -> tuple[list[Activity], int]:
        """(scaling activities that scaled, oldest first; decision records that did not)."""
        acts = sorted(self.history.values(), key=lambda a: (a.start_time, a.activity_id))
        scaled = [a for a in acts if a.scaled]
        return scaled, len(acts) - len(scaled)
