"""Cost Explorer's GetRightsizingRecommendation over endpoint variants, in the ce model's
shapes (spec §13.2). Every number is a string, as in AWS's answers.

AWS answers this operation for Service "AmazonEC2" only. tideserve has no EC2 instances, and
its instances are SageMaker ML instances, so it answers `Service="AmazonSageMaker"` (the
Price List service code) with one recommendation per endpoint variant, in the EC2-shaped
members (CurrentInstance.ResourceDetails.EC2ResourceDetails carries the ml.* type; ResourceId
is the endpoint ARN + "/variant/<name>"). "AmazonEC2" gets an empty answer; anything else a
ValidationException. `Filter` (a Cost Explorer Expression) is matched against each variant's
dimensions and its endpoint's tags, as GetCostAndUsage matches usage; the tags are also in
CurrentInstance.Tags. The look-back is Cost Explorer's 14 days (the LookbackPeriodInDays enum
has no 14-day value, so Metadata leaves it out and says so in AdditionalMetadata); `tideserve
rightsize --days N` chooses another. Savings are on-demand (BenefitsConsidered is echoed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from tideserve.clock import Clock
from tideserve.cost import ce_filter
from tideserve.cost.attribution import Attributor, Facts, TagsFor
from tideserve.cost.billing import ON_DEMAND
from tideserve.cost.catalog import Catalog
from tideserve.cost.explorer import amount
from tideserve.cost.ledger import Ledger, Usage
from tideserve.cost.rightsizing import (
    CROSS_FAMILY,
    HOURS_PER_MONTH,
    SAME_FAMILY,
    Recommendation,
    VariantUtilisation,
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
                 account: str, region: str, arn_of: ArnOf,
                 tags_for: TagsFor = lambda arn: {}) -> None:
        self.metrics, self.ledger, self.catalog, self.clock = metrics, ledger, catalog, clock
        self.account, self.region, self.arn_of = account, region, arn_of
        self.tags_for = tags_for

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
        filter_ = params.get("Filter")
        expression = None if filter_ is None else ce_filter.parse(filter_)
        recs = ([] if service == "AmazonEC2"
                else self.recommendations(LOOKBACK_DAYS, target, expression))
        return self.response(recs, config)

    def recommendations(self, days: float, target: str,
                        expression: ce_filter.Expression | None = None) -> list[Recommendation]:
        end = self.clock.now()
        found = []
        for u in gather(self.metrics, self.ledger, self.catalog, end - days * SECONDS_PER_DAY,
                        end):
            if expression is not None and not ce_filter.matches(expression, self._facts(u)):
                continue
            rec = recommend(u, self.catalog, target)
            if rec is not None:
                found.append(rec)
        return found

    def _facts(self, u: VariantUtilisation) -> Facts:
        """What Cost Explorer knows of the variant's instances, as of its usage records."""
        usage = Usage("", self.arn_of(u.endpoint), u.endpoint, u.variant, u.instance_type,
                      ON_DEMAND, 0.0, 0.0, None)
        return Attributor(self.tags_for).facts(usage)

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
                "Tags": [{"Key": k, "Values": [v]}
                         for k, v in sorted(self.tags_for(self.arn_of(u.endpoint)).items())],
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
