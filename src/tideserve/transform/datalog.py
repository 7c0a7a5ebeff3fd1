"""A job's data log, as SageMaker's `<job-name>/data-log` stream words it (spec §3.7):

    2026-12-04T18:45:47.914Z:[sagemaker logs]: MaxConcurrentTransforms=2, MaxPayloadInMB=6,
        BatchStrategy=MULTI_RECORD
    2026-12-04T18:45:48.201Z:[sagemaker logs]: inputs/mixed/garbage.csv: ClientError: 400

kept at `<state-dir>/logs/transform/<job-name>/data-log` (appended across restarts; the
instances' own output is in `<state-dir>/logs/<instance-id>.log`, as for endpoints).
"""

from __future__ import annotations

import time
from pathlib import Path


class DataLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def line(self, text: str, now: float | None = None) -> None:
        if self.path is None:
            return
        moment = time.time() if now is None else now
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
        millis = int(moment * 1000) % 1000
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"{stamp}.{millis:03d}Z:[sagemaker logs]: {text}\n")


def object_name(uri: str) -> str:
    """`s3://b/k` -> `b/k`, the data log's spelling."""
    return uri.removeprefix("s3://")
