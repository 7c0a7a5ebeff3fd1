"""One attempt of one async request on one instance: read the input (inline or an object),
POST it to the instance's /invocations (the container contract, §4), and stream a 2xx body
into the output object. Returns what happened as a value; raises nothing it can name.

Inputs up to MAX_INPUT_BYTES (1 GiB, AWS's async limit) travel in bounded memory on the server:
aiohttp streams the open object to the instance 64 KiB at a time, and the response is copied
into the output object CHUNK_BYTES (1 MiB) at a time, keeping at most KEEP_RESPONSE_BYTES
(128 KiB) for a notification. So one request in flight holds about 1.2 MiB of payload here,
whatever its size (plus an external store's read-ahead block, 5 MiB with fsspec's default).
The request carries INVOCATION_KIND_HEADER so the instance applies its async body limit
rather than InvokeEndpoint's 6 MiB."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tideserve.asyncinf.objects import Objects
from tideserve.asyncinf.queue import QueuedRequest
from tideserve.errors import TideserveError
from tideserve.serving.containers.report import REPORT_HEADER, ContainerReport
from tideserve.serving.instance import INVOCATION_KIND_HEADER
from tideserve.serving.instance_client import InstanceClient, Undelivered, failure_message
from tideserve.serving.routes import Backend
from tideserve.tracing import span

MAX_INPUT_BYTES = 1 << 30  # 1 GiB: InvokeEndpointAsync's payload limit (spec §3.5)
CHUNK_BYTES = 1 << 20
KEEP_RESPONSE_BYTES = 128 * 1024  # enough for a notification's inline response
ERROR_BODY_BYTES = 64 * 1024
FIRST_READ_BYTES = 64 * 1024  # read ahead in a traced request's objectstore.get span


@dataclass(frozen=True)
class Completed:
    content_type: str
    model_us: float  # ModelLatency
    response: bytes | None  # the body when it is small enough to include in a notification
    size: int = 0  # bytes written to the output object


@dataclass(frozen=True)
class Failed:
    reason: str  # what the failure object holds and the notification says
    status: int  # the container's status; 0 when it never answered
    stage: str  # "download" | "model" | "upload"
    model_us: float = 0.0


@dataclass(frozen=True)
class Lost:
    """The instance went away before answering: the request may run again elsewhere."""

    detail: str


Outcome = Completed | Failed | Lost


def _headers(req: QueuedRequest) -> dict[str, str]:
    pairs = (("Content-Type", req.content_type), ("Accept", req.accept),
             ("X-Amzn-SageMaker-Custom-Attributes", req.custom_attributes),
             ("X-Amzn-SageMaker-Inference-Id", req.inference_id))
    headers = {k: v for k, v in pairs if v is not None}
    headers[INVOCATION_KIND_HEADER] = "async"
    return headers


def too_large_reason(uri: str, size: int) -> str:
    return (f"The input {uri} is {size} bytes, larger than the {MAX_INPUT_BYTES} bytes "
            "(1 GB) an asynchronous invocation accepts.")


def _object_size(payload: Any) -> int:
    """Size of an open object, by seeking (a file or an fsspec file; no extra request)."""
    end = payload.seek(0, 2)
    payload.seek(0)
    return int(end)


def model_failure_reason(status: int, body: bytes) -> str:
    return failure_message(status, body.decode("utf-8", errors="replace").strip())


async def attempt(client: InstanceClient, objects: Objects, req: QueuedRequest,
                  backend: Backend) -> Outcome:
    """The dispatcher holds the request's slot on `backend` (its in_flight) meanwhile."""
    with contextlib.ExitStack() as stack:
        try:
            payload: Any = req.body if req.body is not None else _open_input(objects, req, stack)
            size = len(payload) if req.body is not None else _object_size(payload)
        except (OSError, TideserveError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) else exc.message
            return Failed(f"Could not read the input {req.input_location}: {detail}.",
                          0, "download")
        if size > MAX_INPUT_BYTES:  # it grew after it was accepted
            return Failed(too_large_reason(req.input_location or "", size), 0, "download")
        started = time.perf_counter()
        try:
            async with client.stream(backend, payload, _headers(req),
                                     req.timeout_seconds) as resp:
                if resp.status >= 300:
                    body = await resp.content.read(ERROR_BODY_BYTES)
                    model_us = (time.perf_counter() - started) * 1e6
                    # A multi-container instance names the container that failed.
                    report = ContainerReport.decode(resp.headers.get(REPORT_HEADER))
                    if report is not None and report.failed is not None:
                        return Failed(report.message, report.status, "model", model_us)
                    return Failed(model_failure_reason(resp.status, body), resp.status, "model",
                                  model_us)
                return await _save(resp, objects, req, started)
        except Undelivered as exc:
            if exc.refused:
                backend.reachable = False  # refused: the controller replaces it
            return Lost(str(exc))
        except TimeoutError:  # before aiohttp's errors: its timeouts are ClientErrors too
            return Failed(
                "Your invocation timed out while waiting for a response from container primary "
                f"(InvocationTimeoutSeconds {req.timeout_seconds}).", 0, "model",
                (time.perf_counter() - started) * 1e6)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                aiohttp.ClientPayloadError) as exc:  # the answer broke off
            return Lost(str(exc))


def _open_input(objects: Objects, req: QueuedRequest, stack: contextlib.ExitStack) -> Any:
    """The input object, open. Traced as `objectstore.get` up to its first bytes (the time
    to first byte of a remote store, where a slow S3 shows); the rest is read as it streams
    to the instance (the instance's `receive body`)."""
    uri = req.input_location or ""
    with span("objectstore.get", {"objectstore.uri": uri}) as get:
        payload = stack.enter_context(objects.open(uri))
        if get.is_recording():
            get.set_attribute("tideserve.bytes", _object_size(payload))
            payload.read(FIRST_READ_BYTES)
            payload.seek(0)
    return payload


async def _save(resp: aiohttp.ClientResponse, objects: Objects, req: QueuedRequest,
                started: float) -> Outcome:
    with span("objectstore.put", {"objectstore.uri": req.output_location}) as put:
        outcome = await _copy_out(resp, objects, req, started)
        if put.is_recording() and isinstance(outcome, Completed):
            put.set_attribute("tideserve.bytes", outcome.size)
        return outcome


async def _copy_out(resp: aiohttp.ClientResponse, objects: Objects, req: QueuedRequest,
                    started: float) -> Outcome:
    kept = bytearray()
    size = 0
    writer = objects.writer(req.output_location)
    try:
        out = writer.__enter__()
        try:
            async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                out.write(chunk)
                size += len(chunk)
                if size <= KEEP_RESPONSE_BYTES:
                    kept += chunk
        except BaseException as exc:
            writer.__exit__(type(exc), exc, exc.__traceback__)
            raise
        # Publishing the object (fsync and rename, or the upload to an external store) can
        # take a while for a large output: off the event loop, which serves every endpoint.
        await asyncio.to_thread(writer.__exit__, None, None, None)
    except OSError as exc:
        return Failed(f"Could not write the output {req.output_location}: {exc.strerror}.",
                      resp.status, "upload")
    model_us = (time.perf_counter() - started) * 1e6
    return Completed(resp.headers.get("Content-Type", "application/octet-stream"), model_us,
                     bytes(kept) if size <= KEEP_RESPONSE_BYTES else None, size)
