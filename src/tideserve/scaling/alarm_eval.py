"""Alarm evaluation: period-aligned datapoints and a time in, the alarm's next state, the actions
to run and the reason out (§5.8, CloudWatch User Guide "Configuring how CloudWatch alarms treat
missing data"). Pure: no clock is read, nothing is stored.

The algorithm, per evaluation:

1. Look at the *evaluation range*: the R = N + 2 most recent complete periods (N =
   EvaluationPeriods), more than N so that missing recent points can be replaced by older
   real ones.
2. If the range holds ≥ N real points, decide on the N most recent real points; how missing
   data is treated does not matter.
3. Otherwise every real point in the range is used and the remaining N − real slots (the most
   recent missing ones) are filled per TreatMissingData: `breaching` / `notBreaching` count
   them as bad / good. `missing` does not count them: no real point at all gives
   INSUFFICIENT_DATA; ≥ M breaching gives ALARM; any real non-breaching point gives OK;
   otherwise (all real points breach, but fewer than M) the premature-alarm guard decides:
   ALARM if the oldest breaching point is at least M periods old (AWS knowledge center:
   "the oldest available breaching data point in the alarm's evaluation range is at least as
   old as the value of Datapoints to Alarm, and all other more recent data points are
   breaching or missing"), else INSUFFICIENT_DATA (the guard's `- - - - X` row in AWS's
   earlier table). `ignore` is `missing` except that every outcome `missing` reaches for lack
   of data (INSUFFICIENT_DATA, the guard's ALARM) keeps the current state instead.
4. ALARM if ≥ M of the N evaluated points breach, otherwise OK.

Worked (N=3, M=3, R=5; oldest left): `- - X - -` with `missing` → ALARM (X has been breaching
for 3 ≥ M periods); `- - - X -` → INSUFFICIENT_DATA (only 2 periods); `0 - X - -` with M=2 →
OK (a real good point outweighs the guard).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tideserve.errors import ValidationError
from tideserve.scaling.alarm_model import (
    ALARM_STATES,
    AlarmEvaluation,
    AlarmState,
    AlarmStateValue,
    MetricAlarm,
    actions_to_run,
)
from tideserve.scaling.alarm_reason import (
    insufficient_reason,
    reason_data,
    threshold_reason,
)

Point = tuple[float, float | None]  # (period start, value or None = missing)

# How many periods beyond N the evaluator looks back. AWS gives one example (N=3 → 5 periods)
# and says the count depends on the period and resolution; N + 2 reproduces the example and
# is our rule for every alarm (UNCONFIRMED beyond N=3).
EXTRA_PERIODS = 2
_ALIGN_EPS = 1e-6  # tolerance when mapping float times onto period indices
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


def evaluation_range(alarm: MetricAlarm) -> int:
    """How many most-recent periods the evaluator reads: N + 2 (N=3 → 5, N=15 → 17)."""
    return alarm.evaluation_periods + EXTRA_PERIODS


@dataclass(frozen=True)
class DatapointQuery:
    """The metric read one evaluation needs: the alarm's `statistic` per `period` (seconds,
    compressed as the evaluation's) for periods starting in [start, end) (epoch s)."""

    statistic: str
    period: float
    start: float
    end: float


