"""A closed-loop HTTP load generator: C connections, each sending the same POST back to back
over keep-alive, for a fixed time. Prints one JSON line: requests, errors, seconds, and
latency percentiles in milliseconds.

Run as its own process so it has its own interpreter (and, with taskset, its own core):
    python bench/loadgen.py URL --body-file F --header 'Content-Type: text/csv' -c 8 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


async def run(url: str, body: bytes, headers: dict[str, str], concurrency: int,
              warmup: float, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        measure_from = time.perf_counter() + warmup
        stop_at = measure_from + duration

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    if ok:
                        latencies.append(t1 - t0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"requests": len(latencies), "errors": errors, "seconds": duration,
            "rps": len(latencies) / duration, "p50_ms": pct(50), "p99_ms": pct(99)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    ap.add_argument("-w", "--warmup", type=float, default=1.0)
    ap.add_argument("-d", "--duration", type=float, default=5.0)
    a = ap.parse_args()
    headers = dict(h.split(": ", 1) for h in a.header)
    with open(a.body_file, "rb") as f:
        body = f.read()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    started = time.time()
    result = asyncio.run(run(a.url, body, headers, a.concurrency, a.warmup, a.duration))
    result["wall"] = time.time() - started
    print(json.dumps(result))


if __name__ == "__main__":
    main()
