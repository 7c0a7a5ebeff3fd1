"""Cost advice that acts, through boto3 on a real server (period 2 s): an ml.m5.4xlarge under
light load is advised down to ml.m5.large with the savings the catalog implies, and a budget
whose AUTOMATIC action scales the variant to its minimum once the spend crosses its threshold
alerts an HTTP subscriber, records the action's history and leaves an audit record."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import csv_rows, wait_in_service
from tests.support import RunningServer
from tideserve.cost.catalog import Catalog

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/BudgetsActions"


@pytest.fixture
def subscriber() -> Iterator[tuple[str, list[dict]]]:
    """A tiny HTTP server that keeps every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's spelling)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/alerts", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_rightsizing_and_a_budget_that_acts(server: RunningServer, trained, subscriber):
    _, X, archive, _ = trained
    sm, rt, ce = (server.client(s) for s in ("sagemaker", "sagemaker-runtime", "ce"))
    budgets, aas = server.client("budgets"), server.client("application-autoscaling")
    account = server.client("sts").get_caller_identity()["Account"]
    sm.create_model(ModelName="oversized", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": str(archive)})
    sm.create_endpoint_config(EndpointConfigName="oversized", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "oversized", "InstanceType": "ml.m5.4xlarge",
        "InitialInstanceCount": 2}])
    sm.create_endpoint(EndpointName="oversized", EndpointConfigName="oversized",
                       Tags=[{"Key": "team", "Value": "vision"}])
    wait_in_service(sm, "oversized")
    aas.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId="endpoint/oversized/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1,
        MaxCapacity=2)
    for _ in range(5):  # light load
        rt.invoke_endpoint(EndpointName="oversized", Body=csv_rows(X[:2]), ContentType="text/csv")

    # Rightsizing: once utilisation periods are stored, ml.m5.large at the catalog's savings.
    def advice():
        recs = ce.get_rightsizing_recommendation(Service="AmazonSageMaker")[
            "RightsizingRecommendations"]
        mine = [r for r in recs if r["CurrentInstance"]["InstanceName"] == "oversized/AllTraffic"]
        # Both CPU (whose first sample only primes psutil) and memory are in.
        return mine and "CPU_OVER_PROVISIONED" in mine[0]["FindingReasonCodes"] and mine[0]
    rec = until(advice)
    assert rec, "no rightsizing recommendation"
    target = rec["ModifyRecommendationDetail"]["TargetInstances"][0]
    assert target["ResourceDetails"]["EC2ResourceDetails"]["InstanceType"] == "ml.m5.large"
    catalog = Catalog.default()
    big, small = (catalog.get(t).on_demand_hourly_usd for t in ("ml.m5.4xlarge", "ml.m5.large"))
    assert float(target["EstimatedMonthlySavings"]) == pytest.approx((big - small) * 2 * 730)
    assert rec["FindingReasonCodes"] == ["CPU_OVER_PROVISIONED", "MEMORY_OVER_PROVISIONED"]

    # The same advice from the command line, over the last day.
    env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(server.state_dir / "credentials")}
    cli = subprocess.run([sys.executable, "-m", "tideserve.cli", "rightsize", "--days", "1",
                          "--state-dir", str(server.state_dir)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "oversized  AllTraffic  2 x ml.m5.4xlarge  ml.m5.large" in cli.stdout, cli.stdout

    # Spend so far forecasts the rest of today; a SageMaker plan is advised from usage.
    today = datetime.now(UTC).date()
    forecast = ce.get_cost_forecast(
        TimePeriod={"Start": today.isoformat(), "End": (today + timedelta(days=1)).isoformat()},
        Metric="UNBLENDED_COST", Granularity="DAILY", PredictionIntervalLevel=90)
    assert float(forecast["Total"]["Amount"]) > 0
    plan = ce.get_savings_plans_purchase_recommendation(
        SavingsPlansType="SAGEMAKER_SP", TermInYears="ONE_YEAR", PaymentOption="NO_UPFRONT",
        LookbackPeriodInDays="SEVEN_DAYS")["SavingsPlansPurchaseRecommendation"]
    assert plan["SavingsPlansType"] == "SAGEMAKER_SP"

    # A $0.002 daily budget on team=vision: 2 x $0.922/h crosses it within seconds.
    url, received = subscriber
    budgets.create_budget(AccountId=account, Budget={
        "BudgetName": "vision-daily", "BudgetType": "COST", "TimeUnit": "DAILY",
        "BudgetLimit": {"Amount": "0.002", "Unit": "USD"},
        "CostFilters": {"TagKeyValue": ["user:team$vision"]}},
        NotificationsWithSubscribers=[{
            "Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                             "Threshold": 50, "ThresholdType": "PERCENTAGE"},
            "Subscribers": [{"SubscriptionType": "SNS", "Address": url}]}])
    action_id = budgets.create_budget_action(
        AccountId=account, BudgetName="vision-daily", NotificationType="ACTUAL",
        ActionType="RUN_SSM_DOCUMENTS",
        ActionThreshold={"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
        Definition={"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES",
                                            "Region": "us-east-1", "InstanceIds": ["oversized"]}},
        ExecutionRoleArn=ROLE, ApprovalModel="AUTOMATIC",
        Subscribers=[{"SubscriptionType": "SNS", "Address": url}])["ActionId"]

    budgets.create_budget_action(
        AccountId=account, BudgetName="vision-daily", NotificationType="ACTUAL",
        ActionType="APPLY_SCP_POLICY",
        ActionThreshold={"ActionThresholdValue": 100, "ActionThresholdType": "PERCENTAGE"},
        Definition={"ScpActionDefinition": {"PolicyId": "p-novision", "TargetIds": [account]}},
        ExecutionRoleArn=ROLE, ApprovalModel="AUTOMATIC",
        Subscribers=[{"SubscriptionType": "EMAIL", "Address": "finops@example.com"}])

    def executed():
        action = budgets.describe_budget_action(AccountId=account, BudgetName="vision-daily",
                                                ActionId=action_id)["Action"]
        return action["Status"] == "EXECUTION_SUCCESS" and action
    assert until(executed), "the action did not run"
    variant = sm.describe_endpoint(EndpointName="oversized")["ProductionVariants"][0]
    assert variant["DesiredInstanceCount"] == 1
    # The APPLY_SCP_POLICY action refuses new endpoints tagged team=vision.
    with pytest.raises(ClientError) as refused:
        sm.create_endpoint(EndpointName="more-vision", EndpointConfigName="oversized",
                           Tags=[{"Key": "team", "Value": "vision"}])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    spent = budgets.describe_budget(AccountId=account, BudgetName="vision-daily")["Budget"]
    assert float(spent["CalculatedSpend"]["ActualSpend"]["Amount"]) > 0.002
    notes = budgets.describe_notifications_for_budget(AccountId=account,
                                                      BudgetName="vision-daily")["Notifications"]
    assert notes[0]["NotificationState"] == "ALARM"
    history = budgets.describe_budget_action_histories(
        AccountId=account, BudgetName="vision-daily", ActionId=action_id)["ActionHistories"]
    assert [h["Status"] for h in history] == ["STANDBY", "EXECUTION_IN_PROGRESS",
                                              "EXECUTION_SUCCESS"]
    # The HTTP subscriber heard the notification and the action.
    assert until(lambda: {m["Type"] for m in received} >= {"BudgetNotification",
                                                           "BudgetAction"}), received
    # The capacity change is in the trail as AWS Budgets' own call.
    events = server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "UpdateEndpointWeightsAndCapacities"}
    ])["Events"]
    by_budgets = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert any(e["userIdentity"].get("invokedBy") == "budgets.amazonaws.com"
               and e["requestParameters"]["endpointName"] == "oversized" for e in by_budgets)

    # `tideserve budgets --events` lists the budget, its states and the recorded alerts.
    cli = subprocess.run([sys.executable, "-m", "tideserve.cli", "budgets", "--events",
                          "--url", server.url, "--state-dir", str(server.state_dir)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "notification ACTUAL GREATER_THAN 50 PERCENTAGE: ALARM" in cli.stdout, cli.stdout
    assert f"action {action_id} RUN_SSM_DOCUMENTS AUTOMATIC: EXECUTION_SUCCESS" in cli.stdout
    assert '"Type": "BudgetNotification"' in cli.stdout

    # Bad input gets AWS's errors.
    with pytest.raises(ClientError) as bad:
        budgets.create_budget(AccountId=account, Budget={
            "BudgetName": "weekly", "BudgetType": "COST", "TimeUnit": "WEEKLY",
            "BudgetLimit": {"Amount": "5", "Unit": "USD"}})
    assert bad.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(budgets.exceptions.DuplicateRecordException):
        budgets.create_budget(AccountId=account, Budget={
            "BudgetName": "vision-daily", "BudgetType": "COST", "TimeUnit": "DAILY",
            "BudgetLimit": {"Amount": "5", "Unit": "USD"}})
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.describe_budget(AccountId=account, BudgetName="nope")
    with pytest.raises(ClientError) as bad:
        sm.create_endpoint_config(EndpointConfigName="bogus", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "oversized",
            "InstanceType": "ml.bogus.large", "InitialInstanceCount": 1}])
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    budgets.delete_budget(AccountId=account, BudgetName="vision-daily")  # lifts the refusal
    sm.create_endpoint(EndpointName="more-vision", EndpointConfigName="oversized",
                       Tags=[{"Key": "team", "Value": "vision"}])
