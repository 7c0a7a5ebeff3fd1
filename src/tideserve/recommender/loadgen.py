"""The load generator of one benchmark: a child process (so its event loop and the GIL are
not the server's) that drives an instance's POST /invocations over loopback.

A user is a client looping requests back-to-back, as AWS's load tests define one. The number
of users follows the traffic pattern on AWS time (wall seconds / time scale), and the sample
payloads are sent round-robin, each user starting at its own offset. Every window it prints
one JSON line: {"start", "seconds", "users", "completed", "errors", "p50_ms", "p95_ms",
"p99_ms"}; the parent (bench.py) reads them, adds the instance's CPU and memory, and stops it
when the test breaks. It runs until killed or until `max_seconds`.

    python -m tideserve.recommender.loadgen < config.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from tideserve.recommender.spec import Phase, Traffic

REQUEST_TIMEOUT_SECONDS = 60.0


class Counters:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0

    def take(self) -> tuple[list[float], int]:
        out, errors = self.latencies, self.errors
        self.latencies, self.errors = [], 0
        return out, errors


async def _user(http: aiohttp.ClientSession, url: str, payloads: list[bytes], offset: int,
                headers: dict[str, str], counters: Counters) -> None:
    i = offset
    while True:
        body = payloads[i % len(payloads)]
        i += 1
        began = time.perf_counter()
        try:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            counters.latencies.append((time.perf_counter() - began) * 1000.0)
        else:
            counters.errors += 1
            await asyncio.sleep(0.01)  # a broken instance is not hammered in a tight loop


async def run(config: dict[str, Any]) -> None:
    traffic = Traffic(tuple(Phase(*p) for p in config["phases"]))
    payloads = [p.read_bytes() for p in sorted(Path(config["payload_dir"]).iterdir())]
    headers = {"Content-Type": config["content_type"], **config.get("headers", {})}
    url = config["url"].rstrip("/") + "/invocations"
    scale, window = float(config["time_scale"]), float(config["window_seconds"])
    counters = Counters()
    users: list[asyncio.Task[None]] = []
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=0)) as http:
        began = time.time()
        while time.time() - began < float(config["max_seconds"]):
            start = time.time()
            want = traffic.users_at((start - began) / scale)
            while len(users) < want:
                users.append(asyncio.create_task(
                    _user(http, url, payloads, len(users), headers, counters)))
            while len(users) > want:
                users.pop().cancel()
            await asyncio.sleep(window)
            latencies, errors = counters.take()
            _emit(start, time.time() - start, len(users), latencies, errors)
        for task in users:
            task.cancel()


def _emit(start: float, seconds: float, users: int, latencies: list[float],
          errors: int) -> None:
    pct = (np.percentile(latencies, [50, 95, 99]).tolist() if latencies else [0.0, 0.0, 0.0])
    line = {"start": start, "seconds": seconds, "users": users, "completed": len(latencies),
            "errors": errors, "p50_ms": pct[0], "p95_ms": pct[1], "p99_ms": pct[2]}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(run(json.loads(sys.stdin.read())))
