"""The simulated SageMaker variant: the CapacityPort the tick's effects are applied to.

As UpdateEndpointWeightsAndCapacities does (spec §2.4): a capacity change makes the endpoint
Updating, and a second change while it is refused with the ConflictError SageMaker reports.
A scale-out's new instances serve `startup_seconds` after the decision and are billed from
the decision (AWS bills from provisioning). A scale-in stops routing to the removed
instances at once (draining is negligible at this scale) and bills them until
`shutdown_seconds` later, when the endpoint is InService again (0 by default: at once).
"""

from __future__ import annotations

from tideserve.errors import ConflictError
from tideserve.scaling.ports import IN_SERVICE, Capacity


class SimEndpoint:
    def __init__(self, resource_id: str, instances: int, startup_seconds: float,
                 shutdown_seconds: float = 0.0) -> None:
        self.resource_id = resource_id
        self.desired = self.current = self.billed = instances
        self.status = IN_SERVICE
        self.startup = startup_seconds
        self.shutdown = shutdown_seconds
        self.ready_at: float | None = None  # when the change in progress completes
        self.last_scale_out: tuple[float, float] | None = None  # (decided, serving)

    def capacity(self, resource_id: str) -> Capacity | None:
        if resource_id != self.resource_id:
            return None
        return Capacity(self.desired, self.current, self.status)

    def set_desired_capacity(self, resource_id: str, n: int, now: float) -> None:
        if self.status != IN_SERVICE:
            raise ConflictError(f'Cannot update in-progress endpoint "{resource_id}".')
        if n == self.current:
            self.desired = n
            return
        self.desired = n
        if n > self.current:
            self.billed = n
            self._updating(now + self.startup)
            self.last_scale_out = (now, now + self.startup)
        else:
            self.current = n
            if self.shutdown > 0:
                self._updating(now + self.shutdown)
            else:
                self.billed = n

    def _updating(self, until: float) -> None:
        self.status, self.ready_at = "Updating", until

    def advance(self, now: float) -> bool:
        """Complete the change in progress if it is due; True if the endpoint changed."""
        if self.ready_at is None or now < self.ready_at:
            return False
        self.current = self.billed = self.desired
        self.status, self.ready_at = IN_SERVICE, None
        return True

    def startup_seconds(self, resource_id: str, since: float, until: float) -> float | None:
        """Observation.startup_seconds: the start-up of a scale-out that became ready in the
        window (the live fleet publishes InstanceStartupTime)."""
        if self.last_scale_out is None:
            return None
        decided, ready = self.last_scale_out
        return ready - decided if since <= decided and ready <= until else None
