"""GetCostAndUsage over the ledger: shapes as botocore's `ce` model writes them, grouping by
tag and dimension, filters, DAILY/HOURLY/MONTHLY, and refusals of bad input."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.validate import ParamValidator

from tests.cost.builders import ACCESS_KEY, ARNS, SECRET_KEY, Fleet, at, serve_registry
from tideserve.api.rpc import OperationRegistry
from tideserve.clock import FakeClock
from tideserve.cost.explorer import CostExplorer
from tideserve.cost.ledger import Ledger
from tideserve.errors import ValidationError

CE = botocore.session.get_session().get_service_model("ce")
OUTPUT = CE.operation_model("GetCostAndUsage").output_shape
M5, C5 = 0.115, 0.204  # USD/h on demand
TAGS = {ARNS.endpoint("shop"): {"team": "retail", "env": "prod"},
        ARNS.endpoint("search"): {"team": "Retail-Search"}}


def assert_ce_shape(response: dict[str, Any]) -> None:
    """Every member named, typed and required as botocore's model says (no extra members)."""
    report = ParamValidator().validate(response, OUTPUT)
    assert not report.has_errors(), report.generate_report()


@pytest.fixture
def explorer(ledger: Ledger, fleet: Fleet, clock: FakeClock) -> CostExplorer:
    """Three endpoints on 2024-03-10 and 11 (the clock reads 2024-03-11 12:00):
    shop: variant a, an ml.m5.large 2024-03-10 23:00 -> 03-11 01:00; variant b, an
          ml.c5.xlarge 03-10 10:00-12:00 on a savings plan;
    search: an ml.m5.large 03-11 00:00 -> still running;
    lab (untagged): an ml.c5.xlarge 03-10 00:00-06:00."""
    clock.set(at("2024-03-11 12:00:00"))
    fleet.run("shop", "a", "ml.m5.large", at("2024-03-10 23:00:00"), at("2024-03-11 01:00:00"))
    fleet.run("shop", "b", "ml.c5.xlarge", at("2024-03-10 10:00:00"), at("2024-03-10 12:00:00"),
              "SavingsPlan")
    fleet.run("search", "a", "ml.m5.large", at("2024-03-11 00:00:00"), None)
    fleet.run("lab", "a", "ml.c5.xlarge", at("2024-03-10 00:00:00"), at("2024-03-10 06:00:00"))
    return CostExplorer(ledger, lambda arn: TAGS.get(arn, {}))


def ask(explorer: CostExplorer, **params: Any) -> dict[str, Any]:
    params.setdefault("TimePeriod", {"Start": "2024-03-10", "End": "2024-03-12"})
    params.setdefault("Granularity", "DAILY")
    params.setdefault("Metrics", ["UnblendedCost"])
    response = explorer.get_cost_and_usage(params)
    assert_ce_shape(response)
    return response


def totals(response: dict[str, Any], metric: str = "UnblendedCost") -> list[float]:
    return [float(r["Total"][metric]["Amount"]) for r in response["ResultsByTime"]]


def groups(response: dict[str, Any], metric: str = "UnblendedCost") -> list[dict[str, float]]:
    return [
        {"/".join(g["Keys"]): float(g["Metrics"][metric]["Amount"]) for g in r["Groups"]}
        for r in response["ResultsByTime"]
    ]


def test_daily_totals_per_day_with_estimated_for_the_day_still_running(
    explorer: CostExplorer,
) -> None:
    response = ask(explorer, Metrics=["UnblendedCost", "BlendedCost", "UsageQuantity"])
    day1, day2 = response["ResultsByTime"]
    assert day1["TimePeriod"] == {"Start": "2024-03-10", "End": "2024-03-11"}
    # 03-10: shop/a 1 h m5, shop/b 2 h c5 at 0.72, lab 6 h c5; 03-11: shop/a 1 h, search 12 h.
    assert totals(response) == pytest.approx(
        [M5 + 2 * C5 * 0.72 + 6 * C5, 13 * M5], abs=1e-9
    )
    assert totals(response, "BlendedCost") == totals(response)
    assert totals(response, "UsageQuantity") == [9.0, 13.0]
    assert day1["Total"]["UsageQuantity"]["Unit"] == "Hrs"
    assert day1["Total"]["UnblendedCost"]["Unit"] == "USD"
    assert (day1["Estimated"], day2["Estimated"]) == (False, True)
    assert day1["Groups"] == [] and response["DimensionValueAttributes"] == []
    assert "GroupDefinitions" not in response


