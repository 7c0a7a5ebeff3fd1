"""One training job, run to its end: attempts on instances until it completes, fails or
stops.

An attempt is one instance's life: Starting (the instance is acquired, billing starts),
Downloading (code, channels, checkpoints), Training (the script runs; checkpoints are synced
while it does), Uploading (model.tar.gz), then the instance is released. A spot instance can
be reclaimed mid-attempt: the script gets EC2's notice (a file, TIDESERVE_SPOT_INSTANCE_ACTION),
then SIGTERM when the two minutes are up; the job goes Interrupted and a new attempt starts on
a new spot instance with the checkpoints restored, unless MaxWaitTimeInSeconds has passed.

Every duration the user gives (MaxRuntimeInSeconds, MaxWaitTimeInSeconds) and AWS's own
(the two-minute notice, the 120-s stop grace) is scaled by the server's time scale;
TrainingTimeInSeconds and BillableTimeInSeconds are measured seconds, not scaled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tideserve.clock import Clock
from tideserve.cost.billing import ON_DEMAND, SPOT
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.errors import TideserveError, ValidationError
from tideserve.fleet.job_process import JobProcess
from tideserve.fleet.spot import SpotCapacity
from tideserve.logs import names
from tideserve.logs.service import Logs
from tideserve.training.metrics import final_metrics
from tideserve.training.paths import attempt_dir, log_path
from tideserve.training.prepare import prepare, restore_checkpoints, upload_artifacts
from tideserve.training.process import failure_reason
from tideserve.training.record import JobRecord, JobStore
from tideserve.training.specs import TrainingJobSpec
from tideserve.training.toolkit import Layout, command, environment
from tideserve.training.transfer import CheckpointSync, JobObjects

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1
STOP_GRACE_SECONDS = 120.0  # docker stop -t 120 (spec §4.7)
SHUTDOWN_GRACE_SECONDS = 2.0  # when the server itself stops: the job resumes on restart
CHECKPOINT_SYNC_SECONDS = 10.0  # upload cadence is UNCONFIRMED; the spec recommends <= 10 s
MIN_SCALED_SECONDS = 0.5  # no scaled wait shorter than this (a 2-s period would give 0.33 s)
COST_VARIANT = "training"  # the ledger's variant name for a training job's instances


class Outcome(enum.Enum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    MAX_RUNTIME = "MaxRuntimeExceeded"
    MAX_WAIT = "MaxWaitTimeExceeded"
    INTERRUPTED = "Interrupted"


# AWS's wording for these is UNCONFIRMED (spec §4.2); these are the spec's recommendations.
_STOP_MESSAGES = {
    Outcome.STOPPED: "Training job stopped",
    Outcome.MAX_RUNTIME: "Training job stopped because it exceeded MaxRuntimeInSeconds",
    Outcome.MAX_WAIT: "Training job stopped because it exceeded MaxWaitTimeInSeconds",
}


@dataclass(frozen=True)
class JobContext:
    """What every job's run shares."""

    store: JobStore
    objects: JobObjects
    spot: SpotCapacity
    ledger: Ledger
    catalog: Catalog
    clock: Clock
    root: Path  # <state-dir>/training
    time_scale: float
    region: str
    # CloudWatch Logs, where the server has it: the job's log file is also its
    # /aws/sagemaker/TrainingJobs stream `<job>/algo-1-<creation epoch>`.
    logs: Logs | None = None

    def scaled(self, aws_seconds: float) -> float:
        return max(MIN_SCALED_SECONDS, aws_seconds * self.time_scale)


