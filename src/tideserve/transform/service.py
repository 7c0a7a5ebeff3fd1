"""The transform job operations, and the supervisor that runs the jobs.

    CreateTransformJob    validate (spec.py), store the job InProgress, start its run
    DescribeTransformJob  the stored request, status, FailureReason and times
    ListTransformJobs     NameContains, Creation/LastModifiedTime bounds, StatusEquals,
                          SortBy Name|CreationTime|Status, SortOrder, paging (MaxResults <= 100)
    StopTransformJob      InProgress -> Stopping -> Stopped; a no-op while Stopping; a
                          ValidationException on a finished job (spec §3.6's recommendation)

An unknown job is a ValidationException `Could not find transform job "<name>".` so that the
`transform_job_completed_or_stopped` waiter, which treats only ValidationException as a
terminal error, stops on it rather than polling for an hour.

`start()` (server lifespan) resumes every job a previous server left InProgress or Stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from tideserve.clock import Clock
from tideserve.control import tables as ct
from tideserve.control.listing import ListQuery, filter_and_sort
from tideserve.control.models import ModelCache
from tideserve.control.names import Arns
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.errors import NotFoundError, ValidationError
from tideserve.fleet.base import InstanceProvider
from tideserve.fleet.spot import SpotCapacity
from tideserve.logs import names
from tideserve.logs.names import LogTarget
from tideserve.logs.service import Logs
from tideserve.objectstore.remote import FsspecObjects
from tideserve.settings import Settings
from tideserve.transform.datalog import DataLog
from tideserve.transform.instances import JobFleet
from tideserve.transform.jobs import (
    IN_PROGRESS,
    STOPPING,
    JobRow,
    JobStore,
    describe,
    summary,
)
from tideserve.transform.objects import EmbeddedObjects, ExternalObjects, JobObjects
from tideserve.transform.progress import Progress, ProgressRoute
from tideserve.transform.runner import JobRun
from tideserve.transform.spec import TransformJobSpec

log = logging.getLogger("tideserve.transform")

Operation = Callable[[dict[str, Any]], Any]
MAX_LIST_RESULTS = 100


class TransformService:
    def __init__(self, jobs: JobStore, control: ControlStore, objects: JobObjects,
                 fleet: JobFleet, catalog: Catalog, arns: Arns, clock: Clock,
                 log_dir: Path | None = None) -> None:
        self.jobs = jobs
        self.control = control
        self.objects = objects
        self.fleet = fleet
        self.catalog = catalog
        self.arns = arns
        self.clock = clock
        self.log_dir = log_dir  # data logs: <log_dir>/<job-name>/data-log (datalog.py)
        # CloudWatch Logs, where the server has it: the data log is also the job's
        # `<job>/data-log` stream in /aws/sagemaker/TransformJobs.
        self.logs: Logs | None = None
        self.runs: dict[str, JobRun] = {}  # by lower-cased name, while a run is active
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateTransformJob": self.create,
            "DescribeTransformJob": self.describe,
            "ListTransformJobs": self.list_jobs,
            "StopTransformJob": self.stop,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        for row in self.jobs.unfinished():
            log.info("resuming transform job %s (%s)", row.name, row.status)
            self._launch(row)

    def adopt(self) -> None:
        """Run the unfinished jobs this process does not run yet: those another server's API
        created (servers sharing a database; only the leader calls this)."""
        for row in self.jobs.unfinished():
            if row.name.lower() not in self.tasks:
                self._launch(row)

    async def shutdown(self) -> None:
        """The server stops: runs end here and resume on the next start (their jobs stay
        InProgress); their instances are stopped by the runs' own cleanup."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _launch(self, row: JobRow) -> None:
        key = row.name.lower()
        log_path = None if self.log_dir is None else self.log_dir / row.name / "data-log"
        data_log = DataLog(log_path)
        if self.logs is not None and log_path is not None:
            self.logs.follow(log_path, LogTarget(names.TRANSFORM_JOBS, f"{row.name}/data-log"))
        run = JobRun(row, TransformJobSpec.parse(row.request), self.jobs, self.objects,
                     self.fleet, self.clock, data_log)
        if row.status == STOPPING:
            run.stop()
        self.runs[key] = run

        async def supervised() -> None:
            try:
                await run.run()
            finally:
                self.runs.pop(key, None)
                self.tasks.pop(key, None)
                if self.logs is not None and log_path is not None:
                    self.logs.close(log_path)

        self.tasks[key] = asyncio.get_running_loop().create_task(supervised())

    # -- operations ---------------------------------------------------------------------------

    async def create(self, p: dict[str, Any]) -> dict[str, Any]:
        spec = TransformJobSpec.parse(p)
        if self.control.get_resource(ct.models, spec.model_name) is None:
            raise ValidationError(f'Could not find model "{self.arns.model(spec.model_name)}".')
        self.catalog.get(spec.instance_type)  # an unknown type is a ValidationException
        arn = self.arns.sagemaker("transform-job", spec.name)
        row = self.jobs.create(spec.name, arn, dict(p), self.clock.now())
        if p.get("Tags"):  # where ListTags and Cost Explorer's cost-allocation tags read them
            self.control.put_tags(arn, [{"Key": t["Key"], "Value": t.get("Value", "")}
                                        for t in p["Tags"]])
        self._launch(row)
        return {"TransformJobArn": arn}

    def exists(self, name: str) -> bool:
        return self.jobs.get(name) is not None

    def _get(self, name: str) -> JobRow:
        row = self.jobs.get(name)
        if row is None:
            raise NotFoundError(f'Could not find transform job "{name}".')
        return row

    def describe(self, p: dict[str, Any]) -> dict[str, Any]:
        return describe(self._get(p["TransformJobName"]))

    def list_jobs(self, p: dict[str, Any]) -> dict[str, Any]:
        query = ListQuery.parse(p)
        if query.max_results is not None and query.max_results > MAX_LIST_RESULTS:
            raise ValidationError(f"MaxResults {query.max_results} is over the limit of "
                                  f"{MAX_LIST_RESULTS}.")
        rows = filter_and_sort(self.jobs.all(), query, name=lambda r: r.name,
                               created=lambda r: r.creation_time,
                               modified=lambda r: r.last_modified_time,
                               status=lambda r: r.status)
        return query.response("TransformJobSummaries", rows, summary)

    def stop(self, p: dict[str, Any]) -> dict[str, Any]:
        row = self._get(p["TransformJobName"])
        if row.status == STOPPING:
            return {}
        if row.status != IN_PROGRESS:
            raise ValidationError(f"The request was rejected because the transform job is in "
                                  f"status {row.status}.")
        self.jobs.update(row.name, self.clock.now(), status=STOPPING)
        run = self.runs.get(row.name.lower())
        if run is not None:
            run.stop()
        return {}

    # -- progress (tideserve's own route, progress.py) ----------------------------------------

    def route(self, secret_for: Callable[[str], str | None],
              regions: Callable[[], Collection[str]]) -> ProgressRoute:
        return ProgressRoute(self.progress, secret_for, self.clock, regions)

    def progress(self, name: str) -> dict[str, Any]:
        row = self._get(name)
        run = self.runs.get(name.lower())
        if run is not None:
            progress, elapsed = run.progress, self.clock.now() - run.started
        else:
            progress = _stored_progress(self.jobs, row.name)
            end = row.end_time or self.clock.now()
            elapsed = end - (row.start_time or row.creation_time)
        return {"TransformJobName": row.name, "TransformJobStatus": row.status,
                **progress.view(), "ElapsedSeconds": round(max(0.0, elapsed), 3)}


