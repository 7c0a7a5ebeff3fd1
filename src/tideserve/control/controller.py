"""The controller: makes what runs match what the API recorded, and writes back what it
observed (status, FailureReason; each kind writes its own Current* fields).

One reconcile task runs per endpoint at a time; a change that arrives meanwhile marks the
endpoint dirty and it is reconciled again. A reconcile asks plan.py what the endpoint needs
(tear down, delete, converge in the kind that owns it, settle its status) and carries it out;
the kinds (control/kinds.py KindConverger: instance_kind.py for instance-based variants,
serverless/manager.py for serverless ones) converge their own variants. Reconciling is
idempotent, so it also recovers an endpoint after a server restart (InService endpoints come
back with their instance count) and replaces instances that died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from tideserve.clock import Clock
from tideserve.control.instance_kind import InstanceKind
from tideserve.control.instances import InstanceReady
from tideserve.control.kinds import ConvergeFailed, KindConverger
from tideserve.control.plan import (
    SETTLING,
    ConvergeKind,
    DeleteRow,
    Desired,
    EndpointAction,
    EndpointObserved,
    MarkFailed,
    MarkInService,
    Teardown,
    plan,
)
from tideserve.control.store import ControlStore, EndpointRow
from tideserve.errors import TideserveError

__all__ = ["Controller", "InstanceReady"]

log = logging.getLogger("tideserve.controller")


class Controller:
    def __init__(self, store: ControlStore, clock: Clock,
                 kinds: Sequence[KindConverger]) -> None:
        """`kinds` are asked in order which owns an endpoint; the last should own every
        endpoint the others do not (InstanceKind does)."""
        self.store = store
        self.clock = clock
        self.kinds = tuple(kinds)
        self.fleets = [k for k in self.kinds if isinstance(k, InstanceKind)]
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._held: set[str] = set()  # endpoints handed to a kind since their last teardown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # Endpoints restored at start that have not finished coming back (GET /healthz).
        self.recovering: set[str] = set()

    # -- driving -----------------------------------------------------------------------------

    def notify(self, endpoint_name: str) -> None:
        """Thread-safe: the API calls this after recording a change."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule, endpoint_name.lower())

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for fleet in self.fleets:
            await fleet.start()
        for row in self.store.list_endpoints():
            if row.status == "InService":
                # Restarted: its instances are gone. SystemUpdating (AWS's status for
                # platform-side work) until they serve again; /healthz waits for them.
                self.store.modify_endpoint(row.name, _recovering)
                self.recovering.add(row.name)
            self._schedule(row.name.lower())

    async def check_health(self) -> None:
        """Replace instances whose process has exited (called periodically), after the
        variant's crash-loop backoff (fleet/backoff.py)."""
        for fleet in self.fleets:
            for key in await fleet.check_health():
                self._schedule(key)

    async def shutdown(self) -> None:
        self._stopping = True
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for fleet in self.fleets:
            await fleet.shutdown()

    def _schedule(self, key: str) -> None:
        if self._stopping:
            return
        task = self._tasks.get(key)
        if task is not None and not task.done():
            self._dirty.add(key)
            return
        self._tasks[key] = asyncio.create_task(self._run(key))

    def _schedule_at(self, key: str, at: float) -> None:
        seconds = at - self.clock.now()
        if seconds <= 0 or self._loop is None:
            self._schedule(key)
        else:
            self._loop.call_later(seconds, self._schedule, key)

    async def _run(self, key: str) -> None:
        while True:
            self._dirty.discard(key)
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciling endpoint %s failed", key)
            if key not in self._dirty or self._stopping:
                return

    # -- reconciling -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        try:
            await self._reconcile(key)
        finally:
            self._recovered(key)

    async def _reconcile(self, key: str) -> None:
        row = self.store.get_endpoint(key)
        kind = self._owner(row)
        if row is not None and kind is None:
            log.error("no registered kind converges endpoint %s", row.name)
            return
        desired = Desired.of(row, kind.label) if row is not None and kind else None
        failure = await self._execute(key, row, plan(desired, self._observed(key)))
        if failure is not None:
            await self._execute(key, row, plan(desired, self._observed(key, failure)))

    def _owner(self, row: EndpointRow | None) -> KindConverger | None:
        return next((k for k in self.kinds if k.owns(row)), None) if row is not None else None

    def _observed(self, key: str, failure: str | None = None) -> EndpointObserved:
        return EndpointObserved(held=key in self._held, failure=failure)

    async def _execute(self, key: str, row: EndpointRow | None,
                       actions: list[EndpointAction]) -> str | None:
        """Carry the actions out in order; stop at a converge that failed and say why."""
        for action in actions:
            if isinstance(action, Teardown):
                self._held.discard(key)
                for kind in self.kinds:
                    await kind.teardown(key)
            elif isinstance(action, DeleteRow) and row is not None:
                self.store.delete_endpoint(row.name)
            elif isinstance(action, ConvergeKind) and row is not None:
                failure = await self._converge(key, row)
                if failure is not None:
                    return failure
            elif isinstance(action, MarkInService) and row is not None:
                self.store.modify_endpoint(row.name, _in_service(action.generation, self.clock))
            elif isinstance(action, MarkFailed) and row is not None:
                self._fail(row, action.reason)
        return None

    async def _converge(self, key: str, row: EndpointRow) -> str | None:
        kind = self._owner(row)
        assert kind is not None
        self._held.add(key)
        try:
            wake = await kind.converge(row)
        except ConvergeFailed as exc:
            return str(exc)
        except TideserveError as exc:
            return f"{kind.label} capacity could not be provisioned: {exc.message}"
        if wake is not None:
            self._schedule_at(key, wake)
        return None

    def _fail(self, row: EndpointRow, reason: str) -> None:
        def change(current: EndpointRow) -> bool:
            if current.status == "Creating":
                current.status = "Failed"
            else:  # a failed scaling keeps the endpoint serving what it has
                current.status = "InService"
            current.failure_reason = reason[:1024]
            current.last_modified_time = self.clock.now()
            return True

        log.warning("endpoint %s: %s", row.name, reason)
        self.store.modify_endpoint(row.name, change)
        if row.status == "Creating":
            self._schedule(row.name.lower())  # tears the fleet down

    def _recovered(self, key: str) -> None:
        """A restored endpoint is back once a reconcile has left SystemUpdating (it serves,
        or it failed with a reason) or it is gone."""
        for name in [n for n in self.recovering if n.lower() == key]:
            row = self.store.get_endpoint(name)
            if row is None or row.status != "SystemUpdating":
                self.recovering.discard(name)

    # -- what the server asks ----------------------------------------------------------------

    def endpoints_not_serving(self) -> list[str]:
        """InService endpoints with a variant that takes traffic but has no instance in
        service (crashed and backing off, say)."""
        names = []
        for fleet in self.fleets:
            for name in fleet.not_serving():
                row = self.store.get_endpoint(name)  # Creating has no instance yet
                if row is not None and row.status == "InService":
                    names.append(name)
        return names

    def instance_pids(self) -> dict[str, tuple[int, str, str, str]]:
        """instance id -> (pid, endpoint, variant, instance type), for system metrics."""
        return {k: v for fleet in self.fleets for k, v in fleet.instance_pids().items()}


def _in_service(generation: int, clock: Clock) -> Callable[[EndpointRow], bool]:
    def change(current: EndpointRow) -> bool:
        if current.generation == generation and current.status in SETTLING:
            current.status = "InService"
            current.last_modified_time = clock.now()
            return True
        return False

    return change


def _recovering(row: EndpointRow) -> bool:
    row.status = "SystemUpdating"
    for v in row.variants:
        v["CurrentInstanceCount"] = 0
    return True
