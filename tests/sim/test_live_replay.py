"""The differential test of DESIGN.md principle 1: observations recorded from a live run,
replayed through the simulator's path, give identical scaling activities and identical cost.

The live run is the in-process live stack on an injected fake clock — the honest way to get
a deterministic run whose times can be compared to the second: the ScalingDriver stepping
every second as `run_forever` does, on the real ScalingStore and cost Ledger (SQLite in
tmp_path), alarms reading the real MetricStore, filled by the real aggregator and its flush
from requests counted as the router counts them. The endpoint is `LiveVariant`, this test's
stand-in for SageMaker's UpdateEndpointWeightsAndCapacities: a fixed provisioning delay, the
ConflictError of an Updating endpoint, each instance metered in the Ledger from its start
request to its stop, its start-up reported to the driver's StartupLog once it serves, as the
server's fleet events do. (A real server with instance processes is in
tests/integration/test_autoscaling.py; its wall-clock times cannot be compared to the
second.)

What each tick observed is recorded on the way (every metric read the driver made, every
capacity it saw, at what time), then the same policy set runs in the simulator's EndpointLoop
— its own event times, its SimEndpoint, its cost summary — with the recorded datapoints as its
metrics: the simulator must ask for exactly the reads the live driver made, see the same
capacities at the same times, record the same activities (ids, causes, descriptions, status,
messages, details, start and end times) and bill the same instance-seconds at the same price.

Times: period 10 s (AWS durations ÷ 6): a "minute" is 10 s, alarms evaluate at 10k + 1 s,
cooldowns are 50 s. Load 20 requests/s for 40 s, then 2/s.
  t=31   AlarmHigh (3 × 200 > 70 per instance) → 1 → 3 instances; they serve at t=51
  t=191  AlarmLow (15 periods of 20/3 < 63) → 3 → 1, served at once, Successful at once
  t=250  scheduled action: MinCapacity 2 → 1 → 2; serves at t=270
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tests.sim.builders import write_trace
from tideserve.autoscaling.aas_api import AutoScalingApi
from tideserve.autoscaling.driver import ScalingDriver
from tideserve.autoscaling.startup_log import StartupLog
from tideserve.autoscaling.store import ScalingStore
from tideserve.clock import FakeClock
from tideserve.cost.billing import Interval, billed_seconds, usd_for_seconds
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.db import make_engine, sqlite_url
from tideserve.errors import ConflictError
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.cloudwatch import CloudWatchMetrics
from tideserve.metrics.model import Dimensions
from tideserve.metrics.store import MetricStore
from tideserve.scaling.alarms import MetricAlarm, datapoint_query
from tideserve.scaling.model import Activity
from tideserve.scaling.ports import IN_SERVICE, Capacity
from tideserve.schema import create_all
from tideserve.settings import Settings
from tideserve.sim import scenario_from_dict
from tideserve.sim.endpoint import SimEndpoint
from tideserve.sim.loop import EndpointLoop
from tideserve.sim.metrics import SimMetrics
from tideserve.sim.run import summarize

T0 = 1_700_000_040.0  # 2023-11-14T22:14:00Z, a minute boundary
PERIOD, SECONDS, STARTUP = 10.0, 300, 20.0
EP, VARIANT, TYPE = "ep", "AllTraffic", "ml.m5.large"
RESOURCE = f"endpoint/{EP}/variant/{VARIANT}"
DIMS: Dimensions = (("EndpointName", EP), ("VariantName", VARIANT))
LOAD = [20 if t < 40 else 2 for t in range(SECONDS)]  # requests arriving in second t
POLICY_SET: dict[str, Any] = {
    "name": "tt",
    "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": 4},
    "put_scaling_policy": [{
        "PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}],
    "put_scheduled_action": [{
        "ScheduledActionName": "floor", "Schedule": "at(2023-11-14T22:18:10)",
        "ScalableTargetAction": {"MinCapacity": 2}}],
}
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
ReadKey = tuple[Any, ...]


class LiveVariant:
    """The CapacityPort as the SageMaker service answers it (see the module docstring)."""

    def __init__(self, clock: FakeClock, ledger: Ledger, startups: StartupLog,
                 instances: int) -> None:
        self.clock, self.ledger, self.startups = clock, ledger, startups
        self.serving: list[str] = []
        self.starting: list[str] = []
        self.status, self.ready_at, self.decided_at = IN_SERVICE, 0.0, 0.0
        self._next = 0
        for _ in range(instances):
            self.serving.append(self._start())

    def _start(self) -> str:
        self._next += 1
        instance = f"i-{self._next:04d}"
        self.ledger.instance_started(instance, f"arn:aws:sagemaker:::endpoint/{EP}", EP, VARIANT,
                                     TYPE, at=self.clock.now())
        return instance

    def capacity(self, resource_id: str) -> Capacity | None:
        if resource_id != RESOURCE:
            return None
        desired = len(self.serving) + len(self.starting)
        return Capacity(desired, len(self.serving), self.status)

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        if self.status != IN_SERVICE:
            raise ConflictError(f'Cannot update in-progress endpoint "{EP}".')
        now = self.clock.now()
        while len(self.serving) > n:  # scale-in: routing stops and the instance is stopped
            self.ledger.instance_stopped(self.serving.pop(), at=now)
        if n > len(self.serving):
            self.starting = [self._start() for _ in range(n - len(self.serving))]
            self.status, self.ready_at, self.decided_at = "Updating", now + STARTUP, now

    def advance(self, now: float) -> None:
        if self.starting and now >= self.ready_at:
            self.serving += self.starting
            self.starting, self.status = [], IN_SERVICE
            seconds = self.ready_at - self.decided_at
            self.startups.record(EP, VARIANT, now, seconds)


class Recorder:
    """Sits between the driver and the real metric store and endpoint, writing down what
    each tick observed: every metric read with its answer, every capacity with its time."""

    def __init__(self, metrics: MetricStore, variant: LiveVariant, clock: FakeClock) -> None:
        self.metrics, self.variant, self.clock = metrics, variant, clock
        self.reads: dict[ReadKey, list[tuple[float, float]]] = {}
        self.capacities: dict[float, Capacity | None] = {}

    def series(self, namespace: str, name: str, dims: Dimensions, stat: str, period: float,
               start: float, end: float, unit: str | None = None) -> list[tuple[float, float]]:
        points = self.metrics.series(namespace, name, dims, stat, period, start, end, unit)
        self.reads[(namespace, name, dims, stat, period, start, end, unit)] = points
        return points

    def capacity(self, resource_id: str) -> Capacity | None:
        capacity = self.variant.capacity(resource_id)
        self.capacities.setdefault(self.clock.now(), capacity)
        return capacity

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        self.variant.set_desired_capacity(resource_id, n)


def new_ids() -> Any:
    """The id sequence the simulator's build_world hands the AAS handlers."""
    ids = iter(range(1, 1_000_000))
    return lambda: f"00000000-0000-4000-8000-{next(ids):012d}"


