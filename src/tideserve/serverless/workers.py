"""Serverless workers as instance processes, started through the same fleet provider the
controller uses, as a synthetic instance type sized by MemorySizeInMB (config.py).

Each worker is recorded in the `instances` table while it runs (so a crashed server's orphans
are cleaned up, and so one can count them), but not in the cost ledger: serverless is billed
per GB-second of request duration (billing.py), not per instance-second.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp

from tideserve.control import tables as t
from tideserve.control.models import ModelCache
from tideserve.control.specs import ModelSpec
from tideserve.control.store import ControlStore
from tideserve.errors import ModelInvocationError, TideserveError, ValidationError
from tideserve.fleet.base import InstanceProvider, InstanceSpec
from tideserve.fleet.readiness import NotReady, wait_until_ready
from tideserve.serverless.config import COLD_START_TIMEOUT_SECONDS, ServerlessConfig
from tideserve.serverless.pool import Worker
from tideserve.serving.routes import Backend

STOP_GRACE_SECONDS = 30.0


class ProcessLauncher:
    """Starts workers of one serverless variant as local instance processes."""

    def __init__(
        self,
        endpoint: str,
        variant: str,
        model_name: str,
        config: ServerlessConfig,
        provider: InstanceProvider,
        models: ModelCache,
        store: ControlStore,
        trust_pickle: bool = False,
        startup_timeout: float = COLD_START_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.variant = variant
        self.model_name = model_name
        self.instance_type = config.instance_type()
        self.provider = provider
        self.models = models
        self.store = store
        self.trust_pickle = trust_pickle
        self.startup_timeout = startup_timeout

    @property
    def holder(self) -> str:
        """Holds the model tree while the endpoint exists, so cold starts find it unpacked."""
        return f"serverless:{self.endpoint.lower()}"

    async def prepare(self, holder: str | None = None) -> Any:
        """Fetch and unpack the model (once; ModelCache shares it), held for `holder`."""
        model = self.store.get_resource(t.models, self.model_name)
        if model is None:
            raise TideserveError(f"Model {self.model_name} no longer exists.")
        if ModelSpec.load(model.spec).execution_mode is not None:
            # AWS's serverless exclusions list inference pipelines; a Direct model is one too.
            raise ValidationError(
                f"Model {self.model_name} has several containers: serverless endpoints do not "
                "support multi-container models (inference pipelines, direct invocation)."
            )
        return await self.models.prepare(model, holder=holder or self.holder)

    async def close(self) -> None:
        await self.models.release(self.holder)

    async def start(self) -> Worker:
        instance_id = f"{self.endpoint.lower()}-sl-{uuid.uuid4().hex[:8]}"
        prepared = await self.prepare(instance_id)
        spec = InstanceSpec(
            instance_id=instance_id,
            endpoint_name=self.endpoint, variant_name=self.variant,
            instance_type=self.instance_type, model_dir=prepared.model_dir,
            runtime=prepared.runtime, environment=prepared.environment,
            trust_pickle=self.trust_pickle, command=prepared.command,
        )
        try:
            handle = await self.provider.start(spec)
        except BaseException:
            await self.models.release(instance_id)
            raise
        self.store.record_instance(
            instance_id=spec.instance_id, endpoint_name=self.endpoint,
            variant_name=self.variant, pid=handle.pid, url=handle.url, start_time=time.time(),
        )
        backend = Backend(spec.instance_id, handle.url, token=handle.token)
        worker = Worker(spec.instance_id, backend, handle)
        try:
            await self._wait_ready(worker)
        except BaseException:
            await self._stop(worker, grace=2.0)
            raise
        return worker

    async def stop(self, worker: Worker) -> None:
        await self._stop(worker, STOP_GRACE_SECONDS)

    def alive(self, worker: Worker) -> bool:
        return self.provider.exit_code(worker.handle) is None

    async def _stop(self, worker: Worker, grace: float) -> None:
        await self.provider.stop(worker.handle, grace_seconds=grace)
        self.store.forget_instance(worker.worker_id)
        await self.models.release(worker.worker_id)

    async def _wait_ready(self, worker: Worker) -> None:
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                await wait_until_ready(self.provider, worker.handle, http, self.startup_timeout,
                                       max_delay=0.25)
            except NotReady as exc:
                raise _cold_start_failed(str(exc)) from None


def _cold_start_failed(detail: str) -> ModelInvocationError:
    message = (
        "The primary container for the serverless variant did not pass the ping health check "
        f"during its cold start: {detail}"
    )
    return ModelInvocationError(message, original_status=0, original_message=message)
