"""CloudWatch's metric operations as boto3 would send them: PutMetricData in, statistics out,
with CloudWatch's validation errors. Outputs are checked against botocore's output shapes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest

from tideserve.clock import FakeClock
from tideserve.errors import ValidationError
from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.cloudwatch import CloudWatchMetrics
from tideserve.metrics.model import dimensions

T0 = 1_700_000_040.0  # on a minute boundary
MODEL = botocore.session.get_session().get_service_model("cloudwatch")
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "v1"}]


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def conforms(value: Any, shape: Any) -> None:
    """Every member, type and enum value is one botocore's output shape allows."""
    if shape is None:  # an operation with no output (PutMetricData)
        assert value == {}
        return
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict)
        for key, member in value.items():
            assert key in shape.members, f"{key} not in {shape.name}"
            conforms(member, shape.members[key])
    elif kind == "list":
        assert isinstance(value, list)
        for item in value:
            conforms(item, shape.member)
    elif kind == "map":
        for k, item in value.items():
            conforms(k, shape.key)
            conforms(item, shape.value)
    elif kind == "timestamp":
        assert isinstance(value, datetime) and value.tzinfo is not None
    elif kind == "double":
        assert isinstance(value, float | int)
    elif kind == "string":
        assert isinstance(value, str)
        assert not shape.enum or value in shape.enum


def call(cw: CloudWatchMetrics, op: str, **params: Any) -> dict[str, Any]:
    out = getattr(cw, _snake(op))(params)
    conforms(out, MODEL.operation_model(op).output_shape)
    return out


def _snake(op: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def error(cw: CloudWatchMetrics, op: str, **params: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        getattr(cw, _snake(op))(params)
    return info.value


def stats(cw: CloudWatchMetrics, name: str = "Latency", **extra: Any) -> list[dict[str, Any]]:
    params = {"Namespace": "App", "MetricName": name, "StartTime": utc(T0 - 600),
              "EndTime": utc(T0 + 600), "Period": 60, "Statistics": ["Sum", "SampleCount",
                                                                     "Minimum", "Maximum"]}
    params.update(extra)
    return sorted(call(cw, "GetMetricStatistics", **params)["Datapoints"],
                  key=lambda d: d["Timestamp"])


# --- PutMetricData -> GetMetricStatistics -------------------------------------------------


def test_put_values_appear_once_their_period_closes(cw: CloudWatchMetrics, clock: FakeClock):
    clock.set(T0 + 10)
    call(cw, "PutMetricData", Namespace="App", MetricData=[
        {"MetricName": "Latency", "Value": 12.0, "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Value": 30.0, "Unit": "Milliseconds"},
    ])
    assert stats(cw) == []  # the period T0..T0+60 is still open
    clock.set(T0 + 60)
    [dp] = stats(cw)
    assert dp["Timestamp"] == utc(T0)
    assert (dp["Sum"], dp["SampleCount"], dp["Minimum"], dp["Maximum"], dp["Unit"]) == (
        42.0, 2.0, 12.0, 30.0, "Milliseconds")


def test_statistic_values_and_values_with_counts(cw: CloudWatchMetrics, clock: FakeClock):
    clock.set(T0 + 120)
    call(cw, "PutMetricData", Namespace="App", MetricData=[
        {"MetricName": "Latency", "Timestamp": utc(T0),
         "StatisticValues": {"SampleCount": 4, "Sum": 100, "Minimum": 10, "Maximum": 40}},
        {"MetricName": "Latency", "Timestamp": utc(T0 + 60), "Values": [1.0, 5.0],
         "Counts": [3, 1]},
    ])
    first, second = stats(cw)
    assert (first["Sum"], first["SampleCount"], first["Minimum"], first["Maximum"]) == (
        100, 4, 10, 40)
    assert (second["Sum"], second["SampleCount"], second["Minimum"], second["Maximum"]) == (
        8, 4, 1, 5)
    [p] = stats(cw, Statistics=None, ExtendedStatistics=["p50"], StartTime=utc(T0 + 60))
    assert p["ExtendedStatistics"] == {"p50": 1.0}
    # A statistic set with spread has no raw values: CloudWatch omits its percentiles.
    [p] = stats(cw, Statistics=None, ExtendedStatistics=["p50"], EndTime=utc(T0 + 60))
    assert p["ExtendedStatistics"] == {}


@pytest.mark.parametrize(("datum", "code"), [
    ({"MetricName": "m", "Value": math.nan}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": math.inf}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 2.0**361}, "InvalidParameterValue"),
    ({"MetricName": "m"}, "InvalidParameterCombination"),
    ({"MetricName": "m", "Value": 1, "Values": [1]}, "InvalidParameterCombination"),
    ({"MetricName": "m", "Values": [1, 2], "Counts": [1]}, "InvalidParameterCombination"),
    ({"MetricName": "m", "Values": [float(i) for i in range(151)]}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1, "Unit": "Parsecs"}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1, "StorageResolution": 5}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1, "Timestamp": utc(T0 - 15 * 86400)}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1, "Timestamp": utc(T0 + 3 * 3600)}, "InvalidParameterValue"),
    ({"MetricName": "m", "StatisticValues": {"SampleCount": 2, "Sum": 1, "Minimum": 5,
                                             "Maximum": 1}}, "InvalidParameterCombination"),
    ({"Value": 1}, "MissingParameter"),
])
def test_put_metric_data_rejects(cw: CloudWatchMetrics, datum: dict[str, Any], code: str):
    good = {"MetricName": "ok", "Value": 1.0}
    assert error(cw, "PutMetricData", Namespace="App", MetricData=[good, datum]).code == code
    cw.clock.set(T0 + 3600)  # type: ignore[attr-defined]
    assert cw.flush() == 0  # nothing of a rejected request was recorded


