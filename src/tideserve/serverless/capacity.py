"""Provisioned concurrency as a scalable dimension (sagemaker:variant:
DesiredProvisionedConcurrency): what control/capacity.py reports and asks for when the variant
is serverless."""

from __future__ import annotations

from typing import Any

from tideserve.scaling.model import DIM_PROVISIONED_CONCURRENCY
from tideserve.scaling.ports import Capacity
from tideserve.serverless.config import is_serverless

__all__ = ["is_serverless", "provisioned_capacity", "provisioned_update"]


def provisioned_capacity(variant: dict[str, Any], status: str) -> Capacity:
    """Desired: the ProvisionedConcurrency asked for; current: what the pool has applied
    (its provisioned workers are warm by then). 0 when the variant is on demand only."""
    want = variant.get("DesiredServerlessConfig") or {}
    have = variant.get("CurrentServerlessConfig") or {}
    return Capacity(
        desired=int(want.get("ProvisionedConcurrency", 0)),
        current=int(have.get("ProvisionedConcurrency", 0)),
        status=status,
        dimension=DIM_PROVISIONED_CONCURRENCY,
    )


def provisioned_update(variant_name: str, n: int) -> dict[str, Any]:
    """The DesiredWeightAndCapacity entry that sets ProvisionedConcurrency to `n`."""
    return {"VariantName": variant_name, "ServerlessUpdateConfig": {"ProvisionedConcurrency": n}}
