"""tideserve extension (beyond AWS): the live side of latency-target policies. The
ScalingDriver calls `LatencyPolicyRunner.run(now)` at every tick, after the AAS tick; each
policy is evaluated by the pure `scaling.latency_policy.evaluate`, the function the simulator
runs, with its inputs read from the metric store (per variant, AWS/SageMaker namespace):

- arrival rate: the last closed period's Invocations Sum / period;
- service time: ModelLatency of that period — mean = Sum / SampleCount, tail = the period's
  quantile sketch at 1 − ε/2 (ε = TargetShareOverBound); when the period had no requests, the
  newest of the last 10 periods that had some;
- share over the bound: the sketch's weight in buckets above LatencyBoundMs (≤ 1 % off at
  the bound, the sketch's relative accuracy) over its count;
- the burst window: the store holds closed periods, so the live burst mode reads the last
  period's rate (the simulator may read a shorter window).

Combining with AAS policies as AWS combines several: the higher capacity wins. The runner
scales out whenever its capacity is above the one asked for now; it scales in only when no
AAS scaling policy is attached to the target (else a lower AAS decision would be undone at
the next evaluation). Scale-out is skipped while DynamicScalingOutSuspended, scale-in while
DynamicScalingInSuspended, and nothing is asked while the endpoint is not InService.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any, Protocol

from tideserve.autoscaling.latency_policies import (
    DIMENSION,
    LatencyPolicy,
    LatencyPolicyApi,
    LatencyPolicyRecord,
    LatencyPolicyStore,
    TargetLookup,
)
from tideserve.autoscaling.storage import ScalingStorage
from tideserve.clock import Clock
from tideserve.errors import TideserveError
from tideserve.metrics.model import Datapoint, Dimensions
from tideserve.metrics.sketch import GAMMA, Sketch
from tideserve.scaling.activities import activity_id
from tideserve.scaling.burst import BurstConfig
from tideserve.scaling.latency_policy import evaluate
from tideserve.scaling.latency_target import LatencyTargetConfig, ServiceMeasure
from tideserve.scaling.model import Activity, TargetKey
from tideserve.scaling.ports import IN_SERVICE, CapacityPort
from tideserve.scaling.world import TickConfig
from tideserve.settings import Settings

log = logging.getLogger("tideserve.autoscaling")

NAMESPACE = "AWS/SageMaker"
LOOKBACK_PERIODS = 10


class MetricAggregates(Protocol):
    """The part of tideserve.metrics.store.MetricStore the runner reads."""

    def aggregate(
        self, namespace: str, name: str, dims: Dimensions, start: float, end: float,
        period: float, unit: str | None = None, *, with_sketch: bool = True,
    ) -> list[Datapoint]: ...


def share_over(sketch: Sketch, bound: float) -> float:
    """The share of the sketch's values above `bound` (bucket midpoints compared)."""
    if sketch.count <= 0:
        return 0.0
    if sketch.maximum <= bound:
        return 0.0
    over = sum(n for index, n in sketch.bins if 2.0 * GAMMA**index / (GAMMA + 1.0) > bound)
    return min(1.0, over / sketch.count)


def configs(policy: LatencyPolicy, min_capacity: int, max_capacity: int,
            period: float, time_scale: float) -> tuple[LatencyTargetConfig, BurstConfig | None]:
    """The engine's configs for a live policy: durations compressed by the time scale."""
    lt = LatencyTargetConfig(policy.latency_bound_ms / 1000.0, policy.percentile,
                             scale_in_window=policy.scale_in_window_seconds * time_scale,
                             min_capacity=min_capacity, max_capacity=max_capacity)
    burst = None
    if policy.burst_threshold is not None:
        burst = BurstConfig(window_seconds=period, threshold=policy.burst_threshold,
                            stable_window=policy.burst_stable_window_seconds * time_scale,
                            max_capacity=max_capacity)
    return lt, burst


