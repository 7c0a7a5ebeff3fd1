"""A small HTTP/1.1 client for one job: POST a body that is already in memory to an instance
on a keep-alive connection and read its whole answer. It is what InstanceClient.invoke runs
on, because a general client costs several times more CPU per request than the hop itself
(bench/serving.py; aiohttp: ~250 µs a request against a trivial server, this: ~50 µs).

A connection is an asyncio.Protocol with httptools' response parser (the C parser uvicorn
uses on the server side). Connections are pooled per (host, port), newest first, and one idle
longer than `keepalive` seconds is closed instead of reused. Failures are told apart by what
came back: nothing at all (Lost, with `reused` saying whether the connection had carried an
earlier request), part of an answer (Broken), or no answer in time (TimeoutError).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools


class Lost(Exception):
    """The connection closed before a byte of the answer came back."""

    def __init__(self, detail: str, *, reused: bool, refused: bool = False) -> None:
        super().__init__(detail)
        self.reused = reused
        self.refused = refused


class Broken(Exception):
    """The instance began to answer and then broke off (or sent what is not HTTP)."""


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers  # as received: names in the instance's case
        self.body = body

    def header(self, lowered_name: bytes) -> str | None:
        for name, value in self.headers:
            if name.lower() == lowered_name:
                return value.decode("latin-1")
        return None


class _Connection(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.requests = 0  # sent on this connection, this one included
        self.idle_since = 0.0
        self._answered = False  # a byte of the current answer came back
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._keep = True

    # -- the request --------------------------------------------------------------------------

    def send(self, head: bytes, body: bytes, waiter: asyncio.Future[Answer]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.requests += 1
        self._answered = self._headers_done = False
        self._headers, self._body = [], []
        if len(body) < 16384:
            self.transport.write(head + body)  # one segment for a small request
        else:
            self.transport.writelines((head, body))

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Broken(f"the instance's answer is not HTTP: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self._headers_done and self._delimited_by_close():
            self._complete()  # an answer whose body ends where the connection does
            return
        detail = str(exc) if exc else "the instance closed the connection"
        if self._answered:
            self._fail(Broken(f"{detail} before its answer was complete"))
        else:
            self._fail(Lost(f"{detail} before answering", reused=self.requests > 1))

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._keep = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete()

    # -- outcome ------------------------------------------------------------------------------

    def _delimited_by_close(self) -> bool:
        names = {n.lower() for n, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        waiter.set_result(Answer(self.parser.get_status_code(), self._headers, body))
        if self._keep and not self.closed:
            self.pool.release(self)
        else:
            self.abort()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _Pool:
    """Idle connections to one (host, port), the most recently used last."""

    def __init__(self, host: str, port: int, keepalive: float) -> None:
        self.host, self.port, self.keepalive = host, port, keepalive
        self.idle: deque[_Connection] = deque()

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            transport = conn.transport
            if (not conn.closed and transport is not None and not transport.is_closing()
                    and now - conn.idle_since < self.keepalive):
                return conn
            conn.abort()  # closed by the instance, or idle past our keep-alive
        return None

    def release(self, conn: _Connection) -> None:
        assert conn.transport is not None
        conn.idle_since = asyncio.get_running_loop().time()
        self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        while self.idle:
            self.idle.pop().abort()


class Http1Client:
    def __init__(self, keepalive: float, connect_timeout: float) -> None:
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._pools: dict[tuple[str, int], _Pool] = {}

    async def post(self, host: str, port: int, head: bytes, body: bytes, timeout: float,
                   *, fresh: bool = False) -> Answer:
        """Send `head` (the request line and headers, ending in a blank line) and `body`; the
        whole answer within `timeout` seconds. `fresh`: on a new connection."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = _Pool(host, port, self.keepalive)
        deadline = loop.time() + timeout
        conn = None if fresh else pool.take(loop.time())
        if conn is None:
            conn = await self._connect(pool, min(timeout, self.connect_timeout))
        waiter: asyncio.Future[Answer] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter, conn)
        try:
            conn.send(head, body, waiter)
            return await waiter
        except asyncio.CancelledError:
            conn.abort()  # the answer would arrive for nobody, on a connection others reuse
            raise
        finally:
            timer.cancel()

    async def _connect(self, pool: _Pool, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(pool), pool.host, pool.port)
        except TimeoutError:
            raise
        except OSError as exc:
            raise Lost(f"Cannot connect to {pool.host}:{pool.port}: {exc.strerror or exc}",
                       reused=False, refused=True) from exc
        return conn

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _expire(waiter: asyncio.Future[Answer], conn: _Connection) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
        conn.abort()
