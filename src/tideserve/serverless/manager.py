"""The serverless side of `tideserve up`: one pool per serverless endpoint, and the hooks the
controller (converge, teardown), the router (invoke) and the per-period loop (metrics,
billing) call. server.py builds one ServerlessManager and hands it to each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tideserve.clock import Clock
from tideserve.control.models import ModelCache
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.cost.ledger import Ledger
from tideserve.fleet.base import InstanceProvider
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serverless import config as sc
from tideserve.serverless.billing import Metered, ServerlessBilling
from tideserve.serverless.invoke import invoke_serverless
from tideserve.serverless.pool import ServerlessPool
from tideserve.serverless.telemetry import WorkerSampler, publish_period
from tideserve.serverless.workers import ProcessLauncher
from tideserve.serving.router import Invocation, InvocationResult, Router

log = logging.getLogger("tideserve.serverless")


class ServerlessManager:
    def __init__(
        self,
        store: ControlStore,
        models: ModelCache,
        provider: InstanceProvider,
        metrics: MetricAggregator,
        ledger: Ledger,
        clock: Clock,
        period: float,
        keep_alive: float,
        trust_pickle: bool = False,
    ) -> None:
        self.store = store
        self.models = models
        self.provider = provider
        self.metrics = metrics
        self.clock = clock
        self.period = period
        self.keep_alive = keep_alive
        self.trust_pickle = trust_pickle
        self.billing = ServerlessBilling(ledger, period)
        self.sampler = WorkerSampler(metrics)
        self.pools: dict[str, ServerlessPool] = {}  # by lower-cased endpoint name
        self._meters: dict[str, Metered] = {}

    # -- controller hooks (control/kinds.KindConverger) -------------------------------------

    label = "Serverless"

    def owns(self, row: EndpointRow) -> bool:
        return any(sc.is_serverless(v) for v in row.variants)

    async def converge(self, row: EndpointRow) -> None:
        """Make the endpoint's pool match its DesiredServerlessConfig: the model prepared and
        ProvisionedConcurrency workers warm; then record it as CurrentServerlessConfig.
        Raises TideserveError if the model or a provisioned worker cannot be brought up."""
        variant = row.variants[0]
        wanted = sc.desired(variant)
        key = row.name.lower()
        pool = self.pools.get(key)
        if pool is None:  # memory cannot change: UpdateEndpoint is refused for serverless
            launcher = ProcessLauncher(
                row.name, variant["VariantName"], variant["ModelName"], wanted, self.provider,
                self.models, self.store, self.trust_pickle,
            )
            await launcher.prepare()  # a bad ModelDataUrl fails the endpoint now
            pool = ServerlessPool(row.name, variant["VariantName"], wanted, launcher,
                                  self.clock, self.keep_alive)
            self.pools[key] = pool
            self._meters[key] = Metered(row.arn, row.name, pool.variant, wanted.memory_mb)
        await pool.reconfigure(wanted)
        self.billing.provision(self._meters[key], wanted.provisioned_concurrency,
                               self.clock.now())

        def applied(current: EndpointRow) -> bool:
            for v in current.variants:
                if v["VariantName"] == pool.variant and sc.is_serverless(v):
                    v["CurrentServerlessConfig"] = wanted.to_wire()
            return True

        self.store.modify_endpoint(row.name, applied)

    async def teardown(self, key: str) -> None:
        """The endpoint (lower-cased name) is gone or Deleting: stop its workers."""
        pool = self.pools.pop(key, None)
        meter = self._meters.pop(key, None)
        if pool is not None:
            if meter is not None:  # provisioned concurrency is billed until now
                self.billing.provision(meter, 0, self.clock.now())
            await pool.close()
        await self.models.release(f"serverless:{key}")  # ProcessLauncher.holder

    # -- router hook -------------------------------------------------------------------------

    def serves(self, endpoint_name: str) -> bool:
        return endpoint_name.lower() in self.pools

    async def invoke(self, router: Router, inv: Invocation) -> InvocationResult:
        key = inv.endpoint_name.lower()
        pool, meter = self.pools[key], self._meters[key]
        return await invoke_serverless(
            pool, inv, router.client, self.metrics, router.region,
            lambda seconds: self.billing.add(meter, seconds),
        )

    # -- periodic work -----------------------------------------------------------------------

    def on_period(self, now: float) -> None:
        """Once per metric period, before the aggregator flushes: the period metrics of
        telemetry.py for the period that just closed, workers' memory, billing rows."""
        closed = now - now % self.period - self.period
        pools = list(self.pools.values())
        for pool in pools:
            publish_period(self.metrics, pool, now, closed)
        self.sampler.sample(pools, now)
        self.billing.flush(now)

    async def run_forever(self, tick: float | None = None) -> None:
        """Stop workers idle past the keep-alive, and dead ones."""
        tick = tick or max(0.05, min(1.0, self.keep_alive / 4))
        while True:
            await asyncio.sleep(tick)
            for pool in list(self.pools.values()):
                try:
                    await pool.reap()
                except Exception:
                    log.exception("reaping serverless workers of %s failed", pool.endpoint)

    async def close(self) -> None:
        for key in list(self.pools):
            await self.teardown(key)

    def worker_counts(self) -> dict[str, Any]:
        """endpoint -> (workers, busy), for logs and tests."""
        return {n: (len(p.workers), p.busy) for n, p in self.pools.items()}
