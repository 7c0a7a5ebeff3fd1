"""Cost Explorer's Savings Plans operations over the ledger: GetSavingsPlansPurchaseRecommendation
(SAGEMAKER_SP only) and GetSavingsPlansUtilization of the plans the user recorded.

Plans are recorded in a file, `<state-dir>/savings_plans.json` (tideserve speaks no
rest-json `savingsplans` API): a JSON list in DescribeSavingsPlans' member spelling, e.g.
    [{"savingsPlanId": "sp-1", "savingsPlanType": "SageMaker", "commitment": "0.5",
      "paymentOption": "No Upfront", "termDurationInSeconds": 31536000,
      "start": "2026-12-01T00:00:00Z"}]
(`end` defaults to start + term). The file is read at each call, so editing it takes effect
at once. Only SageMaker plans count; the ledger's OnDemand instance usage is eligible
(serverless usage has no catalog type to price at plan rates, and is left on demand).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tideserve.clock import Clock
from tideserve.cost import savings_plans as sp
from tideserve.cost.billing import ON_DEMAND, Interval, periods
from tideserve.cost.catalog import Catalog
from tideserve.cost.explorer import amount, parse_query
from tideserve.cost.ledger import Ledger
from tideserve.cost.report import split
from tideserve.errors import ValidationError

HOUR: Final = 3600.0
PLANS_FILE: Final = "savings_plans.json"  # in the state dir
LOOKBACKS: Final = {"SEVEN_DAYS": 7, "THIRTY_DAYS": 30, "SIXTY_DAYS": 60}
_PAYMENT_NAMES: Final = {"No Upfront": "NO_UPFRONT", "Partial Upfront": "PARTIAL_UPFRONT",
                         "All Upfront": "ALL_UPFRONT"}
_TERMS: Final = {31_536_000: "ONE_YEAR", 94_608_000: "THREE_YEARS"}


@dataclass(frozen=True)
class Plan:
    plan_id: str
    commitment: float  # USD per hour
    term: str  # ONE_YEAR | THREE_YEARS
    payment: str  # NO_UPFRONT | PARTIAL_UPFRONT | ALL_UPFRONT
    start: float
    end: float


def load_plans(path: Path) -> list[Plan]:
    if not path.exists():
        return []
    plans = []
    for i, item in enumerate(json.loads(path.read_text())):
        try:
            if item.get("savingsPlanType", "SageMaker") != "SageMaker":
                continue
            seconds = int(item.get("termDurationInSeconds", 31_536_000))
            start = _time(item["start"])
            plans.append(Plan(str(item.get("savingsPlanId", f"sp-{i}")),
                              float(item["commitment"]), _TERMS[seconds],
                              _PAYMENT_NAMES[item.get("paymentOption", "No Upfront")], start,
                              _time(item["end"]) if item.get("end") else start + seconds))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValidationError(f"{path} entry {i} is not a savings plan: {exc}") from None
    return plans


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class SavingsPlans:
    def __init__(self, ledger: Ledger, catalog: Catalog, clock: Clock, plans_file: Path) -> None:
        self.ledger, self.catalog, self.clock, self.plans_file = ledger, catalog, clock, plans_file

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetSavingsPlansPurchaseRecommendation": self.purchase_recommendation,
                "GetSavingsPlansUtilization": self.utilization}

    def hourly_pieces(self, window: Interval) -> list[list[tuple[str, float]]]:
        """(instance type, on-demand USD) per hour of `window`, eligible usage only."""
        hours = [Interval(window.start + i * HOUR, window.start + (i + 1) * HOUR)
                 for i in range(math.ceil((window.end - window.start) / HOUR))]
        out: list[dict[str, float]] = [{} for _ in hours]
        usages = [u for u in self.ledger.usage(window.start, window.end)
                  if u.purchase_option == ON_DEMAND and u.instance_type in self.catalog]
        for piece in split(usages, hours, self.clock.now()):
            by_type = out[piece.period]
            by_type[piece.usage.instance_type] = (by_type.get(piece.usage.instance_type, 0.0)
                                                  + piece.cost_usd)
        return [sorted(h.items()) for h in out]

    def purchase_recommendation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("SavingsPlansType") != "SAGEMAKER_SP":
            raise ValidationError(f"SavingsPlansType {params.get('SavingsPlansType')} is not "
                                  "offered here: tideserve recommends SAGEMAKER_SP only.")
        term, payment = params.get("TermInYears"), params.get("PaymentOption")
        if term not in sp.TERMS or payment not in sp.PAYMENTS:
            raise ValidationError(f"TermInYears {term} / PaymentOption {payment}: use "
                                  f"{'|'.join(sp.TERMS)} and {'|'.join(sp.PAYMENTS)}.")
        days = LOOKBACKS.get(str(params.get("LookbackPeriodInDays")))
        if days is None:
            raise ValidationError("LookbackPeriodInDays must be one of "
                                  f"{', '.join(LOOKBACKS)}.")
        now = self.clock.now()
        end = now - now % HOUR  # whole hours only
        hours = self.hourly_pieces(Interval(end - days * 24 * HOUR, end))
        hourly = [sum(c for _, c in h) for h in hours]
        total = sum(hourly)
        plan_cost = sum(c * sp.rate(self.catalog, t, term, payment) for h in hours for t, c in h)
        discount = 1.0 - plan_cost / total if total else 0.0
        p = sp.recommend(hourly, discount)
        return self._recommendation(params, days, hourly, p, now)

    def _recommendation(self, params: Mapping[str, Any], days: int, hourly: Sequence[float],
                        p: sp.Purchase, now: float) -> dict[str, Any]:
        term, payment = str(params["TermInYears"]), str(params["PaymentOption"])
        head = {"AccountScope": params.get("AccountScope", "PAYER"),
                "SavingsPlansType": "SAGEMAKER_SP", "TermInYears": term,
                "PaymentOption": payment, "LookbackPeriodInDays": params["LookbackPeriodInDays"]}
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata = {"RecommendationId": str(uuid.uuid4()), "GenerationTimestamp": stamp,
                    "AdditionalMetadata": f"tideserve: discount {100 * p.discount:.1f} % "
                                          f"over {days} days of ml.* on-demand usage"}
        monthly = p.savings / p.hours * 730 if p.hours else 0.0
        pct = 100.0 * p.savings / p.on_demand if p.on_demand else 0.0
        roi = 100.0 * p.savings / p.sp_cost if p.sp_cost else 0.0
        summary = {
            "EstimatedROI": amount(roi), "CurrencyCode": "USD",
            "EstimatedTotalCost": amount(p.sp_cost + p.left_on_demand),
            "CurrentOnDemandSpend": amount(p.on_demand),
            "EstimatedSavingsAmount": amount(p.savings),
            "TotalRecommendationCount": "1" if p.hourly_commitment else "0",
            "DailyCommitmentToPurchase": amount(24 * p.hourly_commitment),
            "HourlyCommitmentToPurchase": amount(p.hourly_commitment),
            "EstimatedSavingsPercentage": amount(pct),
            "EstimatedMonthlySavingsAmount": amount(monthly),
            "EstimatedOnDemandCostWithCurrentCommitment": amount(p.on_demand),
        }
        details = []
        if p.hourly_commitment:
            term_hours = sp.TERMS[term] * sp.HOURS_PER_YEAR
            details.append({
                "SavingsPlansDetails": {"Region": "", "InstanceFamily": "",
                                        "OfferingId": f"tideserve-sagemaker-{term}-{payment}"},
                "UpfrontCost": amount(p.hourly_commitment * term_hours
                                      * sp.UPFRONT_SHARE[payment]),
                "EstimatedROI": amount(roi), "CurrencyCode": "USD",
                "EstimatedSPCost": amount(p.sp_cost),
                "EstimatedOnDemandCost": amount(p.left_on_demand),
                "EstimatedOnDemandCostWithCurrentCommitment": amount(p.on_demand),
                "EstimatedSavingsAmount": amount(p.savings),
                "EstimatedSavingsPercentage": amount(pct),
                "HourlyCommitmentToPurchase": amount(p.hourly_commitment),
                "EstimatedAverageUtilization": amount(sp.average_utilisation(hourly, p)),
                "EstimatedMonthlySavingsAmount": amount(monthly),
                "CurrentMinimumHourlyOnDemandSpend": amount(min(hourly, default=0.0)),
                "CurrentMaximumHourlyOnDemandSpend": amount(max(hourly, default=0.0)),
                "CurrentAverageHourlyOnDemandSpend": amount(
                    p.on_demand / p.hours if p.hours else 0.0),
                "RecommendationDetailId": str(uuid.uuid5(uuid.NAMESPACE_URL, metadata[
                    "RecommendationId"])),
            })
        return {"Metadata": metadata, "SavingsPlansPurchaseRecommendation": {
            **head, "SavingsPlansPurchaseRecommendationDetails": details,
            "SavingsPlansPurchaseRecommendationSummary": summary}}

    def utilization(self, params: Mapping[str, Any]) -> dict[str, Any]:
        granularity = params.get("Granularity") or "DAILY"
        query = parse_query({"TimePeriod": params.get("TimePeriod"), "Granularity": granularity,
                             "Metrics": ["UnblendedCost"]})
        plans = load_plans(self.plans_file)
        if not plans:
            raise ValidationError(f"No savings plans are recorded (in {self.plans_file}).",
                                  code="DataUnavailableException")
        results, total = [], _Sums()
        for window in periods(query.window, granularity):
            sums = self.covered(window, plans)
            total.add(sums)
            results.append({"TimePeriod": {"Start": _day(window.start),
                                           "End": _day(window.end)}, **sums.shape()})
        return {"SavingsPlansUtilizationsByTime": results, "Total": total.shape()}

    def covered(self, window: Interval, plans: Sequence[Plan]) -> _Sums:
        """Each hour's eligible usage covered by the plans active in it, in file order."""
        sums = _Sums()
        now = self.clock.now()
        for i, hour in enumerate(self.hourly_pieces(window)):
            t = window.start + i * HOUR
            if t >= now:
                break
            left = {ty: c for ty, c in hour}
            for plan in plans:
                if not plan.start <= t < plan.end:
                    continue
                types = sorted(left)
                pieces = [sp.Piece(left[ty], sp.rate(self.catalog, ty, plan.term, plan.payment))
                          for ty in types]
                cover = sp.cover_hour(pieces, plan.commitment)
                for ty, share in zip(types, cover.shares, strict=True):
                    left[ty] *= 1.0 - share  # what this plan left is the next plan's
                sums.commitment += plan.commitment
                sums.used += cover.used
                sums.on_demand_equivalent += cover.covered_on_demand
        return sums


@dataclass
class _Sums:
    commitment: float = 0.0
    used: float = 0.0
    on_demand_equivalent: float = 0.0

    def add(self, other: _Sums) -> None:
        self.commitment += other.commitment
        self.used += other.used
        self.on_demand_equivalent += other.on_demand_equivalent

    def shape(self) -> dict[str, Any]:
        pct = 100.0 * self.used / self.commitment if self.commitment else 0.0
        return {
            "Utilization": {"TotalCommitment": amount(self.commitment),
                            "UsedCommitment": amount(self.used),
                            "UnusedCommitment": amount(self.commitment - self.used),
                            "UtilizationPercentage": amount(pct)},
            "Savings": {"NetSavings": amount(self.on_demand_equivalent - self.commitment),
                        "OnDemandCostEquivalent": amount(self.on_demand_equivalent)},
            "AmortizedCommitment": {"AmortizedRecurringCommitment": amount(self.commitment),
                                    "AmortizedUpfrontCommitment": "0",
                                    "TotalAmortizedCommitment": amount(self.commitment)},
        }


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
