"""Training jobs as rows for a CLI table (`tideserve jobs` is wired by the coordinator): one
per job, newest first, through the same ListTrainingJobs/DescribeTrainingJob a boto3 user
calls."""

from __future__ import annotations

from typing import Any

HEADER = ("KIND", "NAME", "STATUS", "SECONDARY", "TRAINING_S", "BILLABLE_S", "SAVINGS")


def training_job_rows(sagemaker_client: Any) -> list[tuple[str, ...]]:
    """(kind, name, status, secondary status, training s, billable s, spot savings) per job;
    times and savings are blank until the job has ended. Savings as the console shows them:
    (1 - billable / training) x 100, e.g. 150 of 500 s -> "70.0%"."""
    rows: list[tuple[str, ...]] = []
    for page in sagemaker_client.get_paginator("list_training_jobs").paginate():
        for summary in page["TrainingJobSummaries"]:
            job = sagemaker_client.describe_training_job(
                TrainingJobName=summary["TrainingJobName"])
            rows.append(_row(job))
    return rows


def _row(job: dict[str, Any]) -> tuple[str, ...]:
    training = job.get("TrainingTimeInSeconds")
    billable = job.get("BillableTimeInSeconds")
    return ("training", job["TrainingJobName"], job["TrainingJobStatus"],
            job["SecondaryStatus"], "" if training is None else str(training),
            "" if billable is None else str(billable), savings(training, billable))


def savings(training: int | None, billable: int | None) -> str:
    if not training or billable is None:
        return ""
    return f"{(1 - billable / training) * 100:.1f}%"
