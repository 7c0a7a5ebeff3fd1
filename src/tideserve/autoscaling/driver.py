"""The live edge of autoscaling: every tick, read the world from the store, observe the
endpoints' capacity and the alarms' metrics, run the engine's `drive_once` (the pure tick,
the capacities applied through the CapacityPort, their outcomes recorded) and persist what
changed.

    driver = ScalingDriver(store, metric_store, capacity_port, clock, settings,
                           flush=cloudwatch.flush)
    task = asyncio.create_task(driver.run_forever())   # in the server's lifespan

`run_once(now)` is safe to call as often as one likes: alarms are evaluated once per
evaluation slot (a minute, compressed by Settings.time_scale), schedules when they are due,
and activities complete on the first tick that sees the endpoint settled — so the faster the
cadence, the sooner an activity's EndTime and cooldown follow the endpoint. The database work
runs in a worker thread so the event loop keeps serving requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tideserve.autoscaling.startup_log import StartupLog
from tideserve.autoscaling.storage import ScalingStorage
from tideserve.clock import Clock
from tideserve.errors import TideserveError
from tideserve.forecasting.holt_winters import model as forecast_model
from tideserve.metrics.model import Dimensions
from tideserve.scaling.alarms import MetricAlarm, datapoint_query
from tideserve.scaling.drive import drive_once, refused
from tideserve.scaling.forecast import Forecaster
from tideserve.scaling.model import TargetKey
from tideserve.scaling.ports import Capacity, CapacityPort
from tideserve.scaling.predictive_model import MetricStatQuery
from tideserve.scaling.world import (
    AlarmChanged,
    Applied,
    Notify,
    Observation,
    SetCapacity,
    TargetRemoved,
    TickConfig,
    TickResult,
    World,
)
from tideserve.settings import Settings

log = logging.getLogger("tideserve.autoscaling")

STARTUP_NAMESPACE, STARTUP_METRIC = "tideserve", "InstanceStartupTime"


class MetricSeries(Protocol):
    """The part of tideserve.metrics.store.MetricStore the driver reads."""

    def series(
        self, namespace: str, name: str, dims: Dimensions, stat: str, period: float,
        start: float, end: float, unit: str | None = None,
    ) -> list[tuple[float, float]]: ...


class LatencyRunner(Protocol):
    """autoscaling.latency_driver.LatencyPolicyRunner: tideserve's latency-target policies."""

    def run(self, now: float) -> Any: ...


