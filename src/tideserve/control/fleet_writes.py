"""What the instance kind writes besides instances: the router's routes and the endpoint row
(Current* fields, and the blue/green switch or revert), each row change in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tideserve.clock import Clock
from tideserve.control.fleet_state import EndpointFleet, ManagedInstance
from tideserve.control.plan import Desired
from tideserve.control.plan_fleet import (
    FleetAction,
    FleetObserved,
    ObservedVariant,
    PromoteGreen,
    RevertUpdate,
    SwitchRoutes,
    UpdateRoutes,
    WriteObserved,
    observed_variants,
)
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.serving.routes import EndpointRoute, RouteTable, VariantRoute

log = logging.getLogger("tideserve.controller")


class FleetWrites:
    def __init__(self, store: ControlStore, routes: RouteTable, clock: Clock,
                 observe: Callable[[str], FleetObserved]) -> None:
        self.store = store
        self.routes = routes
        self.clock = clock
        self.observe = observe

    def apply(self, row: EndpointRow, action: FleetAction, fleet: EndpointFleet) -> None:
        if isinstance(action, UpdateRoutes):
            route = self._ensure_route(row)
            for name, weight in action.weights:
                vr = route.variant(name)
                if vr is not None:
                    vr.weight = weight
        elif isinstance(action, SwitchRoutes):
            self.routes.put(EndpointRoute(row.name, [
                VariantRoute(name, weight, [
                    i.backend for i in fleet.instances
                    if i.variant == name and i.fleet == action.fleet and i.state == "InService"
                ])
                for name, weight in action.weights
            ]))
        elif isinstance(action, PromoteGreen):
            self._promote(row.name, action.config_name)
        elif isinstance(action, RevertUpdate):
            self._revert(row.name, action.reason)
        elif isinstance(action, WriteObserved):
            self._write(row.name, lambda current: action.variants)

    # -- routes ------------------------------------------------------------------------------

    def route(self, row: EndpointRow, inst: ManagedInstance) -> None:
        """A launched instance serves: add it to its variant's route."""
        vr = self._ensure_route(row).variant(inst.variant)
        if vr is not None:
            vr.backends.append(inst.backend)
        self.observed(row.name)

    def unroute(self, inst: ManagedInstance) -> None:
        route = self.routes.get(inst.endpoint)
        vr = route.variant(inst.variant) if route else None
        if vr is not None and inst.backend in vr.backends:
            vr.backends.remove(inst.backend)

    def _ensure_route(self, row: EndpointRow) -> EndpointRoute:
        """The endpoint's route with each variant in it, new ones at their CurrentWeight."""
        route = self.routes.get(row.name)
        if route is None:
            route = EndpointRoute(row.name)
            self.routes.put(route)
        for v in row.variants:
            if route.variant(v["VariantName"]) is None:
                route.variants.append(VariantRoute(v["VariantName"], float(v["CurrentWeight"])))
        return route

    # -- the endpoint row --------------------------------------------------------------------

    def observed(self, name: str) -> None:
        """Write what serves now into the row's Current* fields."""
        self._write(name, self._observed_now)

    def _observed_now(self, row: EndpointRow) -> tuple[ObservedVariant, ...]:
        return observed_variants(Desired.of(row), self.observe(row.name))

    def _write(self, name: str,
               values: Callable[[EndpointRow], tuple[ObservedVariant, ...]]) -> None:
        def change(current: EndpointRow) -> bool:
            _apply_observed(current, values(current))
            return True

        self.store.modify_endpoint(name, change)

    def _promote(self, name: str, config_name: str) -> None:
        def change(current: EndpointRow) -> bool:
            current.variants, current.pending_variants = current.pending_variants, []
            current.config_name, current.pending_config_name = config_name, None
            current.status = "InService"
            current.last_modified_time = self.clock.now()
            _apply_observed(current, self._observed_now(current))
            return True

        self.store.modify_endpoint(name, change)

    def _revert(self, name: str, reason: str) -> None:
        def change(current: EndpointRow) -> bool:
            current.pending_variants, current.pending_config_name = [], None
            current.status, current.failure_reason = "InService", reason[:1024]
            current.last_modified_time = self.clock.now()
            return True

        log.warning("endpoint %s: %s", name, reason)
        self.store.modify_endpoint(name, change)


def _apply_observed(row: EndpointRow, variants: tuple[ObservedVariant, ...]) -> None:
    by_name: dict[str, Any] = {v["VariantName"]: v for v in row.variants}
    for seen in variants:
        v = by_name.get(seen.name)
        if v is None:
            continue
        v["CurrentInstanceCount"] = seen.instance_count
        v["CurrentWeight"] = seen.weight
        if seen.restart_status is None:
            v.pop("RestartStatus", None)
        else:
            v["RestartStatus"] = seen.restart_status
