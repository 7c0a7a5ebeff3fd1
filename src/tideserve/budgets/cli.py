"""`tideserve budgets [--events]`: every budget with its limit, actual and forecasted spend,
its notifications' states and its actions' statuses (through the budgets API, as a boto3 user
reads them), and with --events the alerts the server recorded (notifications and action
alerts, oldest first, read from the state dir's database: AWS has no API that lists them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from tideserve.budgets.store import BudgetStore
from tideserve.client import client, default_url
from tideserve.db import make_engine, sqlite_url


def add_budgets_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "budgets", help="budgets: spend against limits, alert states, actions, recorded alerts")
    p.add_argument("--url", default=default_url())
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--database-url", help="the server's database, when not the state dir's")
    p.add_argument("--events", action="store_true", help="also print the recorded alerts")
    return p


def run_budgets(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import sys

    out = out or sys.stdout
    api = client("budgets", args.url, args.state_dir)
    account = client("sts", args.url, args.state_dir).get_caller_identity()["Account"]
    actions = api.describe_budget_actions_for_account(AccountId=account)["Actions"]
    for b in api.describe_budgets(AccountId=account)["Budgets"]:
        spent = b["CalculatedSpend"]
        unit = b["BudgetLimit"]["Unit"]
        out.write(f"{b['BudgetName']}  {b['BudgetType']} {b['TimeUnit']}  limit "
                  f"{b['BudgetLimit']['Amount']} {unit}  actual "
                  f"{spent['ActualSpend']['Amount']}  forecast "
                  f"{spent['ForecastedSpend']['Amount']}\n")
        notes = api.describe_notifications_for_budget(AccountId=account,
                                                      BudgetName=b["BudgetName"])
        for n in notes["Notifications"]:
            out.write(f"  notification {n['NotificationType']} {n['ComparisonOperator']} "
                      f"{n['Threshold']:g} {n.get('ThresholdType', 'PERCENTAGE')}: "
                      f"{n.get('NotificationState', 'OK')}\n")
        for a in actions:
            if a["BudgetName"] == b["BudgetName"]:
                out.write(f"  action {a['ActionId']} {a['ActionType']} {a['ApprovalModel']}: "
                          f"{a['Status']}\n")
    if args.events:
        store = BudgetStore(make_engine(args.database_url or sqlite_url(args.state_dir)))
        for event in store.events():
            body = {k: v for k, v in event.items() if k not in ("Time", "BudgetName")}
            out.write(f"{event.get('Time')}  {event.get('BudgetName')}  "
                      f"{json.dumps(body, sort_keys=True)}\n")
    return 0