def run_live(tmp_path: Path) -> tuple[Recorder, list[Activity], float, float]:
    """(what was observed, the activities stored, instance-seconds billed, their USD)."""
    clock = FakeClock(T0)
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    settings = Settings(state_dir=tmp_path, period=PERIOD)
    store, metrics = ScalingStore(engine), MetricStore(engine)
    aggregator = MetricAggregator(PERIOD, clock)
    cloudwatch = CloudWatchMetrics(metrics, aggregator, clock)
    ledger = Ledger(engine, Catalog.default(), clock)
    startups = StartupLog()
    variant = LiveVariant(clock, ledger, startups, instances=1)
    recorder = Recorder(metrics, variant, clock)
    aas = AutoScalingApi(store, recorder, clock, settings, new_id=new_ids())
    aas.register_scalable_target({**TARGET, **POLICY_SET["register_scalable_target"]})
    for params in POLICY_SET["put_scaling_policy"]:
        aas.put_scaling_policy({**TARGET, **params})
    for params in POLICY_SET["put_scheduled_action"]:
        aas.put_scheduled_action({**TARGET, **params})
    driver = ScalingDriver(store, recorder, recorder, clock, settings, flush=cloudwatch.flush,
                           startups=startups)
    assert driver.tick_seconds == 1.0
    for second in range(SECONDS):
        now = T0 + second
        clock.set(now)
        variant.advance(now)
        driver.step(now)
        # The router counts the second's requests on the instances serving them.
        n, serving = LOAD[second], len(variant.serving)
        aggregator.record("AWS/SageMaker", "Invocations", DIMS, 1.0, count=n, timestamp=now)
        aggregator.record("AWS/SageMaker", "InvocationsPerInstance", DIMS, 1.0 / serving,
                          count=n, timestamp=now)
    end = T0 + SECONDS
    activities = store.activities(None, "sagemaker", RESOURCE, True, 0.0)
    window = Interval(T0, end)
    usage = ledger.usage(T0, end)
    [rate] = {u.rate_per_hour for u in usage}
    seconds = sum(billed_seconds(u.interval(end), window) for u in usage)
    return recorder, activities, seconds, usd_for_seconds(seconds, rate)


