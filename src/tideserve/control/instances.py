"""Starting and stopping one instance of an instance-based variant: prepare its model, start
its process, wait until /ping answers; drain it and stop it (SIGTERM, SIGKILL 30 s later, as
SageMaker does). Billing hooks see every start and stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tideserve.clock import Clock
from tideserve.control import tables as t
from tideserve.control.fleet_state import EndpointFleet, ManagedInstance
from tideserve.control.models import ModelCache, PreparedModel
from tideserve.control.specs import ModelSpec
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.errors import TideserveError
from tideserve.fleet.base import InstanceProvider, InstanceSpec
from tideserve.fleet.readiness import NotReady, wait_until_ready
from tideserve.serving.containers.plan import ContainerPlan, ContainerProcess
from tideserve.serving.containers.report import ContainerLayout
from tideserve.serving.routes import Backend

STARTUP_TIMEOUT_SECONDS = 240.0  # SageMaker's default container health-check window
STOP_GRACE_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 65.0  # a request may run 60 s


class InstanceStartError(Exception):
    """An instance could not be brought up; the message is the endpoint's FailureReason."""


@dataclass(frozen=True)
class InstanceReady:
    """Reported when an instance starts serving: how long from decision to serving."""

    endpoint: str
    variant: str
    instance_id: str
    instance_type: str
    seconds: float


@dataclass
class InstanceHooks:
    on_ready: Callable[[InstanceReady], None] = lambda r: None
    # Billing: an instance is billed from its start request until it has stopped.
    on_started: Callable[[ManagedInstance], None] = lambda i: None
    on_stopped: Callable[[ManagedInstance], None] = lambda i: None
    # An instance died unasked: (instance, crashes in a row, seconds until its replacement).
    on_exit: Callable[[ManagedInstance, int, float], None] = lambda i, n, w: None


class InstanceRunner:
    def __init__(self, store: ControlStore, catalog: Catalog, provider: InstanceProvider,
                 models: ModelCache, clock: Clock, hooks: InstanceHooks,
                 trust_pickle: bool = False) -> None:
        self.store = store
        self.catalog = catalog
        self.provider = provider
        self.models = models
        self.clock = clock
        self.hooks = hooks
        self.trust_pickle = trust_pickle
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def launch(self, endpoint: str, variant: dict[str, Any], fleet: str,
                     into: EndpointFleet) -> ManagedInstance:
        """Start one instance (Pending in `into` meanwhile) and return it InService."""
        model = self.store.get_resource(t.models, variant["ModelName"])
        if model is None:
            raise InstanceStartError(f"Model {variant['ModelName']} no longer exists.")
        instance_id = f"{endpoint.lower()}-{uuid.uuid4().hex[:8]}"
        model_spec = ModelSpec.load(model.spec)
        try:
            if model_spec.execution_mode is not None:
                prepared, plan = await self._prepare_containers(model, model_spec, instance_id)
            else:
                prepared, plan = await self.models.prepare(model, holder=instance_id), None
        except TideserveError as exc:
            raise InstanceStartError(f"Failed to prepare the model: {exc.message}") from exc
        spec = InstanceSpec(
            instance_id=instance_id,
            endpoint_name=endpoint, variant_name=variant["VariantName"],
            instance_type=self.catalog.get(variant["InstanceType"]),
            model_dir=prepared.model_dir, runtime=prepared.runtime,
            environment=prepared.environment, trust_pickle=self.trust_pickle,
            command=prepared.command, containers=plan,
        )
        requested = self.clock.now()
        try:
            handle = await self.provider.start(spec)
        except TideserveError as exc:
            await self.models.release(instance_id)
            raise InstanceStartError(exc.message) from exc
        except BaseException:
            await self.models.release(instance_id)
            raise
        inst = ManagedInstance(
            handle=handle, endpoint=endpoint, variant=variant["VariantName"], fleet=fleet,
            backend=Backend(spec.instance_id, handle.url, token=handle.token,
                            containers=None if plan is None
                            else ContainerLayout(plan.mode, plan.hostnames),
                            multi_model=prepared.multi_model),
            requested_at=requested,
        )
        into.instances.append(inst)
        self.hooks.on_started(inst)
        self.store.record_instance(
            instance_id=spec.instance_id, endpoint_name=endpoint,
            variant_name=inst.variant, pid=handle.pid, url=handle.url, start_time=requested,
            token=handle.token,
        )
        try:
            await self._wait_ready(inst)
        except BaseException:
            await self.stop(inst, into, grace=2.0)
            raise
        inst.state, inst.ready_at = "InService", self.clock.now()
        self.store.instance_serving(spec.instance_id)
        self.hooks.on_ready(InstanceReady(
            endpoint, inst.variant, inst.instance_id, spec.instance_type.name,
            inst.ready_at - requested,
        ))
        return inst

    async def _prepare_containers(self, model: Any, spec: ModelSpec, instance_id: str
                                  ) -> tuple[PreparedModel, ContainerPlan]:
        """A multi-container model: each container's tree, and the plan its front runs."""
        raw = list(model.spec.get("Containers") or [])
        names = spec.container_hostnames
        prepared = await self.models.prepare_containers(raw, names, holder=instance_id)
        plan = ContainerPlan(str(spec.execution_mode), tuple(
            ContainerProcess(name, p.model_dir, p.runtime, p.environment, p.command)
            for name, p in zip(names, prepared, strict=True)))
        # The instance's own directory and runtime are its first container's; its
        # Environment is empty: each container gets its own (plan.py).
        first = prepared[0]
        return PreparedModel(first.model_dir, first.runtime, {}, None), plan

    async def _wait_ready(self, inst: ManagedInstance) -> None:
        assert self.http is not None
        which = ("A container" if inst.handle.spec.containers is not None
                 else "The primary container")
        try:
            await wait_until_ready(self.provider, inst.handle, self.http,
                                   STARTUP_TIMEOUT_SECONDS)
        except NotReady as exc:
            raise InstanceStartError(
                f"{which} for production variant {inst.variant} did not pass the ping health "
                f"check: {exc}"
            ) from None

    async def drain_and_stop(self, inst: ManagedInstance, fleet: EndpointFleet) -> None:
        """Let the requests in flight finish (up to DRAIN_TIMEOUT_SECONDS), then stop it."""
        inst.state = "Draining"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_SECONDS
        while inst.backend.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await self.stop(inst, fleet, grace=STOP_GRACE_SECONDS)

    async def stop(self, inst: ManagedInstance, fleet: EndpointFleet, grace: float) -> None:
        await self.provider.stop(inst.handle, grace_seconds=grace)
        await self.forget(inst, fleet)

    async def forget(self, inst: ManagedInstance, fleet: EndpointFleet) -> None:
        """It is gone (stopped, or exited): stop billing it and release its model tree."""
        if inst in fleet.instances:
            fleet.instances.remove(inst)
        self.store.forget_instance(inst.instance_id)
        await self.models.release(inst.instance_id)  # its model tree goes with its last user
        self.hooks.on_stopped(inst)