def test_put_metric_data_rejects_the_aws_namespace_prefix(cw: CloudWatchMetrics):
    e = error(cw, "PutMetricData", Namespace="AWS/SageMaker",
              MetricData=[{"MetricName": "Invocations", "Value": 1}])
    assert e.code == "InvalidParameterValue" and "AWS/" in e.message


# --- GetMetricStatistics validation --------------------------------------------------------


@pytest.mark.parametrize(("change", "code"), [
    ({"Statistics": ["Sum"], "ExtendedStatistics": ["p99"]}, "InvalidParameterCombination"),
    ({"Statistics": None}, "InvalidParameterCombination"),
    ({"Period": 1, "StartTime": utc(T0 - 7200), "EndTime": utc(T0)},
     "InvalidParameterCombination"),  # 7200 datapoints > 1440
    ({"Period": 90}, "InvalidParameterValue"),
    ({"Period": 7}, "InvalidParameterValue"),
    ({"Period": 0}, "InvalidParameterValue"),
    ({"Period": 60, "StartTime": utc(T0 - 20 * 86400), "EndTime": utc(T0 - 19 * 86400)},
     "InvalidParameterValue"),  # 15-63 days old needs multiples of 300
    ({"StartTime": utc(T0), "EndTime": utc(T0)}, "InvalidParameterValue"),
    ({"Statistics": ["Median"]}, "InvalidParameterValue"),
    ({"Statistics": None, "ExtendedStatistics": ["p101"]}, "InvalidParameterValue"),
    ({"Unit": "Furlongs"}, "InvalidParameterValue"),
    ({"Namespace": None}, "MissingParameter"),
    ({"Namespace": ":bad"}, "InvalidParameterValue"),
    ({"Dimensions": [{"Name": "A", "Value": "1"}, {"Name": "A", "Value": "2"}]},
     "InvalidParameterValue"),
])
def test_get_metric_statistics_validation(cw: CloudWatchMetrics, change, code):
    params = {"Namespace": "App", "MetricName": "m", "StartTime": utc(T0 - 600),
              "EndTime": utc(T0), "Period": 60, "Statistics": ["Sum"], **change}
    assert error(cw, "GetMetricStatistics", **params).code == code


def test_high_resolution_periods_and_a_compressed_server_period(clock: FakeClock, store):
    cw = CloudWatchMetrics(store, MetricAggregator(2.0, clock), clock)
    base = {"Namespace": "App", "MetricName": "m", "StartTime": utc(T0 - 60),
            "EndTime": utc(T0), "Statistics": ["Sum"]}
    for period in (1, 2, 4, 10, 60):  # 1/10/60 as AWS; 2 and 4 as multiples of our 2-s period
        call(cw, "GetMetricStatistics", Period=period, **base)
    assert error(cw, "GetMetricStatistics", Period=3, **base).code == "InvalidParameterValue"


