"""CloudWatch's metric operations as a service layer: each handler takes the input dict as
botocore's model names its members (timestamps as datetimes) and returns botocore's output
shape. The wire adapter (tideserve.api) only decodes and encodes.

Where values go: PutMetricData and the internal publishers both record into the aggregator, so
custom metrics get the same per-period aggregation, sketches and Prometheus totals as
AWS/SageMaker ones. Every read first flushes the closed periods to the store (`flush`), so a
query sees each period as soon as it closes, even between the lead loop's flushes; the open
period is never served, as in CloudWatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tideserve.clock import Clock
from tideserve.errors import ValidationError
from tideserve.metrics import validation as v
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.metric_data import MetricDataRequest, run_metric_data
from tideserve.metrics.statistics import STATISTICS, percentile_of
from tideserve.metrics.store import MetricStore

LIST_PAGE = 500  # ListMetrics returns up to 500 metrics per call
PAST_LIMIT = 14 * 86400.0  # PutMetricData accepts timestamps two weeks back...
FUTURE_LIMIT = 2 * 3600.0  # ...and two hours ahead
MAX_METRIC_DATA = 1000
MAX_VALUES = 150


class CloudWatchMetrics:
    def __init__(self, store: MetricStore, aggregator: MetricAggregator, clock: Clock) -> None:
        self.store = store
        self.aggregator = aggregator
        self.clock = clock

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """Operation name -> handler, for the API's registry."""
        return {
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
            "ListMetrics": self.list_metrics,
            "PutMetricData": self.put_metric_data,
        }

    def flush(self) -> int:
        """Move every closed period from the aggregator to the store; the number moved."""
        points = self.aggregator.flush(self.clock.now())
        self.store.put(points)
        return len(points)

    def get_metric_statistics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        namespace = v.namespace(v.required(params, "Namespace"))
        name = v.metric_name(v.required(params, "MetricName"))
        dims = v.dimensions(params.get("Dimensions"))
        start, end = v.time_range(params)
        now = self.clock.now()
        period = v.period(v.required(params, "Period"), start, now, self.aggregator.period)
        statistics, extended = _statistics(params)
        unit = v.unit(params.get("Unit"))
        start = v.round_start(start, period, now)
        v.datapoint_limit(start, end, period)
        self.flush()
        points = self.store.statistics(
            namespace, name, dims, start, end, period, statistics, extended, unit
        )
        return {"Label": name, "Datapoints": points}

    def get_metric_data(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = MetricDataRequest.parse(params, self.clock.now(), self.aggregator.period)
        self.flush()
        return run_metric_data(self.store, request)

    def list_metrics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        namespace = params.get("Namespace")
        if namespace is not None:
            v.namespace(namespace)
        name = params.get("MetricName")
        if name is not None:
            v.metric_name(name)
        filters = _dimension_filters(params.get("Dimensions") or ())
        active_since = None
        recently = params.get("RecentlyActive")
        if recently is not None:
            if recently != "PT3H":
                raise v.invalid(f"The value {recently!r} for parameter RecentlyActive is "
                                "invalid: must be PT3H.")
            active_since = self.clock.now() - 3 * 3600
        offset = v.page_offset(params.get("NextToken"))
        self.flush()
        found = self.store.list_metrics(namespace, name, filters, active_since)
        page = found[offset:offset + LIST_PAGE]
        out: dict[str, Any] = {
            "Metrics": [
                {"Namespace": ns, "MetricName": mn,
                 "Dimensions": [{"Name": n, "Value": val} for n, val in dims]}
                for ns, mn, dims in page
            ]
        }
        if offset + LIST_PAGE < len(found):
            out["NextToken"] = v.page_token(offset + LIST_PAGE)
        return out

    def put_metric_data(self, params: Mapping[str, Any]) -> dict[str, Any]:
        namespace = v.namespace(v.required(params, "Namespace"))
        if namespace.startswith("AWS/"):
            raise v.invalid(f"The value {namespace} for parameter Namespace is invalid: the "
                            "AWS/ prefix is reserved for AWS services.")
        data = params.get("MetricData") or []
        if not data:
            raise ValidationError("The parameter MetricData is required.", code=v.MISSING)
        if len(data) > MAX_METRIC_DATA:
            raise v.invalid(f"The collection MetricData must not have more than "
                            f"{MAX_METRIC_DATA} members.")
        now = self.clock.now()
        # Validate every datum before recording any, so a bad request records nothing.
        records = [_datum(d, f"MetricData.member.{i}.", now) for i, d in enumerate(data, 1)]
        for record in records:
            record.apply(self.aggregator, namespace)
        return {}


def _statistics(params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    statistics = list(params.get("Statistics") or [])
    extended = list(params.get("ExtendedStatistics") or [])
    if bool(statistics) == bool(extended):
        raise ValidationError(
            "Must specify either Statistics or ExtendedStatistics, but not both.",
            code=v.COMBINATION,
        )
    if len(statistics) > 5 or len(extended) > 10:
        raise v.invalid("At most 5 Statistics and 10 ExtendedStatistics may be requested.")
    for i, s in enumerate(statistics, 1):
        if s not in STATISTICS:
            raise v.invalid(f"The value {s!r} for parameter Statistics.member.{i} is invalid: "
                            f"must be one of {', '.join(STATISTICS)}.")
    for i, s in enumerate(extended, 1):
        pct = percentile_of(s) if isinstance(s, str) else None
        if pct is None or pct > 100:
            raise v.invalid(f"The value {s!r} for parameter ExtendedStatistics.member.{i} is "
                            "invalid: must be a percentile p0.0 to p100.")
    return statistics, extended


def _dimension_filters(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    if len(items) > 10:
        raise v.invalid("The collection Dimensions must not have more than 10 members.")
    out = []
    for i, f in enumerate(items, 1):
        name = v.required(f, "Name", f"Dimensions.member.{i}.")
        out.append((str(name), f.get("Value")))
    return out


class _Datum:
    """One validated MetricDatum, ready to record."""

    def __init__(self, name: str, dims: Any, unit: str, ts: float, kind: str, data: Any) -> None:
        self.name, self.dims, self.unit, self.ts = name, dims, unit, ts
        self.kind, self.data = kind, data

    def apply(self, agg: MetricAggregator, namespace: str) -> None:
        if self.kind == "StatisticValues":
            agg.record_statistics(namespace, self.name, self.dims, unit=self.unit,
                                  timestamp=self.ts, **self.data)
            return
        for value, count in self.data:
            agg.record(namespace, self.name, self.dims, value, self.unit, timestamp=self.ts,
                       count=count)


def _datum(d: Mapping[str, Any], prefix: str, now: float) -> _Datum:
    name = v.metric_name(v.required(d, "MetricName", prefix), prefix + "MetricName")
    dims = v.dimensions(d.get("Dimensions"), prefix + "Dimensions")
    unit = v.unit(d.get("Unit"), prefix + "Unit") or "None"
    ts = now if d.get("Timestamp") is None else v.epoch(d["Timestamp"], prefix + "Timestamp")
    if ts < now - PAST_LIMIT or ts > now + FUTURE_LIMIT:
        raise v.invalid(f"The parameter {prefix}Timestamp must specify a time no more than two "
                        "weeks in the past and no more than two hours in the future.")
    resolution = d.get("StorageResolution")
    if resolution is not None and resolution not in (1, 60):
        raise v.invalid(f"The value {resolution!r} for parameter {prefix}StorageResolution is "
                        "invalid: must be 1 or 60.")
    kind = v.one_of(d, ("Value", "StatisticValues", "Values"), prefix)
    if kind == "Value":
        return _Datum(name, dims, unit, ts, kind, [(v.value(d["Value"], prefix + "Value"), 1.0)])
    if kind == "Values":
        return _Datum(name, dims, unit, ts, kind, _values(d, prefix))
    return _Datum(name, dims, unit, ts, kind, _statistic_set(d["StatisticValues"], prefix))


def _values(d: Mapping[str, Any], prefix: str) -> list[tuple[float, float]]:
    values = list(d["Values"])
    counts = d.get("Counts")
    if len(values) > MAX_VALUES:
        raise v.invalid(f"The collection {prefix}Values must not have more than {MAX_VALUES} "
                        "members.")
    counts = [1.0] * len(values) if counts is None else list(counts)
    if len(counts) != len(values):
        raise ValidationError(f"The parameters {prefix}Values and {prefix}Counts must be arrays "
                              "of the same size.", code=v.COMBINATION)
    out = []
    for i, (value, count) in enumerate(zip(values, counts, strict=True), 1):
        c = v.value(count, f"{prefix}Counts.member.{i}")
        if c < 0:
            raise v.invalid(f"The parameter {prefix}Counts.member.{i} must not be negative.")
        if c > 0:
            out.append((v.value(value, f"{prefix}Values.member.{i}"), c))
    return out


def _statistic_set(s: Mapping[str, Any], prefix: str) -> dict[str, float]:
    p = prefix + "StatisticValues."
    out = {
        "sample_count": v.value(v.required(s, "SampleCount", p), p + "SampleCount"),
        "sum": v.value(v.required(s, "Sum", p), p + "Sum"),
        "minimum": v.value(v.required(s, "Minimum", p), p + "Minimum"),
        "maximum": v.value(v.required(s, "Maximum", p), p + "Maximum"),
    }
    if out["sample_count"] <= 0:
        raise v.invalid(f"The parameter {p}SampleCount must be greater than 0.")
    if out["minimum"] > out["maximum"]:
        raise ValidationError(f"The parameter {p}Minimum must not exceed {p}Maximum.",
                              code=v.COMBINATION)
    return out
