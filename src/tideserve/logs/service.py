"""The logs service as the server wires it: the store, the file ingester, Insights, the API,
and the loop that ingests and enforces retention.

Producers get their log stream from names.py and then either hand over a file their process
writes (`follow`, as instances do through `instance_logs`) or write lines themselves
(`writer`). Transform and training jobs plug in the same way:

    # a job instance started through the fleet provider: say where its output goes
    InstanceSpec(..., log_stream=astuple(names.transform_job_instance(job, iid, started)))
    # a process of one's own: follow its output file, close it when the process ends
    logs.follow(path, names.training_job_host(job, 1, started)); ...; logs.close(path)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from tideserve.clock import Clock
from tideserve.logs import names
from tideserve.logs.api import LogsApi
from tideserve.logs.ingest import FileIngester
from tideserve.logs.names import LogArns, LogTarget
from tideserve.logs.queries import QueryRunner
from tideserve.logs.store import LogStore

log = logging.getLogger("tideserve.logs")

POLL_SECONDS = 0.25


class InstanceLike(Protocol):
    """What the fleet's InstanceSpec tells us about an instance (structural: logs does not
    import the fleet)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def endpoint_name(self) -> str: ...

    @property
    def variant_name(self) -> str: ...

    @property
    def log_stream(self) -> tuple[str, str] | None: ...


class LogWriter:
    """Lines written straight into a stream by in-process producers, stamped as written."""

    def __init__(self, store: LogStore, target: LogTarget, clock: Clock) -> None:
        self.store = store
        self.target = target
        self.clock = clock

    def write(self, lines: Iterable[str]) -> None:
        now_ms = int(self.clock.now() * 1000)
        messages = [(now_ms, line) for line in lines if line.strip()]
        if messages:
            group = self.store.ensure_group(self.target.group, now_ms)
            stream = self.store.ensure_stream(group, self.target.stream, now_ms)
            self.store.append(group, stream, messages, now_ms)


class InstanceLogs:
    """The fleet's log observer: an instance's output file goes to its endpoint's group."""

    def __init__(self, ingester: FileIngester) -> None:
        self.ingester = ingester

    def opened(self, spec: InstanceLike, path: Path) -> None:
        if spec.log_stream is not None:  # a job's instance, borrowed from the fleet
            target = LogTarget(*spec.log_stream)
        else:
            target = names.endpoint_instance(spec.endpoint_name, spec.variant_name,
                                             spec.instance_id)
        self.ingester.follow(path, target)

    def container_opened(self, spec: InstanceLike, container: str, path: Path) -> None:
        """A pipeline container's output: its own stream, <variant>/<instance-id>/<container>
        (the instance's stream keeps the front's own lines)."""
        self.ingester.follow(path, names.endpoint_container(
            spec.endpoint_name, spec.variant_name, spec.instance_id, container))

    def closed(self, path: Path) -> None:
        self.ingester.close(path)


class Logs:
    def __init__(self, engine: Engine, clock: Clock, region: str, account: str) -> None:
        self.clock = clock
        self.store = LogStore(engine)
        self.ingester = FileIngester(self.store, clock)
        self.api = LogsApi(self.store, QueryRunner(self._records, clock),
                           LogArns(region, account), clock)
        self.instance_logs = InstanceLogs(self.ingester)

    def _records(self, groups: list[str], start_ms: int, end_ms: int,
                 contains: tuple[str, ...]) -> Any:
        return self.api.records(groups, start_ms, end_ms, contains)

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]]:
        return self.api.operations()

    def follow(self, path: Path, target: LogTarget) -> None:
        self.ingester.follow(path, target)

    def close(self, path: Path) -> None:
        self.ingester.close(path)

    def writer(self, target: LogTarget) -> LogWriter:
        return LogWriter(self.store, target, self.clock)

    def async_data_log(self, endpoint: str, variant: str, instance_id: str, line: str) -> None:
        """One line of an async endpoint's data log (<variant>/<instance-id>/data-log)."""
        self.writer(names.async_data_log(endpoint, variant, instance_id)).write([line])

    def prune(self) -> int:
        return self.store.prune(int(self.clock.now() * 1000))

    async def run_forever(self, prune_every: float) -> None:
        """Ingest every POLL_SECONDS; enforce retention every `prune_every` seconds."""
        await asyncio.to_thread(self.ingester.resume)
        next_prune = 0.0
        try:
            while True:
                try:
                    await asyncio.to_thread(self.ingester.poll)
                    if self.clock.now() >= next_prune:
                        await asyncio.to_thread(self.prune)
                        next_prune = self.clock.now() + prune_every
                except Exception:
                    log.exception("log ingestion failed")
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.ingester.poll()  # what the instances wrote before the server stopped
            self.api.queries.close()
