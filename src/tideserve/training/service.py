"""CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob, and tideserve's
InterruptSpotInstance; and the supervisor that runs each accepted job as an asyncio task.

Restart: a job's state is its row (training/tables.py). When the server stops, each running
attempt is ended (its process stopped, its instance released and billed up to then) and the
job stays InProgress. When it starts again, every InProgress job goes Restarting -> Starting
on a new instance, with its checkpoints restored, as a spot job does after an interruption;
a job that was Stopping is Stopped. An attempt a crash left open is closed at the server's
last sign of life (the ledger's heartbeat), which is also where the ledger ends its billing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.errors import AlreadyExistsError, NotFoundError, TideserveError, ValidationError
from tideserve.training.record import JobRecord
from tideserve.training.runner import JobContext, JobRun, closed_attempt
from tideserve.training.specs import TrainingJobSpec

log = logging.getLogger(__name__)

Operation = Callable[[dict[str, Any]], dict[str, Any]]


class TrainingJobs:
    def __init__(self, ctx: JobContext, account: str,
                 put_tags: Callable[[str, list[dict[str, str]]], None] | None = None) -> None:
        self.ctx = ctx
        self.account = account
        # The control store's tags, where Cost Explorer reads cost-allocation tags from.
        self.put_tags = put_tags
        self._runs: dict[str, JobRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def arn(self, name: str) -> str:
        return (f"arn:aws:sagemaker:{self.ctx.region}:{self.account}:training-job/"
                f"{name.lower()}")

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateTrainingJob": self.create,
            "DescribeTrainingJob": self.describe,
            "ListTrainingJobs": self.list_page,
            "StopTrainingJob": self.stop,
        }

    def tideserve_operations(self) -> dict[str, Operation]:
        return {"InterruptSpotInstance": self.interrupt_spot}

    # -- operations --------------------------------------------------------------------------

    def create(self, p: dict[str, Any]) -> dict[str, Any]:
        spec = TrainingJobSpec.parse(p, self.ctx.catalog)
        now = self.ctx.clock.now()
        arn = self.arn(spec.name)
        record = JobRecord(name=spec.name, arn=arn, spec=_json_safe(p), status="InProgress",
                           secondary_status="Starting", transitions=[],
                           creation_time=now, last_modified_time=now)
        record.move("Starting", "Starting the training job", now)
        if not self.ctx.store.insert(record):
            raise AlreadyExistsError(
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({arn})", code="ResourceInUse")
        if spec.tags and self.put_tags is not None:
            self.put_tags(arn, list(spec.tags))
        self._launch_soon(record.name)
        return {"TrainingJobArn": arn}

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._record(p["TrainingJobName"]).describe(self.ctx.clock.now())

    def list_page(self, p: dict[str, Any]) -> dict[str, Any]:
        # AWS applies StatusEquals after taking MaxResults jobs (spec §4.2), so a page may
        # hold fewer than exist; we filter first, which no client can tell from a full page.
        query = ListQuery.parse(p)
        records = filter_and_sort(
            self.ctx.store.all(), query, name=lambda r: r.name,
            created=lambda r: r.creation_time, modified=lambda r: r.last_modified_time,
            status=lambda r: r.status)
        return query.response("TrainingJobSummaries", records, lambda r: r.summary())

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._record(p["TrainingJobName"])
        if record.status != "InProgress":
            raise ValidationError("The request was rejected because the training job is in "
                                  f"status {record.status}.")
        run = self._runs.get(record.name.lower())
        if run is not None:
            run.request_stop()
        else:  # not picked up yet: the run reads the flag when it starts
            record.set(stop_requested=True)
            record.move("Stopping", "Stopping the training job", self.ctx.clock.now())
            self.ctx.store.save(record)
        return {}

    def interrupt_spot(self, p: dict[str, Any]) -> dict[str, Any]:
        target = p["InstanceOrJob"]
        instance = self.ctx.spot.interrupt(target, self.ctx.clock.now(),
                                           float(p.get("CapacityUnavailableSeconds", 0)))
        if instance is None:
            raise NotFoundError(f"No spot instance is held by or named '{target}'.")
        assert instance.reclaim_at is not None
        return {"InstanceId": instance.instance_id, "InstanceType": instance.instance_type,
                "Holder": instance.holder, "NoticeSeconds": self.ctx.spot.notice_seconds,
                "ReclaimTime": instance.reclaim_at}

    def exists(self, name: str) -> bool:
        return self.ctx.store.get(name) is not None

    def _record(self, name: str) -> JobRecord:
        record = self.ctx.store.get(name)
        if record is None:
            raise NotFoundError("Requested resource not found.")
        return record

    # -- supervision -------------------------------------------------------------------------

    async def start(self) -> None:
        """At server start: settle what the last run left, then run every active job."""
        self._loop = asyncio.get_running_loop()
        alive = self.ctx.ledger.last_alive()
        for record in self.ctx.store.active():
            now = self.ctx.clock.now()
            end = alive if alive is not None and record.attempt_started_at is not None else now
            try:
                spec = TrainingJobSpec.parse(record.spec, self.ctx.catalog)
            except TideserveError as exc:  # e.g. its instance type left the catalog
                self._fail(record, f"ClientError: {exc.message}", now)
                continue
            record.set(**closed_attempt(record, spec, self.ctx.catalog, max(end, 0.0)))
            if record.status == "Stopping":
                record.move("Stopped", "Training job stopped", now)
                record.set(training_end_time=now)
            else:
                record.move("Restarting", "Restarting the training job: the server restarted "
                            "while it ran", now)
            self.ctx.store.save(record)
            if not record.terminal:
                self._launch(record.name)

    def adopt(self) -> None:
        """Run the active jobs this process does not run yet: those another server's API
        created (servers sharing a database; only the leader calls this)."""
        for record in self.ctx.store.active():
            self._launch(record.name)

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._runs.clear()

    def _launch_soon(self, name: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._launch, name)

    def _launch(self, name: str) -> None:
        key = name.lower()
        if key in self._tasks:
            return
        record = self.ctx.store.get(name)
        if record is None or record.terminal:
            return
        try:
            run = JobRun(self.ctx, record)
        except TideserveError as exc:
            self._fail(record, f"ClientError: {exc.message}", self.ctx.clock.now())
            return
        self._runs[key] = run
        task = asyncio.create_task(run.run(), name=f"training-job-{key}")
        self._tasks[key] = task
        task.add_done_callback(lambda _t: self._done(key))

    def _fail(self, record: JobRecord, reason: str, now: float) -> None:
        """A job that can no longer be run as it was accepted."""
        record.set(failure_reason=reason[:1024], training_end_time=now, attempt_started_at=None)
        record.move("Failed", "Training job failed", now)
        self.ctx.store.save(record)

    def _done(self, key: str) -> None:
        self._tasks.pop(key, None)
        self._runs.pop(key, None)


def _json_safe(value: Any) -> Any:
    """The request as JSON can hold it (no datetimes appear in this input; be sure)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
