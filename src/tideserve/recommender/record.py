"""A recommendations job as stored: the request, its status, and each step's measurements,
one JSON file per job under <state-dir>/recommendations (written whole and renamed, so a
crash leaves the previous version). Views in AWS's shapes come from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tideserve.recommender.results import Point

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


@dataclass
class StepRecord:
    endpoint_name: str
    instance_type: str
    status: str
    failure_reason: str | None = None
    points: list[dict[str, Any]] = field(default_factory=list)  # Point fields per window
    result: int | None = None  # index into points of the breaking window
    reason: str = ""  # why the test stopped (breaking.Verdict.reason)
    meets_threshold: bool = False
    setup_seconds: float | None = None
    started: float | None = None
    ended: float | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def point_list(self) -> list[Point]:
        return [Point(**p) for p in self.points]

    def breaking(self) -> Point | None:
        return None if self.result is None else Point(**self.points[self.result])


@dataclass
class JobRecord:
    name: str
    arn: str
    request: dict[str, Any]
    status: str
    creation_time: float
    last_modified_time: float
    completion_time: float | None = None
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)

    def move(self, status: str, now: float, reason: str | None = None) -> None:
        self.status = status
        self.last_modified_time = now
        if status in TERMINAL:
            self.completion_time = now
        if reason is not None:
            self.failure_reason = reason[:1024]

    def summary(self) -> dict[str, Any]:
        config = self.request["InputConfig"]
        payload = (config.get("ContainerConfig") or {}).get("PayloadConfig") or {}
        out: dict[str, Any] = {
            "JobName": self.name, "JobDescription": self.request.get("JobDescription", ""),
            "JobType": self.request["JobType"], "JobArn": self.arn, "Status": self.status,
            "CreationTime": ts(self.creation_time), "RoleArn": self.request["RoleArn"],
            "LastModifiedTime": ts(self.last_modified_time)}
        if self.completion_time is not None:
            out["CompletionTime"] = ts(self.completion_time)
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        for key, value in (("ModelName", config.get("ModelName")),
                           ("SamplePayloadUrl", payload.get("SamplePayloadUrl")),
                           ("ModelPackageVersionArn", config.get("ModelPackageVersionArn"))):
            if value:
                out[key] = value
        return out


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class JobFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, record: JobRecord) -> None:
        path = self.folder / f"{record.name.lower()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def load_all(self) -> list[JobRecord]:
        out = []
        for path in sorted(self.folder.glob("*.json")):
            raw = json.loads(path.read_text())
            raw["steps"] = [StepRecord(**s) for s in raw.get("steps", [])]
            out.append(JobRecord(**raw))
        return out
