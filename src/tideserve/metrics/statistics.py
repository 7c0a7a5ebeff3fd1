"""Pure statistic math over datapoints: roll stored periods up into query periods, and compute
SampleCount/Average/Sum/Minimum/Maximum/pNN as CloudWatch defines them (§5.5)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from tideserve.metrics.model import Datapoint, merge_datapoints

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

# p0.0 .. p100 (CloudWatch allows up to two decimals in GetMetricStatistics; we accept more).
_PERCENTILE = re.compile(r"^p(100(\.0+)?|\d{1,2}(\.\d+)?)$")


def percentile_of(stat: str) -> float | None:
    """'p99.9' -> 99.9; None when `stat` is not a percentile statistic."""
    if not _PERCENTILE.match(stat):
        return None
    return float(stat[1:])


def is_statistic(stat: str) -> bool:
    return stat in STATISTICS or percentile_of(stat) is not None


def statistic_value(dp: Datapoint, stat: str) -> float | None:
    """The value of `stat` for a datapoint, or None where CloudWatch has none (a percentile of
    data with negative values, or of statistic sets with spread)."""
    if stat == "SampleCount":
        return dp.sample_count
    if stat == "Sum":
        return dp.sum
    if stat == "Average":
        return dp.average
    if stat == "Minimum":
        return dp.minimum
    if stat == "Maximum":
        return dp.maximum
    pct = percentile_of(stat)
    if pct is None:
        raise ValueError(f"unsupported statistic {stat!r}")
    if dp.sketch is None:
        return None
    return dp.sketch.quantile(pct / 100.0)


def rollup(points: Iterable[Datapoint], start: float, period: float) -> list[Datapoint]:
    """Merge stored datapoints into query periods aligned to `start` (CloudWatch aligns to the
    rounded StartTime). Units stay apart, as CloudWatch aggregates each unit separately.
    A query period shorter than the stored one yields the stored granularity: a 60-s row lands
    whole in the 10-s bucket holding its start. Sorted by (timestamp, unit)."""
    groups: dict[tuple[float, str], list[Datapoint]] = {}
    for p in points:
        bucket = start + ((p.timestamp - start) // period) * period
        groups.setdefault((bucket, p.unit), []).append(p)
    return [
        merge_datapoints(group, timestamp=bucket)
        for (bucket, _unit), group in sorted(groups.items())
    ]


def to_cloudwatch(
    dp: Datapoint, statistics: Sequence[str], extended: Sequence[str]
) -> dict[str, Any]:
    """A GetMetricStatistics `Datapoint` dict. Unavailable percentiles are omitted."""
    out: dict[str, Any] = {"Timestamp": datetime.fromtimestamp(dp.timestamp, UTC)}
    for stat in statistics:
        out[stat] = statistic_value(dp, stat)
    if extended:
        values = {s: statistic_value(dp, s) for s in extended}
        out["ExtendedStatistics"] = {s: v for s, v in values.items() if v is not None}
    out["Unit"] = dp.unit
    return out
