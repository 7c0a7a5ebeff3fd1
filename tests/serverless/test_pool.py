"""The serverless pool's decisions on a fake clock: warm reuse, cold starts up to
MaxConcurrency, throttling beyond it, keep-alive down to ProvisionedConcurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tideserve.clock import FakeClock
from tideserve.errors import ThrottledError
from tideserve.serverless.config import ServerlessConfig
from tideserve.serverless.pool import BusyMeter, ServerlessPool, Worker
from tideserve.serving.routes import Backend


class Workers:
    """Workers that start in `start_seconds` of fake time, and can die."""

    def __init__(self, clock: FakeClock, start_seconds: float = 2.0) -> None:
        self.clock = clock
        self.start_seconds = start_seconds
        self.started = 0
        self.stopped: list[str] = []
        self.dead: set[str] = set()

    async def start(self) -> Worker:
        self.started += 1
        self.clock.advance(self.start_seconds)
        await asyncio.sleep(0)
        wid = f"w{self.started}"
        return Worker(wid, Backend(wid, f"http://w/{wid}"))

    async def stop(self, worker: Worker) -> None:
        self.stopped.append(worker.worker_id)

    def alive(self, worker: Worker) -> bool:
        return worker.worker_id not in self.dead


def make_pool(max_concurrency: int = 2, provisioned: int = 0,
              keep_alive: float = 60.0) -> tuple[ServerlessPool, Workers, FakeClock]:
    clock = FakeClock()
    workers = Workers(clock)
    pool = ServerlessPool("ep", "AllTraffic", ServerlessConfig(2048, max_concurrency, provisioned),
                          workers, clock, keep_alive)
    return pool, workers, clock


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_first_request_cold_starts_and_the_next_reuses_the_warm_worker() -> None:
    async def scenario() -> None:
        pool, workers, clock = make_pool()
        first = await pool.acquire()
        assert first.setup_seconds == pytest.approx(2.0)  # waited for the cold start
        await pool.release(first.worker)
        clock.advance(5)
        second = await pool.acquire()
        assert second.setup_seconds is None and second.worker is first.worker
        assert workers.started == 1
    run(scenario())


def test_concurrent_requests_beyond_max_concurrency_are_throttled() -> None:
    async def scenario() -> None:
        pool, workers, _ = make_pool(max_concurrency=2)
        a = await pool.acquire()
        b = await pool.acquire()
        assert {a.worker.worker_id, b.worker.worker_id} == {"w1", "w2"}
        with pytest.raises(ThrottledError, match="MaxConcurrency of 2"):
            await pool.acquire()
        await pool.release(a.worker)
        c = await pool.acquire()  # a worker is free again: served warm
        assert c.worker is a.worker and c.setup_seconds is None
        assert workers.started == 2
    run(scenario())


def test_cold_starts_in_progress_count_against_max_concurrency() -> None:
    async def scenario() -> None:
        pool, _, _ = make_pool(max_concurrency=1)
        pending = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)  # the cold start has begun but not finished
        assert pool.starting == 1
        with pytest.raises(ThrottledError):
            await pool.acquire()
        await pending
    run(scenario())


def test_idle_workers_stop_after_the_keep_alive_and_the_pool_returns_to_zero() -> None:
    async def scenario() -> None:
        pool, workers, clock = make_pool(keep_alive=60)
        a, b = await pool.acquire(), await pool.acquire()
        await pool.release(a.worker)
        clock.advance(30)
        await pool.release(b.worker)
        clock.advance(31)  # a idle 61 s, b idle 31 s
        assert await pool.reap() == 1
        assert workers.stopped == [a.worker.worker_id]
        clock.advance(30)  # b idle 61 s
        assert await pool.reap() == 1
        assert pool.workers == []
    run(scenario())


def test_a_busy_worker_is_never_reaped() -> None:
    async def scenario() -> None:
        pool, _, clock = make_pool(keep_alive=10)
        await pool.acquire()
        clock.advance(1000)
        assert await pool.reap() == 0 and len(pool.workers) == 1
    run(scenario())


def test_provisioned_workers_start_warm_and_outlive_the_keep_alive() -> None:
    async def scenario() -> None:
        pool, workers, clock = make_pool(max_concurrency=3, provisioned=1, keep_alive=10)
        await pool.provision()
        assert workers.started == 1
        lease = await pool.acquire()
        assert lease.setup_seconds is None and lease.provisioned  # no cold start
        spill = await pool.acquire()
        assert spill.setup_seconds is not None and not spill.provisioned
        await pool.release(lease.worker)
        await pool.release(spill.worker)
        clock.advance(11)
        assert await pool.reap() == 1  # one spare stopped, the provisioned one stays
        assert len(pool.workers) == 1
        clock.advance(1000)
        assert await pool.reap() == 0
    run(scenario())


def test_reconfigure_raises_provisioned_and_lowers_max_concurrency() -> None:
    async def scenario() -> None:
        pool, workers, _ = make_pool(max_concurrency=4, provisioned=1)
        await pool.provision()
        await pool.reconfigure(ServerlessConfig(2048, 4, 3))
        assert len(pool.workers) == 3 and workers.started == 3
        busy = await pool.acquire()
        await pool.reconfigure(ServerlessConfig(2048, 1, 1))
        # idle workers above the new MaxConcurrency stop now; the busy one serves on
        assert pool.workers == [busy.worker]
        with pytest.raises(ThrottledError):
            await pool.acquire()
    run(scenario())


def test_a_dead_idle_worker_is_replaced_by_a_cold_start() -> None:
    async def scenario() -> None:
        pool, workers, _ = make_pool()
        lease = await pool.acquire()
        await pool.release(lease.worker)
        workers.dead.add(lease.worker.worker_id)
        again = await pool.acquire()
        assert again.worker is not lease.worker and again.setup_seconds is not None
    run(scenario())


def test_close_stops_idle_workers_now_and_busy_ones_when_they_finish() -> None:
    async def scenario() -> None:
        pool, workers, _ = make_pool()
        a, b = await pool.acquire(), await pool.acquire()
        await pool.release(a.worker)
        await pool.close()
        assert workers.stopped == [a.worker.worker_id]
        await pool.release(b.worker)
        assert pool.workers == [] and len(workers.stopped) == 2
    run(scenario())


def test_utilization_is_time_weighted_executions_over_provisioned() -> None:
    # Provisioned 2; one request busy for 30 s of a 60 s period -> (1 x 30) / (2 x 60).
    meter = BusyMeter(since=0.0)
    meter.change(10.0, 1)
    meter.change(40.0, 0)
    assert meter.take(60.0, capacity=2) == (pytest.approx(0.25), 1)
    # Next period: both provisioned busy the whole time.
    meter.change(60.0, 2)
    assert meter.take(120.0, capacity=2) == (pytest.approx(1.0), 2)


def test_concurrent_executions_utilization_counts_every_request_over_max_concurrency() -> None:
    # MaxConcurrency 4, provisioned 1. Cold starts take 2 s of fake time (the Workers above).
    async def scenario() -> None:
        pool, _, clock = make_pool(max_concurrency=4, provisioned=1)
        await pool.provision()  # t=2: the provisioned worker is warm
        pool.concurrency_utilization(clock.now())  # start a fresh window at t=2
        pool.utilization(clock.now())
        a = await pool.acquire()  # warm, t=2
        b = await pool.acquire()  # spillover: a cold start, busy from t=4
        clock.advance(6.0)  # t=10
        await pool.release(a.worker)
        await pool.release(b.worker)
        clock.advance(10.0)  # t=20
        # All requests: (1 x 8 + 1 x 6) / (4 x 18); provisioned: (1 x 8) / (1 x 18).
        assert pool.concurrency_utilization(clock.now()) == pytest.approx(14 / 72)
        assert pool.utilization(clock.now()) == (pytest.approx(8 / 18), 1)
    run(scenario())
