"""The `budgets` API (awsJson 1.1, AWSBudgetServiceGateway) over the ledger, and the periodic
evaluation that alerts subscribers and runs budget actions (spec §12).

Evaluation runs once per metric period (server.py's period loop; with --period 2 that is every
2 s). For each budget: ActualSpend = the period's spend under its CostFilters (USD for COST,
instance-hours for USAGE); ForecastedSpend = actual + the daily model's forecast of the rest
of the period (cost/spend.py; a USAGE budget's forecast is its actual: the model is of
dollars). Data is recomputed on every read and every evaluation (AWS refreshes up to three
times a day). A notification goes OK -> ALARM when its comparison holds and
then alerts each subscriber once; it re-arms (OK) when the period resets. An action in
STANDBY whose threshold is crossed runs (AUTOMATIC) or waits in PENDING for
ExecuteBudgetAction APPROVE_BUDGET_ACTION (MANUAL); each transition is in its history and
alerts its subscribers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from tideserve.budgets import delivery
from tideserve.budgets import model as m
from tideserve.budgets.actions_api import ActionOperations
from tideserve.budgets.effects import Effects
from tideserve.budgets.store import BudgetStore
from tideserve.clock import Clock
from tideserve.cost.attribution import TagsFor
from tideserve.cost.billing import Interval
from tideserve.cost.ledger import Ledger
from tideserve.cost.spend import SECONDS_PER_DAY, check_filters, daily_model, spend
from tideserve.errors import AlreadyExistsError, NotFoundError

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Budgets(ActionOperations):
    def __init__(self, store: BudgetStore, ledger: Ledger, tags_for: TagsFor, clock: Clock,
                 account: str, effects: Effects) -> None:
        self.store, self.ledger, self.tags_for, self.clock = store, ledger, tags_for, clock
        self.account, self.effects = account, effects
        for action in store.actions():  # refusals in force survive a restart
            if action["ActionType"] == "APPLY_SCP_POLICY" and action["Status"] == \
                    "EXECUTION_SUCCESS":
                doc = store.budget(action["BudgetName"]) or {"Budget": {}}
                effects.execute(action, _tag_filters(doc))

    def operations(self) -> dict[str, Handler]:
        return {name: getattr(self, f"_{name}") for name in (
            "CreateBudget", "DescribeBudget", "DescribeBudgets", "UpdateBudget", "DeleteBudget",
            "CreateNotification", "DescribeNotificationsForBudget", "DeleteNotification",
            "UpdateNotification", "DescribeBudgetNotificationsForAccount",
            "CreateSubscriber", "DescribeSubscribersForNotification", "DeleteSubscriber",
            "UpdateSubscriber", "UpdateBudgetAction",
            "DescribeBudgetPerformanceHistory", "CreateBudgetAction", "DescribeBudgetAction",
            "DescribeBudgetActionsForBudget", "DescribeBudgetActionsForAccount",
            "DescribeBudgetActionHistories", "ExecuteBudgetAction", "DeleteBudgetAction")}

    # -- budgets -----------------------------------------------------------------------------

    def _doc(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._account(params)
        name = params.get("BudgetName")
        doc = self.store.budget(str(name))
        if doc is None:
            raise NotFoundError(f"Unable to get budget: {name} - the budget doesn't exist.",
                                code="NotFoundException")
        return doc

    def _account(self, params: Mapping[str, Any]) -> None:
        if params.get("AccountId") != self.account:
            raise m.invalid(f"AccountId '{params.get('AccountId')}' is not this server's "
                            f"account ({self.account}).")

    def _CreateBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        self._account(params)
        budget = m.check_budget(params.get("Budget"), self.clock.now())
        check_filters(budget["CostFilters"])
        if self.store.budget(budget["BudgetName"]) is not None:
            raise AlreadyExistsError(f"Error creating budget: {budget['BudgetName']} - the "
                                     "budget already exists.", code="DuplicateRecordException")
        notes = []
        for item in params.get("NotificationsWithSubscribers") or []:
            notes.append({**m.check_notification(item.get("Notification")),
                          "NotificationState": "OK",
                          "Subscribers": m.check_subscribers(item.get("Subscribers"))})
        budget["LastUpdatedTime"] = self.clock.now()
        self.store.put_budget(budget["BudgetName"], {"Budget": budget, "Notifications": notes})
        return {}

    def _DescribeBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Budget": self._view(self._doc(params))}

    def _DescribeBudgets(self, params: dict[str, Any]) -> dict[str, Any]:
        self._account(params)
        return {"Budgets": [self._view(d) for d in self.store.budgets()]}

    def _UpdateBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        new = params.get("NewBudget") or {}
        doc = self._doc({**params, "BudgetName": new.get("BudgetName")})
        budget = m.check_budget(new, self.clock.now())
        check_filters(budget["CostFilters"])
        budget["LastUpdatedTime"] = self.clock.now()
        self.store.put_budget(budget["BudgetName"], {**doc, "Budget": budget})
        return {}

    def _DeleteBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            doc = self._doc(params)
        except NotFoundError:
            raise NotFoundError(f"Unable to delete budget: {params.get('BudgetName')} - the "
                                "budget doesn't exist. Try creating it first. ",
                                code="NotFoundException") from None
        for action in self.store.actions(doc["Budget"]["BudgetName"]):
            self.effects.targets.refusals.pop(action["ActionId"], None)  # lifted with it
        self.store.delete_budget(doc["Budget"]["BudgetName"])
        return {}

    def _view(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        budget = dict(doc["Budget"])
        actual, forecast = self.calculated(budget, self.clock.now())
        budget["CalculatedSpend"] = {
            "ActualSpend": {"Amount": _amount(actual), "Unit": budget["BudgetLimit"]["Unit"]},
            "ForecastedSpend": {"Amount": _amount(forecast),
                                "Unit": budget["BudgetLimit"]["Unit"]}}
        budget["HealthStatus"] = {"Status": "HEALTHY"}
        return budget

    def calculated(self, budget: Mapping[str, Any], now: float) -> tuple[float, float]:
        """(actual, forecasted) for the budget's current period: USD, or Hrs for USAGE."""
        start, end = m.current_period(budget, now)
        filters = budget.get("CostFilters") or {}
        got = spend(self.ledger, self.tags_for, Interval(start, end), now, filters)
        actual = got.usd if budget["BudgetType"] == "COST" else got.instance_hours
        model = daily_model(self.ledger, self.tags_for, now, filters)
        rest = max(0.0, end - now) / SECONDS_PER_DAY
        if model is None or budget["BudgetType"] != "COST":
            return actual, actual
        return actual, actual + model.forecast(rest, 80).mean

    # -- notifications and subscribers -------------------------------------------------------

    def _find(self, doc: Mapping[str, Any], value: Any) -> dict[str, Any]:
        wanted = m.check_notification(value)
        for note in doc["Notifications"]:
            if m.same_notification(note, wanted):
                return dict(note)
        raise NotFoundError("Unable to find the notification.", code="NotFoundException")

    def _CreateNotification(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        note = m.check_notification(params.get("Notification"))
        if any(m.same_notification(n, note) for n in doc["Notifications"]):
            raise AlreadyExistsError("The notification already exists.",
                                     code="DuplicateRecordException")
        if len(doc["Notifications"]) >= m.MAX_NOTIFICATIONS:
            raise m.invalid(f"A budget has at most {m.MAX_NOTIFICATIONS} notifications.")
        doc["Notifications"].append({**note, "NotificationState": "OK",
                                     "Subscribers": m.check_subscribers(params.get("Subscribers"))})
        self.store.put_budget(doc["Budget"]["BudgetName"], doc)
        return {}

    def _DescribeNotificationsForBudget(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        return {"Notifications": [{k: v for k, v in n.items() if k != "Subscribers"}
                                  for n in doc["Notifications"]]}

    def _DeleteNotification(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        note = self._find(doc, params.get("Notification"))
        doc["Notifications"] = [n for n in doc["Notifications"]
                                if not m.same_notification(n, note)]
        self.store.put_budget(doc["Budget"]["BudgetName"], doc)
        return {}

    def _UpdateNotification(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        old = self._find(doc, params.get("OldNotification"))
        new = m.check_notification(params.get("NewNotification"))
        if not m.same_notification(old, new) and any(
                m.same_notification(n, new) for n in doc["Notifications"]):
            raise AlreadyExistsError("The notification already exists.",
                                     code="DuplicateRecordException")
        self._replace(doc, old, {**old, **new, "NotificationState": "OK"})
        return {}

    def _DescribeBudgetNotificationsForAccount(self, params: dict[str, Any]) -> dict[str, Any]:
        self._account(params)
        return {"BudgetNotificationsForAccount": [
            {"BudgetName": d["Budget"]["BudgetName"],
             "Notifications": [{k: v for k, v in n.items() if k != "Subscribers"}
                               for n in d["Notifications"]]}
            for d in self.store.budgets() if d["Notifications"]]}

    def _UpdateSubscriber(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        note = self._find(doc, params.get("Notification"))
        old = params.get("OldSubscriber") or {}
        if old not in note["Subscribers"]:
            raise NotFoundError("Unable to find the subscriber.", code="NotFoundException")
        subs = [s for s in note["Subscribers"] if s != old]
        subs.append(params.get("NewSubscriber") or {})
        self._replace(doc, note, {**note, "Subscribers": m.check_subscribers(subs)})
        return {}

    def _CreateSubscriber(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        note = self._find(doc, params.get("Notification"))
        subs = [*note["Subscribers"], *m.check_subscribers([params.get("Subscriber") or {}])]
        if len({(s["SubscriptionType"], s["Address"]) for s in subs}) < len(subs):
            raise AlreadyExistsError("The subscriber already exists.",
                                     code="DuplicateRecordException")
        self._replace(doc, note, {**note, "Subscribers": m.check_subscribers(subs)})
        return {}

    def _DescribeSubscribersForNotification(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Subscribers": self._find(self._doc(params), params.get("Notification"))[
            "Subscribers"]}

    def _DeleteSubscriber(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        note = self._find(doc, params.get("Notification"))
        gone = params.get("Subscriber") or {}
        subs = [s for s in note["Subscribers"] if s != gone]
        self._replace(doc, note, {**note, "Subscribers": subs} if subs else None)
        return {}

    def _replace(self, doc: dict[str, Any], old: Mapping[str, Any],
                 new: dict[str, Any] | None) -> None:
        notes = [n for n in doc["Notifications"] if not m.same_notification(n, old)]
        doc["Notifications"] = notes + ([new] if new is not None else [])
        self.store.put_budget(doc["Budget"]["BudgetName"], doc)

    def _DescribeBudgetPerformanceHistory(self, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc(params)
        budget = doc["Budget"]
        now = self.clock.now()
        if budget["TimeUnit"] in ("ANNUALLY",):
            raise m.invalid("Performance history is not supported for ANNUALLY budgets.")
        start, end = m.current_period(budget, now)
        entries: list[dict[str, Any]] = []
        first = max(float(budget["TimePeriod"]["Start"]), now - 60 * SECONDS_PER_DAY)
        while end > first and len(entries) < 60:
            got = spend(self.ledger, self.tags_for, Interval(start, end), now,
                        budget.get("CostFilters") or {})
            value = got.usd if budget["BudgetType"] == "COST" else got.instance_hours
            unit = budget["BudgetLimit"]["Unit"]
            entries.append({"BudgetedAmount": dict(budget["BudgetLimit"]),
                            "ActualAmount": {"Amount": _amount(value), "Unit": unit},
                            "TimePeriod": {"Start": start, "End": end}})
            if budget["TimeUnit"] == "CUSTOM":
                break
            end = start
            start = m.period_start(budget["TimeUnit"], start - 1)
        history = {k: budget.get(k) for k in ("BudgetName", "BudgetType", "CostFilters",
                                              "CostTypes", "TimeUnit") if k in budget}
        history["BudgetedAndActualAmountsList"] = list(reversed(entries))
        return {"BudgetPerformanceHistory": history}

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self) -> None:
        """One pass over every budget (the server's period loop calls this)."""
        now = self.clock.now()
        for doc in self.store.budgets():
            try:
                self._evaluate(doc, now)
            except Exception:
                log.exception("budget %s: evaluation failed", doc["Budget"]["BudgetName"])

    def _evaluate(self, doc: dict[str, Any], now: float) -> None:
        budget = doc["Budget"]
        start, _ = m.current_period(budget, now)
        actual, forecast = self.calculated(budget, now)
        limit = float(budget["BudgetLimit"]["Amount"])
        values = {"ACTUAL": actual, "FORECASTED": forecast}
        changed = doc.get("PeriodStart") != start
        if changed:  # a new period re-arms every notification
            doc["PeriodStart"] = start
            for note in doc["Notifications"]:
                note["NotificationState"] = "OK"
        for note in doc["Notifications"]:
            bound = m.threshold_value(note["Threshold"], note["ThresholdType"], limit)
            if note["NotificationState"] == "OK" and m.compare(
                    values[note["NotificationType"]], note["ComparisonOperator"], bound):
                note["NotificationState"] = "ALARM"
                changed = True
                self._alert(budget["BudgetName"], note["Subscribers"], {
                    "Type": "BudgetNotification", "NotificationType": note["NotificationType"],
                    "ComparisonOperator": note["ComparisonOperator"],
                    "Threshold": note["Threshold"], "ThresholdType": note["ThresholdType"],
                    "ActualSpend": _amount(actual), "ForecastedSpend": _amount(forecast),
                    "BudgetLimit": budget["BudgetLimit"]})
        if changed:
            self.store.put_budget(budget["BudgetName"], doc)
        for action in self.store.actions(budget["BudgetName"]):
            threshold = action["ActionThreshold"]
            bound = m.threshold_value(float(threshold["ActionThresholdValue"]),
                                      threshold["ActionThresholdType"], limit)
            if action["Status"] == "STANDBY" and values[action["NotificationType"]] > bound:
                if action["ApprovalModel"] == "AUTOMATIC":
                    self._run(action)
                else:
                    self._move(action, "PENDING", "SYSTEM", "threshold crossed: awaiting "
                               "approval")

    def _alert(self, budget_name: str, subscribers: list[dict[str, str]],
               body: Mapping[str, Any]) -> None:
        now = self.clock.now()
        event = {**body, "BudgetName": budget_name, "AccountId": self.account,
                 "Time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "Subscribers": subscribers}
        self.store.add_event(budget_name, now, event)
        for subscriber in subscribers:
            if delivery.is_callback(subscriber):
                delivery.post(subscriber["Address"], event)

    def events(self, budget_name: str | None = None) -> list[dict[str, Any]]:
        """The alerts recorded (notifications and action alerts), oldest first."""
        return self.store.events(budget_name)


def _tag_filters(doc: Mapping[str, Any]) -> list[str]:
    return list((doc["Budget"].get("CostFilters") or {}).get("TagKeyValue") or [])


def _amount(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
