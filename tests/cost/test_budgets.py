"""AWS Budgets on a fake clock: a $200 monthly budget alerting at 80 % fires above $160, once a
period; a MANUAL action waits in PENDING for approval; forecasts follow the daily model; bad
input gets Budgets' own error codes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.cost.builders import HOUR, Fleet, at
from tideserve.budgets.effects import Effects, Targets
from tideserve.budgets.service import Budgets
from tideserve.budgets.store import BudgetStore
from tideserve.budgets.tables import budget_actions, budget_docs, budget_events
from tideserve.clock import FakeClock
from tideserve.cost.forecast_api import CostForecasts
from tideserve.cost.ledger import Ledger
from tideserve.db import metadata
from tideserve.errors import AlreadyExistsError, LimitExceededError, NotFoundError, ValidationError
from tideserve.scaling.ports import Capacity

ACCOUNT = "123456789012"
ROLE = "arn:aws:iam::123456789012:role/BudgetsActions"


class FakeCapacity:
    """Endpoint 'big': 4 instances on AllTraffic, provisioned concurrency 5 on Serverless."""

    def __init__(self) -> None:
        self.desired = {"endpoint/big/variant/AllTraffic": 4, "endpoint/big/variant/Serverless": 5}

    def capacity(self, resource_id: str) -> Capacity | None:
        n = self.desired.get(resource_id)
        return None if n is None else Capacity(desired=n, current=n, status="InService")

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        self.desired[resource_id] = n


class Trail:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def records(self, service: str, operation: str) -> bool:
        return True

    def record(self, call: Any) -> None:
        self.calls.append(call)


@pytest.fixture
def capacity() -> FakeCapacity:
    return FakeCapacity()


@pytest.fixture
def trail() -> Trail:
    return Trail()


@pytest.fixture
def budgets(engine: Engine, ledger: Ledger, clock: FakeClock, capacity: FakeCapacity,
            trail: Trail) -> Budgets:
    metadata.create_all(engine, tables=[budget_docs, budget_actions, budget_events])
    variants = [("AllTraffic", False), ("Serverless", True)]
    targets = Targets(capacity, lambda name: variants if name == "big" else None,
                      lambda rid: 2, lambda name: False, lambda name: name == "nightly")
    effects = Effects(targets, trail, ACCOUNT, "us-east-1")
    return Budgets(BudgetStore(engine), ledger, lambda arn: {"team": "ml"}, clock, ACCOUNT,
                   effects)


def budget(name: str = "ml", amount: str = "200", unit: str = "MONTHLY", **more: Any) -> dict:
    return {"BudgetName": name, "BudgetType": "COST", "TimeUnit": unit,
            "BudgetLimit": {"Amount": amount, "Unit": "USD"}, **more}


def note(threshold: float = 80.0, kind: str = "ACTUAL") -> dict:
    return {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN",
            "Threshold": threshold, "ThresholdType": "PERCENTAGE"}


def call(budgets: Budgets, op: str, **params: Any) -> dict:
    return budgets.operations()[op]({"AccountId": ACCOUNT, **params})


def test_an_80_percent_notification_fires_above_160_dollars_once_a_period(
        budgets: Budgets, fleet: Fleet, clock: FakeClock) -> None:
    # ml.p3.2xlarge at $3.825/h from 03-01: $160 is crossed after 41.83 h.
    fleet.run("big", "AllTraffic", "ml.p3.2xlarge", at("2024-03-01 00:00:00"), None)
    call(budgets, "CreateBudget", Budget=budget(), NotificationsWithSubscribers=[{
        "Notification": note(), "Subscribers": [{"SubscriptionType": "EMAIL",
                                                 "Address": "finops@example.com"}]}])
    clock.set(at("2024-03-01 00:00:00") + 41 * HOUR)  # $156.83
    budgets.evaluate()
    assert budgets.events("ml") == []
    clock.advance(HOUR)  # $160.65
    budgets.evaluate()
    budgets.evaluate()
    [alert] = budgets.events("ml")
    assert (alert["Type"], alert["ActualSpend"]) == ("BudgetNotification", "160.65")
    [state] = call(budgets, "DescribeNotificationsForBudget", BudgetName="ml")["Notifications"]
    assert state["NotificationState"] == "ALARM"
    described = call(budgets, "DescribeBudget", BudgetName="ml")["Budget"]
    assert described["CalculatedSpend"]["ActualSpend"] == {"Amount": "160.65", "Unit": "USD"}
    assert described["CostTypes"]["IncludeTax"] is True
    assert described["TimePeriod"]["Start"] == at("2024-03-01 00:00:00")
    clock.set(at("2024-04-01 01:00:00"))  # a new period re-arms; $3.825 so far
    budgets.evaluate()
    assert call(budgets, "DescribeNotificationsForBudget", BudgetName="ml")[
        "Notifications"][0]["NotificationState"] == "OK"


def test_a_manual_action_waits_for_approval_then_scales_to_the_minimum(
        budgets: Budgets, fleet: Fleet, clock: FakeClock, capacity: FakeCapacity,
        trail: Trail) -> None:
    fleet.run("big", "AllTraffic", "ml.m5.4xlarge", clock.now(), None)
    call(budgets, "CreateBudget", Budget=budget("daily", "1", "DAILY"))
    action_id = call(budgets, "CreateBudgetAction", BudgetName="daily", NotificationType="ACTUAL",
                     ActionType="RUN_SSM_DOCUMENTS",
                     ActionThreshold={"ActionThresholdValue": 1.0,
                                      "ActionThresholdType": "ABSOLUTE_VALUE"},
                     Definition={"SsmActionDefinition": {
                         "ActionSubType": "STOP_EC2_INSTANCES", "Region": "us-east-1",
                         "InstanceIds": ["big", "nightly"]}},
                     ExecutionRoleArn=ROLE, ApprovalModel="MANUAL",
                     Subscribers=[{"SubscriptionType": "EMAIL", "Address": "a@example.com"}]
                     )["ActionId"]
    clock.advance(2 * HOUR)  # $1.844 > $1
    budgets.evaluate()
    ids = {"BudgetName": "daily", "ActionId": action_id}
    assert call(budgets, "DescribeBudgetAction", **ids)["Action"]["Status"] == "PENDING"
    assert capacity.desired["endpoint/big/variant/AllTraffic"] == 4
    call(budgets, "ExecuteBudgetAction", **ids, ExecutionType="APPROVE_BUDGET_ACTION")
    assert call(budgets, "DescribeBudgetAction", **ids)["Action"]["Status"] == "EXECUTION_SUCCESS"
    assert capacity.desired["endpoint/big/variant/AllTraffic"] == 2  # the AAS MinCapacity
    assert capacity.desired["endpoint/big/variant/Serverless"] == 0  # no provisioned workers
    assert [c.operation for c in trail.calls] == ["UpdateEndpointWeightsAndCapacities"] * 2 + [
        "StopTrainingJob"]
    assert trail.calls[1].params["DesiredWeightsAndCapacities"] == [
        {"VariantName": "Serverless", "ServerlessUpdateConfig": {"ProvisionedConcurrency": 0}}]
    assert trail.calls[0].user_identity["invokedBy"] == "budgets.amazonaws.com"
    with pytest.raises(ValidationError, match="not valid"):
        call(budgets, "ExecuteBudgetAction", **ids, ExecutionType="APPROVE_BUDGET_ACTION")
    call(budgets, "ExecuteBudgetAction", **ids, ExecutionType="REVERSE_BUDGET_ACTION")
    assert capacity.desired == {"endpoint/big/variant/AllTraffic": 4,
                                "endpoint/big/variant/Serverless": 5}
    statuses = [h["Status"] for h in call(budgets, "DescribeBudgetActionHistories",
                                          **ids)["ActionHistories"]]
    assert statuses == ["STANDBY", "PENDING", "EXECUTION_IN_PROGRESS", "EXECUTION_SUCCESS",
                        "REVERSE_SUCCESS"]


def test_an_scp_action_refuses_new_endpoints_with_the_budgets_tags(
        budgets: Budgets, fleet: Fleet, clock: FakeClock) -> None:
    fleet.run("big", "AllTraffic", "ml.m5.4xlarge", clock.now(), None)
    call(budgets, "CreateBudget", Budget=budget("ml-team", "0.5", "DAILY",
                                                CostFilters={"TagKeyValue": ["user:team$ml"]}))
    call(budgets, "CreateBudgetAction", BudgetName="ml-team", NotificationType="ACTUAL",
         ActionType="APPLY_SCP_POLICY",
         ActionThreshold={"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
         Definition={"ScpActionDefinition": {"PolicyId": "p-denyendpoints",
                                             "TargetIds": [ACCOUNT]}},
         ExecutionRoleArn=ROLE, ApprovalModel="AUTOMATIC",
         Subscribers=[{"SubscriptionType": "EMAIL", "Address": "a@example.com"}])
    clock.advance(HOUR)
    budgets.evaluate()
    assert budgets.effects.refused({"team": "ml"})
    assert not budgets.effects.refused({"team": "web"})


def test_bad_input_gets_budgets_errors(budgets: Budgets) -> None:
    with pytest.raises(ValidationError, match="WEEKLY") as bad:
        call(budgets, "CreateBudget", Budget=budget(unit="WEEKLY"))
    assert bad.value.code == "InvalidParameterException"
    with pytest.raises(ValidationError, match="Budget Limit"):
        call(budgets, "CreateBudget", Budget={"BudgetName": "x", "BudgetType": "COST",
                                              "TimeUnit": "DAILY"})
    with pytest.raises(ValidationError, match="CostFilters key"):
        call(budgets, "CreateBudget", Budget=budget(CostFilters={"Colour": ["blue"]}))
    call(budgets, "CreateBudget", Budget=budget())
    with pytest.raises(AlreadyExistsError, match="already exists"):
        call(budgets, "CreateBudget", Budget=budget())
    with pytest.raises(NotFoundError, match="doesn't exist"):
        call(budgets, "DescribeBudget", BudgetName="nope")
    with pytest.raises(LimitExceededError):
        call(budgets, "CreateNotification", BudgetName="ml", Notification=note(),
             Subscribers=[{"SubscriptionType": "SNS", "Address": "http://a"},
                          {"SubscriptionType": "SNS", "Address": "http://b"}])
    call(budgets, "DeleteBudget", BudgetName="ml")
    with pytest.raises(NotFoundError, match="Try creating it first"):
        call(budgets, "DeleteBudget", BudgetName="ml")


def test_deleting_the_last_subscriber_deletes_the_notification(budgets: Budgets) -> None:
    sub = {"SubscriptionType": "EMAIL", "Address": "a@example.com"}
    call(budgets, "CreateBudget", Budget=budget(), NotificationsWithSubscribers=[
        {"Notification": note(), "Subscribers": [sub]}])
    call(budgets, "DeleteSubscriber", BudgetName="ml", Notification=note(), Subscriber=sub)
    assert call(budgets, "DescribeNotificationsForBudget", BudgetName="ml")[
        "Notifications"] == []


def test_cost_forecast_from_the_daily_history(ledger: Ledger, fleet: Fleet,
                                              clock: FakeClock) -> None:
    # One ml.m5.large all of the last 3 days: $2.76 a day, sigma 0.
    fleet.run("big", "AllTraffic", "ml.m5.large", at("2024-03-09 00:00:00"),
              at("2024-03-12 00:00:00"))
    api = CostForecasts(ledger, lambda arn: {}, clock)
    out = api.get_cost_forecast({"TimePeriod": {"Start": "2024-03-12", "End": "2024-03-14"},
                                 "Metric": "UNBLENDED_COST", "Granularity": "DAILY",
                                 "PredictionIntervalLevel": 90})
    assert out["Total"] == {"Amount": "5.52", "Unit": "USD"}
    assert [r["MeanValue"] for r in out["ForecastResultsByTime"]] == ["2.76", "2.76"]
    with pytest.raises(ValidationError, match="current date"):
        api.get_cost_forecast({"TimePeriod": {"Start": "2024-03-01", "End": "2024-03-14"},
                               "Metric": "UNBLENDED_COST", "Granularity": "DAILY"})
    with pytest.raises(ValidationError, match="92 days ahead"):
        api.get_cost_forecast({"TimePeriod": {"Start": "2024-03-12", "End": "2024-07-01"},
                               "Metric": "UNBLENDED_COST", "Granularity": "DAILY"})
    with pytest.raises(ValidationError, match="Granularity"):
        api.get_cost_forecast({"TimePeriod": {"Start": "2024-03-12", "End": "2024-03-14"},
                               "Metric": "UNBLENDED_COST", "Granularity": "HOURLY"})
    empty = CostForecasts(Ledger(ledger.engine, ledger.catalog, clock), lambda arn: {}, clock)
    clock.set(at("2024-06-01 00:00:00"))
    with pytest.raises(ValidationError) as bad:
        empty.get_cost_forecast({"TimePeriod": {"Start": "2024-06-01", "End": "2024-06-02"},
                                 "Metric": "UNBLENDED_COST", "Granularity": "DAILY"})
    assert bad.value.code == "DataUnavailableException"


def test_forecast_interval_widens_with_the_level(ledger: Ledger, fleet: Fleet,
                                                 clock: FakeClock) -> None:
    # Days of 1 h, 3 h, 2 h of an ml.m5.large: sigma > 0.
    for day, hours in (("09", 1), ("10", 3), ("11", 2)):
        t0 = at(f"2024-03-{day} 00:00:00")
        fleet.run("big", "AllTraffic", "ml.m5.large", t0, t0 + hours * HOUR)
    api = CostForecasts(ledger, lambda arn: {}, clock)
    widths = []
    for level in (60, 95):
        [r] = api.get_cost_forecast({
            "TimePeriod": {"Start": "2024-03-12", "End": "2024-03-13"},
            "Metric": "UNBLENDED_COST", "Granularity": "DAILY",
            "PredictionIntervalLevel": level})["ForecastResultsByTime"]
        low, mean, high = (float(r[k]) for k in ("PredictionIntervalLowerBound", "MeanValue",
                                                 "PredictionIntervalUpperBound"))
        assert low <= mean <= high and mean == pytest.approx(0.23)
        widths.append(high - low)
    assert widths[0] < widths[1]


def test_a_forecasted_notification_fires_before_the_spend_does(
        budgets: Budgets, fleet: Fleet, clock: FakeClock) -> None:
    # ml.m5.large all of 03-10 and 03-11 ($2.76 a day) and on: by the 12th at 06:00 actual is
    # $5.52 + $0.69, and the month is forecast at 6.21 + 2.76 x 19.75 days = $60.72.
    fleet.run("big", "AllTraffic", "ml.m5.large", at("2024-03-10 00:00:00"), None)
    call(budgets, "CreateBudget", Budget=budget(amount="50"), NotificationsWithSubscribers=[{
        "Notification": note(100, "FORECASTED"),
        "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "a@example.com"}]}])
    clock.set(at("2024-03-12 06:00:00"))
    budgets.evaluate()
    [alert] = budgets.events("ml")
    assert alert["NotificationType"] == "FORECASTED"
    assert float(alert["ForecastedSpend"]) == pytest.approx(6.21 + 2.76 * 19.75)
    # Raising the threshold is an update of the notification, which re-arms it.
    call(budgets, "UpdateNotification", BudgetName="ml", OldNotification=note(100, "FORECASTED"),
         NewNotification=note(150, "FORECASTED"))
    [state] = call(budgets, "DescribeNotificationsForBudget", BudgetName="ml")["Notifications"]
    assert (state["Threshold"], state["NotificationState"]) == (150.0, "OK")
    [entry] = call(budgets, "DescribeBudgetNotificationsForAccount")[
        "BudgetNotificationsForAccount"]
    assert entry["BudgetName"] == "ml"
