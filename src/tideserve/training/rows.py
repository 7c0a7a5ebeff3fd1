"""Training jobs as rows for `tideserve jobs` (transform/cli.py lists them beside transform
jobs), through the same ListTrainingJobs/DescribeTrainingJob a boto3 user calls.

`training_job_rows` has the listing's row shape (transform/cli.py's JobRowsSource):
(name, kind, status, creation time, seconds it ran or None while it runs). Its kind says
when the job ran on spot and what that saved, as the console shows it:
(1 - billable / training) x 100, e.g. 150 of 500 s -> "Training (spot, 70.0% saved)".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

KIND = "Training"


def training_job_rows(sagemaker_client: Any) -> list[tuple[str, str, str, datetime, float | None]]:
    rows: list[tuple[str, str, str, datetime, float | None]] = []
    for page in sagemaker_client.get_paginator("list_training_jobs").paginate():
        for summary in page["TrainingJobSummaries"]:
            job = sagemaker_client.describe_training_job(
                TrainingJobName=summary["TrainingJobName"])
            rows.append(_row(job))
    return rows


def _row(job: dict[str, Any]) -> tuple[str, str, str, datetime, float | None]:
    training = job.get("TrainingTimeInSeconds")
    kind = KIND
    if job.get("EnableManagedSpotTraining"):
        saved = savings(training, job.get("BillableTimeInSeconds"))
        kind = f"{KIND} (spot, {saved} saved)" if saved else f"{KIND} (spot)"
    return (job["TrainingJobName"], kind, job["TrainingJobStatus"], job["CreationTime"],
            None if training is None else float(training))


def savings(training: int | None, billable: int | None) -> str:
    """The console's "Managed spot training savings": '70.0%'; '' before the job ends."""
    if not training or billable is None:
        return ""
    return f"{(1 - billable / training) * 100:.1f}%"


def print_training_job(sagemaker_client: Any, name: str, out: TextIO) -> bool:
    """`tideserve jobs NAME` for a training job: its status, times and the console's savings,
    then its SecondaryStatusTransitions as DescribeTrainingJob words them. False when `name`
    is not a training job."""
    try:
        job = sagemaker_client.describe_training_job(TrainingJobName=name)
    except ClientError:
        return False
    status = f"{job['TrainingJobStatus']} ({job['SecondaryStatus']})"
    training, billable = job.get("TrainingTimeInSeconds"), job.get("BillableTimeInSeconds")
    print(f"{name}  {_row(job)[1]}  {status}", file=out)
    if training is not None:
        saved = savings(training, billable) if job.get("EnableManagedSpotTraining") else ""
        print(f"  training {training} s, billable {billable} s"
              + (f", {saved} saved" if saved else ""), file=out)
    for step in job.get("SecondaryStatusTransitions", []):
        print(f"  {step['StartTime']:%H:%M:%S}  {step['Status']:<12} "
              f"{step.get('StatusMessage', '')}".rstrip(), file=out)
    if job.get("FailureReason"):
        print(f"  Failed: {job['FailureReason']}", file=out)
    return True
