"""The live ServerlessPool and the simulator's request-level serverless mode, given the same
requests (arrival instants and durations), make the same decisions: the same cold starts,
throttles, spillovers and worker counts, and publish the same utilizations.

The live pool runs on asyncio with a fake clock, driven event by event: each instant (an
arrival, a cold start finishing, a request finishing, the end of a step) the clock is set to
it, the pool reaps as its keep-alive loop would, and what is due then happens. Instants are
drawn so that no two coincide.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest

from tideserve.clock import FakeClock
from tideserve.errors import ThrottledError
from tideserve.serverless.config import ServerlessConfig
from tideserve.serverless.pool import ServerlessPool, Worker
from tideserve.serving.routes import Backend
from tideserve.sim.fluid import StepLog
from tideserve.sim.kinds import ServerlessSpec
from tideserve.sim.requests import Draws
from tideserve.sim.serverless_workers import RequestWorkers

T0, DT, PERIOD = 1_700_000_000.0, 1.0, 10.0
COLD_START, KEEP_ALIVE = 2.0, 5.0


@dataclass
class Timeline:
    """Futures resolved when the fake clock reaches their instant."""

    clock: FakeClock
    due: list[tuple[float, int, asyncio.Future[None]]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    async def sleep_until(self, t: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.due, (t, next(self.seq), future))
        await future


class Launcher:
    """Workers whose start takes COLD_START seconds on the timeline (none while `instant`)."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.instant = True
        self.ids = itertools.count(1)

    async def start(self) -> Worker:
        if not self.instant:
            await self.timeline.sleep_until(self.timeline.clock.now() + COLD_START)
        wid = f"w{next(self.ids)}"
        return Worker(wid, Backend(wid, f"http://w/{wid}"))

    async def stop(self, worker: Worker) -> None:
        return None

    def alive(self, worker: Worker) -> bool:
        return True


@dataclass
class Outcomes:
    cold: int = 0
    throttled: int = 0
    on_pc: int = 0
    spillover: int = 0
    workers: list[int] = field(default_factory=list)  # at each step's end, starting included
    utilization: list[tuple[float, float, float]] = field(default_factory=list)  # per period


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def live(times: list[float], durations: list[float], steps: int, max_concurrency: int,
               provisioned: int, changes: dict[int, int]) -> Outcomes:
    clock = FakeClock(T0)
    timeline = Timeline(clock)
    launcher = Launcher(timeline)
    pool = ServerlessPool("ep", "AllTraffic", ServerlessConfig(2048, max_concurrency,
                                                               provisioned),
                          launcher, clock, KEEP_ALIVE)
    await pool.provision()  # warm at T0, as the simulator's provisioned workers
    launcher.instant = False
    out = Outcomes()

    async def request(s: float) -> None:
        counted = pool.config.provisioned_concurrency > 0  # PC metrics are published
        try:
            lease = await pool.acquire()
        except ThrottledError:
            out.throttled += 1
            return
        out.cold += lease.setup_seconds is not None
        out.on_pc += counted and lease.provisioned
        out.spillover += counted and not lease.provisioned
        await timeline.sleep_until(clock.now() + s)
        await pool.release(lease.worker)

    arrivals = list(zip(times, durations, strict=True))
    ends = [T0 + (k + 1) * DT for k in range(steps)]
    tasks = []
    while arrivals or ends:
        candidates = [arrivals[0][0] if arrivals else np.inf, ends[0] if ends else np.inf,
                      timeline.due[0][0] if timeline.due else np.inf]
        t = min(candidates)
        clock.set(t)
        await pool.reap()
        which = candidates.index(t)
        if which == 2:
            heapq.heappop(timeline.due)[2].set_result(None)
        elif which == 0:
            tasks.append(asyncio.ensure_future(request(arrivals.pop(0)[1])))
        else:
            ends.pop(0)
            out.workers.append(len(pool.workers) + pool.starting)
            done = round((t - T0) / DT)  # steps completed
            if done % round(PERIOD / DT) == 0:  # as serverless/telemetry.py publishes
                concurrency = pool.concurrency_utilization(t)
                utilization, peak = (pool.utilization(t) if pool.config.provisioned_concurrency
                                     else (np.nan, np.nan))
                out.utilization.append((utilization, peak, concurrency))
            if done in changes:  # as the manager's converge does
                config = ServerlessConfig(2048, max_concurrency, changes[done])
                tasks.append(asyncio.ensure_future(pool.reconfigure(config)))
        await settle()
    for task in tasks:
        task.cancel()
    return out


def simulated(times: list[float], durations: list[float], steps: int, max_concurrency: int,
              provisioned: int, changes: dict[int, int]) -> Outcomes:
    arrival = np.array(times)
    step = np.floor((arrival - T0) / DT).astype(np.int64)
    log = StepLog.empty(np.bincount(step, minlength=steps).astype(np.float64))
    spec = ServerlessSpec(2048, max_concurrency, provisioned, COLD_START, KEEP_ALIVE)
    workers = RequestWorkers(log, spec, 10.0, T0, DT, Draws(arrival, step, np.array(durations)),
                             PERIOD)
    done, units = 0, provisioned
    for at, new in sorted(changes.items()):
        workers.advance(done, at, units)
        workers.reconfigure(new, T0 + at * DT)
        done, units = at, new
    workers.advance(done, steps, units)
    fig = workers.figures
    return Outcomes(int(workers.tally.cold_starts), int(log.dropped.sum()),
                    int(fig.on_pc.sum()), int(fig.spillover.sum()),
                    log.in_service.tolist(),
                    [(u, p, c) for u, p, c in zip(fig.pc_utilization, fig.pc_executions,
                                                       fig.concurrency, strict=True)])


@pytest.mark.parametrize(("max_concurrency", "provisioned", "seed", "changes"), [
    (4, 0, 0, {}), (4, 1, 1, {}), (6, 2, 2, {}), (2, 1, 3, {}),
    (6, 1, 4, {10: 3, 26: 4, 45: 1}), (6, 0, 5, {30: 2})],
    ids=["on demand", "pc 1", "pc 2", "tight max concurrency",
         "pc raised under load, while quiet, lowered", "pc from none"])
def test_live_pool_and_simulated_workers_decide_the_same(
        max_concurrency: int, provisioned: int, seed: int, changes: dict[int, int]) -> None:
    # 60 s: bursts in the first 20 s and at 35-40 s, quiet between (workers expire), and
    # durations from 0.2 to 3 s. `changes`: ProvisionedConcurrency set at the end of step k,
    # as an autoscaling decision is applied (live: pool.reconfigure, its new workers cold
    # started).
    rng = np.random.default_rng(seed)
    times = sorted(np.concatenate([rng.uniform(0, 20, 30), rng.uniform(35, 40, 12)]) + T0)
    durations = rng.uniform(0.2, 3.0, len(times)).tolist()
    steps = 60
    want = simulated(times, durations, steps, max_concurrency, provisioned, changes)
    got = asyncio.run(live(times, durations, steps, max_concurrency, provisioned, changes))
    assert (got.cold, got.throttled, got.on_pc, got.spillover) == (
        want.cold, want.throttled, want.on_pc, want.spillover)
    assert got.workers == want.workers
    assert [v for row in got.utilization for v in row] == pytest.approx(
        [v for row in want.utilization for v in row], abs=1e-9, nan_ok=True)
    # The traffic exercised every decision.
    assert want.cold > 0 and max(want.workers) > min(want.workers[20:35])
