"""A budget's rules, pure: validation of AWS's shapes at the edge (spec §12.2-§12.4) and the
period a budget is in at a moment (UTC, as AWS resets budgets).

Errors are Budgets' own codes: InvalidParameterException for bad input, NotFoundException,
DuplicateRecordException, CreationLimitExceededException (subscriber limits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tideserve.errors import LimitExceededError, ValidationError

TIME_UNITS: Final = ("DAILY", "MONTHLY", "QUARTERLY", "ANNUALLY", "CUSTOM")
BUDGET_TYPES: Final = ("COST", "USAGE")  # RI/SP budgets: nothing here to measure them by
END_OF_TIME: Final = 3706473600.0  # 2087-06-15T00:00Z, AWS's default End
MAX_NOTIFICATIONS: Final = 10
_AMOUNT = re.compile(r"([0-9]*\.)?[0-9]+")
_NAME = re.compile(r"[^:\\]+")
COST_TYPES_DEFAULT: Final = {
    "IncludeTax": True, "IncludeSubscription": True, "UseBlended": False,
    "IncludeRefund": True, "IncludeCredit": True, "IncludeUpfront": True,
    "IncludeRecurring": True, "IncludeOtherSubscription": True, "IncludeSupport": True,
    "IncludeDiscount": True, "UseAmortized": False,
}


def invalid(message: str) -> ValidationError:
    return ValidationError(message, code="InvalidParameterException")


def check_name(name: Any) -> str:
    if (not isinstance(name, str) or not 1 <= len(name) <= 100 or not _NAME.fullmatch(name)
            or "/action/" in name):
        raise invalid(f"Invalid BudgetName '{name}': 1-100 characters, no ':' or '\\', "
                      "and not containing '/action/'.")
    return name


def enum(value: Any, allowed: tuple[str, ...], member: str) -> str:
    if value not in allowed:
        raise invalid(f"Value '{value}' at '{member}' failed to satisfy constraint: Member "
                      f"must satisfy enum value set: [{', '.join(allowed)}]")
    return str(value)


def period_start(unit: str, t: float) -> float:
    moment = datetime.fromtimestamp(t, UTC)
    if unit == "DAILY":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "MONTHLY":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "QUARTERLY":
        start = moment.replace(month=(moment.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0,
                               second=0, microsecond=0)
    else:
        start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp()


def period_end(unit: str, start: float) -> float:
    moment = datetime.fromtimestamp(start, UTC)
    if unit == "DAILY":
        return start + 86_400.0
    months = {"MONTHLY": 1, "QUARTERLY": 3, "ANNUALLY": 12}[unit]
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1).timestamp()


def current_period(budget: Mapping[str, Any], now: float) -> tuple[float, float]:
    """[start, end) of the budget's period that holds `now`; CUSTOM is its TimePeriod."""
    unit = budget["TimeUnit"]
    start, end = float(budget["TimePeriod"]["Start"]), float(budget["TimePeriod"]["End"])
    if unit == "CUSTOM":
        return start, end
    begin = period_start(unit, max(now, start))
    return begin, min(period_end(unit, begin), end)