def test_group_by_tag_writes_key_dollar_value_and_untagged_as_key_dollar(
    explorer: CostExplorer,
) -> None:
    response = ask(explorer, GroupBy=[{"Type": "TAG", "Key": "team"}])
    assert groups(response) == [
        {"team$retail": pytest.approx(M5 + 2 * C5 * 0.72), "team$": pytest.approx(6 * C5)},
        {"team$retail": pytest.approx(M5), "team$Retail-Search": pytest.approx(12 * M5)},
    ]
    assert all(r["Total"] == {} for r in response["ResultsByTime"])
    assert response["GroupDefinitions"] == [{"Type": "TAG", "Key": "team"}]


def test_group_by_two_keys_a_dimension_and_the_variant_system_tag(
    explorer: CostExplorer,
) -> None:
    response = ask(explorer, GroupBy=[
        {"Type": "DIMENSION", "Key": "INSTANCE_TYPE"},
        {"Type": "TAG", "Key": "tideserve:variant-name"},
    ])
    assert list(groups(response)[0]) == [
        "ml.c5.xlarge/tideserve:variant-name$a", "ml.c5.xlarge/tideserve:variant-name$b",
        "ml.m5.large/tideserve:variant-name$a",
    ]


@pytest.mark.parametrize("key,expected", [
    ("SERVICE", {"Amazon SageMaker"}),
    ("REGION", {"us-east-1"}),
    ("USAGE_TYPE", {"USE1-Host:ml.m5.large", "USE1-Host:ml.c5.xlarge"}),
    ("PURCHASE_TYPE", {"On Demand Instances", "Savings Plans"}),
    ("RESOURCE_ID", {ARNS.endpoint(e) for e in ("shop", "lab")}),
    ("LINKED_ACCOUNT", {"123456789012"}),
])
def test_dimension_values(explorer: CostExplorer, key: str, expected: set[str]) -> None:
    response = ask(explorer, GroupBy=[{"Type": "DIMENSION", "Key": key}])
    assert set(groups(response)[0]) == expected


def test_hourly_periods_are_written_with_hours(explorer: CostExplorer) -> None:
    response = ask(explorer, Granularity="HOURLY", Metrics=["UsageQuantity"],
                   TimePeriod={"Start": "2024-03-10T22:00:00Z", "End": "2024-03-11T02:00:00Z"})
    assert [r["TimePeriod"]["Start"] for r in response["ResultsByTime"]] == [
        "2024-03-10T22:00:00Z", "2024-03-10T23:00:00Z", "2024-03-11T00:00:00Z",
        "2024-03-11T01:00:00Z",
    ]
    assert totals(response, "UsageQuantity") == [0.0, 1.0, 2.0, 1.0]
    assert response["ResultsByTime"][0]["Total"]["UsageQuantity"]["Amount"] == "0"


def test_monthly_and_normalized_usage(explorer: CostExplorer) -> None:
    response = ask(explorer, Granularity="MONTHLY", Metrics=["NormalizedUsageAmount"],
                   TimePeriod={"Start": "2024-03-01", "End": "2024-04-01"})
    [month] = response["ResultsByTime"]
    assert month["TimePeriod"] == {"Start": "2024-03-01", "End": "2024-04-01"}
    # m5.large is 4 units: 14 h -> 56; c5.xlarge is 8 units: 8 h -> 64.
    assert float(month["Total"]["NormalizedUsageAmount"]["Amount"]) == 120.0


