"""The workers of one serverless variant: started on demand, one request at a time each.

    acquire   an idle warm worker; else, below MaxConcurrency, start one and wait for it (a
              cold start, timed for ModelSetupTime); else ThrottledError
    release   the worker is idle again (or stopped, if the variant shrank meanwhile)
    reap      stop workers idle for longer than the keep-alive, down to ProvisionedConcurrency
    provision start workers until ProvisionedConcurrency of them exist (kept warm)

Concurrency is the number of busy workers, as AWS recommends one worker per container. Time
comes from the injected clock; starting and stopping a worker go through the injected
WorkerLauncher, so the decisions here are tested with a fake clock and fake workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tideserve.clock import Clock
from tideserve.errors import ThrottledError
from tideserve.serverless.config import ServerlessConfig
from tideserve.serving.routes import Backend


@dataclass(eq=False)
class Worker:
    worker_id: str
    backend: Backend  # its URL and requests in flight (0 or 1)
    handle: Any = None  # the launcher's own handle (an InstanceHandle for processes)
    busy: bool = False
    idle_since: float = 0.0  # epoch seconds; meaningful while not busy


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


@dataclass
class BusyMeter:
    """Time-weighted executions over a capacity, averaged over the period: executions on
    provisioned concurrency over ProvisionedConcurrency for
    ServerlessProvisionedConcurrencyUtilization, all executions over MaxConcurrency for
    ServerlessConcurrentExecutionsUtilization. Worked example: capacity 2, one request busy
    for 30 s of a 60 s period -> (1 x 30) / (2 x 60) = 0.25."""

    since: float
    executions: int = 0  # requests being served now (on provisioned workers, for PC)
    integral: float = 0.0  # execution-seconds since `since`
    peak: int = 0
    _last: float = field(init=False, default=0.0)  # when `executions` last changed

    def change(self, now: float, executions: int) -> None:
        self.integral += self.executions * max(0.0, now - self._last)
        self._last = now
        self.executions = executions
        self.peak = max(self.peak, executions)

    def take(self, now: float, capacity: int) -> tuple[float, int]:
        """(utilization 0..1, peak executions) since the last take; starts a new window."""
        self.change(now, self.executions)
        span = now - self.since
        utilization = self.integral / (capacity * span) if capacity and span > 0 else 0.0
        peak = self.peak
        self.since, self.integral, self.peak = now, 0.0, self.executions
        return min(1.0, utilization), peak

    def __post_init__(self) -> None:
        self._last = self.since


@dataclass(eq=False)
class ServerlessPool:
    endpoint: str
    variant: str
    config: ServerlessConfig
    launcher: WorkerLauncher
    clock: Clock
    keep_alive: float  # seconds an idle worker beyond the provisioned ones is kept
    workers: list[Worker] = field(default_factory=list)
    starting: int = 0  # cold starts in progress
    closed: bool = False
    on_change: Callable[[], None] = lambda: None  # worker count changed

    def __post_init__(self) -> None:
        self.meter = BusyMeter(self.clock.now())  # executions on provisioned concurrency
        self.concurrency = BusyMeter(self.clock.now())  # all executions

    # -- requests ----------------------------------------------------------------------------

    async def acquire(self) -> Lease:
        await self._drop_dead()
        provisioned = self.busy < self.config.provisioned_concurrency
        idle = self._idle()
        if idle:
            worker = idle[-1]  # the most recently used: the others may expire
            self._mark(worker, busy=True)
            return Lease(worker, None, provisioned)
        if len(self.workers) + self.starting >= self.config.max_concurrency:
            raise ThrottledError(
                f"Rate exceeded: endpoint {self.endpoint} variant {self.variant} is serving "
                f"its MaxConcurrency of {self.config.max_concurrency} concurrent requests."
            )
        started_at = self.clock.now()
        worker = await self._start()
        self._mark(worker, busy=True)
        return Lease(worker, self.clock.now() - started_at, provisioned)

    async def release(self, worker: Worker) -> None:
        self._mark(worker, busy=False)
        if self.closed or len(self.workers) > self.config.max_concurrency:
            await self._stop(worker)

    # -- capacity ----------------------------------------------------------------------------

    async def provision(self) -> None:
        """Start workers until ProvisionedConcurrency exist; raises if one cannot start."""
        missing = self.config.provisioned_concurrency - len(self.workers) - self.starting
        if missing <= 0:
            return
        results = await asyncio.gather(*(self._start() for _ in range(missing)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def reconfigure(self, config: ServerlessConfig) -> None:
        """Apply a new MaxConcurrency/ProvisionedConcurrency; idle workers above the new
        MaxConcurrency stop now, busy ones when their request ends."""
        self._metered(config)
        self.config = config
        for worker in self._idle()[: max(0, len(self.workers) - config.max_concurrency)]:
            await self._stop(worker)
        await self.provision()

    def expired(self, now: float) -> list[Worker]:
        """Idle workers past the keep-alive that may stop: the longest idle first, never
        taking the pool below ProvisionedConcurrency."""
        spare = len(self.workers) - self.config.provisioned_concurrency
        if spare <= 0:
            return []
        idle = sorted(self._idle(), key=lambda w: w.idle_since)
        return [w for w in idle if now - w.idle_since >= self.keep_alive][:spare]

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
        for worker in self._idle():
            await self._stop(worker)

    # -- state -------------------------------------------------------------------------------

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.busy)

    def utilization(self, now: float) -> tuple[float, int]:
        """ServerlessProvisionedConcurrencyUtilization and Executions since the last call."""
        return self.meter.take(now, self.config.provisioned_concurrency)

    def concurrency_utilization(self, now: float) -> float:
        """ServerlessConcurrentExecutionsUtilization since the last call: executions over
        MaxConcurrency, time-weighted (throttling starts at 1.0)."""
        return self.concurrency.take(now, self.config.max_concurrency)[0]

    def _idle(self) -> list[Worker]:
        return [w for w in self.workers if not w.busy]

    def _mark(self, worker: Worker, busy: bool) -> None:
        worker.busy = busy
        worker.backend.in_flight = int(busy)
        now = self.clock.now()
        if not busy:
            worker.idle_since = now
        self._metered(self.config)

    def _metered(self, config: ServerlessConfig) -> None:
        now, busy = self.clock.now(), self.busy
        self.meter.change(now, min(busy, config.provisioned_concurrency))
        self.concurrency.change(now, busy)

    async def _start(self) -> Worker:
        self.starting += 1
        try:
            worker = await self.launcher.start()
        finally:
            self.starting -= 1
        worker.idle_since = self.clock.now()
        self.workers.append(worker)
        self.on_change()
        return worker

    async def _stop(self, worker: Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
            self.on_change()
        await self.launcher.stop(worker)

    async def _drop_dead(self) -> int:
        dead = [w for w in self._idle() if not self.launcher.alive(w)]
        for worker in dead:
            await self._stop(worker)
        return len(dead)
