"""The autoscaling world as plain values: what the tick reads and returns, and the effects it
asks the edge to carry out. Everything is frozen; a tick builds a new World.

Times are epoch seconds on the driver's clock (wall time live, simulated time in the
simulator). Durations AWS states (cooldowns, alarm periods) stay in AWS seconds here; the tick
scales them with `TickConfig.time_scale`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tideserve.scaling.alarms import AlarmEvaluation, AlarmState, MetricAlarm
from tideserve.scaling.engine import TargetState
from tideserve.scaling.model import (
    Activity,
    ScalableTarget,
    ScalingPolicy,
    ScheduledAction,
    TargetKey,
)
from tideserve.scaling.ports import Capacity
from tideserve.scaling.predictive_model import Forecast

Point = tuple[float, float | None]


@dataclass(frozen=True)
class TargetRecord:
    """A scalable target and the engine's memory of it."""

    state: TargetState
    # Scheduled actions due at or before this time have been considered (epoch s).
    schedule_checked: float
    # A RegisterScalableTarget is waiting for its Min/Max to be enforced; done at the first
    # tick that finds the endpoint InService.
    check_bounds: bool = False

    @property
    def target(self) -> ScalableTarget:
        return self.state.target

    @property
    def key(self) -> TargetKey:
        return self.state.target.key


@dataclass(frozen=True)
class AlarmRecord:
    """A metric alarm, its state and what its last evaluation saw."""

    alarm: MetricAlarm
    state: AlarmState
    evaluated_at: float | None = None  # start of the evaluation slot last evaluated
    latest_value: float | None = None  # newest real datapoint of that evaluation
    evaluated: tuple[Point, ...] = ()  # the points it decided on, oldest first
    # Actions a SetAlarmState transition owes; the next tick runs them.
    pending_actions: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.alarm.name

    def as_evaluation(self, actions: tuple[str, ...] = ()) -> AlarmEvaluation:
        """The stored outcome as the engine reads an evaluation (scale-in consensus reads
        peers' AlarmLow this way)."""
        return AlarmEvaluation(self.state, False, actions, self.evaluated, self.latest_value)


@dataclass(frozen=True)
class World:
    targets: tuple[TargetRecord, ...] = ()
    policies: tuple[ScalingPolicy, ...] = ()
    actions: tuple[ScheduledAction, ...] = ()
    alarms: tuple[AlarmRecord, ...] = ()
    # Activities still Pending or InProgress, by id (the targets' in-flight ones).
    open_activities: tuple[Activity, ...] = ()

    def activity(self, activity_id: str) -> Activity | None:
        return next((a for a in self.open_activities if a.activity_id == activity_id), None)


@dataclass(frozen=True)
class TickConfig:
    time_scale: float = 1.0  # our seconds per AWS second (Settings.time_scale)
    # Granularity of the stored metrics (seconds): an alarm is never evaluated over shorter
    # periods than the data has (a 10-s alarm on a 60-s store reads 60-s periods).
    resolution: float | None = None
    # Seconds into each evaluation slot before evaluating, so the period that just closed has
    # been flushed to the store (CloudWatch too evaluates a little after the minute).
    evaluation_delay: float = 0.0

    def alarm_period(self, alarm: MetricAlarm) -> float:
        period = alarm.period * self.time_scale
        return max(period, self.resolution) if self.resolution else period

    def evaluation_slot(self, interval: int) -> float:
        slot = interval * self.time_scale
        return max(slot, self.resolution) if self.resolution else slot

    @classmethod
    def for_period(cls, period: float) -> TickConfig:
        """What a server with metric period `period` runs with (the live driver and the
        simulator both use this): AWS durations scaled by period/60, alarms read at the
        store's resolution, evaluated a tenth of a period (at most 2 s) after each boundary,
        once the period's values are in."""
        return cls(time_scale=period / 60.0, resolution=period,
                   evaluation_delay=min(period * 0.1, 2.0))


DatapointsFor = Callable[[MetricAlarm, float, float], Mapping[float, float]]
StartupSeconds = Callable[[str, float, float], float | None]


@dataclass(frozen=True)
class Observation:
    """What the tick may look at outside the world, as functions (no I/O in the tick itself:
    the live driver backs them with the metric store and the SageMaker service, the simulator
    with its model)."""

    # (alarm, compressed period, now) -> {period start: the alarm's statistic}
    datapoints_for: DatapointsFor
    capacities: Mapping[str, Capacity | None]  # resource id -> capacity now
    # (resource id, since, until) -> the longest instance start-up (s) reported in between
    startup_seconds: StartupSeconds | None = None
    # Predictive policies' current forecasts by PolicyARN (scaling.forecast.Forecaster keeps
    # them, the same way live and in the simulator).
    forecasts: Mapping[str, Forecast] = field(default_factory=dict)


# --- effects --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetCapacity:
    """Ask the endpoint for `capacity` instances on behalf of `activity_id`."""

    key: TargetKey
    capacity: int
    activity_id: str


@dataclass(frozen=True)
class AlarmChanged:
    name: str
    before: str
    after: AlarmState


@dataclass(frozen=True)
class Notify:
    """A non-Auto-Scaling alarm action (SNS and the like): tideserve records it; it sends
    nothing."""

    alarm_name: str
    action_arn: str
    state_value: str


@dataclass(frozen=True)
class TargetRemoved:
    """The endpoint or variant no longer exists: the target, its policies, scheduled actions
    and target-tracking alarms went with it."""

    key: TargetKey


Effect = SetCapacity | AlarmChanged | Notify | TargetRemoved


@dataclass(frozen=True)
class Applied:
    """How the edge fared with a SetCapacity: `error` is the target service's message."""

    effect: SetCapacity
    error: str | None = None


@dataclass(frozen=True)
class TickResult:
    world: World
    effects: tuple[Effect, ...] = ()
    # Every activity created or changed this tick (closed ones too), for the history table.
    activities: tuple[Activity, ...] = ()
    reasons: tuple[str, ...] = field(default=())  # one line per decision, for the log
    # How the edge fared with each SetCapacity (drive_once fills it; a bare tick leaves it).
    applied: tuple[Applied, ...] = ()
