"""The front's ASGI app: the container contract for a multi-container instance.

`POST /invocations` runs the model's containers over loopback, through the same
InstanceClient the router uses (keep-alive pool, each container's own token):

- **Serial** (an inference pipeline, spec hosting-jobs §2.3): container 1 gets the client's
  body and Content-Type; container i+1 gets container i's answer as its body and that answer's
  Content-Type as its own; only the last container gets the client's Accept (the earlier ones
  answer in their SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, as AWS's samples configure them);
  custom attributes and the inference id go to every container, and the client gets the last
  one's answer, Content-Type and custom attributes. An answer of more than 5 MiB between two
  containers stops the chain (AWS: "5 MB"; we read it as MiB, the unit of the 6 MB payload
  limit); async invocations, whose payloads may be up to 1 GB, are not held to it.
- **Direct**: the container TargetContainerHostname names (the router has checked it) gets
  the request as it came.

The first container that answers non-2xx, or not at all, stops the chain; the front answers
with its status (502 when there was none) and says which one in the X-Tideserve-Containers
report (report.py), with each container's latency, which the router turns into ModelError,
ContainerLatency and the per-container metrics.

Traced requests (the router's context comes in traceparent, as to any instance): the front's
`instance /invocations` span holds one `container.invoke` span per container it calls (its
ContainerHostname, its place in the chain), and each container's own instance spans continue
the trace under it, since the hop passes the context on as the router's does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import get_current_span

from tideserve.errors import ModelInvocationError
from tideserve.serving import instance as single
from tideserve.serving.containers.plan import ContainerPlan
from tideserve.serving.containers.report import (
    DIRECT,
    REPORT_HEADER,
    TARGET_HEADER_LOWER,
    ContainerReport,
)
from tideserve.serving.instance_client import (
    InstanceClient,
    Reply,
    Undelivered,
    failure_message,
    timed_out,
)
from tideserve.serving.routes import Backend
from tideserve.tracing import SERVER, failed_with, span_under
from tideserve.tracing.propagation import extract_raw

MAX_INTERMEDIATE_BYTES = 5 * 1024 * 1024
CONTAINER_SPAN = "container.invoke"
_REPORT = REPORT_HEADER.lower().encode()
_PASSED_ON = (  # to every container, lower-cased request name -> name sent
    (b"x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"),
    (b"x-amzn-sagemaker-inference-id", "X-Amzn-SageMaker-Inference-Id"),
    (single.INVOCATION_KIND_HEADER.lower().encode(), single.INVOCATION_KIND_HEADER),
)
_NO_ANSWER = 502  # what the front answers for a container that gave none


class ContainerFailed(Exception):
    def __init__(self, report: ContainerReport, body: bytes) -> None:
        super().__init__(report.message)
        self.report = report
        self.body = body


class FrontApp:
    def __init__(self, plan: ContainerPlan, backends: Mapping[str, Backend],
                 client: InstanceClient, threads: int, max_payload_bytes: int,
                 max_async_payload_bytes: int, token: str | None = None) -> None:
        self.plan = plan
        self.backends = dict(backends)  # by hostname, in the plan's order
        self.client = client
        self.token = token.encode() if token else None
        self.threads = threads
        self.max_payload_bytes = max_payload_bytes
        self.max_async_payload_bytes = max(max_payload_bytes, max_async_payload_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/ping" and method in ("GET", "HEAD"):
            await single._respond(send, 200, b"", [])
        elif self.token is not None and not single._carries(scope, self.token):
            await single._respond(send, 403, single._NOT_FROM_ROUTER, single._TEXT)
        elif path == "/invocations" and method == "POST":
            await self.invocations(scope, receive, send)
        elif path == "/execution-parameters" and method == "GET":
            await single._respond(send, 200, self._execution_parameters(), single._JSON)
        else:
            await single._respond(send, 404, b"Not found: the instance serves /ping and "
                                  b"/invocations.", single._TEXT)

    async def invocations(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        if single._TRACEPARENT not in headers and single._XRAY not in headers:
            await self._invocations(scope, receive, send, headers)
            return
        parent = extract_raw(headers.get(single._TRACEPARENT), headers.get(single._XRAY))
        with span_under(parent, single.INSTANCE_SPAN,
                        {"tideserve.runtime": f"containers ({self.plan.mode})"}, SERVER):
            await self._invocations(scope, receive, send, headers)

    async def _invocations(self, scope: dict[str, Any], receive: Any, send: Any,
                           headers: dict[bytes, bytes]) -> None:
        is_async = headers.get(single._INVOCATION_KIND) == b"async"
        limit = self.max_async_payload_bytes if is_async else self.max_payload_bytes
        body = await single._read_body(receive, limit)
        if body is None:
            message = f"Request body is larger than the {limit} bytes this instance accepts."
            await single._respond(send, 413, message.encode(), single._TEXT)
            return
        latencies: list[tuple[str, float]] = []
        try:
            run = (self._direct(body, headers, latencies) if self.plan.mode == DIRECT
                   else self._serial(body, headers, latencies, is_async))
            reply = await asyncio.wait_for(run, _deadline(headers))
        except ContainerFailed as exc:
            await self._fail(send, exc.report, exc.body)
            return
        except TimeoutError:
            name = self._running(latencies)
            await self._fail(send, ContainerReport(tuple(latencies), name, 0,
                                                   failure_message(0, timed_out(name), name)),
                             b"timed out")
            return
        out = [(b"content-type", reply.content_type.encode("latin-1", "replace")),
               (_REPORT, ContainerReport(tuple(latencies)).encode().encode())]
        if reply.custom_attributes is not None:
            out.append((b"x-amzn-sagemaker-custom-attributes",
                        reply.custom_attributes.encode("latin-1", "replace")))
        await single._respond(send, 200, reply.body, out)

    async def _serial(self, body: bytes, headers: dict[bytes, bytes],
                      latencies: list[tuple[str, float]], is_async: bool) -> Reply:
        common = _common_headers(headers)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        accept = headers.get(b"accept", b"").decode("latin-1")
        names = self.plan.hostnames
        reply: Reply | None = None
        for i, name in enumerate(names):
            last = i == len(names) - 1
            hop = dict(common)
            if content_type:
                hop["Content-Type"] = content_type
            if last and accept:
                hop["Accept"] = accept
            reply = await self._call(name, body, hop, latencies)
            if not last and not is_async and len(reply.body) > MAX_INTERMEDIATE_BYTES:
                message = (f"Received response from {name} with status code {reply.status}. "
                           f"However, the request payload from {name} to {names[i + 1]} is "
                           f"{len(reply.body)} bytes, which has exceeded the maximum limit "
                           "of 5 MB.")
                raise ContainerFailed(
                    ContainerReport(tuple(latencies), name, reply.status, message),
                    message.encode())
            body, content_type = reply.body, reply.content_type
        assert reply is not None
        return reply

    async def _direct(self, body: bytes, headers: dict[bytes, bytes],
                      latencies: list[tuple[str, float]]) -> Reply:
        target = headers.get(TARGET_HEADER_LOWER.encode(), b"").decode("latin-1")
        if target not in self.backends:  # the router checks; a direct caller may not
            message = f"Container hostname {target} does not exist in this instance."
            raise ContainerFailed(ContainerReport((), target, 400, message), message.encode())
        hop = _common_headers(headers)
        for raw, name in ((b"content-type", "Content-Type"), (b"accept", "Accept")):
            if raw in headers:
                hop[name] = headers[raw].decode("latin-1")
        return await self._call(target, body, hop, latencies)

    async def _call(self, name: str, body: bytes, headers: dict[str, str],
                    latencies: list[tuple[str, float]]) -> Reply:
        """One container's answer; raises ContainerFailed for anything but a 2xx."""
        latencies.append((name, 0.0))  # so a timeout meanwhile knows who was running
        attributes: dict[str, str | int] = {"tideserve.container_hostname": name,
                                            "tideserve.container_index": len(latencies)}
        hop = (CONTAINER_SPAN, attributes)
        t0 = time.perf_counter()
        try:
            reply = await self.client.invoke(self.backends[name], body, headers, track=False,
                                             hop_span=hop)
        except (Undelivered, ModelInvocationError) as exc:
            latencies[-1] = (name, (time.perf_counter() - t0) * 1e6)
            failed_with(get_current_span(), "ModelError", str(exc))
            detail = f"the container gave no answer: {exc}"
            raise ContainerFailed(
                ContainerReport(tuple(latencies), name, 0, failure_message(0, detail, name)),
                detail.encode()) from None
        latencies[-1] = (name, reply.model_us)
        if reply.status >= 300:
            text = reply.body.decode("utf-8", errors="replace")
            raise ContainerFailed(ContainerReport(
                tuple(latencies), name, reply.status,
                failure_message(reply.status, text, name)), reply.body)
        return reply

    @staticmethod
    def _running(latencies: list[tuple[str, float]]) -> str:
        return latencies[-1][0] if latencies else "primary"

    async def _fail(self, send: Any, report: ContainerReport, body: bytes) -> None:
        status = report.status if report.status >= 300 else _NO_ANSWER
        await single._respond(send, status, body, [
            *single._TEXT, (_REPORT, report.encode().encode())])

    def _execution_parameters(self) -> bytes:
        return json.dumps({"MaxConcurrentTransforms": self.threads,
                           "BatchStrategy": "MULTI_RECORD",
                           "MaxPayloadInMB": max(1, self.max_payload_bytes // 2**20)}).encode()


def _deadline(headers: dict[bytes, bytes]) -> float | None:
    """Seconds the chain may take: a little less than the router waits, so that the client's
    ModelError names the container that was running rather than the instance."""
    timeout = single._timeout(headers)
    return None if timeout == float("inf") else max(0.1, timeout - 0.5)


def _common_headers(headers: dict[bytes, bytes]) -> dict[str, str]:
    return {name: headers[raw].decode("latin-1") for raw, name in _PASSED_ON if raw in headers}
