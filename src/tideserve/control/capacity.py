"""The capacity port autoscaling drives: a variant's DesiredInstanceCount, read from the
endpoint's row and changed through UpdateEndpointWeightsAndCapacities, as AAS does on AWS.

An instance-based variant's capacity is its instance count; a variant of another kind
(control/kinds.py) reports its own dimension — a serverless one its ProvisionedConcurrency
(sagemaker:variant:DesiredProvisionedConcurrency, applied as ServerlessUpdateConfig). The
Capacity names that dimension, so RegisterScalableTarget can refuse the other."""

from __future__ import annotations

from tideserve.control.sagemaker import SageMakerService
from tideserve.scaling.ports import Capacity


def parse_resource_id(resource_id: str) -> tuple[str, str] | None:
    """`endpoint/<ep>/variant/<v>` -> (ep, v)."""
    parts = resource_id.split("/")
    if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
        return None
    return parts[1], parts[3]


class EndpointCapacity:
    def __init__(self, sagemaker: SageMakerService) -> None:
        self.sagemaker = sagemaker

    def capacity(self, resource_id: str) -> Capacity | None:
        names = parse_resource_id(resource_id)
        if names is None:
            return None
        row = self.sagemaker.store.get_endpoint(names[0])
        if row is None or row.name != names[0]:
            return None
        variant = row.variant(names[1])
        # A variant a blue/green update is replacing has no capacity to scale until it is done.
        replaced = any(p["VariantName"] == names[1] for p in row.pending_variants)
        if variant is None or replaced:
            return None
        kind = self.sagemaker.kinds.owner(variant)
        if kind is not None:
            return kind.capacity(variant, row.status)
        return Capacity(
            desired=int(variant["DesiredInstanceCount"]),
            current=int(variant["CurrentInstanceCount"]),
            status=row.status,
        )

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        names = parse_resource_id(resource_id)
        assert names is not None, resource_id
        row = self.sagemaker.store.get_endpoint(names[0])
        variant = row.variant(names[1]) if row is not None else None
        kind = self.sagemaker.kinds.owner(variant) if variant is not None else None
        wanted = (kind.capacity_request(names[1], n) if kind is not None
                  else {"VariantName": names[1], "DesiredInstanceCount": n})
        self.sagemaker.update_endpoint_weights_and_capacities({
            "EndpointName": names[0], "DesiredWeightsAndCapacities": [wanted],
        })
