"""What an unauthenticated client can make the server spend: connections that send nothing
or trickle their header are closed at the header deadline, an oversized header is answered
431 before it is buffered, an unsigned body is refused before it is read, and signed clients
are served through a flood of 2,000 idle and slowloris connections. Speed under the flood is
bench/flood.py's to measure; these tests assert behaviour only."""

from __future__ import annotations

import socket
import time

import httpx
import psutil
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.flood import Flood
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows, start_server, stop_server

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def edge(tmp_path_factory, trained):
    srv = start_server(tmp_path_factory.mktemp("edge") / "state",
                       extra=["--header-timeout", str(HEADER_TIMEOUT)])
    try:
        _, _, archive, _ = trained
        sm = srv.client("sagemaker")
        deploy(sm, "flooded", str(archive))
        wait_in_service(sm, "flooded")
        yield srv
    finally:
        stop_server(srv)


def address(srv: RunningServer) -> tuple[str, int]:
    host, port = srv.url.removeprefix("http://").split(":")
    return host, int(port)


def raw_exchange(srv: RunningServer, head: bytes, body_bytes: int, piece: int = 65536):
    """Send `head`, then up to `body_bytes` in pieces until the server answers or closes;
    returns (bytes of body sent, what came back)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small send buffer, so `sent` counts what the server could have read, not what the
    # kernel queued (loopback buffers hold megabytes).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock.settimeout(5)
    sock.connect(address(srv))
    sent, reply = 0, b""
    try:
        sock.sendall(head)
        sock.setblocking(False)
        while sent < body_bytes:
            try:
                reply += sock.recv(65536)
                if reply:
                    break
            except BlockingIOError:
                pass
            try:
                sent += sock.send(b"x" * min(piece, body_bytes - sent))
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break  # reset: the server closed while we were still sending
        sock.settimeout(5)
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    return sent, reply


def test_idle_and_slow_header_connections_are_closed_at_the_header_deadline(edge):
    # 40 connections that send nothing and 10 that send one header byte every 0.3 s: every
    # one is closed by the server HEADER_TIMEOUT after it opened, trickling or not.
    with Flood(*address(edge), idle=40, slow=10, trickle_seconds=0.3, keep_up=False,
               max_seconds=HEADER_TIMEOUT + 10) as flood:
        assert flood.stats.opened == 50
        closed = flood.wait_until(lambda s: s.closed_by_server == 50, HEADER_TIMEOUT + 8)
        lifetimes = sorted(flood.stats.lifetimes)
    assert closed, f"{flood.stats.closed_by_server} of 50 closed"
    assert lifetimes[0] >= HEADER_TIMEOUT - 0.1
    assert lifetimes[-1] < HEADER_TIMEOUT + 3


def test_signed_invocations_and_healthz_are_served_through_a_flood(edge, trained):
    _, X, _, _ = trained
    rt = edge.client("sagemaker-runtime")  # no retries: every call must succeed first time
    with Flood(*address(edge), idle=2000, slow=100, max_seconds=60) as flood:
        assert flood.stats.opened >= 2000
        ok = 0
        for i in range(40):
            resp = rt.invoke_endpoint(EndpointName="flooded", Body=csv_rows(X[i:i + 1]),
                                      ContentType="text/csv")
            ok += resp["ResponseMetadata"]["HTTPStatusCode"] == 200
            if i % 10 == 0:
                assert httpx.get(edge.url + "/healthz", timeout=5).status_code == 200
        # The flood lasted through the invocations, the server closing its connections
        # (past the per-client cap of 1,024 it evicts the oldest idle ones; the rest at the
        # header deadline) and the flooder reopening them.
        flood.wait_until(lambda s: s.closed_by_server > 100, HEADER_TIMEOUT + 5)
        assert flood.stats.closed_by_server > 100
    assert ok == 40


def test_an_oversized_header_gets_431_before_it_is_buffered(edge):
    proc = psutil.Process(edge.proc.pid)
    before = proc.memory_info().rss
    head = b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Big: "
    sent, reply = raw_exchange(edge, head, 64 * 1024 * 1024)  # a 64 MB header, if let
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:100]
    assert sent < 8 * 1024 * 1024  # refused after the first 64 KiB, not the whole header
    assert proc.memory_info().rss - before < 16 * 1024 * 1024
    assert httpx.get(edge.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/endpoints/flooded/invocations", "/"])
def test_an_unsigned_16_mb_body_is_refused_without_being_read(edge, path):
    size = 16 * 1024 * 1024
    head = (f"POST {path} HTTP/1.1\r\nHost: edge\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    sent, reply = raw_exchange(edge, head, size)
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.split()[1] in (b"403", b"400"), reply[:300]
    assert b"MissingAuthenticationToken" in reply
    assert b"connection: close" in rest.lower()
    assert sent < 8 * 1024 * 1024  # answered and closed long before the body was through


def test_a_signed_body_declared_over_the_limit_is_refused_at_once(edge):
    key_id, secret = edge.credentials()
    declared = 7 * 1024 * 1024  # InvokeEndpoint's limit is 6 MiB
    request = AWSRequest("POST", edge.url + "/endpoints/flooded/invocations",
                         data=b"x" * declared, headers={"Content-Type": "text/csv"})
    SigV4Auth(Credentials(key_id, secret), "sagemaker", "us-east-1").add_auth(request)
    head = (f"POST /endpoints/flooded/invocations HTTP/1.1\r\nHost: {address(edge)[0]}:"
            f"{address(edge)[1]}\r\nContent-Length: {declared}\r\n")
    for name, value in request.headers.items():
        if name.lower() not in ("host", "content-length"):
            head += f"{name}: {value}\r\n"
    sent, reply = raw_exchange(edge, (head + "\r\n").encode(), declared)
    assert reply.split(b"\r\n")[0].split()[1] == b"400", reply[:300]
    assert b"ValidationError" in reply and b"6291456 bytes" in reply
    assert sent < 8 * 1024 * 1024
