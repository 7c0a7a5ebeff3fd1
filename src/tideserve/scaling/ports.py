"""What autoscaling needs from the endpoint it scales: the contract the server implements with
the SageMaker service (UpdateEndpointWeightsAndCapacities) and the simulator with its model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tideserve.scaling.model import DIM_INSTANCES

IN_SERVICE = "InService"


@dataclass(frozen=True)
class Capacity:
    """One variant as DescribeEndpoint reports it."""

    desired: int  # DesiredInstanceCount (or ProvisionedConcurrency): what was last asked for
    current: int  # CurrentInstanceCount (or provisioned workers warm): serving now
    status: str  # the endpoint's EndpointStatus: InService, Updating, Creating, Failed, ...
    # The scalable dimension these counts are in: a variant has exactly one, instance count
    # for instance variants, provisioned concurrency for serverless ones. RegisterScalableTarget
    # refuses the other; a port that predates it reports instance counts.
    dimension: str = DIM_INSTANCES

    @property
    def settled(self) -> bool:
        """InService with every asked-for instance serving: a change is fulfilled."""
        return self.status == IN_SERVICE and self.current == self.desired


class CapacityPort(Protocol):
    def capacity(self, resource_id: str) -> Capacity | None:
        """`endpoint/<ep>/variant/<v>` → its capacity; None only when the endpoint or the
        variant does not exist (autoscaling then forgets the target, as AWS does when an
        endpoint is deleted)."""
        ...

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        """Ask for `n` instances. Raises tideserve.errors.ConflictError while the endpoint is
        not InService (e.g. Updating); the driver records the activity as failed and the
        alarm, still in ALARM, retries at its next evaluation."""
        ...
