"""An async endpoint's data log: one line per request that reached an outcome on an
instance, in the stream `<variant>/<instance-id>/data-log` of the endpoint's log group
(SageMaker's platform log for async endpoints, whose lines carry the inference id so that a
failure can be traced to its request; logs/names.async_data_log).

AWS documents the stream and that its lines name the inference id, not their format. Ours are
JSON, so that a filter pattern picks them apart (`{ $.status = "Failed" }`):

    {"inferenceId": "...", "status": "Succeeded", "inputLocation": "s3://in/x.csv",
     "outputLocation": "s3://results/ep/out/<request id>.out", "attempts": 1}
    {"inferenceId": "...", "status": "Failed", "inputLocation": ..., "failureLocation":
     "s3://results/ep/failed/<request id>-error.out", "failureReason": "...", "attempts": 3}

status is Succeeded, Failed or Expired (its RequestTTLSeconds passed before the instance
began it). The request's payload is never logged, only where it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tideserve.asyncinf.queue import QueuedRequest

# (endpoint name, variant, instance id, line): the wiring writes it to the data-log stream.
DataLogSink = Callable[[str, str, str, str], None]
MAX_REASON_CHARS = 1024


def data_log_line(req: QueuedRequest, status: str, reason: str | None = None) -> str:
    line: dict[str, str | int] = {"inferenceId": req.inference_id, "status": status}
    if req.input_location:
        line["inputLocation"] = req.input_location
    if status == "Succeeded":
        line["outputLocation"] = req.output_location
    else:
        line["failureLocation"] = req.failure_location
        if reason:
            line["failureReason"] = reason[:MAX_REASON_CHARS]
    line["attempts"] = req.attempts
    return json.dumps(line, separators=(", ", ": "))
