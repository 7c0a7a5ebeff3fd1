"""The controller's in-memory view of the instances it runs (observed state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tideserve.fleet.base import InstanceHandle
from tideserve.serving.routes import Backend


@dataclass(eq=False)
class ManagedInstance:
    handle: InstanceHandle
    endpoint: str
    variant: str
    fleet: str  # the endpoint config that launched it: blue/green keeps two fleets apart
    backend: Backend
    requested_at: float
    state: str = "Pending"  # Pending -> InService -> Draining
    ready_at: float | None = None

    @property
    def instance_id(self) -> str:
        return self.handle.spec.instance_id


@dataclass
class EndpointFleet:
    instances: list[ManagedInstance] = field(default_factory=list)

    def of(self, variant: str, fleet: str, states: tuple[str, ...] = ("Pending", "InService")
           ) -> list[ManagedInstance]:
        return [
            i for i in self.instances
            if i.variant == variant and i.fleet == fleet and i.state in states
        ]

    def serving(self, variant: str, fleet: str) -> int:
        return len(self.of(variant, fleet, ("InService",)))