class LatencyPolicyRunner:
    def __init__(self, policies: LatencyPolicyStore, scaling: ScalingStorage,
                 metrics: MetricAggregates, port: CapacityPort, period: float,
                 time_scale: float, evaluation_delay: float) -> None:
        self.policies, self.scaling, self.metrics, self.port = policies, scaling, metrics, port
        self.period, self.time_scale, self.delay = period, time_scale, evaluation_delay

    def run(self, now: float) -> list[Activity]:
        out = []
        with self.policies.lock:
            for record in self.policies.all():
                try:
                    activity = self._evaluate(record, now)
                except Exception:
                    log.exception("latency-target policy on %s failed",
                                  record.policy.resource_id)
                    continue
                if activity is not None:
                    out.append(activity)
        if out:
            self.scaling.put_activities(out)
        return out

    def _evaluate(self, record: LatencyPolicyRecord, now: float) -> Activity | None:
        policy, before = record.policy, record
        key = TargetKey("sagemaker", policy.resource_id, DIMENSION)
        target_record = self.scaling.target(key)
        capacity = self.port.capacity(policy.resource_id)
        if target_record is None or capacity is None or capacity.dimension != DIMENSION:
            return None  # deregistered or deleted: the policy waits (DeleteLatency… removes it)
        target = target_record.target
        start = math.floor((now - self.delay) / self.period) * self.period - self.period
        if start < 0:
            return None
        on_period = record.last_period != start
        measure = self._measure(policy, start)
        if measure is None:
            return None  # no latency seen yet: nothing to base a capacity on
        lt, burst = configs(policy, target.min_capacity, target.max_capacity, self.period,
                            self.time_scale)
        current = capacity.desired
        d = evaluate(lt, burst, record.state, measure, on_period, measure.arrival_rate,
                     current, now)
        record = replace(record, state=d.state, last_period=start)
        desired = target.clamp(d.desired)
        suspended = target.suspended
        act = desired != current and capacity.status == IN_SERVICE
        if desired > current and suspended.dynamic_scaling_out_suspended:
            act = False
        if desired < current and (suspended.dynamic_scaling_in_suspended or any(
                p.key == key for p in self.scaling.policies())):
            act = False
        activity = None
        if act:
            cause = (f"tideserve latency-target policy on {policy.resource_id} "
                     f"(p{policy.percentile:g} {policy.metric_name} ≤ "
                     f"{policy.latency_bound_ms:g} ms): {d.reason}")
            activity = self._set(key, desired, cause, now)
        if record != before:  # the driver ticks several times a period: write on change only
            self.policies.put(record)
        return activity

    def _set(self, key: TargetKey, desired: int, cause: str, now: float) -> Activity:
        base = Activity(activity_id(key, now, cause, f"set:{desired}"), key,
                        f"Setting desired instance count to {desired}.", cause, now,
                        "Successful", desired, now)
        try:
            self.port.set_desired_capacity(key.resource_id, desired)
        except TideserveError as exc:
            log.info("%s: capacity %d refused: %s", key.resource_id, desired, exc.message)
            return replace(base, status_code="Failed", status_message=exc.message)
        log.info("%s: latency-target policy set desired capacity to %d", key.resource_id,
                 desired)
        return replace(base, status_message=(f"Successfully set desired instance count to "
                                             f"{desired}. Change successfully fulfilled by "
                                             "sagemaker."))

    def _measure(self, policy: LatencyPolicy, start: float) -> ServiceMeasure | None:
        _, endpoint, _, variant = policy.resource_id.split("/")
        dims: Dimensions = (("EndpointName", endpoint), ("VariantName", variant))
        end = start + self.period
        invocations = self.metrics.aggregate(NAMESPACE, "Invocations", dims, start, end,
                                             self.period, with_sketch=False)
        arrivals = sum(p.sum for p in invocations)
        lookback = start - (LOOKBACK_PERIODS - 1) * self.period
        latencies = [p for p in self.metrics.aggregate(
            NAMESPACE, policy.metric_name, dims, lookback, end, self.period, "Microseconds")
            if p.sample_count > 0]
        if not latencies:
            return None
        newest = latencies[-1]
        half = policy.target_share_over_bound / 2.0
        mean = newest.average / 1e6
        tail = newest.sketch.quantile(1.0 - half) if newest.sketch is not None else None
        service_tail = (tail if tail is not None else newest.maximum) / 1e6
        over = None
        if newest.timestamp == start and newest.sketch is not None:
            over = share_over(newest.sketch, policy.latency_bound_ms * 1000.0)
        return ServiceMeasure(arrivals / self.period, mean, service_tail, policy.concurrency,
                              over)



def build_latency_policies(engine: Any, scaling: ScalingStorage, metrics: MetricAggregates,
                           port: CapacityPort, clock: Clock, settings: Settings,
                           ) -> tuple[LatencyPolicyRunner, dict[str, Any]]:
    """The runner the ScalingDriver calls and the tideserve operations that manage the
    policies (server.build registers them under service "tideserve")."""
    store = LatencyPolicyStore(engine)
    tick = TickConfig.for_period(settings.period)
    runner = LatencyPolicyRunner(store, scaling, metrics, port, settings.period,
                                 tick.time_scale, tick.evaluation_delay)
    return runner, LatencyPolicyApi(store, TargetLookup(scaling), clock).operations()