class JobRun:
    def __init__(self, ctx: JobContext, record: JobRecord) -> None:
        self.ctx = ctx
        self.record = record
        self.spec = TrainingJobSpec.parse(record.spec, ctx.catalog)
        self.lock = threading.Lock()  # the API's threads (StopTrainingJob) edit the record too
        self.failure: str | None = None

    # -- record edits, each saved at once ----------------------------------------------------

    def move(self, secondary: str, message: str, **values: object) -> None:
        with self.lock:
            self.record.move(secondary, message, self.ctx.clock.now())
            if values:
                self.record.set(**values)
            self.ctx.store.save(self.record)

    def set(self, **values: object) -> None:
        with self.lock:
            self.record.set(**values)
            self.ctx.store.save(self.record)

    def request_stop(self) -> None:
        with self.lock:
            if self.record.terminal or self.record.stop_requested:
                return
            self.record.set(stop_requested=True)
            self.record.move("Stopping", "Stopping the training job", self.ctx.clock.now())
            self.ctx.store.save(self.record)

    # -- the job -----------------------------------------------------------------------------

    async def run(self) -> None:
        logs = log_path(self.ctx.root, self.record.name)
        if self.ctx.logs is not None:
            self.ctx.logs.follow(logs, names.training_job_host(
                self.record.name, 1, int(self.record.creation_time)))
        try:
            await self._run()
        finally:
            if self.ctx.logs is not None and self.record.terminal:
                self.ctx.logs.close(logs)  # else the job resumes, and its stream with it

    async def _run(self) -> None:
        try:
            while not self.record.terminal:
                outcome = await self._attempt()
                if outcome is Outcome.INTERRUPTED:
                    self.move("Interrupted", "Training job interrupted: the spot instance was "
                              "reclaimed", interruptions=self.record.interruptions + 1)
                    continue
                self._conclude(outcome)
        except asyncio.CancelledError:
            raise  # the server is stopping: the job stays InProgress and resumes
        except Exception as exc:  # noqa: BLE001 - ours, not the script's: fail the job, say so
            log.exception("training job %s failed in tideserve", self.record.name)
            self.failure = f"InternalServerError: {exc}"
            self._conclude(Outcome.FAILED)

    def _conclude(self, outcome: Outcome) -> None:
        now = self.ctx.clock.now()
        if outcome is Outcome.COMPLETED:
            self.move("Completed", "Training job completed", training_end_time=now)
        elif outcome is Outcome.FAILED:
            self.move("Failed", "Training job failed", training_end_time=now,
                      failure_reason=(self.failure or "AlgorithmError: See job logs")[:1024])
        else:
            if self.record.secondary_status != "Stopping":
                self.move("Stopping", "Stopping the training job")
            self.move(outcome.value, _STOP_MESSAGES[outcome], training_end_time=now)

    async def _attempt(self) -> Outcome:
        early = self._should_stop(self.ctx.clock.now())
        if early is not None:
            return early
        first = self.record.attempts == 0
        self.move("Starting", "Starting the training job" if first else
                  "Launching requested ML instances")
        waited = await self._wait_for_capacity()
        if waited is not None:
            return waited
        instance_id = self._acquire()
        try:
            return await self._on_instance(instance_id)
        finally:
            self._release(instance_id)

    async def _wait_for_capacity(self) -> Outcome | None:
        """Until spot capacity of the type is to be had; a stop or MaxWait ends the wait."""
        if not self.spec.spot:
            return None
        while not self.ctx.spot.available(self.spec.instance_type, self.ctx.clock.now()):
            if self.record.secondary_status == "Starting":
                self.move("Starting", "Insufficient capacity error from EC2 while launching "
                          "instances, retrying!")
            early = self._should_stop(self.ctx.clock.now())
            if early is not None:
                return early
            await asyncio.sleep(TICK_SECONDS)
        return None

    def _acquire(self) -> str:
        now = self.ctx.clock.now()
        name, itype = self.record.name, self.spec.instance_type
        if self.spec.spot:
            instance_id = self.ctx.spot.acquire(itype, name, now).instance_id
        else:
            instance_id = f"i-{uuid.uuid4().hex[:17]}"
        self.ctx.ledger.instance_started(instance_id, self.record.arn, name, COST_VARIANT, itype,
                                         SPOT if self.spec.spot else ON_DEMAND, at=now)
        self.set(attempt_started_at=now, attempts=self.record.attempts + 1,
                 instance_id=instance_id,
                 training_start_time=self.record.training_start_time or now)
        return instance_id

    def _release(self, instance_id: str) -> None:
        now = self.ctx.clock.now()
        self.ctx.spot.release(instance_id)
        self.ctx.ledger.instance_stopped(instance_id, at=now)
        self.set(**closed_attempt(self.record, self.spec, self.ctx.catalog, now))

    async def _on_instance(self, instance_id: str) -> Outcome:
        layout = Layout(attempt_dir(self.ctx.root, self.record.name, self.record.attempts))
        self.move("Starting", "Preparing the instances for training")
        self.move("Downloading", "Downloading input data")
        try:
            await asyncio.to_thread(prepare, self.spec, layout, self.ctx.objects,
                                    self.spec.wire["RoleArn"])
            sync = await asyncio.to_thread(restore_checkpoints, self.spec, layout,
                                           self.ctx.objects)
        except ValidationError as exc:
            self.failure = exc.message
            return Outcome.FAILED
        early = self._should_stop(self.ctx.clock.now(), instance_id)
        if early is not None:
            return early
        self.move("Training", "Downloading the training image")
        self.move("Training", "Training image download completed. Training in progress.")
        outcome = await self._train(layout, instance_id, sync)
        if outcome in (Outcome.INTERRUPTED, Outcome.FAILED):
            return outcome
        if outcome is Outcome.COMPLETED:  # a stopped job uploads what it has while Stopping
            self.move("Uploading", "Uploading generated training model")
        try:
            uri = await asyncio.to_thread(upload_artifacts, self.spec, layout, self.ctx.objects)
        except TideserveError as exc:  # the output location refused the artifacts
            self.failure = f"ClientError: cannot upload the model artifacts: {exc.message}"
            return Outcome.FAILED
        self.set(model_artifacts=uri)
        return outcome

    async def _train(self, layout: Layout, instance_id: str,
                     sync: CheckpointSync | None) -> Outcome:
        logs = log_path(self.ctx.root, self.record.name)
        logs.parent.mkdir(parents=True, exist_ok=True)
        offset = logs.stat().st_size if logs.exists() else 0
        argv = command(self.spec, layout)
        env = environment(self.spec, layout, self.record.arn, self.ctx.region)
        proc = JobProcess(argv, layout.code, env, logs)
        try:
            outcome = await self._watch(proc, layout, instance_id, sync)
        except BaseException:  # the server is stopping: no time for the full grace
            _end(proc, SHUTDOWN_GRACE_SECONDS)
            raise
        if sync is not None:
            await asyncio.to_thread(sync.sync)  # the last pass, after the script has exited
        if outcome is Outcome.FAILED:
            self.failure = failure_reason(logs, offset, layout.failure, proc.poll(), argv)
        definitions = self.spec.wire["AlgorithmSpecification"].get("MetricDefinitions")
        if definitions:
            found = final_metrics(logs.read_text(errors="replace"), definitions,
                                  self.ctx.clock.now())
            if found:
                self.set(final_metrics=found)
        return outcome

    async def _watch(self, proc: JobProcess, layout: Layout, instance_id: str,
                     sync: CheckpointSync | None) -> Outcome:
        last_sync = self.ctx.clock.now()
        while True:
            code = proc.poll()
            if code is not None:
                return Outcome.COMPLETED if code == 0 else Outcome.FAILED
            now = self.ctx.clock.now()
            self._deliver_notice(now, instance_id, layout)
            reason = self._should_stop(now, instance_id)
            if reason is not None:
                if reason in _STOP_MESSAGES and self.record.secondary_status != "Stopping":
                    self.move("Stopping", "Stopping the training job")
                await asyncio.to_thread(_end, proc, self.ctx.scaled(STOP_GRACE_SECONDS))
                return reason
            if sync is not None and now - last_sync >= self.ctx.scaled(CHECKPOINT_SYNC_SECONDS):
                await asyncio.to_thread(sync.sync)
                last_sync = self.ctx.clock.now()
            await asyncio.sleep(TICK_SECONDS)

    def _should_stop(self, now: float, instance_id: str | None = None) -> Outcome | None:
        """Why this attempt must end now, if it must: a stop, a limit, or the reclaim."""
        if self.record.stop_requested:
            return Outcome.STOPPED
        if self.record.training_seconds(now) > self.ctx.scaled(self.spec.max_runtime_seconds):
            return Outcome.MAX_RUNTIME
        if (self.spec.max_wait_seconds is not None
                and now - self.record.creation_time > self.ctx.scaled(self.spec.max_wait_seconds)):
            return Outcome.MAX_WAIT
        instance = self.ctx.spot.get(instance_id) if instance_id else None
        if instance is None or instance.reclaim_at is None or not instance.noticed(now):
            return None
        return Outcome.INTERRUPTED if now >= instance.reclaim_at else None

    def _deliver_notice(self, now: float, instance_id: str, layout: Layout) -> None:
        """Once the instance is noticed: EC2's instance-action document where the script
        looks for it, and a line in the job's log."""
        instance = self.ctx.spot.get(instance_id)
        if (instance is None or instance.reclaim_at is None or not instance.noticed(now)
                or layout.spot_notice.exists()):
            return
        _write_notice(layout.spot_notice, instance.reclaim_at)
        _log_line(log_path(self.ctx.root, self.record.name),
                  f"spot interruption notice: instance {instance_id} is reclaimed at "
                  f"{_iso(instance.reclaim_at)}")


