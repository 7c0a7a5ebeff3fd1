"""InvokeEndpoint on a serverless variant: serverless limits (4 MB payload, 60 s), a worker
leased from the pool for the request, and the metrics SageMaker publishes for it (§3.4, §5.1).

A request throttled above MaxConcurrency counts as an invocation with a 4XX error (the client
gets a 400 ThrottlingException) and no model error: the model never saw it. AWS does not say
how it counts throttles (UNCONFIRMED); counting them in both keeps Invocation4XXErrors a
share of Invocations, so its Average is the error rate as for any other 4xx, and makes
throttling visible in CloudWatch where a user looks for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from tideserve.errors import ModelInvocationError, ThrottledError, ValidationError
from tideserve.metrics import names
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serverless.config import MAX_PAYLOAD_BYTES
from tideserve.serverless.pool import Lease, ServerlessPool
from tideserve.serving.instance_token import token_header
from tideserve.serving.router import (
    _FORWARD_HEADERS,
    NAMESPACE,
    Invocation,
    InvocationResult,
    model_error,
    model_timeout,
    model_unreachable,
)

PC_INVOCATIONS = names.SERVERLESS_PC_INVOCATIONS
PC_SPILLOVER = names.SERVERLESS_PC_SPILLOVER_INVOCATIONS

Bill = Callable[[float], None]  # seconds of request duration


async def invoke_serverless(
    pool: ServerlessPool,
    inv: Invocation,
    session: aiohttp.ClientSession,
    metrics: MetricAggregator,
    region: str,
    bill: Bill,
) -> InvocationResult:
    started = inv.received_at or time.perf_counter()
    target = inv.headers.get("x-amzn-sagemaker-target-variant")
    if target is not None and target != pool.variant:
        raise ValidationError(
            f"Invalid target variant: {target} is not a variant of endpoint {pool.endpoint}."
        )
    if len(inv.body) > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            f"Received payload size ({len(inv.body)} bytes) exceeds the maximum allowed payload "
            f"size of {MAX_PAYLOAD_BYTES} bytes for a serverless endpoint."
        )
    dims = (("EndpointName", pool.endpoint), ("VariantName", pool.variant))
    try:
        lease = await pool.acquire()
    except ThrottledError:
        _count(metrics, dims, (1, 0, 0))
        raise
    _count_lease(metrics, dims, lease, pool.config.provisioned_concurrency > 0)
    try:
        status, body, headers, model_s = await _forward(session, lease, inv)
    except ModelInvocationError:
        _count(metrics, dims, (0, 0, 1))
        raise
    finally:
        await pool.release(lease.worker)
    bill(model_s)
    if status < 300 and len(body) > MAX_PAYLOAD_BYTES:
        status, body = 500, (
            f"The response payload ({len(body)} bytes) exceeds the serverless limit of "
            f"{MAX_PAYLOAD_BYTES} bytes."
        ).encode()
    total_us = (time.perf_counter() - started) * 1e6
    _count(metrics, dims, (int(400 <= status < 500), int(status >= 500), int(status >= 300)))
    metrics.record(NAMESPACE, "ModelLatency", dims, model_s * 1e6, "Microseconds")
    # The cold start is reported as ModelSetupTime, not as overhead.
    setup_us = (lease.setup_seconds or 0.0) * 1e6
    overhead = max(0.0, total_us - model_s * 1e6 - setup_us)
    metrics.record(NAMESPACE, "OverheadLatency", dims, overhead, "Microseconds")
    if status >= 300:
        raise model_error(status, body, region, pool.endpoint)
    return InvocationResult(
        body=body,
        content_type=headers.get("Content-Type", "application/octet-stream"),
        variant=pool.variant,
        custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
    )


async def _forward(
    session: aiohttp.ClientSession, lease: Lease, inv: Invocation
) -> tuple[int, bytes, dict[str, str], float]:
    """(status, body, headers, seconds the model took)."""
    headers = {out: inv.headers[h] for h, out in _FORWARD_HEADERS if h in inv.headers}
    headers.update(token_header(lease.worker.backend.token))
    t0 = time.perf_counter()
    try:
        async with session.post(lease.worker.backend.url + "/invocations", data=inv.body,
                                headers=headers) as resp:
            payload = await resp.read()
            return resp.status, payload, dict(resp.headers), time.perf_counter() - t0
    except TimeoutError:
        raise model_timeout() from None
    except aiohttp.ClientError as exc:
        raise model_unreachable(str(exc)) from exc


def _count_lease(metrics: MetricAggregator, dims: tuple[tuple[str, str], ...], lease: Lease,
                 has_provisioned: bool) -> None:
    if lease.setup_seconds is not None:
        metrics.record(NAMESPACE, "ModelSetupTime", dims, lease.setup_seconds * 1e6,
                       "Microseconds")
    if has_provisioned:
        metrics.record(NAMESPACE, PC_INVOCATIONS if lease.provisioned else PC_SPILLOVER,
                       dims, 1.0, "None")


def _count(metrics: MetricAggregator, dims: tuple[tuple[str, str], ...],
           errors: tuple[int, int, int]) -> None:
    rec = metrics.record
    rec(NAMESPACE, "Invocations", dims, 1.0, "None")
    rec(NAMESPACE, "Invocation4XXErrors", dims, float(errors[0]), "None")
    rec(NAMESPACE, "Invocation5XXErrors", dims, float(errors[1]), "None")
    rec(NAMESPACE, "InvocationModelErrors", dims, float(errors[2]), "None")