def check_budget(budget: Any, now: float) -> dict[str, Any]:
    """The Budget shape, validated and defaulted as CreateBudget stores it."""
    if not isinstance(budget, Mapping):
        raise invalid("Budget is required.")
    out = dict(budget)
    check_name(out.get("BudgetName"))
    enum(out.get("BudgetType"), BUDGET_TYPES, "budget.budgetType")
    unit = enum(out.get("TimeUnit"), TIME_UNITS, "budget.timeUnit")
    limit = out.get("BudgetLimit")
    if not isinstance(limit, Mapping):
        raise invalid("Unable to create/update budget - please provide one of the followings: "
                      "Budget Limit/ Planned Budget Limit/ Auto Adjust Data")
    if not _AMOUNT.fullmatch(str(limit.get("Amount", ""))) or not limit.get("Unit"):
        raise invalid(f"BudgetLimit {dict(limit)} needs an Amount (a decimal string) and a "
                      "Unit (USD for COST, Hrs for USAGE).")
    if out.get("FilterExpression") or out.get("Metrics"):
        raise invalid("tideserve budgets take legacy CostFilters; FilterExpression and Metrics "
                      "are not supported.")
    period = dict(out.get("TimePeriod") or {})
    default_start = period_start(unit, now) if unit != "CUSTOM" else None
    start = _epoch(period.get("Start"), default_start, "Start")
    end = _epoch(period.get("End"), END_OF_TIME, "End")
    if start >= end:
        raise invalid("TimePeriod Start must be before End.")
    out["TimePeriod"] = {"Start": start, "End": end}
    if out["BudgetType"] == "COST":
        out["CostTypes"] = {**COST_TYPES_DEFAULT, **dict(out.get("CostTypes") or {})}
    out["CostFilters"] = dict(out.get("CostFilters") or {})
    out.pop("CalculatedSpend", None)
    return out


def _epoch(value: Any, default: float | None, member: str) -> float:
    if value is None:
        if default is None:
            raise invalid(f"A CUSTOM budget needs TimePeriod.{member}.")
        return default
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    raise invalid(f"TimePeriod.{member} '{value}' is not a timestamp.")


NOTIFICATION_TYPES: Final = ("ACTUAL", "FORECASTED")
OPERATORS: Final = ("GREATER_THAN", "LESS_THAN", "EQUAL_TO")
THRESHOLD_TYPES: Final = ("PERCENTAGE", "ABSOLUTE_VALUE")


def check_notification(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid("Notification is required.")
    threshold = value.get("Threshold")
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 15e12:
        raise invalid(f"Notification Threshold '{threshold}' must be a number 0..15e12.")
    return {
        "NotificationType": enum(value.get("NotificationType"), NOTIFICATION_TYPES,
                                 "notification.notificationType"),
        "ComparisonOperator": enum(value.get("ComparisonOperator"), OPERATORS,
                                   "notification.comparisonOperator"),
        "Threshold": float(threshold),
        "ThresholdType": enum(value.get("ThresholdType", "PERCENTAGE"), THRESHOLD_TYPES,
                              "notification.thresholdType"),
    }


def same_notification(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """AWS identifies a notification by its whole value (spec §12.4)."""
    keys = ("NotificationType", "ComparisonOperator", "Threshold", "ThresholdType")
    return all(a.get(k) == b.get(k) for k in keys)


def check_subscribers(values: Any) -> list[dict[str, str]]:
    if not isinstance(values, list) or not values:
        raise invalid("Subscribers must hold 1 to 11 subscribers.")
    out = []
    for v in values:
        kind = enum(v.get("SubscriptionType"), ("SNS", "EMAIL"), "subscriber.subscriptionType")
        address = v.get("Address")
        if not isinstance(address, str) or not address or "\n" in address:
            raise invalid(f"Subscriber Address '{address}' must be one line.")
        out.append({"SubscriptionType": kind, "Address": address})
    sns = sum(1 for s in out if s["SubscriptionType"] == "SNS")
    if sns > 1 or len(out) - sns > 10:
        raise LimitExceededError("A notification can have at most 1 SNS and 10 EMAIL "
                                 "subscribers.", code="CreationLimitExceededException")
    return out


def threshold_value(threshold: float, threshold_type: str, limit: float) -> float:
    """Limit $200, PERCENTAGE 80 -> fires above $160; ABSOLUTE_VALUE 160 -> the same."""
    return threshold / 100.0 * limit if threshold_type == "PERCENTAGE" else threshold


def compare(value: float, operator: str, bound: float) -> bool:
    if operator == "GREATER_THAN":
        return value > bound
    if operator == "LESS_THAN":
        return value < bound
    return abs(value - bound) < 1e-9
