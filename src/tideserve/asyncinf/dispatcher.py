"""The dispatcher: moves each async endpoint's queue onto its instances.

One asyncio task. While an endpoint may have queued work and one of its instances has a free
slot (fewer than MaxConcurrentInvocationsPerInstance requests in flight, counted on the
route table's Backend so that scale-in drains them like real-time requests), it claims the
oldest request and runs it (invoke.attempt). Each outcome is settled in the same order:
result object written, queue row finished, metrics recorded, notification published. So a
crash at any point leaves either a finished row or a claimed one that the next start
re-queues, and the output location holds at most one result for the request.

Once a second it also re-queues lost leases, fails requests past their TTL (even at zero
instances) and lets every endpoint look for work again; several times a period it samples
the backlog metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import aiohttp

from tideserve.asyncinf.backlog import backlog_sample, record_backlog
from tideserve.asyncinf.datalog import DataLogSink, data_log_line
from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.asyncinf.invoke import Completed, Failed, Lost, Outcome, attempt
from tideserve.asyncinf.notify import Notifier, inference_event
from tideserve.asyncinf.objects import Objects
from tideserve.asyncinf.queue import AsyncQueue, QueuedRequest
from tideserve.clock import Clock
from tideserve.metrics import catalogue as c
from tideserve.metrics import names as n
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.catalogue import Metric
from tideserve.serving.instance_client import InstanceClient
from tideserve.serving.routes import Backend, EndpointRoute, RouteTable
from tideserve.tracing import PARKED, interval, span, span_under

log = logging.getLogger("tideserve.asyncinf")

SWEEP_SECONDS = 1.0
MAX_ATTEMPTS = 3  # attempts whose instance vanished before a request is failed


def pick_backend(route: EndpointRoute | None, limit: int) -> tuple[str, Backend] | None:
    """(variant, backend) with a free slot and the fewest requests in flight, among variants
    that take traffic (weight > 0); None when every instance is busy or there is none."""
    best: tuple[str, Backend] | None = None
    for variant in route.variants if route else ():
        if variant.weight <= 0:
            continue
        for b in variant.backends:
            if b.reachable and b.in_flight < limit and (best is None
                                                        or b.in_flight < best[1].in_flight):
                best = (variant.name, b)
    return best


def instances(route: EndpointRoute | None) -> int:
    return sum(len(v.backends) for v in route.variants) if route else 0


class Dispatcher:
    def __init__(self, queue: AsyncQueue, endpoints: AsyncEndpoints, routes: RouteTable,
                 objects: Objects, notifier: Notifier, metrics: MetricAggregator,
                 clock: Clock, region: str, period: float) -> None:
        self.queue, self.endpoints, self.routes = queue, endpoints, routes
        self.objects, self.notifier, self.metrics = objects, notifier, metrics
        self.clock, self.region = clock, region
        self.sample_every = min(5.0, max(0.25, period / 4))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._maybe_work: set[str] = set()
        self._pokes: dict[str, int] = {}
        self._running: dict[asyncio.Task[None], QueuedRequest] = {}
        self._session: aiohttp.ClientSession | None = None  # notifications' HTTP calls
        # Instances: each request brings its own InvocationTimeoutSeconds to stream().
        self.client = InstanceClient(timeout=3600.0)
        # Where each settled request's data-log line goes (the wiring sets it: logs).
        self.data_log: DataLogSink | None = None

    def wake(self, endpoint_lower: str) -> None:
        """Thread-safe: new work for the endpoint (the front calls it after a commit)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._poke, endpoint_lower)

    def _poke(self, key: str) -> None:
        self._maybe_work.add(key)
        self._pokes[key] = self._pokes.get(key, 0) + 1
        self._wake.set()

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"))
        recovered = await asyncio.to_thread(self.queue.recover)
        if recovered:
            log.info("re-queued %d async requests left in processing", recovered)
        next_sweep = next_sample = 0.0
        try:
            while True:
                now = self.clock.now()
                if now >= next_sweep:
                    await self._sweep(now)
                    next_sweep = now + SWEEP_SECONDS
                if now >= next_sample:
                    await self._sample(now)
                    next_sample = now + self.sample_every
                await self._dispatch()
                delay = max(0.01, min(next_sweep, next_sample) - self.clock.now())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
        finally:
            await self._stop()

    async def _stop(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        await self.client.close()

    # -- scheduling --------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        for key in list(self._maybe_work):
            config = self.endpoints.get(key)
            if config is None:
                self._maybe_work.discard(key)
                continue
            while (pick := pick_backend(self.routes.get_ci(key),
                                        config.max_concurrent_per_instance)) is not None:
                pokes = self._pokes.get(key, 0)
                req = await asyncio.to_thread(self.queue.claim, key, self.clock.now())
                if req is None:
                    if self._pokes.get(key, 0) == pokes:  # nothing arrived meanwhile
                        self._maybe_work.discard(key)
                    break
                variant, backend = pick
                backend.in_flight += 1  # the slot is taken before the task first runs
                task = asyncio.create_task(self._process(req, variant, backend))
                self._running[task] = req
                task.add_done_callback(self._running.pop)

    async def _sweep(self, now: float) -> None:
        lost = await asyncio.to_thread(self.queue.requeue_lost, now)
        if lost:
            log.warning("re-queued %d async requests whose lease ran out", lost)
        for req in await asyncio.to_thread(self.queue.claim_expired, now):
            await self._expire(req)
        for key in self.endpoints.names():
            self._maybe_work.add(key.lower())

    async def _sample(self, now: float) -> None:
        backlogs = await asyncio.to_thread(self.queue.backlogs)
        for name in self.endpoints.names():
            route = self.routes.get_ci(name)
            sample = backlog_sample(backlogs.get(name.lower()), instances(route), now)
            record_backlog(self.metrics, name, sample, now)

    # -- one request -------------------------------------------------------------------------

    async def _process(self, req: QueuedRequest, variant: str, backend: Backend) -> None:
        # The trace its InvokeEndpointAsync began, when this process still has it (front.py).
        attributes: dict[str, str | int] = {
            "tideserve.endpoint": self._display_name(req.endpoint_lower),
            "tideserve.variant": variant, "tideserve.instance_id": backend.instance_id,
            "tideserve.inference_id": req.inference_id, "tideserve.attempt": req.attempts}
        with span_under(PARKED.take(req.id), "async.process", attributes):
            await self._process_traced(req, variant, backend)

    async def _process_traced(self, req: QueuedRequest, variant: str, backend: Backend) -> None:
        interval("async.queue", int(req.enqueued_at * 1e9),
                 int((req.claimed_at or self.clock.now()) * 1e9))
        try:
            if req.expired(self.clock.now()):
                await self._expire(req, variant, backend.instance_id)
                return
            outcome = await attempt(self.client, self.objects, req, backend)
            await self._settle(req, variant, outcome, backend.instance_id)
        except asyncio.CancelledError:
            await asyncio.to_thread(self.queue.release, req)  # shutting down: run it later
            raise
        except Exception:
            log.exception("async request %s failed unexpectedly; it will be retried", req.id)
            await asyncio.to_thread(self.queue.release, req)
        finally:
            backend.in_flight -= 1
            self._poke(req.endpoint_lower)

    async def _settle(self, req: QueuedRequest, variant: str, outcome: Outcome,
                      instance_id: str) -> None:
        if isinstance(outcome, Lost):
            if req.attempts < MAX_ATTEMPTS:
                log.info("async request %s: instance lost (%s); re-queued", req.id, outcome.detail)
                PARKED.park(req.id)  # the next attempt continues this trace
                await asyncio.to_thread(self.queue.release, req)
                return
            outcome = Failed(f"The instance went away {req.attempts} times while processing "
                             f"the request: {outcome.detail}", 0, "model")
        if isinstance(outcome, Completed):
            await asyncio.to_thread(self.objects.remove, req.failure_location)
            await self._finish(req, variant, "done", outcome, instance_id)
        else:
            await asyncio.to_thread(self._write_failure, req, outcome.reason)
            await self._finish(req, variant, "failed", outcome, instance_id)

    def _write_failure(self, req: QueuedRequest, reason: str) -> None:
        self.objects.remove(req.output_location)
        with span("objectstore.put", {"objectstore.uri": req.failure_location}):
            self.objects.put_bytes(req.failure_location, reason.encode())

    async def _finish(self, req: QueuedRequest, variant: str, state: str,
                      outcome: Completed | Failed, instance_id: str) -> None:
        now = self.clock.now()
        error = outcome.reason if isinstance(outcome, Failed) else None
        if not await asyncio.to_thread(self.queue.finish, req, state, now, error):
            log.warning("async request %s lost its lease before finishing", req.id)
            return
        await self._data_log(req, variant, instance_id,
                             "Succeeded" if error is None else "Failed", error)
        self._record(req, variant, outcome, now)
        await self._notify(req, outcome, now)

    async def _expire(self, req: QueuedRequest, variant: str | None = None,
                      instance_id: str | None = None) -> None:
        now = self.clock.now()
        reason = (f"Request expired: it waited {now - req.enqueued_at:.0f} seconds in the queue, "
                  f"longer than its RequestTTLSeconds ({req.ttl_seconds}).")
        await asyncio.to_thread(self._write_failure, req, reason)
        if not await asyncio.to_thread(self.queue.finish, req, "expired", now, reason):
            return
        if variant is not None and instance_id is not None:  # one that reached an instance
            await self._data_log(req, variant, instance_id, "Expired", reason)
        name = self._display_name(req.endpoint_lower)
        variant = variant or self._first_variant(req.endpoint_lower)
        if variant is not None:
            self.metrics.put(c.EXPIRED_REQUESTS, self._dims(name, variant), 1.0, timestamp=now)
        await self._notify(req, Failed(reason, 0, "expired"), now)

    async def _data_log(self, req: QueuedRequest, variant: str, instance_id: str, status: str,
                        reason: str | None) -> None:
        """The request's line in its instance's data-log stream (datalog.py)."""
        if self.data_log is None:
            return
        line = data_log_line(req, status, reason)
        try:
            await asyncio.to_thread(self.data_log, self._display_name(req.endpoint_lower),
                                    variant, instance_id, line)
        except Exception:  # the log is not worth failing a settled request over
            log.exception("could not write the data log line of async request %s", req.id)

    # -- metrics and notifications -----------------------------------------------------------

    def _display_name(self, key: str) -> str:
        route = self.routes.get_ci(key)
        return route.name if route else key

    def _first_variant(self, key: str) -> str | None:
        route = self.routes.get_ci(key)
        return route.variants[0].name if route and route.variants else None

    @staticmethod
    def _dims(endpoint: str, variant: str) -> tuple[tuple[str, str], ...]:
        return ((n.ENDPOINT_NAME, endpoint), (n.VARIANT_NAME, variant))

    def _record(self, req: QueuedRequest, variant: str, outcome: Completed | Failed,
                now: float) -> None:
        dims = self._dims(self._display_name(req.endpoint_lower), variant)
        for metric, value in self._values(req, outcome, now):
            self.metrics.put(metric, dims, value, timestamp=now)

    @staticmethod
    def _values(req: QueuedRequest, outcome: Completed | Failed, now: float
                ) -> Iterable[tuple[Metric, float]]:
        ok = isinstance(outcome, Completed)
        status = outcome.status if isinstance(outcome, Failed) else 200
        stage = outcome.stage if isinstance(outcome, Failed) else "model"
        waited = (req.claimed_at or now) - req.enqueued_at
        yield (c.INVOCATIONS_PROCESSED if ok else c.INVOCATION_FAILURES), 1.0
        yield c.TIME_IN_BACKLOG, waited * 1000.0
        yield c.TOTAL_PROCESSING_TIME, (now - req.enqueued_at) * 1000.0
        if stage == "model":
            yield c.MODEL_LATENCY, outcome.model_us
            yield c.INVOCATION_4XX_ERRORS, float(400 <= status < 500)
            yield c.INVOCATION_5XX_ERRORS, float(status >= 500 or status == 0)
        elif stage == "download":
            yield c.REQUEST_DOWNLOAD_FAILURES, 1.0
        elif stage == "upload":
            yield c.RESPONSE_UPLOAD_FAILURES, 1.0

    async def _notify(self, req: QueuedRequest, outcome: Completed | Failed, now: float) -> None:
        config = self.endpoints.get(req.endpoint_lower)
        if config is None:
            return
        ok = isinstance(outcome, Completed)
        topic = config.success_topic if ok else config.error_topic
        if topic is None:
            return
        wanted = "SUCCESS_NOTIFICATION_TOPIC" if ok else "ERROR_NOTIFICATION_TOPIC"
        included = wanted in config.include_response_in
        event = inference_event(
            req, self._display_name(req.endpoint_lower), self.region, now, ok=ok,
            content_type=outcome.content_type if isinstance(outcome, Completed) else None,
            failure_reason=outcome.reason if isinstance(outcome, Failed) else None,
            response=outcome.response if isinstance(outcome, Completed) and included else None,
        )
        assert self._session is not None
        delivered = await self.notifier.publish(self._session, topic, event, now)
        if not delivered:
            variant = self._first_variant(req.endpoint_lower)
            if variant is not None:
                self.metrics.put(c.NOTIFICATION_FAILURES,
                                 self._dims(self._display_name(req.endpoint_lower), variant),
                                 1.0, timestamp=now)