def _stored_progress(jobs: JobStore, name: str) -> Progress:
    rows = jobs.objects(name)
    finished = [r for r in rows if r.state in ("done", "failed")]
    done = [r for r in finished if r.state == "done"]
    return Progress(objects_total=len(rows), bytes_total=sum(r.size for r in rows),
                    objects_done=len(done), objects_failed=len(finished) - len(done),
                    records_done=sum(r.records for r in finished),
                    bytes_done=sum(r.size for r in finished))


def build_transform(engine: Any, settings: Settings, control: ControlStore, models: ModelCache,
                    provider: InstanceProvider, catalog: Catalog, ledger: Ledger, arns: Arns,
                    clock: Clock, external: FsspecObjects | None,
                    spot: SpotCapacity | None = None) -> TransformService:
    """The service over the embedded object store, or the external one (--object-store);
    `spot`: the fleet's spot capacity, for jobs with Environment TIDESERVE_SPOT=true."""
    state = Path(settings.state_dir)
    objects: JobObjects = (EmbeddedObjects(state / "s3") if external is None
                           else ExternalObjects(external, state / "s3-tmp"))
    fleet = JobFleet(control, models, provider, catalog, ledger, clock, settings.trust_pickle,
                     spot)
    return TransformService(JobStore(engine), control, objects, fleet, catalog, arns, clock,
                            state / "logs" / "transform")