def test_start_time_is_rounded_down_to_the_minute(cw: CloudWatchMetrics, clock: FakeClock):
    clock.set(T0 + 200)
    call(cw, "PutMetricData", Namespace="App",
         MetricData=[{"MetricName": "Latency", "Value": 1.0, "Timestamp": utc(T0 + 5)}])
    [dp] = stats(cw, StartTime=utc(T0 + 30), EndTime=utc(T0 + 180))
    assert dp["Timestamp"] == utc(T0)


# --- AWS/SageMaker series recorded by the router ---------------------------------------------


def test_idle_variant_zeros_and_exact_dimension_matching(cw: CloudWatchMetrics, clock):
    agg = cw.aggregator
    v1 = dimensions(EndpointName="ep", VariantName="v1")
    agg.ensure(names.SAGEMAKER, names.INVOCATIONS, v1, timestamp=T0)
    clock.set(T0 + 60)
    params = {"Namespace": names.SAGEMAKER, "MetricName": names.INVOCATIONS,
              "StartTime": utc(T0), "EndTime": utc(T0 + 60), "Period": 60,
              "Statistics": ["Sum", "Average"]}
    [dp] = call(cw, "GetMetricStatistics", Dimensions=DIMS, **params)["Datapoints"]
    assert (dp["Sum"], dp["Average"]) == (0.0, 0.0)
    endpoint_only = [{"Name": "EndpointName", "Value": "ep"}]
    assert call(cw, "GetMetricStatistics", Dimensions=endpoint_only, **params)["Datapoints"] == []
    assert call(cw, "GetMetricStatistics", **params)["Datapoints"] == []


# --- GetMetricData -------------------------------------------------------------------------


def put_minutes(cw: CloudWatchMetrics, clock: FakeClock, values: list[float], name="Load"):
    clock.set(T0 + 60 * len(values))
    call(cw, "PutMetricData", Namespace="App", MetricData=[
        {"MetricName": name, "Value": v, "Timestamp": utc(T0 + 60 * i)}
        for i, v in enumerate(values)
    ])


def query(qid: str, name: str = "Load", stat: str = "Sum", **extra: Any) -> dict[str, Any]:
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": name},
                                      "Period": 60, "Stat": stat}, **extra}


def metric_data(cw: CloudWatchMetrics, queries: list[dict[str, Any]], **extra: Any):
    return call(cw, "GetMetricData", MetricDataQueries=queries, StartTime=utc(T0),
                EndTime=utc(T0 + 3600), **extra)


def test_get_metric_data_newest_first_by_default(cw: CloudWatchMetrics, clock: FakeClock):
    put_minutes(cw, clock, [1, 2, 3])
    [r] = metric_data(cw, [query("m1")])["MetricDataResults"]
    assert r["Values"] == [3, 2, 1] and r["StatusCode"] == "Complete"
    assert r["Timestamps"] == [utc(T0 + 120), utc(T0 + 60), utc(T0)]
    assert r["Label"] == "Load"
    [r] = metric_data(cw, [query("m1", Label="load")], ScanBy="TimestampAscending")[
        "MetricDataResults"]
    assert r["Values"] == [1, 2, 3] and r["Label"] == "load"


