"""The serverless decisions, pure: one variant's workers, and what becomes of a request, of a
finished request, of an idle worker and of a new configuration. The live pool (pool.py) and
the simulator (sim/serverless.py) each hold a WorkerSet and ask it, so they cannot decide
differently. No I/O and no clock: every time is passed in (epoch seconds on the caller's
clock, wall time live, simulated time in the simulator).

    admit        an idle warm worker, the most recently released (the others may expire);
                 else, while fewer than MaxConcurrency workers exist or are starting, a cold
                 start; else throttled. The request counts on ProvisionedConcurrency when
                 fewer than ProvisionedConcurrency requests are being served as it arrives.
    started      a cold start finished: the worker joins, busy (a request waited for it) or
                 idle (started to reach ProvisionedConcurrency)
    release      a request ended: its worker is idle again, or stops if the variant has more
                 workers than MaxConcurrency (it shrank meanwhile) or is closing
    expired      idle workers past the keep-alive, longest idle first, never taking the
                 variant below ProvisionedConcurrency workers
    provision    how many cold starts reach ProvisionedConcurrency (reserved as starting)
    reconfigure  a new MaxConcurrency/ProvisionedConcurrency: the idle workers above the new
                 MaxConcurrency stop now (longest idle first), busy ones when they finish

Concurrency is the number of busy workers (one request each, as AWS recommends one worker per
container). Worked example, MaxConcurrency 2, ProvisionedConcurrency 1, keep-alive 60 s: one
provisioned worker p is idle; a request at t=0 takes p (warm, on provisioned concurrency); a
second at t=1 finds none idle and 1 + 0 < 2 workers, so it cold-starts w (a spillover: 1 busy
already, not < 1); a third at t=2 is throttled (2 workers). Both end at t=5; at t=65 w has been
idle 60 s and expires, p stays (the variant would drop below 1).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)  # what the caller names a worker by

WARM, COLD_START, THROTTLED = "Warm", "ColdStart", "Throttled"


class Limits(Protocol):
    """ServerlessConfig live, ServerlessSpec in the simulator."""

    @property
    def max_concurrency(self) -> int: ...

    @property
    def provisioned_concurrency(self) -> int: ...


@dataclass(frozen=True)
class Admission(Generic[K]):
    """What happened to one request."""

    outcome: str  # WARM, COLD_START (the caller starts a worker: `started` or `start_failed`)
    #               or THROTTLED
    provisioned: bool  # served within ProvisionedConcurrency (else a spillover invocation)
    worker: K | None = None  # WARM: the idle worker, now busy with the request

    @property
    def throttled(self) -> bool:
        return self.outcome == THROTTLED


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


class WorkerSet(Generic[K]):
    """One variant's workers: idle ones (oldest release first), busy ones, starts under way."""

    def __init__(self, limits: Limits, keep_alive: float, now: float) -> None:
        self.limits = limits
        self.keep_alive = keep_alive  # seconds an idle worker beyond the provisioned is kept
        self.idle: dict[K, float] = {}  # worker -> idle since; insertion order = release order
        self.busy: set[K] = set()
        self.starting = 0  # cold starts under way (they count against MaxConcurrency)
        self.closed = False
        self.provisioned_meter = BusyMeter(now)  # executions on provisioned concurrency
        self.concurrency_meter = BusyMeter(now)  # all executions

    @property
    def size(self) -> int:
        """Workers that have started and not stopped (idle or busy)."""
        return len(self.idle) + len(self.busy)

    # -- requests ----------------------------------------------------------------------------

    def admit(self, now: float) -> Admission[K]:
        provisioned = len(self.busy) < self.limits.provisioned_concurrency
        if self.idle:
            worker = next(reversed(self.idle))  # the most recently released
            del self.idle[worker]
            self.busy.add(worker)
            self._metered(now)
            return Admission(WARM, provisioned, worker)
        if self.size + self.starting >= self.limits.max_concurrency:
            return Admission(THROTTLED, provisioned)
        self.starting += 1
        return Admission(COLD_START, provisioned)

    def started(self, worker: K, now: float, busy: bool) -> None:
        """A start reserved by `admit` or `provision` finished: `worker` joins."""
        self.starting -= 1
        if busy:
            self.busy.add(worker)
            self._metered(now)
        else:
            self.idle[worker] = now

    def start_failed(self) -> None:
        self.starting -= 1

    def release(self, worker: K, now: float) -> bool:
        """The request on `worker` ended; True if the worker is to stop now (it has left)."""
        self.busy.discard(worker)
        stop = self.closed or self.size >= self.limits.max_concurrency
        if not stop:
            self.idle[worker] = now
        self._metered(now)
        return stop

    def remove(self, worker: K, now: float) -> None:
        """The worker stopped or died."""
        self.idle.pop(worker, None)
        if worker in self.busy:
            self.busy.discard(worker)
            self._metered(now)

    # -- capacity ----------------------------------------------------------------------------

    def expired(self, now: float) -> list[K]:
        """Idle workers past the keep-alive that may stop (still members until `remove`)."""
        spare = self.size - self.limits.provisioned_concurrency
        out: list[K] = []
        if spare <= 0 or not self.idle:  # the common case, cheaply (once per sim event)
            return out
        for worker, since in self.idle.items():  # longest idle first
            if len(out) >= spare or now - since < self.keep_alive:
                break
            out.append(worker)
        return out

    def provision(self) -> int:
        """Cold starts to begin so that ProvisionedConcurrency workers exist; reserved as
        starting (each ends in `started(..., busy=False)` or `start_failed`)."""
        missing = max(0, self.limits.provisioned_concurrency - self.size - self.starting)
        self.starting += missing
        return missing

    def reconfigure(self, limits: Limits, now: float) -> list[K]:
        """Apply new limits; the idle workers that stop now (they have left). Call
        `provision` next for the starts a higher ProvisionedConcurrency needs."""
        self.limits = limits
        self._metered(now)
        excess = max(0, self.size - limits.max_concurrency)
        stop = list(self.idle)[:excess]
        for worker in stop:
            del self.idle[worker]
        return stop

    def close(self) -> list[K]:
        """Closing: the idle workers stop now (they have left); busy ones on release."""
        self.closed = True
        stop = list(self.idle)
        self.idle.clear()
        return stop

    # -- metrics -----------------------------------------------------------------------------

    def utilization(self, now: float) -> tuple[float, int]:
        """ServerlessProvisionedConcurrencyUtilization and Executions since the last call."""
        return self.provisioned_meter.take(now, self.limits.provisioned_concurrency)

    def concurrency_utilization(self, now: float) -> float:
        """ServerlessConcurrentExecutionsUtilization since the last call: executions over
        MaxConcurrency, time-weighted (throttling starts at 1.0)."""
        return self.concurrency_meter.take(now, self.limits.max_concurrency)[0]

    def _metered(self, now: float) -> None:
        busy = len(self.busy)
        provisioned = self.limits.provisioned_concurrency
        self.provisioned_meter.change(now, busy if busy < provisioned else provisioned)
        self.concurrency_meter.change(now, busy)
