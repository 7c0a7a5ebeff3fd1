"""The instance client: what it sends an instance, and which failures it sends again itself.
A pooled connection the instance had closed (a stale keep-alive) is retried once on a fresh
connection; a hang-up on a fresh connection is the caller's to decide (the router's retries)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tideserve.serving.instance_client import InstanceClient, Undelivered, forward_headers
from tideserve.serving.routes import Backend

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class FakeInstance:
    """An instance on loopback that answers `answers` requests per connection, then closes
    the connection on the next one without a byte (as a keep-alive expiry racing a request
    looks to the client); it records every request head it read."""

    def __init__(self, answers: int) -> None:
        self.answers = answers
        self.heads: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for served in range(self.answers + 1):
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                if served == self.answers:
                    break
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _with_instance(
    instance: FakeInstance, body: Callable[[Backend, InstanceClient], Awaitable[None]]
) -> None:
    server = await asyncio.start_server(instance.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = InstanceClient(timeout=5.0)
    try:
        await body(Backend("i-0", f"http://127.0.0.1:{port}", token="secret-token"), client)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


def test_a_stale_pooled_connection_is_sent_again_on_a_fresh_one():
    instance = FakeInstance(answers=1)

    async def twice(backend: Backend, client: InstanceClient) -> None:
        first = await client.invoke(backend, b"[1]", {"Content-Type": "text/csv"})
        # The second request goes out on the pooled connection, which the instance closes.
        second = await client.invoke(backend, b"[2]", {"Content-Type": "text/csv"})
        assert (first.status, first.body, second.status, second.body) == (200, b"ok", 200, b"ok")
        assert backend.in_flight == 0

    asyncio.run(_with_instance(instance, twice))
    assert instance.connections == 2
    assert len(instance.heads) == 3  # the stale attempt reached the socket, then once more


def test_a_hang_up_on_a_fresh_connection_is_not_sent_again():
    instance = FakeInstance(answers=0)

    async def once(backend: Backend, client: InstanceClient) -> None:
        with pytest.raises(Undelivered) as failed:
            await client.invoke(backend, b"[1]", {"Content-Type": "text/csv"})
        assert not failed.value.refused  # the instance is there: it took the request
        assert backend.in_flight == 0

    asyncio.run(_with_instance(instance, once))
    assert len(instance.heads) == 1


def test_a_refused_connection_says_the_instance_is_gone():
    async def refused() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        client = InstanceClient(timeout=5.0)
        try:
            with pytest.raises(Undelivered) as failed:
                await client.invoke(Backend("i-0", f"http://127.0.0.1:{port}"), b"x", {})
        finally:
            await client.close()
        assert failed.value.refused

    asyncio.run(refused())


def test_only_the_sagemaker_headers_the_token_and_the_timeout_reach_the_instance():
    instance = FakeInstance(answers=1)
    front = {"content-type": "text/csv", "accept": "application/json",
             "x-amzn-sagemaker-custom-attributes": "trace=1",
             "x-amzn-sagemaker-inference-id": "req-7", "authorization": "AWS4-HMAC-SHA256 x",
             "x-tideserve-invocation": "async", "x-amz-date": "20260101T000000Z"}

    async def once(backend: Backend, client: InstanceClient) -> None:
        await client.invoke(backend, b"[1]", forward_headers(front))

    asyncio.run(_with_instance(instance, once))
    lines = instance.heads[0].decode().split("\r\n")[1:]
    names = {line.split(":")[0].lower() for line in lines if line}
    assert names == {"host", "content-length", "content-type", "accept",
                     "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id",
                     "x-tideserve-instance-token", "x-tideserve-model-timeout"}
    assert "X-Tideserve-Instance-Token: secret-token" in lines
    assert "X-Tideserve-Model-Timeout: 5" in lines


def test_a_connection_idle_past_the_keep_alive_is_not_reused():
    instance = FakeInstance(answers=5)

    async def apart(backend: Backend, _: InstanceClient) -> None:
        client = InstanceClient(timeout=5.0, keepalive=0.05)
        try:
            await client.invoke(backend, b"[1]", {})
            await asyncio.sleep(0.15)
            await client.invoke(backend, b"[2]", {})
        finally:
            await client.close()

    asyncio.run(_with_instance(instance, apart))
    assert (instance.connections, len(instance.heads)) == (2, 2)  # a new one, not a retry


async def _chunked_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     b"2\r\n0,\r\n1\r\n1\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()  # the client closes it: it said Connection: close
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read()  # until the client gives up and drops the connection
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _client_of(handler, timeout: float, n: int):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    backend = Backend("i-0", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    client = InstanceClient(timeout=timeout)
    try:
        return [await client.invoke(backend, b"[1]", {}) for _ in range(n)], backend
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


def test_a_chunked_answer_is_joined_and_connection_close_is_honoured():
    replies, _ = asyncio.run(_client_of(_chunked_then_close, 5.0, 2))
    assert [(r.status, r.body, r.content_type) for r in replies] == [(200, b"0,1", "text/csv")] * 2


def test_no_answer_in_time_is_a_model_timeout_and_leaves_nothing_in_flight():
    from tideserve.errors import ModelInvocationError

    with pytest.raises(ModelInvocationError) as failed:
        asyncio.run(_client_of(_silent, 0.3, 1))
    assert failed.value.original_status == 0
    assert "timed out" in failed.value.message
