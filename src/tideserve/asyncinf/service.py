"""Wiring of asynchronous inference: what `server.py` builds once and hooks in.

    control plane   SageMakerService(async_endpoints=service.endpoints)
    data plane      TideserveApp(async_front=service.front)
    lifespan        asyncio.create_task(service.dispatcher.run_forever())
    metric period   service.is_async(name) -> skip the real-time zero-filling
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from tideserve.asyncinf.dispatcher import Dispatcher
from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.asyncinf.front import AsyncFront
from tideserve.asyncinf.notify import Notifier
from tideserve.asyncinf.objects import LocalObjects, Objects
from tideserve.asyncinf.queue import AsyncQueue
from tideserve.clock import Clock
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serving.routes import RouteTable
from tideserve.settings import Settings


@dataclass
class AsyncInference:
    queue: AsyncQueue
    endpoints: AsyncEndpoints
    front: AsyncFront
    dispatcher: Dispatcher

    def is_async(self, name: str) -> bool:
        return self.endpoints.is_async(name)

    @classmethod
    def build(cls, engine: Engine, settings: Settings, routes: RouteTable,
              metrics: MetricAggregator, clock: Clock,
              endpoint_status: Callable[[str], str | None],
              objects: Objects | None = None) -> AsyncInference:
        """`endpoint_status`: an endpoint's EndpointStatus by name, None if it does not exist.
        Objects live under <state-dir>/s3, the object store's root, unless `objects` is an
        external store (`--object-store`)."""
        state = Path(settings.state_dir)
        queue = AsyncQueue(engine)
        endpoints = AsyncEndpoints(engine, queue)
        objects = objects or LocalObjects(state / "s3")
        dispatcher = Dispatcher(queue, endpoints, routes, objects, Notifier(state), metrics,
                                clock, settings.region, settings.period)
        front = AsyncFront(endpoints, queue, objects, endpoint_status, clock, settings.account,
                           on_accepted=dispatcher.wake)
        return cls(queue, endpoints, front, dispatcher)
