"""Queued predictions nobody waits for are dropped, not run: the router's timeout has passed,
or the client hung up, before a prediction thread was free."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from tideserve.serving.abandonable import AbandonableWork, Abandoned
from tideserve.serving.instance import InstanceApp


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_work_runs_while_someone_waits():
    clock = FakeClock()
    work = AbandonableWork(deadline=clock.t + 55, now=clock)
    clock.t += 54.9  # a thread frees just before the router gives up
    assert work.run(lambda x: x * 2, 21) == 42


def test_work_past_the_routers_timeout_is_not_started():
    clock = FakeClock()
    calls: list[int] = []
    work = AbandonableWork(deadline=clock.t + 55, now=clock)
    clock.t += 56
    with pytest.raises(Abandoned, match="timeout passed 1.0 s"):
        work.run(calls.append, 1)
    assert calls == []


def test_work_whose_client_hung_up_is_not_started():
    clock = FakeClock()
    work = AbandonableWork(deadline=float("inf"), now=clock)

    async def hang_up() -> dict:
        return {"type": "http.disconnect"}

    asyncio.run(work.watch(hang_up))
    with pytest.raises(Abandoned, match="disconnected"):
        work.run(print, "never")


class SlowRuntime:
    """Counts the predictions it starts; each holds its thread `seconds`."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = 0
        self.lock = threading.Lock()

    def invoke(self, body: bytes, content_type: str, accept: str, attributes: str | None):
        with self.lock:
            self.started += 1
        time.sleep(self.seconds)
        return SimpleNamespace(body=body, content_type="text/plain", custom_attributes=None)


def test_an_instance_with_one_thread_drops_the_request_the_router_gave_up_on():
    runtime = SlowRuntime(0.3)
    app = InstanceApp(runtime, threads=1, max_payload_bytes=1024)

    async def call(timeout: float) -> list[dict]:
        sent: list[dict] = []
        messages = [{"type": "http.request", "body": b"x", "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # the client stays connected
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/invocations", "method": "POST",
                 "headers": [(b"x-tideserve-model-timeout", str(timeout).encode())]}
        await app(scope, receive, send)
        return sent

    async def scenario() -> tuple[list[dict], list[dict]]:
        # The first holds the only thread for 0.3 s; the second's router waits only 0.1 s.
        return tuple(await asyncio.gather(call(5.0), call(0.1)))  # type: ignore[return-value]

    first, second = asyncio.run(scenario())
    app.pool.shutdown()
    assert first[0]["status"] == 200
    assert second == []  # nothing sent: the router had long closed the connection
    assert runtime.started == 1
