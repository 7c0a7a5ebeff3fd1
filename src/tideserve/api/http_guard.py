"""What a connection may cost before it has sent a request: the HTTP edge's limits.

uvicorn closes a keep-alive connection that stays idle after a response (timeout_keep_alive),
but nothing else: a connection that never sends a request, or sends its header one byte at a
time (slowloris), stays open forever, its header may grow without bound (httptools buffers
it whole), and `limit_concurrency` answers 503 to *every* request once the count of open
connections passes it — it punishes the clients that did send a request, the wrong way
round under a flood. So the server runs this subclass of uvicorn's httptools protocol:

- **header deadline**: a request's line and headers must be complete `header_timeout`
  seconds after its first byte (or after the connection opened); then the connection is
  closed (408 if it had sent anything). Trickling bytes does not extend the deadline.
- **header size**: more than `max_header_bytes` before the header ends is answered 431 and
  closed; at most one read (256 KiB) beyond the limit is ever buffered.
- **connections per client**: a client (peer IP) with more than `max_per_client` connections
  open loses its least recently used one that has no request in flight; with every one busy,
  the new connection is closed. The same rule applies over all clients at `max_total`
  (from the open-file limit), so idle connections can never starve a signed client of fds.

"Least recently used" counts completed requests, not bytes: a slowloris connection ranks by
when it opened, however often it trickles, and a client's pooled keep-alive connection by its
last response, so a flood evicts its own connections first.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_SECONDS = 10.0  # Apache's RequestReadTimeout allows 20-40 s; botocore sends at once
MAX_HEADER_BYTES = 64 * 1024  # a presigned URL with a session token and S3 metadata fit easily
MAX_CONNECTIONS_PER_CLIENT = 1024
FD_RESERVE = 256  # files the server needs besides connections: database, logs, instance sockets

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
_TOO_LARGE_BODY = b"Request header fields exceed the server's limit."
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TOO_LARGE_BODY)).encode() + b"\r\n\r\n" + _TOO_LARGE_BODY
)


@dataclass(frozen=True)
class EdgeLimits:
    header_timeout: float = HEADER_TIMEOUT_SECONDS  # seconds from a request's first byte
    max_header_bytes: int = MAX_HEADER_BYTES  # request line and headers, bytes
    max_per_client: int = MAX_CONNECTIONS_PER_CLIENT  # open connections per peer IP
    max_total: int = 65536  # open connections in all


@dataclass(eq=False)
class ConnectionLedger:
    """Open connections by client; those with no request in flight in LRU order (oldest
    first), per client and overall, so eviction is O(1)."""

    limits: EdgeLimits
    by_client: dict[str, int] = field(default_factory=dict)
    idle: OrderedDict[Any, None] = field(default_factory=OrderedDict)
    idle_by_client: dict[str, OrderedDict[Any, None]] = field(default_factory=dict)
    total: int = 0

    def admit(self, conn: Any, client: str) -> bool:
        """Count a new connection (idle: it has sent nothing); make room by evicting, or
        answer False when every connection of the client (or of all) is busy."""
        if self.by_client.get(client, 0) >= self.limits.max_per_client:
            victim = next(iter(self.idle_by_client.get(client, ())), None)
            if victim is None:
                return False
            victim.evict()
        if self.total >= self.limits.max_total:
            victim = next(iter(self.idle), None)
            if victim is None:
                return False
            victim.evict()
        self.by_client[client] = self.by_client.get(client, 0) + 1
        self.total += 1
        self.mark_idle(conn, client)
        return True

    def mark_idle(self, conn: Any, client: str) -> None:
        self.idle[conn] = None
        self.idle.move_to_end(conn)
        per = self.idle_by_client.setdefault(client, OrderedDict())
        per[conn] = None
        per.move_to_end(conn)

    def mark_busy(self, conn: Any, client: str) -> None:
        self.idle.pop(conn, None)
        per = self.idle_by_client.get(client)
        if per is not None:
            per.pop(conn, None)

    def forget(self, conn: Any, client: str) -> None:
        self.mark_busy(conn, client)
        if self.idle_by_client.get(client) == OrderedDict():
            del self.idle_by_client[client]
        left = self.by_client.get(client, 0) - 1
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)
        self.total -= 1


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; `ledger` is set per server by
    guarded_protocol()."""

    ledger: ConnectionLedger

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._reading_header = False
        self._peer = ""
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else ""
        if not self.ledger.admit(self, self._peer):
            transport.close()
            return
        self._counted = True
        self._start_header()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        if self._counted:
            self._counted = False
            self.ledger.forget(self, self._peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_header and (self.cycle is None or self.cycle.response_complete):
            self._start_header()  # the first byte of the next request on a kept-alive connection
        if self._reading_header:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._reading_header and self._header_bytes > self.ledger.limits.max_header_bytes:
            self._refuse(_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._reading_header = False
        self._stop_header_timer()
        if self._counted:
            self.ledger.mark_busy(self, self._peer)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._counted and not self.transport.is_closing():
            self.ledger.mark_idle(self, self._peer)

    def evict(self) -> None:
        """Closed to make room for a newer connection (ConnectionLedger.admit)."""
        if self._counted:
            self._counted = False
            self.ledger.forget(self, self._peer)
        self._stop_header_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _start_header(self) -> None:
        self._reading_header = True
        self._header_bytes = 0
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(
            self.ledger.limits.header_timeout, self._header_timed_out
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._reading_header:
            self._refuse(_TIMEOUT if self._header_bytes else b"")

    def _refuse(self, response: bytes) -> None:
        self._reading_header = False
        self._stop_header_timer()
        if self.transport.is_closing():
            return
        if response:
            self.transport.write(response)
        self.transport.close()


def guarded_protocol(limits: EdgeLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for uvicorn.Config(http=...) sharing one ledger (one per server)."""
    ledger = ConnectionLedger(limits)
    return type("GuardedHttp", (GuardedHttpToolsProtocol,), {"ledger": ledger})


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (a soft 1024 is common and ~1,000 idle
    connections would take every fd); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_budget(open_files: int) -> int:
    """Connections allowed in all: the fds left after the server's own."""
    return max(64, open_files - FD_RESERVE)
