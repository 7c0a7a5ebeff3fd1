"""What the router knows: for each endpoint, its variants, their weights and the instances in
service, each with its count of requests in flight. The controller edits this table; the
router only reads it and counts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tideserve.serving.containers.report import ContainerLayout


@dataclass(eq=False)
class Backend:
    instance_id: str
    url: str
    in_flight: int = 0
    # Sent as X-Tideserve-Instance-Token on every request (serving/instance_token.py).
    token: str | None = None
    # Cleared by the router when the instance stops accepting connections; the controller
    # replaces it. Until then no new request is sent its way.
    reachable: bool = True
    # A multi-container instance's containers (serving/containers); None for one container.
    containers: ContainerLayout | None = None
    # An instance of a multi-model variant (serving/multi_model.py): requests name a
    # TargetModel and go where it is loaded (serving/affinity.py).
    multi_model: bool = False
    loaded_models: int = 0  # as its last answer said (LoadedModelCount's sample)


@dataclass(eq=False)
class VariantRoute:
    name: str
    weight: float
    backends: list[Backend] = field(default_factory=list)


@dataclass(eq=False)
class EndpointRoute:
    name: str
    variants: list[VariantRoute] = field(default_factory=list)

    def variant(self, name: str) -> VariantRoute | None:
        return next((v for v in self.variants if v.name == name), None)

    def pick_variant(self, rng: random.Random) -> VariantRoute | None:
        """A variant with probability weight / Σ weights, among those that can serve.
        Variants of weight 0 get no untargeted traffic (AWS)."""
        live = [v for v in self.variants if v.weight > 0 and any(b.reachable for b in v.backends)]
        if not live:
            return None
        if len(live) == 1:
            return live[0]
        return rng.choices(live, weights=[v.weight for v in live])[0]


def requests_per_instance(variant: VariantRoute) -> float | None:
    """ConcurrentRequestsPerModel's sample: requests in flight (in service or queued at the
    instance) per instance in service; None with no instance in service."""
    if not variant.backends:
        return None
    return sum(b.in_flight for b in variant.backends) / len(variant.backends)


def least_outstanding(backends: list[Backend], rng: random.Random,
                      exclude: Backend | None = None) -> Backend | None:
    """The backend with the fewest requests in flight; ties go to a random one so that idle
    instances share load evenly."""
    best: list[Backend] = []
    low = None
    for b in backends:
        if b is exclude or not b.reachable:
            continue
        if low is None or b.in_flight < low:
            best, low = [b], b.in_flight
        elif b.in_flight == low:
            best.append(b)
    if not best:
        return None
    return best[0] if len(best) == 1 else rng.choice(best)


class RouteTable:
    """Endpoints by name, ignoring case: SageMaker's names are case-insensitive for lookup
    and unique regardless of case, in the data plane as in the control plane."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointRoute] = {}  # by lower-cased name

    def get(self, name: str) -> EndpointRoute | None:
        return self.endpoints.get(name.lower())

    def put(self, route: EndpointRoute) -> None:
        self.endpoints[route.name.lower()] = route

    def get_ci(self, name: str) -> EndpointRoute | None:
        return self.get(name)

    def remove(self, name: str) -> None:
        self.endpoints.pop(name.lower(), None)
