"""Instance-based variants as a kind (control/kinds.py KindConverger): real-time endpoints, and
async ones, whose instances are the same behind a queue. It observes its fleets, asks
plan_fleet.py what to do, carries the actions out and plans again until nothing is left.

Registered last: it owns every endpoint no other kind claimed.
"""

from __future__ import annotations

import asyncio
import logging

from tideserve.clock import Clock
from tideserve.control.fleet_state import EndpointFleet, ManagedInstance
from tideserve.control.fleet_writes import FleetWrites
from tideserve.control.instances import InstanceHooks, InstanceRunner, InstanceStartError
from tideserve.control.kinds import ConvergeFailed
from tideserve.control.models import ModelCache
from tideserve.control.plan import Desired
from tideserve.control.plan_fleet import (
    EndCrashLoop,
    FleetAction,
    FleetObserved,
    GiveUp,
    InstanceView,
    LaunchInstances,
    ReapExited,
    RetireInstance,
    WaitUntil,
    plan_fleet,
    plan_health,
)
from tideserve.control.restarts import RestartTracker
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.cost.catalog import Catalog
from tideserve.errors import TideserveError
from tideserve.fleet.backoff import RestartPolicy
from tideserve.fleet.base import InstanceProvider
from tideserve.serving.routes import RouteTable

log = logging.getLogger("tideserve.controller")

MAX_ROUNDS = 16  # a converge that needs more is retried on the next change or health check


