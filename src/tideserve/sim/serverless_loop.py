"""A serverless policy set on the instance-based event loop (loop.py), so Application Auto
Scaling of its provisioned concurrency runs through the live tick, as on a live server: the
variant's capacity is its ProvisionedConcurrency in the dimension
sagemaker:variant:DesiredProvisionedConcurrency, and the metrics are the ones the live
serverless telemetry publishes (target tracking on
SageMakerVariantProvisionedConcurrencyUtilization reads
ServerlessProvisionedConcurrencyUtilization).

A change of ProvisionedConcurrency takes effect as live (serverless/manager.py converge ->
pool.reconfigure): the new value counts at once for admission and utilization; the workers it
lacks (workers alive count) are cold-started, and the variant is Updating until they are warm
(`cold_start_seconds`), when CurrentServerlessConfig — the capacity's current, and the units
billed — takes the new value. A decrease needs no start: the variant is InService at the new
value at once, and the workers above it expire after the keep-alive.

The steps are filled by sim.serverless_workers.RequestWorkers (mode: requests: the live
pool's own decisions, exact) or sim.serverless_fluid.FluidWorkers (mode: fluid: expected
values; its new ProvisionedConcurrency applies from when the variant has it, and the
utilizations are approximations, see there). Request-level changes are applied at the first
step boundary at or after the decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from tideserve.errors import ConflictError
from tideserve.metrics import catalogue as c
from tideserve.metrics import names
from tideserve.scaling.alarms import MetricAlarm
from tideserve.scaling.model import DIM_PROVISIONED_CONCURRENCY
from tideserve.scaling.ports import IN_SERVICE, Capacity
from tideserve.sim.endpoint import SimEndpoint
from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.fluid import StepLog
from tideserve.sim.kinds import ServerlessSpec
from tideserve.sim.loop import EndpointLoop, ServingModel
from tideserve.sim.metrics import Series, SimMetrics, gauge
from tideserve.sim.profile import US_PER_SECOND
from tideserve.sim.requests import draw_requests
from tideserve.sim.scenario import Scenario
from tideserve.sim.serverless_fluid import FluidWorkers
from tideserve.sim.serverless_workers import PeriodFigures, RequestWorkers, Tally


class Workers(Protocol):
    """RequestWorkers or FluidWorkers: the serving model of a serverless variant."""

    spec: ServerlessSpec
    per: int  # steps per metric period
    figures: PeriodFigures
    tally: Tally

    def advance(self, start: int, stop: int, provisioned: int) -> None: ...

    def reconfigure(self, provisioned: int, now: float) -> float | None: ...

# What a serverless variant publishes (serverless/invoke.py and telemetry.py); Invocations
# counts throttled requests too, with an Invocation4XXError each.
# (the catalogue's list for the kind, all modelled here but cost).
SERVERLESS_SERIES = {m.key: Series(m.unit, c.SERVERLESS in m.zero_filled)
                     for m in c.published_by(c.SERVERLESS)
                     if m.namespace not in c.NOT_FROM_TRAFFIC}
_PER_PERIOD = (names.SERVERLESS_CONCURRENT_EXECUTIONS_UTILIZATION,
               names.SERVERLESS_PC_UTILIZATION, names.SERVERLESS_PC_EXECUTIONS)


class ProvisionedEndpoint(SimEndpoint):
    """The simulated serverless variant as the CapacityPort sees it: desired is the
    DesiredServerlessConfig's ProvisionedConcurrency, current the CurrentServerlessConfig's
    (serverless/capacity.py); the tick's SetCapacity is a ServerlessUpdateConfig."""

    def __init__(self, resource_id: str, workers: Workers) -> None:
        spec = workers.spec
        super().__init__(resource_id, spec.provisioned_concurrency, spec.cold_start_seconds)
        self.workers = workers

    def capacity(self, resource_id: str) -> Capacity | None:
        found = super().capacity(resource_id)
        return None if found is None else replace(found, dimension=DIM_PROVISIONED_CONCURRENCY)

    def set_desired_capacity(self, resource_id: str, n: int, now: float) -> None:
        if self.status != IN_SERVICE:
            raise ConflictError(f'Cannot update in-progress endpoint "{resource_id}".')
        self.desired = n
        ready = self.workers.reconfigure(n, now)
        if ready is None:
            self.current = self.billed = n
        else:
            self._updating(ready)

    def startup_seconds(self, resource_id: str, since: float, until: float) -> float | None:
        return None  # serverless workers publish no InstanceStartupTime


