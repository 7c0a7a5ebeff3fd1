"""The transform jobs' durable state (tables.py), and the Describe/List views of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from tideserve.errors import AlreadyExistsError
from tideserve.transform.tables import transform_jobs as jobs_t
from tideserve.transform.tables import transform_objects as objects_t

IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass(frozen=True)
class JobRow:
    name: str
    arn: str
    request: dict[str, Any]
    status: str
    failure_reason: str | None
    creation_time: float
    start_time: float | None
    end_time: float | None
    last_modified_time: float
    input_base: str | None = None


@dataclass(frozen=True)
class ObjectRow:
    seq: int
    uri: str
    size: int
    instance: int
    state: str  # pending | staged | done | failed
    staged_path: str | None
    records: int
    reason: str | None


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, arn: str, request: dict[str, Any], now: float) -> JobRow:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(jobs_t).values(
                    name_lower=name.lower(), name=name, arn=arn, request=request,
                    status=IN_PROGRESS, creation_time=now, last_modified_time=now))
        except IntegrityError:
            raise AlreadyExistsError(f"Job name {name} already exists.",
                                     code="ResourceInUse") from None
        row = self.get(name)
        assert row is not None
        return row

    def get(self, name: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_t).where(jobs_t.c.name_lower == name.lower())).first()
        return None if row is None else _job(row)

    def all(self) -> list[JobRow]:
        with self.engine.connect() as conn:
            return [_job(r) for r in conn.execute(select(jobs_t))]

    def unfinished(self) -> list[JobRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs_t).where(jobs_t.c.status.in_((IN_PROGRESS, STOPPING))))
            return [_job(r) for r in rows]

    def update(self, name: str, now: float, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs_t).where(jobs_t.c.name_lower == name.lower())
                         .values(last_modified_time=now, **values))

    def finish(self, name: str, status: str, reason: str | None, now: float) -> None:
        self.update(name, now, status=status, failure_reason=reason, end_time=now)

    # -- input objects ---------------------------------------------------------------------

    def objects(self, name: str) -> list[ObjectRow]:
        query = (select(objects_t).where(objects_t.c.job_lower == name.lower())
                 .order_by(objects_t.c.seq))
        with self.engine.connect() as conn:
            return [_object(r) for r in conn.execute(query)]

    def add_objects(self, name: str, base: str, items: Iterable[tuple[str, int, int]]) -> None:
        """The job's listing, once: (uri, size, instance index) in listing order, and the
        base their output names are relative to."""
        rows = [dict(job_lower=name.lower(), seq=i, uri=uri, size=size, instance=inst,
                     state="pending", records=0) for i, (uri, size, inst) in enumerate(items)]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(insert(objects_t), rows)
            conn.execute(update(jobs_t).where(jobs_t.c.name_lower == name.lower())
                         .values(input_base=base))

    def mark(self, name: str, seq: int, state: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(objects_t)
                         .where(objects_t.c.job_lower == name.lower(), objects_t.c.seq == seq)
                         .values(state=state, **values))


def _job(row: Any) -> JobRow:
    r = row._mapping
    return JobRow(
        name=r["name"], arn=r["arn"], request=dict(r["request"]), status=r["status"],
        failure_reason=r["failure_reason"], creation_time=float(r["creation_time"]),
        start_time=_float(r["start_time"]), end_time=_float(r["end_time"]),
        last_modified_time=float(r["last_modified_time"]), input_base=r["input_base"],
    )


def _object(row: Any) -> ObjectRow:
    r = row._mapping
    return ObjectRow(seq=int(r["seq"]), uri=r["uri"], size=int(r["size"]),
                     instance=int(r["instance"]), state=r["state"],
                     staged_path=r["staged_path"], records=int(r["records"] or 0),
                     reason=r["reason"])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def describe(row: JobRow) -> dict[str, Any]:
    """DescribeTransformJob's answer: the request as stored, with status and times."""
    keys = ("ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB",
            "BatchStrategy", "Environment", "TransformInput", "TransformOutput",
            "DataCaptureConfig", "TransformResources", "DataProcessing", "ExperimentConfig")
    out: dict[str, Any] = {"TransformJobName": row.name, "TransformJobArn": row.arn,
                           "TransformJobStatus": row.status}
    out.update({k: row.request[k] for k in keys if k in row.request})
    if row.failure_reason:
        out["FailureReason"] = row.failure_reason
    out["CreationTime"] = ts(row.creation_time)
    if row.start_time is not None:
        out["TransformStartTime"] = ts(row.start_time)
    if row.end_time is not None:
        out["TransformEndTime"] = ts(row.end_time)
    return out


def summary(row: JobRow) -> dict[str, Any]:
    out: dict[str, Any] = {"TransformJobName": row.name, "TransformJobArn": row.arn,
                           "CreationTime": ts(row.creation_time),
                           "LastModifiedTime": ts(row.last_modified_time),
                           "TransformJobStatus": row.status}
    if row.end_time is not None:
        out["TransformEndTime"] = ts(row.end_time)
    if row.failure_reason:
        out["FailureReason"] = row.failure_reason
    return out
