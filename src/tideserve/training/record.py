"""A training job as stored, its status moves, and its AWS-shaped views.

Statuses (spec §4.2): TrainingJobStatus InProgress | Completed | Failed | Stopping | Stopped;
SecondaryStatus Starting -> Downloading -> Training -> Uploading -> Completed, with
Interrupted (spot), Restarting (the server restarted under a running job: ours),
Stopping -> Stopped | MaxRuntimeExceeded | MaxWaitTimeExceeded, and Failed. Each move appends
a SecondaryStatusTransition and closes the one before it; a new message within the same
status only updates the last entry's StatusMessage, as AWS does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from tideserve.training.tables import training_jobs as t

TERMINAL = ("Completed", "Failed", "Stopped")
ACTIVE = ("InProgress", "Stopping")
# Which primary status a secondary status belongs to.
_PRIMARY = {
    "Starting": "InProgress", "Downloading": "InProgress", "Training": "InProgress",
    "Uploading": "InProgress", "Interrupted": "InProgress", "Restarting": "InProgress",
    "Completed": "Completed", "Failed": "Failed", "Stopping": "Stopping",
    "Stopped": "Stopped", "MaxRuntimeExceeded": "Stopped", "MaxWaitTimeExceeded": "Stopped",
}


@dataclass
class JobRecord:
    name: str
    arn: str
    spec: dict[str, Any]
    status: str
    secondary_status: str
    transitions: list[dict[str, Any]]
    creation_time: float
    last_modified_time: float
    failure_reason: str | None = None
    training_start_time: float | None = None
    training_end_time: float | None = None
    training_seconds_done: float = 0.0
    billable_seconds_done: float = 0.0
    attempt_started_at: float | None = None
    attempts: int = 0
    interruptions: int = 0
    instance_id: str | None = None
    stop_requested: bool = False
    model_artifacts: str | None = None
    final_metrics: list[dict[str, Any]] | None = None
    changed: set[str] = field(default_factory=set, repr=False, compare=False)

    def move(self, secondary: str, message: str, now: float) -> None:
        """Enter `secondary` (and its primary status), or re-word the current one."""
        last = self.transitions[-1] if self.transitions else None
        if last is not None and last["Status"] == secondary:
            last["StatusMessage"] = message
        else:
            if last is not None:
                last["EndTime"] = now
            self.transitions.append({"Status": secondary, "StartTime": now,
                                     "StatusMessage": message})
        self.secondary_status = secondary
        self.status = _PRIMARY[secondary]
        if self.status in TERMINAL:
            self.transitions[-1]["EndTime"] = now
        self.last_modified_time = now
        self.changed |= {"secondary_status", "status", "transitions", "last_modified_time"}

    def set(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self, key, value)
        self.changed |= set(values)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def training_seconds(self, now: float) -> float:
        running = 0.0 if self.attempt_started_at is None else now - self.attempt_started_at
        return self.training_seconds_done + max(0.0, running)

    # -- views -------------------------------------------------------------------------------

    def describe(self, now: float) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts or ""},
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "HyperParameters": spec.get("HyperParameters") or {},
            "AlgorithmSpecification": spec.get("AlgorithmSpecification") or {},
            "RoleArn": spec["RoleArn"],
            "OutputDataConfig": spec["OutputDataConfig"],
            "ResourceConfig": spec.get("ResourceConfig") or {},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400,
                                  **(spec.get("StoppingCondition") or {})},
            "CreationTime": _ts(self.creation_time),
            "LastModifiedTime": _ts(self.last_modified_time),
            "SecondaryStatusTransitions": [_transition(x) for x in self.transitions],
            "EnableNetworkIsolation": bool(spec.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption":
                bool(spec.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(spec.get("EnableManagedSpotTraining", False)),
        }
        for key in ("InputDataConfig", "VpcConfig", "CheckpointConfig", "Environment",
                    "RetryStrategy"):
            if spec.get(key):
                out[key] = spec[key]
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.final_metrics:
            out["FinalMetricDataList"] = [{**m, "Timestamp": _ts(m["Timestamp"])}
                                          for m in self.final_metrics]
        if self.training_start_time is not None:
            out["TrainingStartTime"] = _ts(self.training_start_time)
        if self.training_end_time is not None:
            out["TrainingEndTime"] = _ts(self.training_end_time)
        if self.terminal and self.training_start_time is not None:
            out["TrainingTimeInSeconds"] = _whole_seconds(self.training_seconds(now))
            out["BillableTimeInSeconds"] = _whole_seconds(self.billable_seconds_done)
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": self.name, "TrainingJobArn": self.arn,
            "CreationTime": _ts(self.creation_time),
            "LastModifiedTime": _ts(self.last_modified_time),
            "TrainingJobStatus": self.status, "SecondaryStatus": self.secondary_status,
        }
        if self.training_end_time is not None:
            out["TrainingEndTime"] = _ts(self.training_end_time)
        return out


def _whole_seconds(seconds: float) -> int:
    """Seconds rounded up, as billing rounds a started second up; float noise (500 s x 0.3 =
    150.00000000000003) is not a started second."""
    return math.ceil(round(seconds, 6))


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _transition(x: dict[str, Any]) -> dict[str, Any]:
    out = {"Status": x["Status"], "StartTime": _ts(x["StartTime"]),
           "StatusMessage": x.get("StatusMessage", "")}
    if x.get("EndTime") is not None:
        out["EndTime"] = _ts(x["EndTime"])
    return out


_COLUMNS = ("name", "arn", "spec", "status", "secondary_status", "transitions",
            "creation_time", "last_modified_time", "failure_reason", "training_start_time",
            "training_end_time", "training_seconds_done", "billable_seconds_done",
            "attempt_started_at", "attempts", "interruptions", "instance_id", "stop_requested",
            "model_artifacts", "final_metrics")


def _record(row: Any) -> JobRecord:
    m = row._mapping
    values = {c: m[c] for c in _COLUMNS}
    values["transitions"] = list(values["transitions"])
    values["stop_requested"] = bool(values["stop_requested"])
    return JobRecord(**values)


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, record: JobRecord) -> bool:
        """False if a job of that name (case-insensitive) exists."""
        with self.engine.begin() as conn:
            if _get(conn, record.name) is not None:
                return False
            conn.execute(insert(t).values(
                name_lower=record.name.lower(), **{c: getattr(record, c) for c in _COLUMNS}))
        return True

    def get(self, name: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = _get(conn, name)
        return None if row is None else _record(row)

    def save(self, record: JobRecord) -> None:
        """Write the fields changed since it was read (JobRecord.move / set)."""
        if not record.changed:
            return
        values = {c: getattr(record, c) for c in record.changed}
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.name_lower == record.name.lower()).values(values))
        record.changed.clear()

    @contextmanager
    def editing(self, name: str) -> Iterator[JobRecord]:
        record = self.get(name)
        if record is None:
            raise KeyError(name)
        yield record
        self.save(record)

    def all(self) -> list[JobRecord]:
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(select(t))]

    def active(self) -> list[JobRecord]:
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(select(t).where(t.c.status.in_(ACTIVE)))]


def _get(conn: Connection, name: str) -> Any:
    return conn.execute(select(t).where(t.c.name_lower == name.lower())).first()
