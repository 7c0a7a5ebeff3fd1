"""A connection flood on loopback, for tests and bench/flood.py: idle connections that never
send a byte, and slowloris ones that send a request line and then one header byte at a
time. It runs in a thread, reopens what the server closes (at most `refill` a tick, so a
server that evicts does not turn it into a busy loop), and stops by itself after
`max_seconds`."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from tideserve.api.http_guard import raise_open_file_limit

TICK_SECONDS = 0.05


@dataclass
class FloodStats:
    opened: int = 0
    closed_by_server: int = 0
    refused: int = 0  # connect() failed
    open_now: int = 0
    lifetimes: list[float] = field(default_factory=list)  # seconds until the server closed


class Flood:
    def __init__(self, host: str, port: int, idle: int, slow: int, *,
                 trickle_seconds: float = 0.5, refill: int = 200, max_seconds: float = 60.0,
                 keep_up: bool = True) -> None:
        raise_open_file_limit()
        self.address = (host, port)
        self.idle, self.slow = idle, slow
        self.trickle_seconds = trickle_seconds
        self.refill = refill
        self.max_seconds = max_seconds
        self.keep_up = keep_up  # reopen what the server closes
        self.stats = FloodStats()
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._opened_at: dict[socket.socket, float] = {}
        self._next_byte: dict[socket.socket, float] = {}
        self._thread = threading.Thread(target=self._run, name="flood", daemon=True)

    def __enter__(self) -> Flood:
        self._open(self.idle, slow=False)
        self._open(self.slow, slow=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for sock in list(self._opened_at):
            self._drop(sock)
        self._selector.close()

    def wait_until(self, predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.stats):
                return True
            time.sleep(TICK_SECONDS)
        return bool(predicate(self.stats))

    def _open(self, count: int, slow: bool) -> None:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(2.0)
            try:
                sock.connect(self.address)
                if slow:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: flood\r\nX-Slow: ")
            except OSError:
                sock.close()
                self.stats.refused += 1
                continue
            sock.setblocking(False)
            now = time.monotonic()
            self._opened_at[sock] = now
            if slow:
                self._next_byte[sock] = now + self.trickle_seconds
            self._selector.register(sock, selectors.EVENT_READ, slow)
            self.stats.opened += 1
        self.stats.open_now = len(self._opened_at)

    def _drop(self, sock: socket.socket) -> None:
        self._opened_at.pop(sock, None)
        self._next_byte.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            lost = {False: 0, True: 0}
            for key, _ in self._selector.select(TICK_SECONDS):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 408"):
                    self.stats.closed_by_server += 1
                    self.stats.lifetimes.append(time.monotonic() - self._opened_at[sock])
                    lost[bool(key.data)] += 1
                    self._drop(sock)
            self._trickle()
            if self.keep_up:
                self._open(min(lost[False], self.refill), slow=False)
                self._open(min(lost[True], self.refill), slow=True)
            self.stats.open_now = len(self._opened_at)

    def _trickle(self) -> None:
        now = time.monotonic()
        for sock, due in list(self._next_byte.items()):
            if due <= now:
                try:
                    sock.send(b"a")
                except OSError:
                    continue  # closed; the selector reports it
                self._next_byte[sock] = now + self.trickle_seconds
