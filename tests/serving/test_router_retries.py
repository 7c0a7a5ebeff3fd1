"""Which failures the router sends again: a request an instance hung up on before answering
goes to its peer, even while the dying instance still accepts connections; what an instance
began to answer, and a timeout, are final; with no instance left the client gets
ServiceUnavailable, never a raw disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tideserve.errors import ModelInvocationError, UnavailableError
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serving.router import Invocation, Router
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable, VariantRoute

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An instance dying mid-prediction: it took the request and closes without a byte,
    while its port still accepts connections."""
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            await reader.readexactly(length)
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    await writer.drain()
    writer.close()


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _invoke(handlers: list[Handler], timeout: float = 5.0) -> tuple[bytes, list[Backend]]:
    servers = [await _serve(h) for h in handlers]
    backends = [Backend(f"i-{n}", url) for n, (_, url) in enumerate(servers)]
    routes = RouteTable()
    routes.put(EndpointRoute("ep", [VariantRoute("AllTraffic", 1.0, backends)]))
    router = Router(routes, MetricAggregator(60.0), "123456789012", "us-east-1", timeout=timeout)
    router.rng.seed(1)
    try:
        # The first backend is the one picked: it has one fewer request in flight.
        for b in backends[1:]:
            b.in_flight = 1
        result = await router.invoke(Invocation("ep", b"[1]", {"content-type": "text/csv"}))
        return result.body, backends
    finally:
        await router.close()
        await asyncio.sleep(0.05)  # the fake instances see their connections close
        for server, _ in servers:
            server.close()
            await server.wait_closed()


def test_a_hang_up_before_any_byte_goes_to_the_peer():
    body, backends = asyncio.run(_invoke([_hang_up, _answer]))
    assert body == b"ok"
    assert all(b.in_flight == (0 if n == 0 else 1) for n, b in enumerate(backends))


def test_with_no_peer_left_the_answer_is_service_unavailable():
    with pytest.raises(UnavailableError, match="stopped before they answered"):
        asyncio.run(_invoke([_hang_up, _hang_up]))


def test_an_answer_cut_short_is_final():
    with pytest.raises(ModelInvocationError):
        asyncio.run(_invoke([_half_answer, _answer]))
