"""The alarm half of a tick: evaluate the alarms that are due, and turn the Auto Scaling
actions they run into engine Firings grouped by scalable target.

When an alarm is due: CloudWatch evaluates Period ≥ 60 alarms every minute and 10/30-s alarms
every 10 s (`evaluation_interval`); the live server compresses that by `time_scale` and never
goes below the stored metric resolution. Slots are aligned to multiples of the interval, so
with a 2-s period every alarm evaluates at t = 2k + delay, right after the aggregator has
flushed period k − 1. An alarm never evaluated (just created) is evaluated at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tideserve.scaling.alarms import (
    AlarmEvaluation,
    evaluate,
    evaluation_interval,
    is_autoscaling_action,
)
from tideserve.scaling.engine import Firing
from tideserve.scaling.model import TargetKey, policy_arn_of_action
from tideserve.scaling.world import (
    AlarmChanged,
    AlarmRecord,
    Effect,
    Notify,
    Observation,
    TickConfig,
    World,
)


@dataclass(frozen=True)
class AlarmOutcome:
    alarms: tuple[AlarmRecord, ...]
    firings: dict[TargetKey, list[Firing]]
    effects: tuple[Effect, ...]


def due_slot(record: AlarmRecord, now: float, config: TickConfig) -> float | None:
    """The start of the evaluation slot to evaluate now, or None if the alarm is not due."""
    slot = config.evaluation_slot(evaluation_interval(record.alarm))
    start = math.floor((now - config.evaluation_delay) / slot + 1e-9) * slot
    if record.evaluated_at is None:
        return start
    return start if start > record.evaluated_at + 1e-9 else None


def evaluate_alarms(world: World, obs: Observation, now: float, config: TickConfig) -> AlarmOutcome:
    """Evaluate every due alarm (or run what a SetAlarmState owes), in name order."""
    records: list[AlarmRecord] = []
    fired: list[tuple[AlarmRecord, AlarmEvaluation, str]] = []
    effects: list[Effect] = []
    for record in sorted(world.alarms, key=lambda r: r.name):
        if record.pending_actions:
            # SetAlarmState changed the state; its actions run now, and the alarm's own
            # evaluation resumes at the next slot (AWS: it "returns to its actual state quickly").
            evaluation = record.as_evaluation(record.pending_actions)
            record = replace(record, pending_actions=())
        else:
            slot = due_slot(record, now, config)
            if slot is None:
                records.append(record)
                continue
            before = record.state.value
            record, evaluation = _evaluate(record, obs, now, slot, config)
            if evaluation.transitioned:
                effects.append(AlarmChanged(record.name, before, evaluation.state))
        records.append(record)
        for arn in evaluation.actions:
            if is_autoscaling_action(arn):
                fired.append((record, evaluation, arn))
            else:
                effects.append(Notify(record.name, arn, evaluation.state.value))
    return AlarmOutcome(tuple(records), _firings(world, fired), tuple(effects))


def _evaluate(
    record: AlarmRecord, obs: Observation, now: float, slot: float, config: TickConfig
) -> tuple[AlarmRecord, AlarmEvaluation]:
    period = config.alarm_period(record.alarm)
    points = obs.datapoints_for(record.alarm, period, now)
    evaluation = evaluate(record.alarm, record.state, points, now, period=period)
    updated = replace(
        record,
        state=evaluation.state,
        evaluated_at=slot,
        latest_value=evaluation.latest_value,
        evaluated=evaluation.evaluated,
    )
    return updated, evaluation


def _firings(
    world: World, fired: Sequence[tuple[AlarmRecord, AlarmEvaluation, str]]
) -> dict[TargetKey, list[Firing]]:
    """Auto Scaling actions → Firings of the policies they name, grouped per target. An action
    naming a policy that no longer exists (or an older revision of a target-tracking policy)
    does nothing, as in AWS."""
    by_arn = {p.arn: p for p in world.policies}
    out: dict[TargetKey, list[Firing]] = defaultdict(list)
    for record, evaluation, arn in fired:
        policy = by_arn.get(policy_arn_of_action(arn))
        if policy is None or arn != policy.action_arn or policy.predictive is not None:
            continue  # a predictive policy is driven by its forecast, never by an alarm
        out[policy.key].append(Firing(policy, record.alarm, evaluation))
    for firings in out.values():
        firings.sort(key=lambda f: (f.policy.name, f.alarm.name))
    return dict(out)
