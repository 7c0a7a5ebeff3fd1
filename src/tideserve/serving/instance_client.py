"""The one way into an instance: every path that reaches one (the router, serverless workers,
the async dispatcher) sends its request through an InstanceClient.

What it owns, so that the three paths cannot drift apart:

- **connections**: one keep-alive pool for all instances. The router closes an idle pooled
  connection after KEEPALIVE_SECONDS (30 s), well before our instance server does (uvicorn's
  timeout_keep_alive, 75 s in serving/instance.py), so a connection is not closed by the
  instance just as a request is written on it. A user's own server may keep connections for
  less (gunicorn: 2 s), so a request that fails on a *reused* connection before any byte of
  an answer (the peer had closed it) is sent once more on a fresh connection: that is
  `stale`, and it costs nothing when connections are healthy.
- **headers**: the SageMaker headers a client may pass to a model (ForwardHeaders, built once
  per request from the front's lower-cased headers, whatever the number of attempts), the
  instance's token (serving/instance_token.py), and the router's timeout.
- **in flight**: `invoke(track=True)` counts the request on its Backend while it is at the
  instance, which least-outstanding routing and ConcurrentRequestsPerModel read. Kinds that
  hold a slot longer than the request (an async slot, a serverless lease) count it
  themselves.
- **trace context**: a traced request's hop is an `instance.invoke` span, and its context
  goes to the instance as `traceparent` and `X-Amzn-Trace-Id` (tracing/propagation.py), so
  the instance's spans join the request's trace. A tideserve extension: SageMaker strips such
  headers (spec §6.2); an untraced request sends neither.
- **failures**, in one wording: `Undelivered` (no byte of an answer came back: the request
  may be sent again, see serving/router.py), or a ModelInvocationError built here for a
  timeout, an answer that broke off, or a container's non-2xx status.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tideserve.errors import ModelInvocationError
from tideserve.serving import http1
from tideserve.serving.containers.report import REPORT_HEADER_RAW
from tideserve.serving.instance_token import TOKEN_HEADER
from tideserve.serving.routes import Backend
from tideserve.tracing import CLIENT, failed, hop_header_dict, hop_headers, span

KEEPALIVE_SECONDS = 30.0  # < the instance server's 75 s (serving/instance.py)
CONNECT_TIMEOUT_SECONDS = 2.0
TIMEOUT_HEADER = "X-Tideserve-Model-Timeout"  # tells the instance when to drop queued work
HOP_SPAN = "instance.invoke"

# The request headers a model may see, by their lower-cased name: everything else (the
# client's Authorization, Host, X-Tideserve-Invocation) stays at the front.
_FORWARD = (
    ("content-type", "Content-Type"),
    ("accept", "Accept"),
    ("x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"),
    ("x-amzn-sagemaker-inference-id", "X-Amzn-SageMaker-Inference-Id"),
    # Reaches only multi-container instances: the router refuses it for any other
    # (serving/containers/report.py).
    ("x-amzn-sagemaker-target-container-hostname", "X-Amzn-SageMaker-Target-Container-Hostname"),
    ("x-amzn-sagemaker-target-model", "X-Amzn-SageMaker-Target-Model"),  # multi-model only
)
_STALE_ERRORS = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def forward_headers(lowered: Mapping[str, str]) -> dict[str, str]:
    """The headers to pass on, from a request's lower-cased ones; built once per request."""
    return {out: lowered[name] for name, out in _FORWARD if name in lowered}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    custom_attributes: str | None
    model_us: float  # from sending the request to the last byte of the answer
    # A multi-container instance's X-Tideserve-Containers (serving/containers/report.py);
    # None from any other.
    report: str | None = None
    # A multi-model instance's X-Tideserve-Multi-Model and X-Tideserve-Error (read only from
    # one: serving/multi_model.py).
    multi_model: str | None = None
    error_type: str | None = None


class Undelivered(Exception):
    """No byte of an answer came back: the instance refused the connection (`refused`: it
    is gone) or closed it after taking the request (it may have begun, or died)."""

    def __init__(self, detail: str, *, refused: bool) -> None:
        super().__init__(detail)
        self.refused = refused