class ScalingDriver:
    def __init__(
        self,
        store: ScalingStorage,
        metric_store: MetricSeries,
        capacity_port: CapacityPort,
        clock: Clock,
        settings: Settings,
        *,
        flush: Callable[[], Any] | None = None,
        tick_seconds: float | None = None,
        startups: StartupLog | None = None,
        latency: LatencyRunner | None = None,
    ) -> None:
        """`flush` moves closed metric periods into the store before alarms read them (pass
        CloudWatchMetrics.flush). `tick_seconds` is run_forever's cadence: a quarter of the
        metric period, at most one second, by default. `startups` is where the fleet reports
        its instances' start-up times as they happen (else they are read from the metric
        store, where they arrive only when their period closes)."""
        self.startups = startups
        # tideserve's latency-target policies (beyond AWS), run after the AAS tick.
        self.latency = latency
        self.store = store
        self.metrics = metric_store
        self.port = capacity_port
        self.clock = clock
        self.flush = flush
        period = settings.period
        self.tick_seconds = tick_seconds or min(1.0, period / 4)
        self.config = TickConfig.for_period(period)
        # Predictive policies' forecasts, one bin per metric period, remade every (compressed)
        # hour from the metric store; the simulator keeps one the same way.
        self.forecaster = Forecaster(forecast_model(), period, self.config.time_scale,
                                     self.config.evaluation_delay)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("autoscaling tick failed")
            await asyncio.sleep(self.tick_seconds)

    async def run_once(self, now: float | None = None) -> TickResult:
        return await asyncio.to_thread(self.step, self.clock.now() if now is None else now)

    def step(self, now: float) -> TickResult:
        """One drive_once, synchronously (what run_once runs in a thread): the world and the
        observation from the store and the endpoints, the result back into the store. The
        lock is held throughout, so an API call cannot land between the decision and its
        outcome; setting a capacity is one quick write to the SageMaker service."""
        if self.flush is not None:
            self.flush()
        # Forecasting takes up to a second: outside the lock, so API calls are not held up.
        remade = self.forecaster.refresh(self.store.policies(), self._load_history, now)
        if remade:
            self.store.put_forecasts(remade)
            for f in remade:
                log.info("forecast for %s by %s: %s", f.policy_arn, f.model,
                         f.note or f"{len(f.capacity)} bins, peak {max(f.capacity)}")
        with self.store.lock:
            before = self.store.load_world()
            result = drive_once(before, self._observe, now, self._apply, self.config)
            self.store.save_world(before, result)
            if self.latency is not None:
                self.latency.run(now)
        self._log(result)
        return result

    def _observe(self, world: World) -> Observation:
        capacities = {r.key.resource_id: self._capacity(r.key) for r in world.targets}
        return Observation(self._datapoints, capacities, self._startup_seconds,
                           dict(self.forecaster.forecasts))

    def _load_history(self, q: MetricStatQuery, start: float, end: float,
                      step: float) -> Mapping[float, float]:
        return dict(self.metrics.series(q.namespace, q.metric_name, q.dimensions, q.stat, step,
                                        start, end, q.unit))

    def _capacity(self, key: TargetKey) -> Capacity | None:
        """None also when the variant no longer has the target's dimension (an endpoint deleted
        and made again as the other kind): the target is then forgotten, as for a deletion."""
        capacity = self.port.capacity(key.resource_id)
        if capacity is None or capacity.dimension != key.scalable_dimension:
            return None
        return capacity

    def _apply(self, effect: SetCapacity) -> Applied | None:
        try:
            self.port.set_desired_capacity(effect.key.resource_id, effect.capacity)
        except TideserveError as exc:
            # The endpoint refused (e.g. it is Updating): the activity fails and the alarm,
            # still in ALARM, tries again at its next evaluation — what AAS does.
            log.info("%s: capacity %d refused: %s", effect.key.resource_id, effect.capacity,
                     exc.message)
            return refused(effect, exc)
        except Exception:
            # The port broke, not the endpoint refusing: whether the capacity took is unknown,
            # so the activity stays Pending and the next tick asks again or sees it took.
            log.exception("%s: setting capacity %d failed", effect.key.resource_id,
                          effect.capacity)
            return None
        log.info("%s: desired capacity set to %d", effect.key.resource_id, effect.capacity)
        return Applied(effect)

    def _datapoints(self, alarm: MetricAlarm, period: float, now: float) -> Mapping[float, float]:
        """The alarm's statistic per (compressed) period over its evaluation range."""
        q = datapoint_query(alarm, period, now)
        points = self.metrics.series(alarm.namespace, alarm.metric_name, alarm.dimensions,
                                     q.statistic, q.period, q.start, q.end, alarm.unit)
        return dict(points)

    def _startup_seconds(self, resource_id: str, since: float, until: float) -> float | None:
        """The longest InstanceStartupTime the fleet published for the variant between the
        decision and now (from the store, periods still open are not there yet: then None)."""
        if self.startups is not None:
            return self.startups.longest(resource_id, since, until)
        parts = resource_id.split("/")
        if len(parts) != 4:
            return None
        dims = (("EndpointName", parts[1]), ("VariantName", parts[3]))
        resolution = self.config.resolution or 60.0
        start = (since // resolution) * resolution
        points = self.metrics.series(STARTUP_NAMESPACE, STARTUP_METRIC, dims, "Maximum",
                                     resolution, start, until + resolution)
        return max((v for _, v in points), default=None)

    @staticmethod
    def _log(result: TickResult) -> None:
        for line in result.reasons:
            log.info("%s", line)
        for effect in result.effects:
            if isinstance(effect, AlarmChanged):
                log.info("alarm %s: %s -> %s", effect.name, effect.before, effect.after.value)
            elif isinstance(effect, Notify):
                log.info("alarm %s in %s: action %s recorded (tideserve sends no notifications)",
                         effect.alarm_name, effect.state_value, effect.action_arn)
            elif isinstance(effect, TargetRemoved):
                log.info("%s no longer exists: scalable target deregistered",
                         effect.key.resource_id)
