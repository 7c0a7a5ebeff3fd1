"""The workers of one serverless variant: started on demand, one request at a time each.

    acquire   an idle warm worker; else, below MaxConcurrency, start one and wait for it (a
              cold start, timed for ModelSetupTime); else ThrottledError
    release   the worker is idle again (or stopped, if the variant shrank meanwhile)
    reap      stop workers idle for longer than the keep-alive, down to ProvisionedConcurrency
    provision start workers until ProvisionedConcurrency of them exist (kept warm)

Every one of those decisions is admission.WorkerSet's (the simulator asks the same one); this
carries them out. Time comes from the injected clock; starting and stopping a worker go
through the injected WorkerLauncher, so the pool is tested with a fake clock and fake workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tideserve.clock import Clock
from tideserve.errors import ThrottledError
from tideserve.serverless.admission import WARM, BusyMeter, WorkerSet
from tideserve.serverless.config import ServerlessConfig
from tideserve.serving.routes import Backend

__all__ = ["BusyMeter", "Lease", "ServerlessPool", "Worker", "WorkerLauncher"]


@dataclass(eq=False)
class Worker:
    worker_id: str
    backend: Backend  # its URL and requests in flight (0 or 1)
    handle: Any = None  # the launcher's own handle (an InstanceHandle for processes)


class WorkerLauncher(Protocol):
    async def start(self) -> Worker:
        """A worker that answers /ping; raises TideserveError if it cannot start."""
        ...

    async def stop(self, worker: Worker) -> None: ...

    def alive(self, worker: Worker) -> bool: ...


@dataclass(frozen=True)
class Lease:
    """A worker held for one request."""

    worker: Worker
    setup_seconds: float | None  # the cold start this request waited for; None if warm
    provisioned: bool  # served within ProvisionedConcurrency (else a spillover invocation)


@dataclass(eq=False)
class ServerlessPool:
    endpoint: str
    variant: str
    config: ServerlessConfig
    launcher: WorkerLauncher
    clock: Clock
    keep_alive: float  # seconds an idle worker beyond the provisioned ones is kept
    closed: bool = False
    on_change: Callable[[], None] = lambda: None  # worker count changed
    _started: dict[Worker, None] = field(default_factory=dict, init=False)  # in start order

    def __post_init__(self) -> None:
        self.set: WorkerSet[Worker] = WorkerSet(self.config, self.keep_alive, self.clock.now())

    # -- requests ----------------------------------------------------------------------------

    async def acquire(self) -> Lease:
        await self._drop_dead()
        admission = self.set.admit(self.clock.now())
        if admission.outcome == WARM:
            assert admission.worker is not None
            admission.worker.backend.in_flight = 1
            return Lease(admission.worker, None, admission.provisioned)
        if admission.throttled:
            raise ThrottledError(
                f"Rate exceeded: endpoint {self.endpoint} variant {self.variant} is serving "
                f"its MaxConcurrency of {self.config.max_concurrency} concurrent requests."
            )
        started_at = self.clock.now()
        worker = await self._start(busy=True)
        return Lease(worker, self.clock.now() - started_at, admission.provisioned)

    async def release(self, worker: Worker) -> None:
        worker.backend.in_flight = 0
        if self.set.release(worker, self.clock.now()):
            await self._stop(worker)

    # -- capacity ----------------------------------------------------------------------------

    async def provision(self) -> None:
        """Start workers until ProvisionedConcurrency exist; raises if one cannot start."""
        missing = self.set.provision()
        if missing <= 0:
            return
        results = await asyncio.gather(*(self._start(busy=False) for _ in range(missing)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def reconfigure(self, config: ServerlessConfig) -> None:
        """Apply a new MaxConcurrency/ProvisionedConcurrency; idle workers above the new
        MaxConcurrency stop now, busy ones when their request ends."""
        self.config = config
        for worker in self.set.reconfigure(config, self.clock.now()):
            await self._stop(worker)
        await self.provision()

    def expired(self, now: float) -> list[Worker]:
        """Idle workers past the keep-alive that may stop: the longest idle first, never
        taking the pool below ProvisionedConcurrency."""
        return self.set.expired(now)

    async def reap(self) -> int:
        """Stop expired and dead workers; how many stopped."""
        dropped = await self._drop_dead()
        victims = self.expired(self.clock.now())
        for worker in victims:
            await self._stop(worker)
        return dropped + len(victims)

    async def close(self) -> None:
        """Stop idle workers now; busy ones stop when their request ends."""
        self.closed = True
        for worker in self.set.close():
            await self._stop(worker)

    # -- state -------------------------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        """Started and not stopped, in start order."""
        return list(self._started)

    @property
    def busy(self) -> int:
        return len(self.set.busy)

    @property
    def starting(self) -> int:
        """Cold starts in progress."""
        return self.set.starting

    def utilization(self, now: float) -> tuple[float, int]:
        """ServerlessProvisionedConcurrencyUtilization and Executions since the last call."""
        return self.set.utilization(now)

    def concurrency_utilization(self, now: float) -> float:
        """ServerlessConcurrentExecutionsUtilization since the last call: executions over
        MaxConcurrency, time-weighted (throttling starts at 1.0)."""
        return self.set.concurrency_utilization(now)

    async def _start(self, busy: bool) -> Worker:
        """Carry out a start the WorkerSet reserved."""
        try:
            worker = await self.launcher.start()
        except BaseException:
            self.set.start_failed()
            raise
        worker.backend.in_flight = int(busy)
        self._started[worker] = None
        self.set.started(worker, self.clock.now(), busy)
        self.on_change()
        return worker

    async def _stop(self, worker: Worker) -> None:
        self.set.remove(worker, self.clock.now())
        if worker in self._started:
            del self._started[worker]
            self.on_change()
        await self.launcher.stop(worker)

    async def _drop_dead(self) -> int:
        dead = [w for w in self.set.idle if not self.launcher.alive(w)]
        for worker in dead:
            await self._stop(worker)
        return len(dead)