class InstanceClient:
    def __init__(self, timeout: float, keepalive: float = KEEPALIVE_SECONDS) -> None:
        """`timeout`: seconds a model has to answer (a request may set its own)."""
        self.timeout = timeout
        self.keepalive = keepalive
        self.timeout_value = f"{timeout:g}"
        self._http = http1.Http1Client(keepalive, CONNECT_TIMEOUT_SECONDS)
        self._prefixes: dict[tuple[str, str | None], tuple[str, int, bytes]] = {}
        self._pooled: aiohttp.ClientSession | None = None  # stream(): bodies from files
        self._fresh: aiohttp.ClientSession | None = None

    # -- sessions ---------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._pooled is None or self._pooled.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_reuseconn.append(_mark_reused)
            self._pooled = _new_session(
                aiohttp.TCPConnector(limit=0, keepalive_timeout=self.keepalive,
                                     ttl_dns_cache=None),
                self.timeout, [trace])
        return self._pooled

    def _fresh_session(self) -> aiohttp.ClientSession:
        """A connection of its own for each request: where a stale one is sent again."""
        if self._fresh is None or self._fresh.closed:
            self._fresh = _new_session(
                aiohttp.TCPConnector(limit=0, force_close=True, ttl_dns_cache=None),
                self.timeout, [])
        return self._fresh

    async def close(self) -> None:
        self._http.close()
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()

    # -- requests ---------------------------------------------------------------------------

    def _headers(self, backend: Backend, headers: Mapping[str, str]) -> dict[str, str]:
        out = dict(headers)
        if backend.token:
            out[TOKEN_HEADER] = backend.token
        return out

    async def invoke(
        self, backend: Backend, body: bytes, headers: Mapping[str, str], *, track: bool = True,
        hop_span: tuple[str, Mapping[str, str | int]] | None = None,
    ) -> Reply:
        """POST `body` to the instance's /invocations and read the whole answer. Raises
        Undelivered, or ModelInvocationError for a timeout or an answer that broke off; a
        non-2xx status is a Reply (the caller words it with model_error). A traced request
        is one `instance.invoke` span per call (or the caller's `hop_span`, name and
        attributes: a pipeline's hop to a container), whose context the instance continues."""
        name, attributes = hop_span or (HOP_SPAN, {"tideserve.instance_id": backend.instance_id})
        with span(name, attributes, CLIENT) as hop:
            reply = await self._invoke(backend, body, headers, track)
            if hop.is_recording():
                hop.set_attribute("http.response.status_code", reply.status)
            return reply

    async def _invoke(
        self, backend: Backend, body: bytes, headers: Mapping[str, str], track: bool
    ) -> Reply:
        host, port, prefix = self._prefix(backend)
        head = b"".join((prefix, _header_lines(headers), hop_headers(),
                         b"Content-Length: %d\r\n\r\n" % len(body)))
        if track:
            backend.in_flight += 1
        t0 = time.perf_counter()
        try:
            answer = await self._post(host, port, head, body)
        except TimeoutError:
            raise model_timeout() from None
        except http1.Broken as exc:
            raise model_unreachable(str(exc)) from exc
        finally:
            if track:
                backend.in_flight -= 1
        model_us = (time.perf_counter() - t0) * 1e6
        reply = Reply(answer.status, answer.body,
                      answer.header(b"content-type") or "application/octet-stream",
                      answer.header(b"x-amzn-sagemaker-custom-attributes"), model_us,
                      answer.header(REPORT_HEADER_RAW) if backend.containers is not None
                      else None)
        if backend.multi_model:
            reply = replace(reply, multi_model=answer.header(b"x-tideserve-multi-model"),
                            error_type=answer.header(b"x-tideserve-error"))
        return reply

    async def _post(self, host: str, port: int, head: bytes, body: bytes) -> http1.Answer:
        try:
            return await self._http.post(host, port, head, body, self.timeout)
        except http1.Lost as exc:
            if not exc.reused:
                raise Undelivered(str(exc), refused=exc.refused) from None
        # The pooled connection had been closed by the instance: once more, fresh.
        try:
            return await self._http.post(host, port, head, body, self.timeout, fresh=True)
        except http1.Lost as exc:
            raise Undelivered(str(exc), refused=exc.refused) from None

    def _prefix(self, backend: Backend) -> tuple[str, int, bytes]:
        """(host, port, request line and the headers every request to it carries)."""
        key = (backend.url, backend.token)
        known = self._prefixes.get(key)
        if known is None:
            url = urlsplit(backend.url)
            host, port = url.hostname or "127.0.0.1", url.port or 80
            lines = [f"POST {url.path.rstrip('/')}/invocations HTTP/1.1",
                     f"Host: {url.netloc}", f"{TIMEOUT_HEADER}: {self.timeout_value}"]
            if backend.token:
                lines.append(f"{TOKEN_HEADER}: {backend.token}")
            known = (host, port, ("\r\n".join(lines) + "\r\n").encode("latin-1"))
            if len(self._prefixes) > 4096:  # instances come and go; their prefixes too
                self._prefixes.clear()
            self._prefixes[key] = known
        return known

    @asynccontextmanager
    async def stream(
        self, backend: Backend, data: Any, headers: Mapping[str, str], timeout: float
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST `data` (bytes or an open file, sent in chunks) with its own `timeout`, and
        yield the response as soon as its head arrived, for the caller to stream. Raises
        Undelivered or TimeoutError; errors while the caller reads are aiohttp's. Traced as
        one `instance.invoke` span, until the caller has read what it wanted."""
        with span(HOP_SPAN, {"tideserve.instance_id": backend.instance_id}, CLIENT) as hop:
            sent = {**self._headers(backend, headers), **hop_header_dict()}
            try:
                async with self._open(backend, data, sent, timeout) as resp:
                    if hop.is_recording():
                        hop.set_attribute("http.response.status_code", resp.status)
                    yield resp
            except Undelivered as exc:
                failed(hop, exc)
                raise

    @asynccontextmanager
    async def _open(
        self, backend: Backend, data: Any, headers: dict[str, str], timeout: float | None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        url = backend.url + "/invocations"
        limits = None if timeout is None else aiohttp.ClientTimeout(
            total=timeout, connect=CONNECT_TIMEOUT_SECONDS)
        reused = SimpleNamespace(reused=False)
        try:
            resp = await self._session().post(url, data=data, headers=headers, timeout=limits,
                                              trace_request_ctx=reused)
        except TimeoutError:  # aiohttp's timeouts are ClientErrors too: never "undelivered"
            raise
        except _STALE_ERRORS as exc:
            if not (reused.reused and _rewound(data)):
                raise _undelivered(exc) from exc
            # The pooled connection had been closed by the instance: once more, fresh.
            try:
                resp = await self._fresh_session().post(url, data=data, headers=headers,
                                                        timeout=limits)
            except TimeoutError:
                raise
            except aiohttp.ClientError as again:
                raise _undelivered(again) from again
        except aiohttp.ClientError as exc:
            raise _undelivered(exc) from exc
        async with resp:
            yield resp


def _header_lines(headers: Mapping[str, str]) -> bytes:
    """`Name: value` lines; a value that could end the line early is not sent (the front's
    HTTP parser refuses those already; this keeps the hop safe from any other caller)."""
    out = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            continue
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1", "replace")


def _new_session(connector: aiohttp.TCPConnector, timeout: float,
                 traces: list[aiohttp.TraceConfig]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=CONNECT_TIMEOUT_SECONDS),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        trace_configs=traces or None,
    )


async def _mark_reused(session: Any, context: Any, params: Any) -> None:
    request_ctx = context.trace_request_ctx
    if request_ctx is not None:
        request_ctx.reused = True


def _rewound(data: Any) -> bool:
    """Whether `data` can be sent again: bytes can; a file is rewound to its start."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return True
    try:
        data.seek(0)
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _undelivered(exc: BaseException) -> Undelivered:
    refused = isinstance(exc, aiohttp.ClientConnectorError)
    return Undelivered(str(exc) or type(exc).__name__, refused=refused)


# -- what a client is told, in one wording for every kind ------------------------------------


def failure_message(status: int, text: str, container: str = "primary") -> str:
    """How SageMaker words a container's non-2xx answer (status 0: none came); `container`
    is the ContainerHostname in a multi-container model."""
    kind = "client" if 400 <= status < 500 else "server"
    return f'Received {kind} error ({status}) from {container} with message "{text}".'


def _console_hint(region: str, endpoint: str, account: str) -> str:
    return (
        f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logEventViewer:group=/aws/sagemaker/Endpoints/{endpoint} in account {account} "
        "for more information."
    )


def model_error(status: int, body: bytes, region: str, endpoint: str,
                message: str | None = None) -> ModelInvocationError:
    """`message`: the whole sentence, where the caller has one (a multi-container front's)."""
    text = body.decode("utf-8", errors="replace")
    return ModelInvocationError(
        (message or failure_message(status, text)) + " "
        + _console_hint(region, endpoint, "tideserve"),
        original_status=status,
        original_message=text,
    )


def timed_out(container: str = "primary") -> str:
    return (f"Your invocation timed out while waiting for a response from container "
            f"{container}. Review the latency metrics for each container in Amazon "
            "CloudWatch, resolve the issue, and try again.")


TIMED_OUT = timed_out()


def model_timeout() -> ModelInvocationError:
    return ModelInvocationError(failure_message(0, TIMED_OUT), original_status=0,
                                original_message="timed out")


def model_unreachable(detail: str) -> ModelInvocationError:
    return ModelInvocationError(failure_message(0, detail), original_status=0,
                                original_message=detail)
