"""The words an alarm gives for its state: StateReason text and StateReasonData JSON (§5.8).

AWS does not document the exact text (UNCONFIRMED); these follow the shapes seen in real
DescribeAlarms output, e.g.

    Threshold Crossed: 3 datapoints [90.0 (26/11/23 08:43:00), 80.0 (26/11/23 08:42:00),
    75.0 (26/11/23 08:41:00)] were greater than the threshold (70.0).

Datapoints are listed newest first with their period start as dd/mm/yy HH:MM:SS (UTC).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tideserve.scaling.alarm_model import AlarmStateValue, MetricAlarm

Point = tuple[float, float | None]  # (period start, value or None = missing)

OPERATOR_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _short_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso_time(epoch: float) -> str:
    """Java-style ISO time as CloudWatch writes it: 2023-11-26T08:41:00.000+0000."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _listing(points: Sequence[tuple[float, float]]) -> str:
    newest_first = sorted(points, key=lambda p: p[0], reverse=True)
    return ", ".join(f"{value!r} ({_short_time(start)})" for start, value in newest_first)


def insufficient_reason(unknown: int) -> str:
    return f"Insufficient Data: {_plural(unknown, 'datapoint')} {_was(unknown)} unknown."


def threshold_reason(
    alarm: MetricAlarm,
    outcome: AlarmStateValue,
    previous: AlarmStateValue,
    evaluated: Sequence[Point],
    breaches: Callable[[float], bool],
    treat_missing: str,
) -> str:
    """Why the alarm went to OK or ALARM: the real points on the winning side, the missing
    points that were filled in, and for M-out-of-N alarms the minimum that decided it."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    to_alarm = outcome == "ALARM"
    shown = [(t, v) for t, v in evaluated if v is not None and breaches(v) == to_alarm]
    filled = sum(1 for _, v in evaluated if v is None)
    words = OPERATOR_WORDS[alarm.comparison_operator]
    verb = words if to_alarm else f"not {words}"
    if shown:
        count = (
            _plural(len(shown), "datapoint")
            if m == n
            else f"{len(shown)} out of the last {n} datapoints"
        )
        text = (
            f"{count} [{_listing(shown)}] {_was(len(shown))} {verb} "
            f"the threshold ({alarm.threshold!r})"
        )
    else:
        text = f"no datapoints were received for {_plural(filled, 'period')}"
    if filled and treat_missing in ("breaching", "notBreaching"):
        label = "[Breaching]" if treat_missing == "breaching" else "[NonBreaching]"
        text += f" and {_plural(filled, 'missing datapoint')} {_was(filled)} treated as {label}"
    elif filled and to_alarm and len(shown) < m:
        # The premature-alarm guard fired: too few breaching points, but the oldest one has
        # been breaching for at least M periods with nothing newer contradicting it.
        text += f" and no datapoints were received for the {_plural(filled, 'newer period')}"
    if m < n and (to_alarm or len(shown) > n - m):
        needed = m if to_alarm else n - m + 1
        text += f" (minimum {_plural(needed, 'datapoint')} for {previous} -> {outcome} transition)"
    return f"Threshold Crossed: {text}."


def reason_data(
    alarm: MetricAlarm,
    evaluated: Sequence[Point],
    now: float,
    sample_counts: Mapping[float, float] | None = None,
) -> str:
    """StateReasonData JSON. `evaluatedDatapoints` lists newest first, a missing point as a bare
    timestamp; `recentDatapoints` lists the real values oldest first."""
    entries: list[dict[str, Any]] = []
    for start, value in sorted(evaluated, key=lambda p: p[0], reverse=True):
        entry: dict[str, Any] = {"timestamp": _iso_time(start)}
        if value is not None:
            if sample_counts is not None and start in sample_counts:
                entry["sampleCount"] = float(sample_counts[start])
            entry["value"] = value
        entries.append(entry)
    data: dict[str, Any] = {"version": "1.0", "queryDate": _iso_time(now)}
    if evaluated:
        data["startDate"] = _iso_time(min(start for start, _ in evaluated))
    if alarm.extended_statistic is not None:
        data["extendedStatistic"] = alarm.extended_statistic
    else:
        data["statistic"] = alarm.statistic
    data.update(
        period=alarm.period,
        recentDatapoints=[v for _, v in sorted(evaluated, key=lambda p: p[0]) if v is not None],
        threshold=alarm.threshold,
        evaluatedDatapoints=entries,
    )
    return json.dumps(data, separators=(",", ":"))
