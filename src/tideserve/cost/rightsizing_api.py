"""Cost Explorer's GetRightsizingRecommendation over endpoint variants, in the ce model's
shapes (spec §13.2). Every number is a string, as in AWS's answers.

AWS answers this operation for Service "AmazonEC2" only. tideserve has no EC2 instances, and
its instances are SageMaker ML instances, so it answers `Service="AmazonSageMaker"` (the
Price List service code) with one recommendation per endpoint variant, in the EC2-shaped
members (CurrentInstance.ResourceDetails.EC2ResourceDetails carries the ml.* type; ResourceId
is the endpoint ARN + "/variant/<name>"). "AmazonEC2" gets an empty answer; anything else a
ValidationException. The look-back is Cost Explorer's 14 days (the LookbackPeriodInDays enum
has no 14-day value, so Metadata leaves it out and says so in AdditionalMetadata); `tideserve
rightsize --days N` chooses another. Savings are on-demand (BenefitsConsidered is echoed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tideserve.clock import Clock
from tideserve.cost.catalog import Catalog
from tideserve.cost.explorer import amount
from tideserve.cost.ledger import Ledger
from tideserve.cost.rightsizing import (
    CROSS_FAMILY,
    HOURS_PER_MONTH,
    SAME_FAMILY,
    Recommendation,
    recommend,
)
from tideserve.cost.rightsizing_data import SECONDS_PER_DAY, gather
from tideserve.errors import ValidationError
from tideserve.metrics.store import MetricStore

LOOKBACK_DAYS: Final = 14
SAGEMAKER_SERVICE: Final = "AmazonSageMaker"

ArnOf = Callable[[str], str]  # endpoint name -> endpoint ARN


class Rightsizing:
    def __init__(self, metrics: MetricStore, ledger: Ledger, catalog: Catalog, clock: Clock,
                 account: str, region: str, arn_of: ArnOf) -> None:
        self.metrics, self.ledger, self.catalog, self.clock = metrics, ledger, catalog, clock
        self.account, self.region, self.arn_of = account, region, arn_of

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetRightsizingRecommendation": self.get_rightsizing_recommendation}

    def get_rightsizing_recommendation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        service = params.get("Service")
        config = dict(params.get("Configuration") or {})
        target = config.setdefault("RecommendationTarget", SAME_FAMILY)
        config.setdefault("BenefitsConsidered", True)
        if service not in (SAGEMAKER_SERVICE, "AmazonEC2"):
            raise ValidationError(
                f"Service '{service}' is not supported: tideserve gives rightsizing "
                f"recommendations for {SAGEMAKER_SERVICE} (endpoint variants) and an empty "
                "answer for AmazonEC2.")
        if target not in (SAME_FAMILY, CROSS_FAMILY):
            raise ValidationError(f"Value '{target}' at 'configuration.recommendationTarget' "
                                  f"failed to satisfy constraint: Member must satisfy enum "
                                  f"value set: [{SAME_FAMILY}, {CROSS_FAMILY}]")
        if params.get("NextPageToken"):
            raise ValidationError("The NextPageToken is not valid: tideserve answers in one "
                                  "page.", code="InvalidNextTokenException")
        recs = [] if service == "AmazonEC2" else self.recommendations(LOOKBACK_DAYS, target)
        return self.response(recs, config)

    def recommendations(self, days: float, target: str) -> list[Recommendation]:
        end = self.clock.now()
        found = []
        for u in gather(self.metrics, self.ledger, self.catalog, end - days * SECONDS_PER_DAY,
                        end):
            rec = recommend(u, self.catalog, target)
            if rec is not None:
                found.append(rec)
        return found

    def response(self, recs: list[Recommendation], config: Mapping[str, Any]) -> dict[str, Any]:
        saved = sum(r.monthly_savings for r in recs if r.monthly_savings > 0)
        spend = sum(r.monthly_cost for r in recs)
        return {
            "Metadata": {
                "RecommendationId": str(uuid.uuid4()),
                "GenerationTimestamp": datetime.fromtimestamp(self.clock.now(), UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "AdditionalMetadata": f"tideserve: endpoint variants, {LOOKBACK_DAYS}-day "
                                      "look-back; rule p95 CPU <= 60 %, max memory <= 85 %",
            },
            "Summary": {
                "TotalRecommendationCount": str(len(recs)),
                "EstimatedTotalMonthlySavingsAmount": amount(saved),
                "SavingsCurrencyCode": "USD",
                "SavingsPercentage": amount(100.0 * saved / spend if spend else 0.0),
            },
            "RightsizingRecommendations": [self._one(r) for r in recs],
            "Configuration": dict(config),
        }

    def _one(self, r: Recommendation) -> dict[str, Any]:
        u = r.utilisation
        out: dict[str, Any] = {
            "AccountId": self.account,
            "CurrentInstance": {
                "ResourceId": f"{self.arn_of(u.endpoint)}/variant/{u.variant}",
                "InstanceName": f"{u.endpoint}/{u.variant}",
                "Tags": [],
                "ResourceDetails": self._details(u.instance_type),
                "ResourceUtilization": {"EC2ResourceUtilization": _utilisation(
                    u.cpu_max, u.memory_max)},
                "OnDemandHoursInLookbackPeriod": amount(u.running_hours),
                "TotalRunningHoursInLookbackPeriod": amount(u.running_hours),
                "MonthlyCost": amount(r.monthly_cost),
                "CurrencyCode": "USD",
            },
            "RightsizingType": r.kind,
            "FindingReasonCodes": list(r.reasons),
        }
        if r.target is None:
            out["TerminateRecommendationDetail"] = {
                "EstimatedMonthlySavings": amount(r.monthly_savings), "CurrencyCode": "USD"}
            return out
        t = r.target
        out["ModifyRecommendationDetail"] = {"TargetInstances": [{
            "EstimatedMonthlyCost": amount(t.monthly_cost),
            "EstimatedMonthlySavings": amount(t.monthly_savings),
            "CurrencyCode": "USD",
            "DefaultTargetInstance": True,
            "ResourceDetails": self._details(t.instance_type),
            "ExpectedResourceUtilization": {"EC2ResourceUtilization": _utilisation(
                t.cpu_p95, t.memory_max)},
            "PlatformDifferences": [],
        }]}
        return out

    def _details(self, name: str) -> dict[str, Any]:
        t = self.catalog.get(name)
        return {"EC2ResourceDetails": {
            "HourlyOnDemandRate": amount(t.on_demand_hourly_usd), "InstanceType": name,
            "Platform": "Linux/UNIX", "Region": self.region, "Memory": f"{t.memory_gib:g} GiB",
            "Vcpu": str(t.vcpu), "Sku": name,
        }}


def _utilisation(cpu: float | None, memory: float | None) -> dict[str, str]:
    out = {}
    if cpu is not None:
        out["MaxCpuUtilizationPercentage"] = amount(cpu)
    if memory is not None:
        out["MaxMemoryUtilizationPercentage"] = amount(memory)
    return out


__all__ = ["HOURS_PER_MONTH", "LOOKBACK_DAYS", "Rightsizing"]
