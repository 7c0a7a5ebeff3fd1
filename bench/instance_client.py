"""CPU per forward of the instance client (serving/http1.py under InstanceClient.invoke)
beside aiohttp configured as the router used it before (its own keep-alive pool), both
against the same trivial HTTP server in this process, on uvloop: prints µs of CPU per
request (client + server), median of 5 runs of 2,000; asserts nothing.
Run: .venv/bin/python bench/instance_client.py"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop

from tideserve.serving.instance_client import InstanceClient
from tideserve.serving.routes import Backend

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BODY = b"17.99,10.38,122.8,1001.0"


class Trivial(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            self.transport.write(OK)  # type: ignore[attr-defined]


async def cpu_us(send: Callable[[], Awaitable[None]]) -> float:
    for _ in range(300):
        await send()
    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(2000):
            await send()
        runs.append((time.process_time() - start) / 2000 * 1e6)
    return statistics.median(runs)


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Trivial, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(total=55, connect=2.0), auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"))
    client = InstanceClient(55.0)
    backend = Backend("i-0", url, token="token")
    headers = {"Content-Type": "text/csv", "X-Tideserve-Model-Timeout": "55",
               "X-Tideserve-Instance-Token": "token"}

    async def with_aiohttp() -> None:
        async with session.post(url + "/invocations", data=BODY, headers=headers) as resp:
            await resp.read()

    async def with_instance_client() -> None:
        await client.invoke(backend, BODY, {"Content-Type": "text/csv"})

    try:
        for label, send in (("aiohttp ClientSession", with_aiohttp),
                            ("InstanceClient (http1)", with_instance_client)):
            print(f"{label:24} {await cpu_us(send):7.1f} µs CPU per forward", flush=True)
    finally:
        await session.close()
        await client.close()
        server.close()


if __name__ == "__main__":
    uvloop.run(main())
