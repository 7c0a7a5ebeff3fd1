"""The controller: makes the instances match what the API recorded, and writes back what it
observed (status, CurrentInstanceCount, CurrentWeight, FailureReason).

One reconcile task runs per endpoint at a time; a change that arrives meanwhile marks the
endpoint dirty and it is reconciled again. Reconciling is idempotent, so it also recovers an
endpoint after a server restart (InService endpoints come back with their instance count) and
replaces instances that died.

Scale out: start, wait until /ping answers, then route. Scale in: stop routing, let requests in
flight finish, then SIGTERM (SIGKILL 30 s later, as SageMaker does).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from tideserve.clock import Clock
from tideserve.control import tables as t
from tideserve.control.fleet_state import EndpointFleet, ManagedInstance
from tideserve.control.kinds import KindConverger
from tideserve.control.models import ModelCache
from tideserve.control.restarts import RestartTracker
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.cost.catalog import Catalog
from tideserve.errors import TideserveError
from tideserve.fleet.backoff import RestartPolicy
from tideserve.fleet.base import InstanceProvider, InstanceSpec
from tideserve.fleet.readiness import NotReady, wait_until_ready
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable, VariantRoute

log = logging.getLogger("tideserve.controller")

STARTUP_TIMEOUT_SECONDS = 240.0  # SageMaker's default container health-check window
STOP_GRACE_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 65.0  # a request may run 60 s


class InstanceStartError(Exception):
    pass


@dataclass(frozen=True)
class InstanceReady:
    """Reported when an instance starts serving: how long from decision to serving."""

    endpoint: str
    variant: str
    instance_id: str
    instance_type: str
    seconds: float


class Controller:
    def __init__(
        self,
        store: ControlStore,
        catalog: Catalog,
        provider: InstanceProvider,
        routes: RouteTable,
        models: ModelCache,
        clock: Clock,
        trust_pickle: bool = False,
        on_ready: Callable[[InstanceReady], None] = lambda r: None,
        on_started: Callable[[ManagedInstance], None] = lambda i: None,
        on_stopped: Callable[[ManagedInstance], None] = lambda i: None,
        kinds: Sequence[KindConverger] = (),
        on_exit: Callable[[ManagedInstance, int, float], None] = lambda i, n, w: None,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.provider = provider
        self.routes = routes
        self.models = models
        self.clock = clock
        self.trust_pickle = trust_pickle
        self.on_ready = on_ready
        # Billing hooks: an instance is billed from its start request until it has stopped.
        self.on_started = on_started
        self.on_stopped = on_stopped
        # An instance died unasked: (instance, crashes in a row, seconds until its replacement).
        self.on_exit = on_exit
        self.restarts = RestartTracker(restart_policy or RestartPolicy())
        self.fleets: dict[str, EndpointFleet] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        # Endpoints restored at start that have not finished coming back (GET /healthz).
        self.recovering: set[str] = set()
        # Endpoints of other kinds (serverless) converge in their own package, not here.
        self.kinds = tuple(kinds)

    # -- driving -----------------------------------------------------------------------------

    def notify(self, endpoint_name: str) -> None:
        """Thread-safe: the API calls this after recording a change."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule, endpoint_name.lower())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        for row in self.store.list_endpoints():
            if row.status == "InService":
                # Restarted: its instances are gone. SystemUpdating (AWS's status for
                # platform-side work) until they serve again; /healthz waits for them.
                self.store.modify_endpoint(row.name, _recovering)
                self.recovering.add(row.name)
            self._schedule(row.name.lower())

    async def check_health(self) -> None:
        """Replace instances whose process has exited (called periodically), after the
        variant's crash-loop backoff (fleet/backoff.py)."""
        now = self.clock.now()
        for key, fleet in list(self.fleets.items()):
            for inst in list(fleet.instances):
                if inst.state != "InService":
                    continue
                code = self.provider.exit_code(inst.handle)
                if code is None:
                    if self.restarts.served(inst.endpoint, inst.variant, now,
                                            inst.ready_at or now):
                        self._write_observed(inst.endpoint)
                    continue
                await self._replace_exited(key, fleet, inst, code, now)

    async def _replace_exited(self, key: str, fleet: EndpointFleet, inst: ManagedInstance,
                              code: int, now: float) -> None:
        reason = (f"Instance {inst.instance_id} exited with status {code}. "
                  f"{self.provider.failure_detail(inst.handle)}").strip()
        loop = self.restarts.crashed(inst.endpoint, inst.variant, now,
                                     now - (inst.ready_at or inst.requested_at), reason)
        wait = loop.wait(now)
        log.warning("instance %s of %s exited (status %s); replacing it in %.0f s",
                    inst.instance_id, key, code, wait)
        self._unroute(inst)
        fleet.instances.remove(inst)
        self.store.forget_instance(inst.instance_id)
        await self.models.release(inst.instance_id)
        self.on_stopped(inst)
        self.on_exit(inst, loop.crashes, wait)
        self._write_observed(inst.endpoint)
        self._schedule_in(key, wait)

    def _schedule_in(self, key: str, seconds: float) -> None:
        if seconds <= 0 or self._loop is None:
            self._schedule(key)
        else:
            self._loop.call_later(seconds, self._schedule, key)

    async def shutdown(self) -> None:
        self._stopping = True
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        stops = [
            self._stop_instance(i, grace=5.0)
            for fleet in self.fleets.values() for i in list(fleet.instances)
        ]
        await asyncio.gather(*stops, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def _schedule(self, key: str) -> None:
        if self._stopping:
            return
        task = self._tasks.get(key)
        if task is not None and not task.done():
            self._dirty.add(key)
            return
        self._tasks[key] = asyncio.create_task(self._run(key))

    async def _run(self, key: str) -> None:
        while True:
            self._dirty.discard(key)
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciling endpoint %s failed", key)
            if key not in self._dirty or self._stopping:
                return

    # -- reconciling -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        try:
            await self._reconcile(key)
        finally:
            self._recovered(key)

    def _recovered(self, key: str) -> None:
        """A restored endpoint is back once a reconcile has left SystemUpdating (it serves,
        or it failed with a reason) or it is gone."""
        for name in [n for n in self.recovering if n.lower() == key]:
            row = self.store.get_endpoint(name)
            if row is None or row.status != "SystemUpdating":
                self.recovering.discard(name)

    def endpoints_not_serving(self) -> list[str]:
        """InService real-time endpoints with a variant that takes traffic but has no
        instance in service (crashed and backing off, say)."""
        names = []
        for route in list(self.routes.endpoints.values()):
            if any(v.weight > 0 and not any(b.reachable for b in v.backends)
                   for v in route.variants):
                row = self.store.get_endpoint(route.name)  # Creating has no instance yet
                if row is not None and row.status == "InService":
                    names.append(route.name)
        return names

    async def _reconcile(self, key: str) -> None:
        row = self.store.get_endpoint(key)
        if row is None:
            await self._teardown(key)
            return
        if row.status == "Deleting":
            await self._teardown(key)
            self.store.delete_endpoint(row.name)
            return
        if row.status == "Failed":
            await self._teardown(key)
            return
        kind = next((k for k in self.kinds if k.owns(row)), None)
        if kind is not None:
            await self._converge_elsewhere(kind, row)
            return
        if row.pending_config_name:
            await self._blue_green(row)
            return
        await self._converge(row)

    async def _converge(self, row: EndpointRow) -> None:
        """Scale each variant to its desired count and apply desired weights."""
        self._ensure_route(row)
        try:
            await asyncio.gather(*(
                self._scale_variant(row, v, row.config_name) for v in row.variants
            ))
        except InstanceStartError as exc:
            self._fail(row, str(exc))
            return
        route = self.routes.get(row.name)
        for v in row.variants:
            vr = route.variant(v["VariantName"]) if route else None
            if vr is not None:
                vr.weight = float(v["DesiredWeight"])
        self._finish(row)

    def _finish(self, row: EndpointRow) -> None:
        """InService, unless newer desired state arrived while we worked."""

        def change(current: EndpointRow) -> bool:
            self._observe(current)
            if current.generation == row.generation and current.status in (
                "Creating", "Updating", "SystemUpdating"
            ):
                current.status = "InService"
                current.last_modified_time = self.clock.now()
            return True

        self.store.modify_endpoint(row.name, change)

    def _fail(self, row: EndpointRow, reason: str) -> None:
        def change(current: EndpointRow) -> bool:
            self._observe(current)
            if current.status == "Creating":
                current.status = "Failed"
            else:  # a failed scaling keeps the endpoint serving what it has
                current.status = "InService"
            current.failure_reason = reason[:1024]
            current.last_modified_time = self.clock.now()
            return True

        log.warning("endpoint %s: %s", row.name, reason)
        self.store.modify_endpoint(row.name, change)
        if row.status == "Creating":
            self._schedule(row.name.lower())  # tears the fleet down

    async def _scale_variant(self, row: EndpointRow, variant: dict[str, Any], fleet: str) -> None:
        key = row.name.lower()
        have = self._fleet(key).of(variant["VariantName"], fleet)
        want = int(variant["DesiredInstanceCount"])
        if len(have) < want and self.restarts.wait(key, variant["VariantName"],
                                                   self.clock.now()) > 0:
            return  # crash-looping: check_health scheduled the replacement's time
        if len(have) < want:
            results = await asyncio.gather(
                *(self._launch(row, variant, fleet, route=True) for _ in range(want - len(have))),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                for err in errors:
                    if not isinstance(err, (InstanceStartError, TideserveError)):
                        raise err
                raise InstanceStartError(_reason(errors[0]))
        elif len(have) > want:
            # Stop the least busy, newest instances first.
            victims = sorted(have, key=lambda i: (i.backend.in_flight, -i.requested_at))
            await asyncio.gather(*(self._retire(i) for i in victims[: len(have) - want]))

    async def _blue_green(self, row: EndpointRow) -> None:
        """UpdateEndpoint: bring the new fleet up beside the old, shift all traffic at once,
        then retire the old fleet. If the new fleet fails, the old one keeps serving."""
        new_fleet = row.pending_config_name
        assert new_fleet is not None
        new_variants = row.pending_variants
        try:
            await asyncio.gather(*(
                self._launch(row, v, new_fleet, route=False)
                for v in new_variants for _ in range(int(v["DesiredInstanceCount"]))
            ))
        except (InstanceStartError, TideserveError) as exc:
            for inst in self._fleet(row.name.lower()).instances:
                if inst.fleet == new_fleet:
                    await self._retire(inst)
            self._revert_update(row, f"Updating the endpoint failed: {_reason(exc)}")
            return
        fleet = self._fleet(row.name.lower())
        old = [i for i in fleet.instances if i.fleet != new_fleet]
        self.routes.put(EndpointRoute(row.name, [
            VariantRoute(v["VariantName"], float(v["DesiredWeight"]), [
                i.backend for i in fleet.of(v["VariantName"], new_fleet, ("InService",))
            ])
            for v in new_variants
        ]))
        await asyncio.gather(*(self._retire(i, unroute=False) for i in old))

        def change(current: EndpointRow) -> bool:
            current.variants, current.pending_variants = current.pending_variants, []
            current.config_name, current.pending_config_name = new_fleet, None
            current.status = "InService"
            current.last_modified_time = self.clock.now()
            self._observe(current)
            return True

        self.store.modify_endpoint(row.name, change)

    def _revert_update(self, row: EndpointRow, reason: str) -> None:
        def change(current: EndpointRow) -> bool:
            current.pending_variants = []
            current.pending_config_name = None
            current.status, current.failure_reason = "InService", reason[:1024]
            current.last_modified_time = self.clock.now()
            return True

        log.warning("endpoint %s: %s", row.name, reason)
        self.store.modify_endpoint(row.name, change)

    # -- instances ---------------------------------------------------------------------------

    async def _launch(
        self, row: EndpointRow, variant: dict[str, Any], fleet: str, route: bool
    ) -> ManagedInstance:
        model = self.store.get_resource(t.models, variant["ModelName"])
        if model is None:
            raise InstanceStartError(f"Model {variant['ModelName']} no longer exists.")
        instance_id = f"{row.name.lower()}-{uuid.uuid4().hex[:8]}"
        try:
            prepared = await self.models.prepare(model, holder=instance_id)
        except TideserveError as exc:
            raise InstanceStartError(f"Failed to prepare the model: {exc.message}") from exc
        spec = InstanceSpec(
            instance_id=instance_id,
            endpoint_name=row.name, variant_name=variant["VariantName"],
            instance_type=self.catalog.get(variant["InstanceType"]),
            model_dir=prepared.model_dir, runtime=prepared.runtime,
            environment=prepared.environment, trust_pickle=self.trust_pickle,
            command=prepared.command,
        )
        requested = self.clock.now()
        try:
            handle = await self.provider.start(spec)
        except BaseException:
            await self.models.release(instance_id)
            raise
        inst = ManagedInstance(
            handle=handle, endpoint=row.name, variant=variant["VariantName"], fleet=fleet,
            backend=Backend(spec.instance_id, handle.url, token=handle.token),
            requested_at=requested,
        )
        self._fleet(row.name.lower()).instances.append(inst)
        self.on_started(inst)
        self.store.record_instance(
            instance_id=spec.instance_id, endpoint_name=row.name,
            variant_name=inst.variant, pid=handle.pid, url=handle.url, start_time=requested,
        )
        try:
            await self._wait_ready(inst)
        except BaseException:
            await self._stop_instance(inst, grace=2.0)
            raise
        inst.state, inst.ready_at = "InService", self.clock.now()
        if route:
            self._ensure_route(row)
            route_v = self.routes.get(row.name)
            vr = route_v.variant(inst.variant) if route_v else None
            if vr is not None:
                vr.backends.append(inst.backend)
            self._write_observed(row.name)
        self.on_ready(InstanceReady(
            row.name, inst.variant, inst.instance_id, spec.instance_type.name,
            inst.ready_at - requested,
        ))
        return inst

    async def _wait_ready(self, inst: ManagedInstance) -> None:
        assert self._http is not None
        try:
            await wait_until_ready(self.provider, inst.handle, self._http,
                                   STARTUP_TIMEOUT_SECONDS)
        except NotReady as exc:
            raise InstanceStartError(
                f"The primary container for production variant {inst.variant} did not pass "
                f"the ping health check: {exc}"
            ) from None

    async def _retire(self, inst: ManagedInstance, unroute: bool = True) -> None:
        if unroute:
            self._unroute(inst)
            self._write_observed(inst.endpoint)
        inst.state = "Draining"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_SECONDS
        while inst.backend.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await self._stop_instance(inst, grace=STOP_GRACE_SECONDS)

    async def _stop_instance(self, inst: ManagedInstance, grace: float) -> None:
        await self.provider.stop(inst.handle, grace_seconds=grace)
        await self.models.release(inst.instance_id)  # its model tree goes with its last user
        self.on_stopped(inst)
        fleet = self.fleets.get(inst.endpoint.lower())
        if fleet is not None and inst in fleet.instances:
            fleet.instances.remove(inst)
        self.store.forget_instance(inst.instance_id)

    async def _converge_elsewhere(self, kind: KindConverger, row: EndpointRow) -> None:
        try:
            await kind.converge(row)
        except TideserveError as exc:
            self._fail(row, f"{kind.label} capacity could not be provisioned: {exc.message}")
            return
        self._finish(row)

    async def _teardown(self, key: str) -> None:
        self.restarts.forget(key)
        for kind in self.kinds:
            await kind.teardown(key)
        route = self.routes.get_ci(key)
        if route is not None:
            self.routes.remove(route.name)
        fleet = self.fleets.pop(key, None)
        if fleet is not None:
            self.fleets[key] = fleet  # _stop_instance removes from it
            await asyncio.gather(*(self._retire(i, unroute=False) for i in list(fleet.instances)))
            self.fleets.pop(key, None)

    # -- routes and observed state ---------------------------------------------------------

    def _fleet(self, key: str) -> EndpointFleet:
        return self.fleets.setdefault(key, EndpointFleet())

    def _ensure_route(self, row: EndpointRow) -> None:
        route = self.routes.get(row.name)
        if route is None:
            route = EndpointRoute(row.name)
            self.routes.put(route)
        for v in row.variants:
            if route.variant(v["VariantName"]) is None:
                route.variants.append(VariantRoute(v["VariantName"], float(v["CurrentWeight"])))

    def _unroute(self, inst: ManagedInstance) -> None:
        route = self.routes.get(inst.endpoint)
        vr = route.variant(inst.variant) if route else None
        if vr is not None and inst.backend in vr.backends:
            vr.backends.remove(inst.backend)

    def _observe(self, row: EndpointRow) -> None:
        """Copy what is serving into the row's Current* fields."""
        fleet = self.fleets.get(row.name.lower(), EndpointFleet())
        route = self.routes.get(row.name)
        for v in row.variants:
            v["CurrentInstanceCount"] = fleet.serving(v["VariantName"], row.config_name)
            status = self.restarts.variant_status(row.name, v["VariantName"], self.clock.now())
            if status is None:
                v.pop("RestartStatus", None)
            else:
                v["RestartStatus"] = status
            vr = route.variant(v["VariantName"]) if route else None
            if vr is not None:
                v["CurrentWeight"] = vr.weight

    def _write_observed(self, name: str) -> None:
        def change(row: EndpointRow) -> bool:
            self._observe(row)
            return True

        self.store.modify_endpoint(name, change)

    def instance_pids(self) -> dict[str, tuple[int, str, str, str]]:
        """instance id -> (pid, endpoint, variant, instance type), for system metrics."""
        return {
            i.instance_id: (i.handle.pid, i.endpoint, i.variant, i.handle.spec.instance_type.name)
            for fleet in self.fleets.values() for i in fleet.instances if i.state == "InService"
        }


def _recovering(row: EndpointRow) -> bool:
    row.status = "SystemUpdating"
    for v in row.variants:
        v["CurrentInstanceCount"] = 0
    return True


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TideserveError) else str(exc)