class ReplayedMetrics(SimMetrics):
    """The simulator's metrics answered from the live recording: a read the live driver did
    not make is a KeyError, i.e. a disagreement on when or over what an alarm evaluates."""

    recorded: Mapping[ReadKey, list[tuple[float, float]]] = {}
    replayed: set[ReadKey]

    def datapoints(self, alarm: MetricAlarm, period: float, now: float) -> dict[float, float]:
        q = datapoint_query(alarm, period, now)
        key = (alarm.namespace, alarm.metric_name, alarm.dimensions, q.statistic, q.period,
               q.start, q.end, alarm.unit)
        self.replayed.add(key)
        return dict(self.recorded[key])


class WatchedEndpoint(SimEndpoint):
    """SimEndpoint, noting the capacity it reports at each tick's time."""

    seen: dict[float, Capacity | None]
    now = 0.0

    def advance(self, now: float) -> bool:
        self.now = now
        return super().advance(now)

    def capacity(self, resource_id: str) -> Capacity | None:
        capacity = super().capacity(resource_id)
        self.seen.setdefault(self.now, capacity)
        return capacity


def replay(tmp_path: Path, recorder: Recorder) -> tuple[EndpointLoop, float, float]:
    """The simulator's run of the same policy set on the recorded observations:
    (the loop, instance-seconds billed, USD)."""
    raw = {
        "name": "replay",
        "trace": {"path": str(write_trace(tmp_path / "load.csv", LOAD)), "rate_scale": 1},
        "endpoint": {"name": EP, "variant": VARIANT, "instance_type": TYPE,
                     "initial_instances": 1},
        "profile": {"service_time": {"constant": 0.01}, "concurrency": 1,
                    "startup_seconds": STARTUP},
        "slo": {"latency_seconds": 1.0, "percentile": 99},
        "simulation": {"step_seconds": 1, "metric_period": PERIOD, "start_time": T0},
        "policy_sets": [POLICY_SET],
    }
    scenario = scenario_from_dict(raw)

    class ReplayLoop(EndpointLoop):
        def make_metrics(self) -> SimMetrics:
            metrics = ReplayedMetrics(self.log, self.t0, self.dt, EP, VARIANT, scenario.profile)
            metrics.recorded, metrics.replayed = recorder.reads, set()
            return metrics

    loop = ReplayLoop(scenario, scenario.policy_sets[0], scenario.arrivals())
    watched = WatchedEndpoint(RESOURCE, 1, STARTUP)
    watched.seen = {}
    loop.endpoint = watched
    loop.run()
    summary = summarize(scenario, loop.log, loop.model)
    # The instance-seconds summarize priced (sim/run.py): billed instances per step × step.
    seconds = float(np.sum(loop.log.billed)) * scenario.options.step_seconds
    return loop, seconds, summary.cost_usd


def test_a_live_run_replayed_through_the_simulator_gives_identical_activities_and_cost(
        tmp_path: Path) -> None:
    recorder, live_activities, live_seconds, live_usd = run_live(tmp_path)
    loop, sim_seconds, sim_usd = replay(tmp_path, recorder)

    # The run did what the docstring says, so the comparison below is not vacuous.
    scaled = [a for a in live_activities if a.scaled]
    assert [(a.start_time - T0, a.end_time and a.end_time - T0, a.description, a.status_code)
            for a in sorted(scaled, key=lambda a: a.start_time)] == [
        (31.0, 51.0, "Setting desired instance count to 3.", "Successful"),
        (191.0, 191.0, "Setting desired instance count to 1.", "Successful"),
        (250.0, 270.0, "Setting desired instance count to 2.", "Successful"),
    ]

    # The simulator asked for exactly the alarm reads the live driver made...
    metrics = loop.metrics
    assert isinstance(metrics, ReplayedMetrics)
    alarm_reads = {k for k in recorder.reads if k[0] == "AWS/SageMaker"}
    assert metrics.replayed == alarm_reads and len(alarm_reads) > 30
    # ...saw, at each of its ticks, the capacity the live driver saw then...
    seen = loop.endpoint.seen if isinstance(loop.endpoint, WatchedEndpoint) else {}
    assert seen and {t: recorder.capacities[t] for t in seen} == seen
    # ...and recorded the very same activities, scaled or not.
    simulated = sorted(loop.history.values(), key=lambda a: (a.start_time, a.activity_id))
    live = sorted(live_activities, key=lambda a: (a.start_time, a.activity_id))
    assert simulated == live

    # The bill: the live ledger's instance-seconds and the simulator's, both priced by
    # cost/billing.py at the catalog's rate. 1 instance for 31 s, 3 until 191, 1 until 250,
    # 2 until 300: 31 + 480 + 59 + 100 = 670 instance-seconds.
    assert live_seconds == sim_seconds == 670.0
    assert live_usd == sim_usd