def datapoint_query(alarm: MetricAlarm, period: float, now: float) -> DatapointQuery:
    """What both worlds read for an evaluation at `now`: the evaluation range and one period
    more (a margin for float period starts), from a period boundary; the alarm's statistic,
    Average when it names none. N=3, period 60, now 1000 → R = 5, start = (16 − 6) × 60 = 600,
    periods 600…960 (the one at 960 is still open and has no value yet)."""
    periods = evaluation_range(alarm) + 1
    start = (now // period - periods) * period
    statistic = alarm.statistic or alarm.extended_statistic or "Average"
    return DatapointQuery(statistic, period, start, now)


def breaches(alarm: MetricAlarm, value: float) -> bool:
    """The breach test: `value <op> Threshold`."""
    op, threshold = alarm.comparison_operator, alarm.threshold
    if op == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    if op == "GreaterThanThreshold":
        return value > threshold
    if op == "LessThanThreshold":
        return value < threshold
    if op == "LessThanOrEqualToThreshold":
        return value <= threshold
    raise ValueError(f"unsupported ComparisonOperator {op!r}")


def evaluation_interval(alarm: MetricAlarm) -> int:
    """How often CloudWatch evaluates the alarm, in AWS seconds: every minute for Period ≥ 60,
    every 10 s for the high-resolution periods. The caller schedules ticks (scaled by its
    time compression); Auto Scaling actions re-run on each tick while in ALARM."""
    return 60 if alarm.period >= 60 else 10


def _by_index(values: Mapping[float, float], period: float) -> dict[int, float]:
    """Period index → value; float period starts need not match our arithmetic bit for bit."""
    return {
        math.floor(start / period + _ALIGN_EPS): value
        for start, value in values.items()
        if not math.isnan(value)
    }


def window(
    alarm: MetricAlarm, datapoints: Mapping[float, float], now: float, period: float
) -> list[Point]:
    """The evaluation range, oldest first: the R most recent *complete* periods ending at or
    before `now`, aligned to multiples of `period`. A NaN value counts as missing."""
    by_index = _by_index(datapoints, period)
    end = math.floor(now / period + _ALIGN_EPS)  # index of the period still in progress
    first = end - evaluation_range(alarm)
    return [(i * period, by_index.get(i)) for i in range(first, end)]


def _treatment(alarm: MetricAlarm) -> str:
    # "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing data."
    return "ignore" if alarm.namespace == "AWS/DynamoDB" else alarm.treat_missing_data


@dataclass(frozen=True)
class Decision:
    outcome: AlarmStateValue | None  # None: keep the current state
    evaluated: tuple[Point, ...]  # oldest first; None = a missing slot the decision filled in
    treat_missing: str


def decide(alarm: MetricAlarm, points: Sequence[Point]) -> Decision:
    """Steps 2-4 of the module docstring over the evaluation range `points` (oldest first)."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    treat = _treatment(alarm)
    real = [i for i, (_, v) in enumerate(points) if v is not None]
    if len(real) >= n:
        chosen = real[-n:]
        bad = sum(1 for i in chosen if breaches(alarm, _value(points[i])))
        return Decision("ALARM" if bad >= m else "OK", _pick(points, chosen), treat)
    missing = [i for i, (_, v) in enumerate(points) if v is None]
    fills = missing[len(missing) - (n - len(real)) :]
    evaluated = _pick(points, sorted(real + fills))
    bad = sum(1 for i in real if breaches(alarm, _value(points[i])))
    if treat in ("breaching", "notBreaching"):
        bad += len(fills) if treat == "breaching" else 0
        return Decision("ALARM" if bad >= m else "OK", evaluated, treat)
    outcome: AlarmStateValue | None
    if not real:
        outcome = "INSUFFICIENT_DATA"
    elif bad >= m:
        return Decision("ALARM", evaluated, treat)
    elif bad < len(real):
        return Decision("OK", evaluated, treat)
    else:
        oldest_breach_age = len(points) - real[0]  # periods from its slot to the newest, inclusive
        outcome = "ALARM" if oldest_breach_age >= m else "INSUFFICIENT_DATA"
    return Decision(None if treat == "ignore" else outcome, evaluated, treat)


def _value(point: Point) -> float:
    assert point[1] is not None
    return point[1]


def _pick(points: Sequence[Point], indices: Sequence[int]) -> tuple[Point, ...]:
    return tuple(points[i] for i in indices)


def _low_sample_count(
    alarm: MetricAlarm, points: Sequence[Point], sample_counts: Mapping[float, float] | None
) -> bool:
    """EvaluateLowSampleCountPercentile=ignore: too few samples for the percentile to mean
    much. For pNN ≥ p50 that is fewer than 10 / (1 − NN/100) samples over the last N periods
    (1000 for p99); below p50, fewer than 10 / (NN/100)."""
    if alarm.evaluate_low_sample_count_percentile != "ignore" or sample_counts is None:
        return False
    match = _PERCENTILE.match(alarm.extended_statistic or "")
    if match is None:
        return False
    fraction = float(match.group(1)) / 100.0
    if fraction in (0.0, 1.0):
        return False  # p0 and p100 are the minimum and maximum: meaningful from one sample
    needed = 10.0 / (1.0 - fraction) if fraction >= 0.5 else 10.0 / fraction
    recent = points[-alarm.evaluation_periods :]
    return sum(sample_counts.get(start, 0.0) for start, _ in recent) < needed


def evaluate(
    alarm: MetricAlarm,
    state: AlarmState,
    datapoints: Mapping[float, float],
    now: float,
    period: float | None = None,
    sample_counts: Mapping[float, float] | None = None,
) -> AlarmEvaluation:
    """One evaluation tick. `datapoints` maps period start → the alarm's statistic for that
    period (real points only). `period` overrides alarm.period for the clock arithmetic, for a
    server that compresses time (--period 2 evaluates a Period=60 alarm over 2-s periods).
    `sample_counts` (period start → SampleCount) is only needed for percentile alarms with
    EvaluateLowSampleCountPercentile=ignore, and is quoted in StateReasonData when given."""
    step = float(period or alarm.period)
    points = window(alarm, datapoints, now, step)
    if sample_counts is not None:  # re-key onto our period starts
        counts = _by_index(sample_counts, step)
        sample_counts = {t: counts[round(t / step)] for t, _ in points if round(t / step) in counts}
    latest = next((v for _, v in reversed(points) if v is not None), None)
    if _low_sample_count(alarm, points, sample_counts):
        decision = Decision(None, tuple(points[-alarm.evaluation_periods :]), "ignore")
    else:
        decision = decide(alarm, points)
    after = decision.outcome or state.value
    new_state = state
    if after != state.value:
        new_state = AlarmState(
            after,
            _reason(alarm, decision, state.value),
            reason_data(alarm, decision.evaluated, now, sample_counts),
            now,
        )
    return AlarmEvaluation(
        state=new_state,
        transitioned=after != state.value,
        actions=actions_to_run(alarm, state.value, after),
        evaluated=decision.evaluated,
        latest_value=latest,
    )


def _reason(alarm: MetricAlarm, decision: Decision, previous: AlarmStateValue) -> str:
    outcome = decision.outcome
    assert outcome is not None
    if outcome == "INSUFFICIENT_DATA":
        unknown = sum(1 for _, v in decision.evaluated if v is None)
        return insufficient_reason(unknown)
    return threshold_reason(
        alarm,
        outcome,
        previous,
        decision.evaluated,
        lambda v: breaches(alarm, v),
        decision.treat_missing,
    )


def set_alarm_state(
    alarm: MetricAlarm,
    state: AlarmState,
    value: str,
    reason: str,
    reason_data: str,
    now: float,
) -> AlarmEvaluation:
    """SetAlarmState: force a state until the next evaluation. Actions run only when the value
    changes ("When the updated state differs from the previous value, the action configured for
    the appropriate state is invoked"). StateReasonData must be JSON (InvalidFormat otherwise);
    Auto Scaling reads the breaching value from it, so `latest_value` is taken from its
    `evaluatedDatapoints` (newest first) or else `recentDatapoints` (oldest first)."""
    target = _state_value(value)
    if len(reason) > 1023:
        raise ValidationError(
            f"StateReason is {len(reason)} characters; at most 1023 are allowed.",
            code="InvalidParameterValue",
        )
    latest = _reason_data_value(reason_data)
    changed = target != state.value
    updated_at = now if changed else state.updated_at
    return AlarmEvaluation(
        state=AlarmState(target, reason, reason_data, updated_at),
        transitioned=changed,
        actions=actions_to_run(alarm, state.value, target) if changed else (),
        evaluated=(),
        latest_value=latest,
    )


def _state_value(value: str) -> AlarmStateValue:
    for allowed in ALARM_STATES:
        if value == allowed:
            return allowed
    raise ValidationError(
        f"Invalid value {value!r} for parameter StateValue: must be one of "
        + ", ".join(ALARM_STATES)
        + ".",
        code="InvalidParameterValue",
    )


def _reason_data_value(text: str) -> float | None:
    if len(text) > 4000:
        raise ValidationError(
            f"StateReasonData is {len(text)} characters; at most 4000 are allowed.",
            code="InvalidParameterValue",
        )
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            f"StateReasonData is not valid JSON: {exc}", code="InvalidFormat"
        ) from exc
    if not isinstance(data, dict):
        raise ValidationError("StateReasonData must be a JSON object.", code="InvalidFormat")
    evaluated = data.get("evaluatedDatapoints")
    if isinstance(evaluated, list):
        for entry in evaluated:
            if isinstance(entry, dict) and _is_number(entry.get("value")):
                return float(entry["value"])
    recent = data.get("recentDatapoints")
    if isinstance(recent, list) and recent and _is_number(recent[-1]):
        return float(recent[-1])
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
