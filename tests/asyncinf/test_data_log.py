"""An async endpoint's data-log lines: the inference id, the outcome and where the input and
the result or the failure are; never the payload."""

from __future__ import annotations

import json

from tideserve.asyncinf.datalog import MAX_REASON_CHARS, data_log_line
from tideserve.asyncinf.queue import QueuedRequest


def queued(**extra) -> QueuedRequest:
    fields = dict(id="r1", endpoint_lower="ep", inference_id="inf-1",
                  input_location="s3://in/rows.csv", body=None, content_type="text/csv",
                  accept=None, custom_attributes=None, output_location="s3://out/r1.out",
                  failure_location="s3://failed/r1-error.out", enqueued_at=0.0,
                  ttl_seconds=60, timeout_seconds=60, attempts=1)
    return QueuedRequest(**{**fields, **extra})


def test_a_success_names_its_input_and_output() -> None:
    assert json.loads(data_log_line(queued(), "Succeeded")) == {
        "inferenceId": "inf-1", "status": "Succeeded", "inputLocation": "s3://in/rows.csv",
        "outputLocation": "s3://out/r1.out", "attempts": 1}


def test_a_failure_names_where_its_reason_went_and_a_long_reason_is_cut() -> None:
    line = json.loads(data_log_line(queued(attempts=3), "Failed", "x" * 5000))
    assert line["failureLocation"] == "s3://failed/r1-error.out"
    assert len(line["failureReason"]) == MAX_REASON_CHARS
    assert "outputLocation" not in line and line["attempts"] == 3


def test_an_inline_body_has_no_input_location_and_is_not_logged() -> None:
    line = json.loads(data_log_line(queued(input_location=None, body=b"secret"), "Expired",
                                    "Request expired"))
    assert "inputLocation" not in line and "secret" not in json.dumps(line)
