"""The data plane: InvokeEndpoint through the router to an instance.

A request picks a variant by weight (or TargetVariant), then the instance with the fewest
requests in flight (on a multi-model variant: the instance its TargetModel hashes to, within a
load bound, serving/affinity.py), and is forwarded by the instance client
(serving/instance_client.py: keep-alive pool, headers, token, in-flight count, one stale
pooled connection re-sent there).

Retries: a request that no instance answered (connection refused, reset or closed before the
first byte of a response, e.g. the instance was killed while the model ran) is sent again, to
an instance not tried yet, up to three attempts. That repeats a prediction that may have
begun, which is safe because a model behind InvokeEndpoint is assumed to be pure inference
(SageMaker documents no exactly-once execution either; a model with side effects should make
them idempotent by X-Amzn-SageMaker-Inference-Id). Anything an instance began to answer is
final, and a timeout is never retried (the model may still be running it). When no instance
is left to try, the answer is ServiceUnavailable (503), which AWS's SDKs retry themselves;
never a raw disconnect. Metrics are counted in memory; nothing here touches the
database.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tideserve.errors import ModelInvocationError, UnavailableError, ValidationError
from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.catalogue import Metric
from tideserve.serving import multi_model_route
from tideserve.serving.affinity import pick_for_model
from tideserve.serving.containers.metrics import container_errors, record_per_container
from tideserve.serving.containers.report import (
    TARGET_HEADER_LOWER,
    ContainerLayout,
    ContainerReport,
    check_single_target,
)
from tideserve.serving.instance_client import (
    TIMEOUT_HEADER,
    InstanceClient,
    Reply,
    Undelivered,
    forward_headers,
    model_error,
    model_timeout,
    model_unreachable,
)
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable, least_outstanding
from tideserve.tracing import interval, now_ns, recording

__all__ = ["TIMEOUT_HEADER", "model_error", "model_timeout", "model_unreachable"]

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # 6 MiB, InvokeEndpoint's limit
# How long the router waits for a model's answer. AWS allows 60 s, but botocore's default
# read_timeout is also 60 s: a client would give up at the same moment, retry, and leave the
# abandoned prediction running. Answering at 55 s gives the client AWS's ModelError instead.
# A client that needs the full minute sets read_timeout above it (botocore Config(
# read_timeout=70)) and the server `--model-timeout 60`.
MODEL_TIMEOUT_SECONDS = 55.0
_MAX_ATTEMPTS = 3
NAMESPACE = "AWS/SageMaker"


@dataclass(frozen=True)
class Invocation:
    endpoint_name: str
    body: bytes
    headers: dict[str, str]  # lower-cased names
    received_at: float | None = None  # perf_counter() when the request arrived


@dataclass(frozen=True)
class InvocationResult:
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None
    # Multi-model: whether the TargetModel was loaded when the request reached its instance.
    cache_hit: bool | None = None


class InvokedElsewhere(Protocol):
    """An endpoint kind that serves its own endpoints' invocations (serverless leases a
    worker); the router asks each before routing to an instance."""

    def serves(self, endpoint_name: str) -> bool: ...

    async def invoke(self, router: Router, inv: Invocation) -> InvocationResult: ...


class Router:
    def __init__(
        self,
        routes: RouteTable,
        metrics: MetricAggregator,
        account: str,
        region: str,
        timeout: float = MODEL_TIMEOUT_SECONDS,
        kinds: Sequence[InvokedElsewhere] = (),
    ) -> None:
        self.routes = routes
        self.metrics = metrics
        self.account = account
        self.region = region
        self.timeout = timeout
        self.rng = random.Random()
        # The one way into an instance, shared with the kinds that invoke elsewhere.
        self.client = InstanceClient(timeout)
        # Endpoints of other kinds (serverless: a leased worker) are invoked by their kind.
        self.kinds = tuple(kinds)

    async def close(self) -> None:
        await self.client.close()

    async def invoke(self, inv: Invocation) -> InvocationResult:
        for kind in self.kinds:
            if kind.serves(inv.endpoint_name):
                return await kind.invoke(self, inv)
        started = inv.received_at or time.perf_counter()
        route = self.routes.get(inv.endpoint_name)
        if route is None:
            raise ValidationError(
                f"Endpoint {inv.endpoint_name} of account {self.account} not found."
            )
        routing_from = now_ns()  # a traced request's `route` span: variant and instance chosen
        variant = self._variant(route, inv.headers.get("x-amzn-sagemaker-target-variant"))
        target = multi_model_route.target_model(inv.headers, route.name, variant)
        if target is None:
            backend = least_outstanding(variant.backends, self.rng)
        else:
            backend = pick_for_model(target, variant.backends)
        if backend is None:
            raise UnavailableError(f"Endpoint {route.name} has no instance in service.")
        hostname = inv.headers.get(TARGET_HEADER_LOWER)
        layout = backend.containers
        if layout is not None:
            layout.check_target(hostname, route.name)
        elif hostname is not None:
            check_single_target(hostname, route.name)
        dims = (("EndpointName", route.name), ("VariantName", variant.name))
        instances = len(variant.backends)
        if recording():
            interval("route", routing_from, None, {
                "tideserve.variant": variant.name, "tideserve.instance_id": backend.instance_id,
                "tideserve.instances": instances})
        headers = forward_headers(inv.headers)
        try:
            reply, backend = await self._forward(variant.backends, backend, inv.body, headers,
                                                 target)
        except ModelInvocationError:
            self._count(dims, instances, errors=(0, 0, 1))
            raise
        except UnavailableError:
            self._count(dims, instances, errors=(0, 1, 0))
            raise
        total_us = (time.perf_counter() - started) * 1e6
        if layout is not None:
            return self._containers_answered(route.name, variant.name, dims, instances, layout,
                                             reply, total_us, hostname)
        status = reply.status
        model_us = reply.model_us
        if target is not None:  # ModelLatency leaves out the wait on a download and load
            refused = multi_model_route.refusal(reply) if status >= 300 else None
            if refused is not None:  # the request's fault, or not ready: not the model's
                self._count(dims, instances, (int(status < 500), int(status >= 500), 0))
                raise refused
            model_us = max(0.0, model_us - multi_model_route.wait_us(reply))
            multi_model_route.record(self.metrics, dims, target, backend, reply, model_us)
        self._record(dims, instances, status, model_us, total_us)
        if status >= 300:
            raise model_error(status, reply.body, self.region, route.name)
        hit = None if reply.multi_model is None else reply.multi_model.startswith("hit=1")
        return InvocationResult(reply.body, reply.content_type, variant.name,
                                reply.custom_attributes, hit)

    def _variant(self, route: EndpointRoute, target: str | None):  # type: ignore[no-untyped-def]
        if target is not None:
            variant = route.variant(target)
            if variant is None:
                raise ValidationError(
                    f"Invalid target variant: {target} is not a variant of endpoint {route.name}."
                )
            return variant
        variant = route.pick_variant(self.rng)
        if variant is None:
            raise UnavailableError(f"Endpoint {route.name} has no instance in service.")
        return variant

    async def _forward(
        self, backends: list[Backend], backend: Backend, body: bytes, headers: dict[str, str],
        model: str | None = None,
    ) -> tuple[Reply, Backend]:
        """Send to `backend`; a request no instance answered is sent again (see the module
        docstring), on another instance where there is one (for a multi-model request, the
        next instance in its `model`'s ranking). Returns the reply and who gave it."""
        target: Backend | None = backend
        tried: set[str] = set()
        for _ in range(_MAX_ATTEMPTS):
            assert target is not None
            current = target
            tried.add(current.instance_id)
            try:
                return await self.client.invoke(current, body, headers), current
            except Undelivered as exc:
                gone = exc.refused or await _gone(current)
                if gone:
                    current.reachable = False
                if model is not None:
                    target = pick_for_model(model, backends, tried) or (None if gone else current)
                else:
                    target = _next_backend(backends, current, gone, tried, self.rng)
                if target is None:
                    break
        raise UnavailableError(
            "No instance could take the request: the instances it was sent to stopped before "
            "they answered. Retry the request."
        )

    def _containers_answered(
        self, endpoint: str, variant: str, dims: tuple[tuple[str, str], ...], instances: int,
        layout: ContainerLayout, reply: Reply, total_us: float, target: str | None,
    ) -> InvocationResult:
        """A multi-container instance's answer: the variant's metrics (a pipeline's
        ModelLatency is the sum over its containers), the per-container ones, and the
        ModelError naming the container that failed."""
        report = ContainerReport.decode(reply.report) or ContainerReport()
        status = report.status if report.failed is not None else reply.status
        model_us = report.model_us if report.latencies else reply.model_us
        errors = container_errors(status, failed=report.failed is not None or status >= 300)
        self._count(dims, instances, errors, (
            (catalogue.MODEL_LATENCY, model_us),
            (catalogue.OVERHEAD_LATENCY, max(0.0, total_us - model_us)),
        ))
        record_per_container(self.metrics, endpoint, variant, layout, report, errors,
                             total_us, target)
        if report.failed is not None or reply.status >= 300:
            raise model_error(status, reply.body, self.region, endpoint,
                              report.message or None)
        return InvocationResult(reply.body, reply.content_type, variant,
                                reply.custom_attributes)

    def _record(
        self, dims: tuple[tuple[str, str], ...], instances: int, status: int,
        model_us: float, total_us: float,
    ) -> None:
        errors = (int(400 <= status < 500), int(status >= 500), int(status >= 300))
        self._count(dims, instances, errors, (
            (catalogue.MODEL_LATENCY, model_us),
            (catalogue.OVERHEAD_LATENCY, max(0.0, total_us - model_us)),
        ))

    def _count(
        self, dims: tuple[tuple[str, str], ...], instances: int, errors: tuple[int, int, int],
        latencies: tuple[tuple[Metric, float], ...] = (),
    ) -> None:
        self.metrics.put_many(dims, (
            (catalogue.INVOCATIONS, 1.0),
            (catalogue.INVOCATIONS_PER_INSTANCE, 1.0 / max(1, instances)),
            (catalogue.INVOCATION_4XX_ERRORS, float(errors[0])),
            (catalogue.INVOCATION_5XX_ERRORS, float(errors[1])),
            (catalogue.INVOCATION_MODEL_ERRORS, float(errors[2])),
            *latencies,
        ))


def _next_backend(backends: list[Backend], failed: Backend, gone: bool, tried: set[str],
                  rng: random.Random) -> Backend | None:
    """Where to resend a request `failed` never answered: an instance not tried yet, else
    (when `failed` is still listening: a keep-alive connection it had just closed) itself."""
    fresh = [b for b in backends if b.instance_id not in tried and b.reachable]
    choice = least_outstanding(fresh, rng)
    if choice is None and not gone:
        return failed
    return choice


async def _gone(backend: Backend) -> bool:
    host, _, port = backend.url.removeprefix("http://").partition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 0.5)
    except (TimeoutError, ConnectionRefusedError, OSError):
        return True
    writer.close()
    return False