class ServerlessMetrics(SimMetrics):
    """The series of SERVERLESS_SERIES from the request-level steps and the WorkerSet's
    per-period meters. ModelLatency is the model's time only (a cold start is ModelSetupTime,
    as live); MemoryUtilization is the profile's memory_percent while workers exist."""

    def __init__(self, log: StepLog, scenario: Scenario, workers: Workers) -> None:
        ep = scenario.endpoint
        super().__init__(log, scenario.options.start_time, scenario.options.step_seconds,
                         ep.name, ep.variant, scenario.profile)
        self.workers = workers

    def series(self, alarm: MetricAlarm) -> Series | None:
        series = SERVERLESS_SERIES.get((alarm.namespace, alarm.metric_name))
        if series is None or alarm.dimensions != self.dims:
            return None
        return None if alarm.unit not in (None, series.unit) else series

    def _aggregate(self, name: str, stat: str, steps: slice, per: int,
                   zero_filled: bool) -> np.ndarray:
        log, fig = self.log, self.workers.figures
        if name in _PER_PERIOD:
            return self._per_period(name, stat, steps, per)
        if name == names.MODEL_LATENCY:
            return self._latency(stat, steps, per, np.zeros_like(log.wait[steps]))
        if name in (names.MEMORY_UTILIZATION, names.OVERHEAD_LATENCY):
            return super()._aggregate(name, stat, steps, per, zero_filled)

        def rows(x: np.ndarray) -> np.ndarray:
            summed: np.ndarray = x[steps].reshape(-1, per).sum(axis=1)
            return summed

        if name == names.MODEL_SETUP_TIME:
            count = rows(fig.cold)
            total = count * self.workers.spec.cold_start_seconds * US_PER_SECOND
        elif name in (names.SERVERLESS_PC_INVOCATIONS, names.SERVERLESS_PC_SPILLOVER_INVOCATIONS):
            count = rows(fig.on_pc if name == names.SERVERLESS_PC_INVOCATIONS else fig.spillover)
            out = _counted_ones(stat, count)
            # Zero-filled only in periods that publish provisioned-concurrency metrics.
            published = ~np.isnan(self._per_period(names.SERVERLESS_PC_UTILIZATION, "Sum",
                                                   steps, per))
            return np.where(count > 0, out, np.where(published, 0.0, np.nan))
        else:
            count = rows(log.arrivals)
            total = rows(log.dropped) if name == names.INVOCATION_4XX_ERRORS else (
                count if name == names.INVOCATIONS else np.zeros_like(count))
        return _counted_per_request(stat, total, count, zero_filled)

    def _per_period(self, name: str, stat: str, steps: slice, per: int) -> np.ndarray:
        """One value per metric period (NaN: none published), gathered into the alarm's
        periods of `per` steps as CloudWatch's statistics over the period's values."""
        fig = self.workers.figures
        source = {names.SERVERLESS_CONCURRENT_EXECUTIONS_UTILIZATION: fig.concurrency,
                  names.SERVERLESS_PC_UTILIZATION: fig.pc_utilization,
                  names.SERVERLESS_PC_EXECUTIONS: fig.pc_executions}[name]
        size = self.workers.per  # steps per metric period
        values = np.array(source[steps.start // size:steps.stop // size], dtype=np.float64)
        rows = values.reshape(-1, max(1, per // size))
        return gauge(stat, rows, ~np.isnan(rows))


def _counted_per_request(stat: str, total: np.ndarray, count: np.ndarray,
                         zero_filled: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        if stat == "Sum":
            out = total
        elif stat == "SampleCount":
            out = count
        elif stat in ("Average", "Minimum", "Maximum") or stat.startswith("p"):
            out = total / count  # Minimum/Maximum/pNN: the mean (per step values not kept)
        else:
            out = np.full(len(total), np.nan)
    return np.where(count > 0, out, 0.0 if zero_filled else np.nan)


def _counted_ones(stat: str, count: np.ndarray) -> np.ndarray:
    """A metric recorded as 1.0 per request."""
    return _counted_per_request(stat, count, count, True)


class ServerlessLoop(EndpointLoop):
    """The event loop with the serverless variant as its endpoint and serving model."""

    def __init__(self, scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray,
                 history: np.ndarray | None = None) -> None:
        spec = policy_set.serverless
        assert spec is not None, policy_set.name
        self.spec: ServerlessSpec = spec
        super().__init__(scenario, policy_set, arrivals,
                         initial_instances=spec.provisioned_concurrency, history=history)
        self.endpoint = ProvisionedEndpoint(scenario.endpoint.resource_id, self.workers)

    def make_model(self) -> ServingModel:
        opts, slo = self.scenario.options, self.scenario.slo.latency_seconds
        self.workers: Workers
        if opts.mode == "requests":
            draws = draw_requests(self.log, self.scenario.profile, opts.step_seconds,
                                  opts.start_time, opts.seed)
            self.workers = RequestWorkers(self.log, self.spec, slo, opts.start_time,
                                          opts.step_seconds, draws, opts.metric_period)
        else:
            self.workers = FluidWorkers(self.log, self.spec, self.scenario.profile, slo,
                                        opts.step_seconds, opts.metric_period)
        return self.workers

    def make_metrics(self) -> SimMetrics:
        return ServerlessMetrics(self.log, self.scenario, self.workers)
