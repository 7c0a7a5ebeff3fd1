"""An asynchronous endpoint's policy set on simulated time: the real-time event loop
(loop.py) with the durable queue (async_queue.py) as its serving model, and the backlog
metrics the AWS scale-to-zero pattern reads (spec §1.8, §5.2).

The run goes on past the trace's end, with no arrivals, until the queue is empty (the work the
endpoint accepted; at most RequestTTL, after which all of it has expired), and that time is
billed. What the instances cost after the queue is empty is not counted — as a real-time
run's instances after the trace are not.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np

from tideserve.asyncinf import backlog_formula as formula
from tideserve.cost.billing import SECONDS_PER_HOUR, usd_for_seconds
from tideserve.metrics import catalogue as c
from tideserve.scaling.alarms import MetricAlarm
from tideserve.sim.async_queue import EPS, AsyncQueueModel
from tideserve.sim.engine_adapter import PolicySet
from tideserve.sim.fluid import StepLog, mixture_percentiles
from tideserve.sim.kinds import ASYNC, AsyncSpec
from tideserve.sim.loop import EndpointLoop
from tideserve.sim.metrics import Series, SimMetrics, gauge
from tideserve.sim.result import AsyncFigures, PolicyRun, Summary
from tideserve.sim.scenario import Scenario

PERCENTS = (50.0, 90.0, 99.0)
BACKLOG = c.BACKLOG_SIZE.name
PER_INSTANCE = c.BACKLOG_SIZE_PER_INSTANCE.name
WITHOUT_CAPACITY = c.BACKLOG_WITHOUT_CAPACITY.name
# Dimension {EndpointName} only; published every period whatever the backlog (as live:
# asyncinf/backlog.py), so a scale-in alarm sees the empty queue.
ASYNC_SERIES = {m.key: Series(m.unit, False) for m in (c.BACKLOG_SIZE, c.BACKLOG_SIZE_PER_INSTANCE,
                                                        c.BACKLOG_WITHOUT_CAPACITY)}
# The real-time series an async variant does not publish (the catalogue says which).
NOT_PUBLISHED = {key for key, m in c.CATALOGUE.items() if c.ASYNC not in m.kinds}


class AsyncMetrics(SimMetrics):
    """The variant's metrics, less those live async endpoints do not publish (the catalogue's:
    Invocations, InvocationsPerInstance, InvocationModelErrors, OverheadLatency,
    ConcurrentRequestsPerModel; spec §5.2), plus the endpoint's backlog metrics, per step:

    - ApproximateBacklogSize: queued + in processing;
    - ApproximateBacklogSizePerInstance: that / instances in service, the whole backlog at
      zero instances (divided by 1, as live), so TT alone leaves zero once it passes target;
    - HasBacklogWithoutCapacity: 1 while there is a backlog and no instance serves, else 0.
    """

    def __init__(self, log: StepLog, t0: float, dt: float, scenario: Scenario,
                 size: np.ndarray) -> None:
        ep = scenario.endpoint
        super().__init__(log, t0, dt, ep.name, ep.variant, scenario.profile)
        self.size = size
        self.endpoint_dims = (("EndpointName", ep.name),)

    def series(self, alarm: MetricAlarm) -> Series | None:
        key = (alarm.namespace, alarm.metric_name)
        if key in ASYNC_SERIES:
            found = ASYNC_SERIES[key]
            if alarm.dimensions != self.endpoint_dims or alarm.unit not in (None, found.unit):
                return None
            return found
        return None if key in NOT_PUBLISHED else super().series(alarm)

    def _aggregate(self, name: str, stat: str, steps: slice, per: int,
                   zero_filled: bool) -> np.ndarray:
        if name not in (BACKLOG, PER_INSTANCE, WITHOUT_CAPACITY):
            return super()._aggregate(name, stat, steps, per, zero_filled)
        n = self.log.in_service[steps].astype(np.float64)
        size = self.size[steps]
        if name == BACKLOG:
            value = size
        elif name == PER_INSTANCE:
            value = formula.per_instance(size, n)
        else:
            value = formula.without_capacity(size, n, empty_below=EPS)
        rows = value.reshape(-1, per)
        return gauge(stat, rows, np.ones(rows.shape, dtype=bool))


class AsyncLoop(EndpointLoop):
    def __init__(self, scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray) -> None:
        spec = policy_set.asynchronous
        assert spec is not None, policy_set.name
        self.spec: AsyncSpec = spec
        self.trace_steps = len(arrivals)
        dt = scenario.options.step_seconds
        tail = np.zeros(int(math.ceil(spec.request_ttl_seconds / dt)) + 1)
        self.stop: int | None = None
        super().__init__(scenario, policy_set, np.concatenate((arrivals, tail)),
                         initial_instances=spec.initial_instances)

    @property
    def slots(self) -> int:
        """Requests one instance serves at once: the dispatcher's limit, but no more than
        the model serves concurrently."""
        return min(self.spec.max_concurrent_invocations_per_instance,
                   self.scenario.profile.concurrency)

    def make_model(self) -> AsyncQueueModel:
        return AsyncQueueModel(self.log, self.scenario.profile, self.slots,
                               self.spec.request_ttl_seconds, self.dt)

    def make_metrics(self) -> SimMetrics:
        model = self.model
        assert isinstance(model, AsyncQueueModel)
        return AsyncMetrics(self.log, self.t0, self.dt, self.scenario, model.size)

    def finished(self, now: float) -> bool:
        """Past the trace, stop at the first step boundary with an empty queue."""
        model = self.model
        assert isinstance(model, AsyncQueueModel)
        if self.step < self.trace_steps:
            return False
        empty = np.flatnonzero(model.q[self.trace_steps:self.step + 1] <= EPS)
        if len(empty) == 0:
            return False
        self.stop = self.trace_steps + int(empty[0])
        return True


def run_async(scenario: Scenario, policy_set: PolicySet, arrivals: np.ndarray) -> PolicyRun:
    loop = AsyncLoop(scenario, policy_set, arrivals)
    loop.run()
    model = loop.model
    assert isinstance(model, AsyncQueueModel)
    stop = loop.step if loop.stop is None else loop.stop
    wait, served = model.finish(stop, scenario.slo.latency_seconds)
    log = StepLog(**{f.name: getattr(loop.log, f.name)[:stop] for f in fields(StepLog)})
    dt, hourly = scenario.options.step_seconds, scenario.endpoint.hourly_usd
    # Latencies reach the longest wait: widen the percentile grid's range to it.
    profile = replace(scenario.profile, timeout_seconds=max(scenario.profile.timeout_seconds,
                                                            float(wait.max(initial=0.0))))
    pct = mixture_percentiles(wait, served, profile, PERCENTS)
    seconds = float(log.billed.sum()) * dt
    requests, expired = float(log.arrivals.sum()), float(log.dropped.sum())
    summary = Summary(
        cost_usd=usd_for_seconds(seconds, hourly), instance_hours=seconds / SECONDS_PER_HOUR,
        mean_instances=float(log.billed.mean()), mean_in_service=float(log.in_service.mean()),
        requests=requests, served=requests - expired, dropped=expired,
        over_slo_share=float(log.over.sum()) / requests if requests else 0.0,
        latency_p50=pct[50.0], latency_p90=pct[90.0], latency_p99=pct[99.0])
    figures = AsyncFigures(
        max_queue_age_seconds=model.max_queue_age(stop), expired=expired,
        drain_seconds=max(0, stop - loop.trace_steps) * dt,
        peak_instances=int(log.billed.max(initial=0)),
        seconds_at_zero=float(np.count_nonzero(log.billed == 0)) * dt,
        final_instances=int(log.in_service[-1]) if stop else 0)
    scaled, not_scaled = loop.activities()
    return PolicyRun(policy_set.name, summary, log, scaled, not_scaled, kind=ASYNC,
                     figures=figures, usd=log.billed * usd_for_seconds(dt, hourly))
