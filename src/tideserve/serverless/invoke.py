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

from tideserve.errors import ModelInvocationError, ThrottledError, ValidationError
from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.serverless.config import MAX_PAYLOAD_BYTES
from tideserve.serverless.pool import Lease, ServerlessPool
from tideserve.serving.containers.report import TARGET_HEADER_LOWER, check_single_target
from tideserve.serving.instance_client import (
    InstanceClient,
    Reply,
    Undelivered,
    forward_headers,
    model_error,
    model_unreachable,
)
from tideserve.serving.router import Invocation, InvocationResult
from tideserve.tracing import span

Bill = Callable[[float], None]  # seconds of request duration


async def invoke_serverless(
    pool: ServerlessPool,
    inv: Invocation,
    client: InstanceClient,
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
    check_single_target(inv.headers.get(TARGET_HEADER_LOWER), pool.endpoint)
    if len(inv.body) > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            f"Received payload size ({len(inv.body)} bytes) exceeds the maximum allowed payload "
            f"size of {MAX_PAYLOAD_BYTES} bytes for a serverless endpoint."
        )
    dims = (("EndpointName", pool.endpoint), ("VariantName", pool.variant))
    try:
        with span("serverless.lease", {"tideserve.variant": pool.variant}) as leasing:
            lease = await pool.acquire()
            if leasing.is_recording():
                # A worker started for this request: the trace shows the cold start.
                cold = lease.setup_seconds is not None
                leasing.set_attribute("tideserve.cold_start", cold)
                if cold:
                    leasing.update_name("cold start")
    except ThrottledError:
        _count(metrics, dims, (1, 0, 0))
        raise
    _count_lease(metrics, dims, lease, pool.config.provisioned_concurrency > 0)
    try:
        reply = await _forward(client, lease, inv)
    except ModelInvocationError:
        _count(metrics, dims, (0, 0, 1))
        raise
    finally:
        await pool.release(lease.worker)
    model_s = reply.model_us / 1e6
    status, body = reply.status, reply.body
    bill(model_s)
    if status < 300 and len(body) > MAX_PAYLOAD_BYTES:
        status, body = 500, (
            f"The response payload ({len(body)} bytes) exceeds the serverless limit of "
            f"{MAX_PAYLOAD_BYTES} bytes."
        ).encode()
    total_us = (time.perf_counter() - started) * 1e6
    _count(metrics, dims, (int(400 <= status < 500), int(status >= 500), int(status >= 300)))
    metrics.put(catalogue.MODEL_LATENCY, dims, model_s * 1e6)
    # The cold start is reported as ModelSetupTime, not as overhead.
    setup_us = (lease.setup_seconds or 0.0) * 1e6
    overhead = max(0.0, total_us - model_s * 1e6 - setup_us)
    metrics.put(catalogue.OVERHEAD_LATENCY, dims, overhead)
    if status >= 300:
        raise model_error(status, body, region, pool.endpoint)
    return InvocationResult(body, reply.content_type, pool.variant, reply.custom_attributes)


async def _forward(client: InstanceClient, lease: Lease, inv: Invocation) -> Reply:
    """The worker's answer; the pool counts the request on the worker's Backend (its lease)."""
    try:
        return await client.invoke(lease.worker.backend, inv.body, forward_headers(inv.headers),
                                   track=False)
    except Undelivered as exc:  # a leased worker is not retried: it is the one it has
        raise model_unreachable(str(exc)) from exc


def _count_lease(metrics: MetricAggregator, dims: tuple[tuple[str, str], ...], lease: Lease,
                 has_provisioned: bool) -> None:
    if lease.setup_seconds is not None:
        metrics.put(catalogue.MODEL_SETUP_TIME, dims, lease.setup_seconds * 1e6)
    if has_provisioned:
        spilled = catalogue.PC_INVOCATIONS if lease.provisioned else catalogue.PC_SPILLOVER
        metrics.put(spilled, dims, 1.0)


def _count(metrics: MetricAggregator, dims: tuple[tuple[str, str], ...],
           errors: tuple[int, int, int]) -> None:
    put = metrics.put
    put(catalogue.INVOCATIONS, dims, 1.0)
    put(catalogue.INVOCATION_4XX_ERRORS, dims, float(errors[0]))
    put(catalogue.INVOCATION_5XX_ERRORS, dims, float(errors[1]))
    put(catalogue.INVOCATION_MODEL_ERRORS, dims, float(errors[2]))