def test_get_metric_data_pages_by_max_datapoints(cw: CloudWatchMetrics, clock: FakeClock):
    put_minutes(cw, clock, [1, 2, 3, 4, 5])
    queries = [query("a"), query("b", stat="Maximum")]
    seen: dict[str, list[float]] = {"a": [], "b": []}
    token, pages = None, 0
    while True:
        extra = {"NextToken": token} if token else {}
        out = metric_data(cw, queries, MaxDatapoints=3, ScanBy="TimestampAscending", **extra)
        pages += 1
        for r in out["MetricDataResults"]:
            seen[r["Id"]] += r["Values"]
            assert len(r["Values"]) <= 3
        token = out.get("NextToken")
        if token is None:
            break
    assert pages == 4 and seen == {"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 4, 5]}
    # Page 1 holds a's newest three points; b has not started, so both are partial.
    first = metric_data(cw, queries, MaxDatapoints=3)["MetricDataResults"]
    assert [r["StatusCode"] for r in first] == ["PartialData", "PartialData"]
    assert [r["Values"] for r in first] == [[5, 4, 3], []]
    whole = metric_data(cw, queries, MaxDatapoints=10)["MetricDataResults"]
    assert [r["StatusCode"] for r in whole] == ["Complete", "Complete"]
    bad = error(cw, "GetMetricData", MetricDataQueries=queries, StartTime=utc(T0),
                EndTime=utc(T0 + 60), NextToken="garbage")
    assert bad.code == "InvalidNextToken"


def test_expressions_do_arithmetic_and_report_unsupported_functions(cw, clock: FakeClock):
    put_minutes(cw, clock, [100, 300], name="Cpu")
    put_minutes(cw, clock, [4, 0], name="Cores")
    out = metric_data(cw, [
        query("cpu", "Cpu", "Average", ReturnData=False),
        query("cores", "Cores", "Average", ReturnData=False),
        {"Id": "per_core", "Expression": "cpu / cores", "Label": "per core"},
        {"Id": "scaled", "Expression": "(per_core + 5) * 2"},
        {"Id": "filled", "Expression": "FILL(cpu, 0)"},
    ], ScanBy="TimestampAscending")
    per_core, scaled, filled = out["MetricDataResults"]
    assert per_core["Values"] == [25.0]  # 300 / 0 is dropped, as CloudWatch does
    assert per_core["Label"] == "per core"
    assert scaled["Values"] == [60.0]
    assert filled["StatusCode"] == "InternalError" and "FILL" in filled["Messages"][0]["Value"]


@pytest.mark.parametrize(("queries", "code"), [
    ([query("M1")], "InvalidParameterValue"),  # ids start lowercase
    ([query("m1"), query("m1")], "InvalidParameterValue"),
    ([{"Id": "m1"}], "InvalidParameterCombination"),
    ([{**query("m1"), "Expression": "m1"}], "InvalidParameterCombination"),
    ([query("m1", stat="Median")], "InvalidParameterValue"),
    ([{"Id": "e1", "Expression": "nope * 2"}], "InvalidParameterValue"),
    ([{"Id": "e1", "Expression": "e1 + 1"}], "InvalidParameterValue"),  # circular
    ([], "InvalidParameterValue"),
])
def test_get_metric_data_validation(cw: CloudWatchMetrics, queries, code):
    e = error(cw, "GetMetricData", MetricDataQueries=queries, StartTime=utc(T0),
              EndTime=utc(T0 + 60))
    assert e.code == code


# --- ListMetrics ---------------------------------------------------------------------------


def test_list_metrics_filters_and_recently_active(cw: CloudWatchMetrics, clock: FakeClock):
    clock.set(T0 + 60)
    call(cw, "PutMetricData", Namespace="App", MetricData=[
        {"MetricName": "Load", "Value": 1, "Timestamp": utc(T0), "Dimensions": [
            {"Name": "Host", "Value": "a"}]},
        {"MetricName": "Load", "Value": 1, "Timestamp": utc(T0), "Dimensions": [
            {"Name": "Host", "Value": "b"}, {"Name": "Rack", "Value": "r1"}]},
        {"MetricName": "Errors", "Value": 1, "Timestamp": utc(T0)},
    ])
    assert len(call(cw, "ListMetrics", Namespace="App")["Metrics"]) == 3
    assert call(cw, "ListMetrics", Dimensions=[{"Name": "Rack"}])["Metrics"] == [
        {"Namespace": "App", "MetricName": "Load", "Dimensions": [
            {"Name": "Host", "Value": "b"}, {"Name": "Rack", "Value": "r1"}]}]
    hosts = call(cw, "ListMetrics", MetricName="Load",
                 Dimensions=[{"Name": "Host", "Value": "a"}])["Metrics"]
    assert [m["Dimensions"] for m in hosts] == [[{"Name": "Host", "Value": "a"}]]
    assert len(call(cw, "ListMetrics", RecentlyActive="PT3H")["Metrics"]) == 3
    clock.set(T0 + 4 * 3600)
    assert call(cw, "ListMetrics", RecentlyActive="PT3H")["Metrics"] == []
    assert len(call(cw, "ListMetrics")["Metrics"]) == 3


def test_list_metrics_pages_by_500(cw: CloudWatchMetrics, clock: FakeClock):
    clock.set(T0 + 60)
    for chunk in range(2):
        call(cw, "PutMetricData", Namespace="App", MetricData=[
            {"MetricName": f"m{chunk}-{i:03d}", "Value": 1, "Timestamp": utc(T0)}
            for i in range(300)])
    first = call(cw, "ListMetrics", Namespace="App")
    assert len(first["Metrics"]) == 500 and "NextToken" in first
    rest = call(cw, "ListMetrics", Namespace="App", NextToken=first["NextToken"])
    assert len(rest["Metrics"]) == 100 and "NextToken" not in rest
