"""What a metered instance is attributed to: Cost Explorer's dimension values and the
cost-allocation tags of its endpoint.

Tags are the endpoint's tags *at query time* (AddTags/DeleteTags apply to past usage too; a
deleted endpoint's usage reads as untagged). AWS attributes each line item to the tags active
when it was used; keeping history of tag changes would cost a table for a rare difference.

Besides the user's tags, every record carries two system tags, read-only and always present:
`tideserve:endpoint-name` and `tideserve:variant-name`. Cost Explorer has no dimension for a
SageMaker variant, and GroupBy is limited to the Dimension enum, so these are how a boto3 user
(and `tideserve costs`) groups or filters by endpoint and variant. A user tag with the same
key is shadowed by them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from tideserve.cost.billing import ON_DEMAND, SAVINGS_PLAN, SPOT
from tideserve.cost.ledger import Usage

SERVICE: Final = "Amazon SageMaker"
ENDPOINT_TAG: Final = "tideserve:endpoint-name"
VARIANT_TAG: Final = "tideserve:variant-name"

# Cost Explorer dimensions a usage record has a value for.
DIMENSIONS: Final = (
    "SERVICE", "USAGE_TYPE", "INSTANCE_TYPE", "INSTANCE_TYPE_FAMILY", "RESOURCE_ID", "REGION",
    "PURCHASE_TYPE", "LINKED_ACCOUNT", "RECORD_TYPE",
)

# Cost Explorer's PURCHASE_TYPE values (UNCONFIRMED spellings, as the console shows them).
_PURCHASE_TYPES: Final = {
    ON_DEMAND: "On Demand Instances",
    SAVINGS_PLAN: "Savings Plans",
    SPOT: "Spot Instances",
}

# Billing region prefixes of usage types, e.g. USE1-Host:ml.m5.large (format UNCONFIRMED).
_REGION_CODES: Final = {
    "us-east-1": "USE1", "us-east-2": "USE2", "us-west-1": "USW1", "us-west-2": "USW2",
    "ca-central-1": "CAN1", "eu-west-1": "EU", "eu-west-2": "EUW2", "eu-west-3": "EUW3",
    "eu-central-1": "EUC1", "eu-north-1": "EUN1", "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2", "ap-southeast-1": "APS1", "ap-southeast-2": "APS2",
    "ap-south-1": "APS3", "sa-east-1": "SAE1",
}

TagsFor = Callable[[str], Mapping[str, str]]  # endpoint ARN -> {tag key: value}


@dataclass(frozen=True)
class Facts:
    dimensions: Mapping[str, str]  # Cost Explorer dimension -> value
    tags: Mapping[str, str]  # cost-allocation tags, system tags included


def region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 else ""


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def usage_type(region: str, instance_type: str) -> str:
    code = _REGION_CODES.get(region, region.upper())
    return f"{code}-Host:{instance_type}"


def dimensions_of(u: Usage) -> dict[str, str]:
    region = region_of(u.endpoint_arn)
    return {
        "SERVICE": SERVICE,
        "USAGE_TYPE": usage_type(region, u.instance_type),
        "INSTANCE_TYPE": u.instance_type,
        "INSTANCE_TYPE_FAMILY": ".".join(u.instance_type.split(".")[:2]),
        "RESOURCE_ID": u.endpoint_arn,
        "REGION": region,
        "PURCHASE_TYPE": _PURCHASE_TYPES.get(u.purchase_option, u.purchase_option),
        "LINKED_ACCOUNT": account_of(u.endpoint_arn),
        "RECORD_TYPE": "Usage",
    }


class Attributor:
    """Facts per usage record, reading each endpoint's tags once per query."""

    def __init__(self, tags_for: TagsFor) -> None:
        self._tags_for = tags_for
        self._tags: dict[str, Mapping[str, str]] = {}
        self._facts: dict[str, Facts] = {}

    def facts(self, u: Usage) -> Facts:
        known = self._facts.get(u.instance_id)
        if known is not None:
            return known
        tags = self._tags.get(u.endpoint_arn)
        if tags is None:
            tags = self._tags[u.endpoint_arn] = dict(self._tags_for(u.endpoint_arn))
        merged = {**tags, ENDPOINT_TAG: u.endpoint_name, VARIANT_TAG: u.variant}
        facts = self._facts[u.instance_id] = Facts(dimensions_of(u), merged)
        return facts
