"""A transform job's instances: real instance processes started through the same fleet
provider as endpoint instances (fleet/local.py), recorded in the `instances` table (so a
crashed server's orphans are killed on restart) and billed in the cost ledger per
instance-second from the start request until they have stopped, at the catalog rate.

The container sees SageMaker's batch environment: SAGEMAKER_BATCH=true always, and
SAGEMAKER_MAX_PAYLOAD_IN_MB / SAGEMAKER_BATCH_STRATEGY / SAGEMAKER_MAX_CONCURRENT_TRANSFORMS
when the request set them (spec §3.2); the job's Environment is merged over the model's
(the job wins: a decision, AWS is silent).

Spot (tideserve's own, beyond AWS: spec.py's TIDESERVE_SPOT): the instance is acquired from
the fleet's SpotCapacity (fleet/spot.py, shared with training jobs), so it has the spot id
(i-spot-...) that `tideserve spot interrupt` names, is held by the job's name, and is billed
at the spot rate (the catalog's spot_discount). The runner asks `condition()` whether it has
been noticed, reclaimed, or its process has exited.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from tideserve.clock import Clock
from tideserve.control import tables as ct
from tideserve.control.models import ModelCache
from tideserve.control.store import ControlStore
from tideserve.cost.billing import ON_DEMAND, SPOT
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.errors import TideserveError
from tideserve.fleet.base import InstanceHandle, InstanceProvider, InstanceSpec
from tideserve.fleet.readiness import NotReady, wait_until_ready
from tideserve.fleet.spot import SpotCapacity
from tideserve.logs import names
from tideserve.serving.instance_token import TOKEN_HEADER
from tideserve.serving.routes import Backend
from tideserve.transform.spec import TransformJobSpec

STARTUP_TIMEOUT_SECONDS = 240.0
STOP_GRACE_SECONDS = 10.0
BILLING_VARIANT = "TransformJob"  # the ledger's variant column for a job's instances


# What the runner is told of an instance while it works (condition()).
NOTICED = "noticed"  # a spot reclaim notice: start no new object on it
RECLAIMED = "reclaimed"  # the notice ran out: it is going now
EXITED = "exited"  # its process ended (a crash): it answers no more


class InstanceFailed(Exception):
    """The reason the job fails with (AlgorithmError: ..., ClientError: ...)."""


@dataclass
class JobInstance:
    instance_id: str
    handle: InstanceHandle
    backend: Backend
    execution_parameters: dict[str, Any] | None
    spot: bool = False
    lost: bool = False  # set by the runner once the instance is reclaimed or has exited


@dataclass
class JobFleet:
    store: ControlStore
    models: ModelCache
    provider: InstanceProvider
    catalog: Catalog
    ledger: Ledger
    clock: Clock
    trust_pickle: bool = False
    spot: SpotCapacity | None = None  # the fleet's spot capacity (server.py shares one)

    def spot_available(self, spec: TransformJobSpec) -> bool:
        """Whether a spot instance of the job's type can be had now (always, on demand)."""
        return (not spec.spot or self.spot is None
                or self.spot.available(spec.instance_type, self.clock.now()))

    def condition(self, inst: JobInstance) -> str | None:
        """NOTICED / RECLAIMED (spot), EXITED (its process ended), or None: working."""
        if self.provider.exit_code(inst.handle) is not None:
            return EXITED
        held = self.spot.get(inst.instance_id) if inst.spot and self.spot else None
        now = self.clock.now()
        if held is None or held.reclaim_at is None or not held.noticed(now):
            return None
        return RECLAIMED if now >= held.reclaim_at else NOTICED

    def reclaim_at(self, inst: JobInstance) -> float | None:
        held = self.spot.get(inst.instance_id) if inst.spot and self.spot else None
        return None if held is None else held.reclaim_at

    async def start(self, spec: TransformJobSpec, job_arn: str, index: int) -> JobInstance:
        model = self.store.get_resource(ct.models, spec.model_name)
        if model is None:
            raise InstanceFailed(f"ClientError: Model {spec.model_name} no longer exists.")
        spot = spec.spot and self.spot is not None
        if spot:
            assert self.spot is not None
            instance_id = self.spot.acquire(spec.instance_type, spec.name,
                                            self.clock.now()).instance_id
        else:
            instance_id = f"{spec.name.lower()}-t{index}-{uuid.uuid4().hex[:6]}"
        try:
            prepared = await self.models.prepare(model, holder=instance_id)
        except TideserveError as exc:
            self._release_spot(instance_id)
            raise InstanceFailed(f"ClientError: Failed to prepare the model: {exc.message}"
                                 ) from None
        env = {**prepared.environment, **spec.environment, **_batch_env(spec)}
        requested = self.clock.now()
        # Its output goes to /aws/sagemaker/TransformJobs, not to an endpoint's log group.
        stream = names.transform_job_instance(spec.name, instance_id, int(requested))
        instance = InstanceSpec(
            instance_id=instance_id, endpoint_name=spec.name, variant_name=BILLING_VARIANT,
            instance_type=self.catalog.get(spec.instance_type), model_dir=prepared.model_dir,
            runtime=prepared.runtime, environment=env, trust_pickle=self.trust_pickle,
            command=prepared.command, log_stream=(stream.group, stream.stream),
        )
        self.ledger.instance_started(instance_id, job_arn, spec.name, BILLING_VARIANT,
                                     spec.instance_type, SPOT if spot else ON_DEMAND,
                                     at=requested)
        try:
            handle = await self.provider.start(instance)
        except BaseException as exc:
            await self._forget(instance_id)
            if isinstance(exc, TideserveError):
                raise InstanceFailed(f"CapacityError: {exc.message}") from None
            raise
        self.store.record_instance(instance_id=instance_id, endpoint_name=spec.name,
                                   variant_name=BILLING_VARIANT, pid=handle.pid, url=handle.url,
                                   start_time=requested)
        backend = Backend(instance_id, handle.url, token=handle.token)
        try:
            params = await self._wait_ready(handle)
        except BaseException:
            await self.stop(JobInstance(instance_id, handle, backend, None, spot), grace=2.0)
            raise
        return JobInstance(instance_id, handle, backend, params, spot)

    async def _wait_ready(self, handle: InstanceHandle) -> dict[str, Any] | None:
        """Wait for /ping, then ask GET /execution-parameters (optional: any failure is
        'not offered')."""
        headers = {TOKEN_HEADER: handle.token} if handle.token else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0),
                                         headers=headers) as http:
            try:
                await wait_until_ready(self.provider, handle, http, STARTUP_TIMEOUT_SECONDS)
            except NotReady as exc:
                detail = self.provider.failure_detail(handle)
                raise InstanceFailed(
                    f"AlgorithmError: Model container failed to respond to ping: {exc} "
                    f"{detail}".strip()) from None
            try:
                async with http.get(handle.url + "/execution-parameters") as resp:
                    if resp.status != 200:
                        return None
                    value = json.loads(await resp.read())
                    return value if isinstance(value, dict) else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None

    async def halt(self, inst: JobInstance, grace: float) -> None:
        """End the instance's process now (a spot reclaim); stop() still forgets and bills it."""
        await self.provider.stop(inst.handle, grace_seconds=grace)

    async def stop(self, inst: JobInstance, grace: float = STOP_GRACE_SECONDS) -> None:
        try:
            await self.provider.stop(inst.handle, grace_seconds=grace)
        finally:
            await self._forget(inst.instance_id)

    async def _forget(self, instance_id: str) -> None:
        self.store.forget_instance(instance_id)
        await self.models.release(instance_id)
        self.ledger.instance_stopped(instance_id)
        self._release_spot(instance_id)

    def _release_spot(self, instance_id: str) -> None:
        if self.spot is not None:
            self.spot.release(instance_id)


def _batch_env(spec: TransformJobSpec) -> dict[str, str]:
    env = {"SAGEMAKER_BATCH": "true"}
    if spec.max_payload_mb:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(spec.max_payload_mb)
    if spec.strategy:
        env["SAGEMAKER_BATCH_STRATEGY"] = ("SINGLE_RECORD" if spec.strategy == "SingleRecord"
                                           else "MULTI_RECORD")
    if spec.max_concurrent:
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(spec.max_concurrent)
    return env