@pytest.mark.parametrize("filter_,expected_endpoints", [
    pytest.param({"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["ml.c5.xlarge"]}},
                 {"shop", "lab"}, id="dimension equals"),
    pytest.param({"Tags": {"Key": "team", "MatchOptions": ["ABSENT"]}}, {"lab"},
                 id="tag absent"),
    pytest.param({"Tags": {"Key": "team", "Values": [""]}}, {"lab"},
                 id="empty tag value means untagged"),
    pytest.param({"Tags": {"Key": "team", "Values": ["retail"],
                           "MatchOptions": ["STARTS_WITH", "CASE_INSENSITIVE"]}},
                 {"shop", "search"}, id="starts with, case-insensitive"),
    pytest.param({"Tags": {"Key": "team", "Values": ["retail"]}}, {"shop"},
                 id="equals is case-sensitive"),
    pytest.param({"Not": {"Tags": {"Key": "tideserve:endpoint-name", "Values": ["shop"]}}},
                 {"search", "lab"}, id="not a system tag"),
    pytest.param({"And": [{"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["ml.c5.xlarge"]}},
                          {"Tags": {"Key": "env", "Values": ["prod"]}}]},
                 {"shop"}, id="and"),
    pytest.param({"Or": [{"Tags": {"Key": "env", "Values": ["prod"]}},
                         {"Dimensions": {"Key": "PURCHASE_TYPE",
                                         "Values": ["On Demand Instances"]}}]},
                 {"shop", "search", "lab"}, id="or"),
    pytest.param({"CostCategories": {"Key": "unit", "Values": ["x"]}}, set(),
                 id="no cost categories exist"),
])
def test_filters(explorer: CostExplorer, filter_: dict[str, Any],
                 expected_endpoints: set[str]) -> None:
    response = ask(explorer, Filter=filter_,
                   GroupBy=[{"Type": "TAG", "Key": "tideserve:endpoint-name"}])
    found = {k.split("$")[1] for day in groups(response) for k in day}
    assert found == expected_endpoints


@pytest.mark.parametrize("params,message", [
    pytest.param({"TimePeriod": {"Start": "2024-03-12", "End": "2024-03-10"}},
                 "should be before end date", id="end before start"),
    pytest.param({"TimePeriod": {"Start": "2024-03-10", "End": "2024-03-10"}},
                 "should be before end date", id="empty period"),
    pytest.param({"TimePeriod": {"Start": "2024-03-32", "End": "2024-04-02"}},
                 "timePeriod.start", id="no such date"),
    pytest.param({"TimePeriod": {"Start": "10/03/2024", "End": "2024-04-02"}},
                 "timePeriod.start", id="not ISO"),
    pytest.param({"TimePeriod": {"Start": "2024-03-10"}}, "TimePeriod", id="no end"),
    pytest.param({"Granularity": "WEEKLY"}, "WEEKLY", id="unknown granularity"),
    pytest.param({"Granularity": None}, "granularity", id="no granularity"),
    pytest.param({"Metrics": ["Cost"]}, "Invalid metrics: Cost", id="unknown metric"),
    pytest.param({"Metrics": []}, "Metrics", id="no metric"),
    pytest.param({"GroupBy": [{"Type": "TAG", "Key": k} for k in "abc"]},
                 "at most 2", id="three group-bys"),
    pytest.param({"GroupBy": [{"Type": "DIMENSION", "Key": "AZ"}]}, "AZ",
                 id="unsupported dimension"),
    pytest.param({"GroupBy": [{"Type": "COST_CATEGORY", "Key": "x"}]}, "COST_CATEGORY",
                 id="cost category grouping"),
    pytest.param({"GroupBy": [{"Type": "TAG", "Key": "a"}, {"Type": "TAG", "Key": "a"}]},
                 "twice", id="same group twice"),
    pytest.param({"Filter": {"Tags": {"Key": "a", "Values": ["x"]},
                             "Dimensions": {"Key": "REGION", "Values": ["y"]}}},
                 "exactly one", id="filter mixing members"),
    pytest.param({"Filter": {"And": [{"Tags": {"Key": "a", "Values": ["x"]}}]}},
                 "at least two", id="and of one"),
    pytest.param({"Filter": {"Dimensions": {"Key": "AZ", "Values": ["x"]}}}, "AZ",
                 id="filter on an unsupported dimension"),
    pytest.param({"Filter": {"Tags": {"Key": "a"}}}, "Values", id="tag filter without values"),
    pytest.param({"Granularity": "HOURLY",
                  "TimePeriod": {"Start": "2020-01-01", "End": "2024-01-01"}},
                 "more than 10000", id="too many periods"),
])
def test_bad_input_is_a_validation_exception(explorer: CostExplorer, params: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ask(explorer, **params)
    assert caught.value.code is None  # the ce adapter maps it to ValidationException


def test_a_next_page_token_is_invalid_since_nothing_is_paged(explorer: CostExplorer) -> None:
    with pytest.raises(ValidationError) as caught:
        ask(explorer, NextPageToken="abc")
    assert caught.value.code == "InvalidNextTokenException"


def test_boto3_reads_the_answer_and_the_errors_over_the_wire(explorer: CostExplorer) -> None:
    registry = OperationRegistry()
    for op, handler in explorer.operations().items():
        registry.register("ce", op, handler)
    with serve_registry(registry) as url:
        ce = boto3.client("ce", region_name="us-east-1", endpoint_url=url,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=Config(retries={"max_attempts": 1}))
        response = ce.get_cost_and_usage(
            TimePeriod={"Start": "2024-03-11", "End": "2024-03-12"}, Granularity="DAILY",
            Metrics=["UnblendedCost"], GroupBy=[{"Type": "TAG", "Key": "team"}],
            Filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon SageMaker"]}},
        )
        [day] = response["ResultsByTime"]
        assert {g["Keys"][0]: g["Metrics"]["UnblendedCost"]["Amount"] for g in day["Groups"]} == {
            "team$Retail-Search": "1.38", "team$retail": "0.115"}
        with pytest.raises(ce.exceptions.ClientError) as caught:
            ce.get_cost_and_usage(TimePeriod={"Start": "2024-03-12", "End": "2024-03-11"},
                                  Granularity="DAILY", Metrics=["UnblendedCost"])
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