def closed_attempt(record: JobRecord, spec: TrainingJobSpec, catalog: Catalog,
                   end: float) -> dict[str, object]:
    """The record's fields once its running attempt ends at `end`: its seconds added to
    training time, and to billable time at the share spot bills (1 - the type's discount:
    0.3 of on-demand for a 70 % discount, so 500 s of training bill as 150 s)."""
    if record.attempt_started_at is None:
        return {}
    seconds = max(0.0, end - record.attempt_started_at)
    share = 1.0 - catalog.get(spec.instance_type).spot_discount if spec.spot else 1.0
    return {"training_seconds_done": record.training_seconds_done + seconds,
            "billable_seconds_done": record.billable_seconds_done + seconds * share,
            "attempt_started_at": None, "instance_id": None}


def _end(proc: JobProcess, grace: float) -> None:
    """SIGTERM, then SIGKILL once `grace` seconds have passed (docker stop)."""
    proc.terminate()
    with contextlib.suppress(Exception):
        proc.proc.wait(timeout=grace)
    proc.kill()


def _write_notice(path: Path, reclaim_at: float) -> None:
    """EC2's spot/instance-action document, as the instance metadata service returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"action": "terminate", "time": _iso(reclaim_at)}))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_line(path: Path, text: str) -> None:
    with open(path, "a") as out:
        out.write(f"[tideserve] {text}\n")