class InstanceKind:
    label = "Instance"

    def __init__(self, store: ControlStore, catalog: Catalog, provider: InstanceProvider,
                 routes: RouteTable, models: ModelCache, clock: Clock,
                 hooks: InstanceHooks | None = None, trust_pickle: bool = False,
                 restart_policy: RestartPolicy | None = None) -> None:
        self.store = store
        self.provider = provider
        self.routes = routes
        self.clock = clock
        self.hooks = hooks or InstanceHooks()
        self.runner = InstanceRunner(store, catalog, provider, models, clock, self.hooks,
                                     trust_pickle)
        self.restarts = RestartTracker(restart_policy or RestartPolicy())
        self.fleets: dict[str, EndpointFleet] = {}  # by lower-cased endpoint name
        self.writes = FleetWrites(store, routes, clock, self.observe)

    def owns(self, row: EndpointRow) -> bool:
        return True

    async def start(self) -> None:
        await self.runner.start()

    async def shutdown(self) -> None:
        await asyncio.gather(*(
            self.runner.stop(i, fleet, grace=5.0)
            for fleet in self.fleets.values() for i in list(fleet.instances)
        ), return_exceptions=True)
        await self.runner.close()

    # -- observing -----------------------------------------------------------------------------

    def observe(self, name: str, failure: str | None = None) -> FleetObserved:
        now = self.clock.now()
        fleet = self.fleets.get(name.lower(), EndpointFleet())
        route = self.routes.get(name)
        loops = self.restarts.of_endpoint(name)
        return FleetObserved(
            now=now,
            instances=tuple(self._view(i) for i in fleet.instances),
            route={v.name: v.weight for v in route.variants} if route is not None else None,
            loops=loops,
            restart_status={v: self.restarts.variant_status(name, v, now) for v in loops},
            failure=failure,
        )

    def _view(self, i: ManagedInstance) -> InstanceView:
        code = self.provider.exit_code(i.handle) if i.state == "InService" else None
        return InstanceView(i.instance_id, i.variant, i.fleet, i.state, i.requested_at,
                            i.ready_at, i.backend.in_flight, code)

    # -- converging ----------------------------------------------------------------------------

    async def converge(self, row: EndpointRow) -> float | None:
        """Plan and act until the plan is empty (or only waits); raises ConvergeFailed when
        scaling failed (plan_fleet.GiveUp)."""
        failure: str | None = None
        current: EndpointRow | None = row
        for _ in range(MAX_ROUNDS):
            if current is None or current.generation != row.generation:
                return None  # changed meanwhile: the controller reconciles it again
            actions = plan_fleet(Desired.of(current), self.observe(current.name, failure))
            waits = [a.at for a in actions if isinstance(a, WaitUntil)]
            if len(waits) == len(actions) and failure is None:
                return min(waits, default=None)  # settled, or backing off
            failure = await self._execute(current, actions)
            current = self.store.get_endpoint(row.name)
        log.warning("endpoint %s did not settle in %d rounds", row.name, MAX_ROUNDS)
        return None

    async def _execute(self, row: EndpointRow, actions: list[FleetAction]) -> str | None:
        """Run the actions in order, the launches and retirements next to each other at
        once. Returns why a launch failed, if one did."""
        failure: str | None = None
        for batch in _batches(actions):
            results = await asyncio.gather(*(self._act(row, a) for a in batch))
            failure = failure or next((r for r in results if r is not None), None)
        return failure

    async def _act(self, row: EndpointRow, action: FleetAction) -> str | None:
        key = row.name.lower()
        fleet = self.fleets.setdefault(key, EndpointFleet())
        if isinstance(action, LaunchInstances):
            return await self._launch(row, action, fleet)
        if isinstance(action, RetireInstance):
            inst = _find(fleet, action.instance_id)
            if inst is not None:
                await self._retire(inst, fleet, action.unroute)
        elif isinstance(action, ReapExited):
            await self._reap(fleet, action)
        elif isinstance(action, GiveUp):
            raise ConvergeFailed(action.reason)
        elif not isinstance(action, WaitUntil):
            self.writes.apply(row, action, fleet)
        return None

    async def _launch(self, row: EndpointRow, action: LaunchInstances,
                      fleet: EndpointFleet) -> str | None:
        variants = row.variants if action.fleet == row.config_name else row.pending_variants
        variant = next(v for v in variants if v["VariantName"] == action.variant)

        async def one() -> None:
            inst = await self.runner.launch(row.name, variant, action.fleet, fleet)
            if action.routed:
                self.writes.route(row, inst)

        results = await asyncio.gather(*(one() for _ in range(action.count)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors:
            if not isinstance(err, (InstanceStartError, TideserveError)):
                raise err
        if not errors:
            return None
        return errors[0].message if isinstance(errors[0], TideserveError) else str(errors[0])

    async def _retire(self, inst: ManagedInstance, fleet: EndpointFleet, unroute: bool) -> None:
        if unroute:
            self.writes.unroute(inst)
            self.writes.observed(inst.endpoint)
        await self.runner.drain_and_stop(inst, fleet)

    async def _reap(self, fleet: EndpointFleet, action: ReapExited) -> None:
        inst = _find(fleet, action.instance_id)
        if inst is None or inst.state != "InService":
            return  # already reaped (by the health check or a converge)
        now = self.clock.now()
        reason = (f"Instance {inst.instance_id} exited with status {action.exit_code}. "
                  f"{self.provider.failure_detail(inst.handle)}").strip()
        loop = self.restarts.crashed(inst.endpoint, inst.variant, now,
                                     now - (inst.ready_at or inst.requested_at), reason)
        wait = loop.wait(now)
        log.warning("instance %s of %s exited (status %s); replacing it in %.0f s",
                    inst.instance_id, inst.endpoint, action.exit_code, wait)
        self.writes.unroute(inst)
        await self.runner.forget(inst, fleet)
        self.hooks.on_exit(inst, loop.crashes, wait)
        self.writes.observed(inst.endpoint)

    # -- the periodic health check and teardown ------------------------------------------------

    async def check_health(self) -> list[str]:
        """Reap instances whose process exited and end crash loops that served long enough;
        returns the endpoints (lower-cased) to converge again."""
        due = []
        for key, fleet in list(self.fleets.items()):
            actions = plan_health(self.observe(key), self.restarts.policy)
            for action in actions:
                if isinstance(action, ReapExited):
                    await self._reap(fleet, action)
                    due.append(key)
                elif isinstance(action, EndCrashLoop):
                    self.restarts.end(key, action.variant)
            if any(isinstance(a, EndCrashLoop) for a in actions):
                self.writes.observed(key)
        return due

    async def teardown(self, endpoint_key: str) -> None:
        self.restarts.forget(endpoint_key)
        route = self.routes.get(endpoint_key)
        if route is not None:
            self.routes.remove(route.name)
        fleet = self.fleets.get(endpoint_key)
        if fleet is not None:
            await asyncio.gather(*(self.runner.drain_and_stop(i, fleet)
                                   for i in list(fleet.instances)))
            self.fleets.pop(endpoint_key, None)

    def not_serving(self) -> list[str]:
        """Endpoints with a variant that takes traffic but has no reachable instance."""
        return [route.name for route in list(self.routes.endpoints.values())
                if any(v.weight > 0 and not any(b.reachable for b in v.backends)
                       for v in route.variants)]

    def instance_pids(self) -> dict[str, tuple[int, str, str, str]]:
        """instance id -> (pid, endpoint, variant, instance type), for system metrics."""
        return {
            i.instance_id: (i.handle.pid, i.endpoint, i.variant, i.handle.spec.instance_type.name)
            for fleet in self.fleets.values() for i in fleet.instances if i.state == "InService"
        }


def _batches(actions: list[FleetAction]) -> list[list[FleetAction]]:
    """Consecutive launches and retirements together (they take a while each), every other
    action alone."""
    batches: list[list[FleetAction]] = []
    for action in actions:
        slow = isinstance(action, (LaunchInstances, RetireInstance))
        if slow and batches and isinstance(batches[-1][0], (LaunchInstances, RetireInstance)):
            batches[-1].append(action)
        else:
            batches.append([action])
    return batches


def _find(fleet: EndpointFleet, instance_id: str) -> ManagedInstance | None:
    return next((i for i in fleet.instances if i.instance_id == instance_id), None)
