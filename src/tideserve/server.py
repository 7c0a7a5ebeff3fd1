"""Wiring for `tideserve up`: builds every component once, in one place, and runs the API,
the router and the controller in one process on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn

from tideserve.api.app import TideserveApp
from tideserve.api.health import Readiness, sorted_names
from tideserve.api.http_guard import (
    EdgeLimits,
    connection_budget,
    guarded_protocol,
    raise_open_file_limit,
)
from tideserve.api.rpc import OperationRegistry
from tideserve.api.traces import TracesFront
from tideserve.asyncinf.service import AsyncInference
from tideserve.autoscaling.aas_api import AutoScalingApi
from tideserve.autoscaling.alarms_api import CloudWatchAlarms
from tideserve.autoscaling.driver import ScalingDriver
from tideserve.autoscaling.latency_driver import build_latency_policies
from tideserve.autoscaling.startup_log import StartupLog
from tideserve.autoscaling.store import ScalingStore
from tideserve.budgets.service import Budgets
from tideserve.budgets_wiring import build_budgets, cost_advice
from tideserve.clock import Clock, WallClock
from tideserve.cluster.follow import EndpointWatch, refresh_routes
from tideserve.cluster.leader import Leadership, leader_poll_seconds
from tideserve.cluster.migrate import upgrade
from tideserve.control.access_keys import AccessKeys, ensure_credentials
from tideserve.control.capacity import EndpointCapacity
from tideserve.control.controller import Controller
from tideserve.control.fleet_state import ManagedInstance
from tideserve.control.instance_kind import InstanceKind
from tideserve.control.instances import InstanceHooks, InstanceReady
from tideserve.control.kinds import VariantKinds
from tideserve.control.lineage import EndpointContexts
from tideserve.control.models import ModelCache
from tideserve.control.names import Arns
from tideserve.control.sagemaker import SageMakerService
from tideserve.control.secret_box import SecretBox
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.cost.explorer import CostExplorer
from tideserve.cost.ledger import Ledger
from tideserve.cost.publish import publish_cost_metrics
from tideserve.cost.sources import invocations_from_metrics, tags_from_store
from tideserve.db import create_sqlite_files, make_engine, sqlite_url
from tideserve.fleet.local import LocalProcessProvider, kill_orphan
from tideserve.fleet.spot import SpotCapacity
from tideserve.logs.service import Logs
from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.cloudwatch import CloudWatchMetrics
from tideserve.metrics.model import Dimensions
from tideserve.metrics.prometheus import render
from tideserve.metrics.store import MetricStore
from tideserve.metrics.system import InstanceSampler
from tideserve.objectstore.remote import FsspecObjects
from tideserve.objectstore.s3_api import S3App
from tideserve.recommender.service import build_recommender
from tideserve.schema import create_all
from tideserve.serverless.config import keep_alive_seconds
from tideserve.serverless.kind import ServerlessKind
from tideserve.serverless.manager import ServerlessManager
from tideserve.serving.multi_model_route import publish_loaded_model_counts
from tideserve.serving.router import Router
from tideserve.serving.routes import RouteTable, VariantRoute, requests_per_instance
from tideserve.settings import Settings
from tideserve.stacks.wiring import build_stacks
from tideserve.state_files import PRIVATE_UMASK, make_private_dir
from tideserve.training.service import TrainingJobs
from tideserve.training.wiring import build_training_jobs
from tideserve.transform.service import TransformService, build_transform
from tideserve.trust import build_trust

log = logging.getLogger("tideserve")

HEALTH_INTERVAL_SECONDS = 1.0
# The namespaces we publish per endpoint; a deleted endpoint's series leave the aggregator.
OUR_NAMESPACES = frozenset(m.namespace for m in catalogue.CATALOGUE.values())


@dataclass
class InstanceEvents:
    """What the controller reports about instances: billing from the start request until
    stopped, and the startup time as a metric."""

    ledger: Ledger
    arns: Arns
    metrics: MetricAggregator
    startups: StartupLog
    clock: Clock

    def started(self, inst: ManagedInstance) -> None:
        variant = inst.handle.spec
        self.ledger.instance_started(
            inst.instance_id, self.arns.endpoint(inst.endpoint), inst.endpoint, inst.variant,
            variant.instance_type.name, at=inst.requested_at,
        )

    def stopped(self, inst: ManagedInstance) -> None:
        self.ledger.instance_stopped(inst.instance_id)

    def ready(self, ready: InstanceReady) -> None:
        dims = (("EndpointName", ready.endpoint), ("VariantName", ready.variant))
        self.metrics.put(catalogue.INSTANCE_STARTUP_TIME, dims, ready.seconds)
        self.startups.record(ready.endpoint, ready.variant, self.clock.now(), ready.seconds)

    def exited(self, inst: ManagedInstance, crashes: int, wait: float) -> None:
        """An instance died unasked: count it, and the backoff before its replacement."""
        dims = (("EndpointName", inst.endpoint), ("VariantName", inst.variant))
        self.metrics.put(catalogue.INSTANCE_EXITS, dims, 1.0)
        self.metrics.put(catalogue.RESTART_BACKOFF, dims, wait)
        self.metrics.put(catalogue.CONSECUTIVE_INSTANCE_EXITS, dims, float(crashes))


@dataclass
class Server:
    settings: Settings
    clock: Clock
    store: ControlStore
    metrics: MetricAggregator
    metric_store: MetricStore
    controller: Controller
    router: Router
    provider: LocalProcessProvider
    sampler: InstanceSampler
    ledger: Ledger
    arns: Arns
    scaling: ScalingDriver
    app: TideserveApp
    serverless: ServerlessManager
    asyncinf: AsyncInference | None = None
    transform: TransformService | None = None
    training: TrainingJobs | None = None
    logs: Logs | None = None
    budgets: Budgets | None = None
    leadership: Leadership | None = None
    _leader_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        # Every server serves the API and routes; the one holding the leader lock also runs
        # the controller and the background loops (cluster/leader.py). Alone on SQLite, that
        # is this one, at once.
        tasks = [asyncio.create_task(self._periods()), asyncio.create_task(self._health()),
                 asyncio.create_task(self._sample_concurrency())]
        if self.leadership is None or await asyncio.to_thread(self.leadership.try_acquire):
            await self._start_leading()
        if self.leadership is not None:
            tasks.append(asyncio.create_task(self._follow_or_lead()))
        try:
            yield
        finally:
            for task in tasks + self._leader_tasks:
                task.cancel()
            await asyncio.gather(*tasks, *self._leader_tasks, return_exceptions=True)
            if self.transform is not None:
                await self.transform.shutdown()
            if self.training is not None:
                await self.training.shutdown()
            await self.controller.shutdown()
            await self.serverless.close()
            await self.router.close()
            self.provider.stop_all_now()
            self._flush(self.clock.now() + self.settings.period)
            if self.leadership is not None:
                self.leadership.release()

    @property
    def leading(self) -> bool:
        return self.leadership is None or self.leadership.is_leader

    async def _start_leading(self) -> None:
        """What only one server may run: the previous leader's instances (orphans on this
        machine) are stopped and its endpoints restored with their instance count."""
        self.router.routes.endpoints.clear()  # a follower's view of the old leader's fleet
        for row in self.store.recorded_instances():
            kill_orphan(row.pid)
            self.store.forget_instance(row.instance_id)
        self.ledger.recover()  # bill a crashed run's instances until its last sign of life
        await self.controller.start()
        if self.training is not None:  # after ledger.recover: it reads the last heartbeat
            await self.training.start()
        tasks = self._leader_tasks
        tasks.append(asyncio.create_task(self.scaling.run_forever()))
        tasks.append(asyncio.create_task(self.serverless.run_forever()))
        if self.asyncinf is not None:
            tasks.append(asyncio.create_task(self.asyncinf.dispatcher.run_forever()))
        if self.transform is not None:
            await self.transform.start()  # resumes the jobs a previous run left InProgress
        if self.logs is not None:  # instance output into CloudWatch Logs; retention
            tasks.append(asyncio.create_task(self.logs.run_forever(self.settings.period)))

    async def _follow_or_lead(self) -> None:
        """A follower routes from the shared instance table and asks for the lock each poll;
        a leader notices the changes other servers' APIs made, and stops if it lost the lock
        (it can no longer know that it alone acts)."""
        assert self.leadership is not None
        poll = leader_poll_seconds(self.settings.period)
        watch = EndpointWatch(self.store, self.controller.notify)
        while True:
            try:
                if self.leadership.shared and self.asyncinf is not None:
                    await asyncio.to_thread(self.asyncinf.endpoints.reload)
                if self.leadership.is_leader:
                    if not await asyncio.to_thread(self.leadership.still_held):
                        log.error("lost the leader lock: stopping")
                        os.kill(os.getpid(), signal.SIGTERM)
                        return
                    if self.leadership.shared:  # alone on SQLite, its own API wakes it
                        await asyncio.to_thread(watch.poll)
                        self._adopt_jobs()
                elif await asyncio.to_thread(self.leadership.try_acquire):
                    log.info("took the leader lock: running the controller")
                    await self._start_leading()
                    await asyncio.to_thread(watch.poll)
                else:
                    await asyncio.to_thread(refresh_routes, self.router.routes, self.store)
            except Exception:
                log.exception("leader poll failed")
            await asyncio.sleep(poll)

    def _adopt_jobs(self) -> None:
        """Jobs another server's API created are this leader's to run."""
        for jobs in (self.training, self.transform):
            if jobs is not None:
                jobs.adopt()

    async def _periods(self) -> None:
        """Once per metric period: sample instances, publish zeros for idle variants (AWS does,
        so scale-in alarms see data), and move closed periods into the store."""
        period = self.settings.period
        while True:
            now = self.clock.now()
            await asyncio.sleep(period - (now % period) + 0.01)
            try:
                self._publish_zeros()
                self.sampler.sample(self.controller.instance_pids())
                publish_loaded_model_counts(self.router.routes, self.metrics)
                if self.leading:
                    self.serverless.on_period(self.clock.now())
                self._flush(self.clock.now())
                self.metrics.forget_endpoints_except(
                    {row.name.lower() for row in self.store.list_endpoints()}, OUR_NAMESPACES)
                if self.leading:  # billing is the leader's: one server's ledger meters
                    publish_cost_metrics(self.metrics, self.ledger,
                                         invocations_from_metrics(self.metric_store),
                                         self.clock.now(), self.settings.period)
                    self.ledger.heartbeat()
                    if self.budgets is not None:  # alerts and budget actions, once a period
                        self.budgets.evaluate()
            except Exception:
                log.exception("metric period failed")

    async def _sample_concurrency(self) -> None:
        """ConcurrentRequestsPerModel, sampled about once a (compressed) second: its Average is
        then the time-weighted requests per instance the simulator models, and its
        high-resolution alarms (10 s periods) find data."""
        interval = min(1.0, max(0.05, self.settings.period / 60))
        while True:
            await asyncio.sleep(interval)
            for variant, dims in self._real_time_variants():
                value = requests_per_instance(variant)
                if value is not None:
                    self.metrics.put(catalogue.CONCURRENT_REQUESTS_PER_MODEL, dims, value)

    def _publish_zeros(self) -> None:
        zero_filled = catalogue.zero_filled(catalogue.REAL_TIME)
        for _, dims in self._real_time_variants():
            for metric in zero_filled:
                self.metrics.ensure_zero(metric, dims)

    def _real_time_variants(self) -> Iterator[tuple[VariantRoute, Dimensions]]:
        """The routed variants that publish real-time metrics, with their dimensions: async
        endpoints are routed too but publish their own set (catalogue, spec §5.2)."""
        for route in list(self.router.routes.endpoints.values()):
            if self.asyncinf is not None and self.asyncinf.is_async(route.name):
                continue
            for variant in route.variants:
                yield variant, (("EndpointName", route.name), ("VariantName", variant.name))

    def _flush(self, now: float) -> None:
        points = self.metrics.flush(now)
        if points:
            self.metric_store.put(points)

    async def _health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
            if not self.leading:
                continue
            try:
                await self.controller.check_health()
            except Exception:
                log.exception("health check failed")

def build(settings: Settings, clock: Clock | None = None) -> Server:
    clock = clock or WallClock()
    state = settings.state_dir
    make_private_dir(state)
    if settings.database_url is None:
        create_sqlite_files(state)
    engine = make_engine(settings.database_url or sqlite_url(state))
    upgrade(engine)  # Alembic: creates or migrates the schema, keeping the data
    create_all(engine)  # and any table a package declares that no migration makes yet
    store = ControlStore(engine)
    keys = AccessKeys(engine, SecretBox.from_key_file(settings.secret_key_file or
                                                      state / "secret.key"))
    keys.seal_plaintext()
    ensure_credentials(keys, state / "credentials", settings.region, clock.now())
    catalog = Catalog.default(extra=state / "instance_types.csv")
    arns = Arns(settings.region, settings.account)
    metrics = MetricAggregator(settings.period)
    metric_store = MetricStore(engine)
    ledger = Ledger(engine, catalog, clock)
    provider = LocalProcessProvider(state / "logs", host="127.0.0.1")
    # --object-store: s3:// model data and async objects live in an external store; the S3
    # API below still serves the embedded root, so clients upload to the external one directly.
    external = (FsspecObjects(settings.object_store, settings.object_store_options)
                if settings.object_store else None)
    models = ModelCache(state / "models", state / "s3", external, settings.max_model_bytes)
    # Variant kinds beside instance-based ones: each is handed to the planes that consult it.
    serverless = ServerlessManager(
        store, models, provider, metrics, ledger, clock, settings.period,
        keep_alive_seconds(settings.time_scale), trust_pickle=settings.trust_pickle,
    )
    kinds = VariantKinds([ServerlessKind()])
    routes = RouteTable()
    router = Router(routes, metrics, settings.account, settings.region,
                    timeout=settings.model_timeout, kinds=[serverless])
    startups = StartupLog()
    events = InstanceEvents(ledger, arns, metrics, startups, clock)
    instances = InstanceKind(
        store, catalog, provider, routes, models, clock, trust_pickle=settings.trust_pickle,
        hooks=InstanceHooks(on_ready=events.ready, on_started=events.started,
                            on_stopped=events.stopped, on_exit=events.exited),
    )
    controller = Controller(store, clock, kinds=[serverless, instances])  # the catch-all last
    sagemaker = SageMakerService(store, arns, catalog, clock, on_change=controller.notify,
                                 kinds=kinds)
    cloudwatch = CloudWatchMetrics(metric_store, metrics, clock)
    registry = OperationRegistry()
    # Keys, permissions and the audit trail: iam/sts/cloudtrail APIs here, attached below.
    trust = build_trust(engine, keys, settings, clock, registry)
    registry.register_all("sagemaker", sagemaker.operations())
    registry.register_all("sagemaker", EndpointContexts(store, arns).operations())
    # CloudWatch Logs: what instances print goes to /aws/sagemaker/Endpoints/<name>.
    logs = Logs(engine, clock, settings.region, settings.account)
    provider.log_observer = logs.instance_logs
    registry.register_all("logs", logs.operations())
    registry.register_all("monitoring", cloudwatch.operations())
    scaling_store = ScalingStore(engine)
    capacity = EndpointCapacity(sagemaker)
    registry.register_all("application-autoscaling",
                          AutoScalingApi(scaling_store, capacity, clock, settings).operations())
    registry.register_all("monitoring",
                          CloudWatchAlarms(scaling_store, clock, settings).operations())
    audited_capacity = trust.audited(capacity)  # the autoscaler's changes, in the trail as AAS's
    scaling = ScalingDriver(scaling_store, metric_store, audited_capacity, clock, settings,
                            flush=cloudwatch.flush, startups=startups)
    # tideserve extension: latency-target policies on variants, run by the scaling driver.
    scaling.latency, latency_ops = build_latency_policies(
        engine, scaling_store, metric_store, audited_capacity, clock, settings)
    registry.register_all("tideserve", latency_ops)
    registry.register_all("ce", CostExplorer(ledger, tags_from_store(store)).operations())
    # Cost advice that acts: rightsizing and forecasts in Cost Explorer; AWS Budgets with
    # actions on endpoints and jobs (budgets_wiring.py), evaluated in the period loop.
    registry.register_all("ce", dict(cost_advice(metric_store, ledger, catalog, clock, settings,
                                                 store, arns)))
    sampler = InstanceSampler(metrics, catalog)
    app = TideserveApp(router, registry, trust.secret_for, clock, lambda: render(metrics))
    app.regions = settings.signing_regions
    app.readiness = lambda: Readiness(sorted_names(controller.recovering),
                                      sorted_names(controller.endpoints_not_serving()))
    app.s3 = S3App(state / "s3", app.secret_for, clock, regions=settings.signing_regions)
    traces = TracesFront.build(settings, app.secret_for, clock)
    if traces is not None:
        app.mounts.append(traces)
    server = Server(settings, clock, store, metrics, metric_store, controller, router, provider,
                    sampler, ledger, arns, scaling, app, serverless)
    server.asyncinf = AsyncInference.build(
        engine, settings, routes, metrics, clock,
        lambda name: getattr(store.get_endpoint(name), "status", None), external)
    sagemaker.async_endpoints = server.asyncinf.endpoints
    server.logs = logs
    server.asyncinf.dispatcher.data_log = logs.async_data_log  # <variant>/<instance>/data-log
    app.async_front = server.asyncinf.front
    # Batch transform: jobs on the same fleet provider, object store and ledger as endpoints;
    # one spot capacity for every job that runs on spot (training, transform).
    spot = SpotCapacity.from_state_dir(settings.state_dir, settings.time_scale)
    server.transform = build_transform(engine, settings, store, models, provider, catalog,
                                       ledger, arns, clock, external, spot)
    registry.register_all("sagemaker", server.transform.operations())
    app.mounts.append(server.transform.route(app.secret_for, lambda: app.regions))
    server.transform.logs = logs
    server.training = build_training_jobs(engine, settings, ledger, catalog, clock, external,
                                          logs, spot)
    registry.register_all("sagemaker", server.training.operations())
    registry.register_all("tideserve", server.training.tideserve_operations())
    sagemaker.tags.taggable.update({"training-job": server.training.exists,
                                    "transform-job": server.transform.exists})
    server.budgets = build_budgets(
        engine, settings, ledger, clock, sagemaker, capacity, scaling_store,
        {**server.transform.operations(), **server.training.operations()}, trust.trail, registry)
    # CloudFormation stacks whose resources are made through the operations registered above.
    build_stacks(engine, registry, clock, settings.region, settings.account, app.s3.store)
    # Inference Recommender: load tests on the same provider, object store and ledger.
    recommender = build_recommender(settings, store, models, provider, catalog, ledger, arns,
                                    clock, external)
    registry.register_all("sagemaker", recommender.operations())
    registry.register_all("tideserve", recommender.tideserve_operations())
    server.leadership = Leadership(engine, state / "leader.lock")
    trust.attach(app)  # after every route is mounted: each is authorised after SigV4
    app.lifespan = server.lifespan
    return server


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.umask(PRIVATE_UMASK)  # all the server writes is the user's alone (state_files.py)
    server = build(settings)
    started = time.time()
    log.info("state in %s; credentials in %s", settings.state_dir,
             settings.state_dir / "credentials")
    open_files = raise_open_file_limit()
    limits = EdgeLimits(
        header_timeout=settings.header_timeout,
        max_per_client=settings.max_connections_per_client,
        max_total=connection_budget(open_files),
    )
    # No limit_concurrency: past it uvicorn answers 503 to every request, signed ones too;
    # the ledger in http_guard evicts idle connections instead.
    config = uvicorn.Config(
        server.app, host=settings.host, port=settings.port, lifespan="on", access_log=False,
        log_level="warning", http=guarded_protocol(limits),
        timeout_keep_alive=settings.keep_alive_timeout,
    )
    uvicorn.Server(config).run()
    log.info("stopped after %.0f s", time.time() - started)
