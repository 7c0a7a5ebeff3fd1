"""A training job's status moves and time accounting, on a fake timeline: each move closes
the transition before it; a new message within one status re-words it; billable seconds of a
spot attempt are its seconds at the spot share (1 - the catalog's 70 % discount)."""

from __future__ import annotations

import pytest

from tests.training.test_toolkit import spec
from tideserve.cost.catalog import Catalog
from tideserve.training.record import JobRecord
from tideserve.training.runner import closed_attempt


def record(now: float) -> JobRecord:
    job = JobRecord(name="job-1", arn="arn:job", spec={"RoleArn": "r", "OutputDataConfig": {}},
                    status="InProgress", secondary_status="Starting", transitions=[],
                    creation_time=now, last_modified_time=now)
    job.move("Starting", "Starting the training job", now)
    return job


def test_moves_close_transitions_and_reword_within_a_status():
    job = record(0.0)
    job.move("Starting", "Preparing the instances for training", 1.0)
    job.move("Downloading", "Downloading input data", 2.0)
    job.move("Training", "Training image download completed. Training in progress.", 3.0)
    job.move("Interrupted", "Training job interrupted", 10.0)
    assert [(t["Status"], t["StartTime"], t.get("EndTime")) for t in job.transitions] == [
        ("Starting", 0.0, 2.0), ("Downloading", 2.0, 3.0), ("Training", 3.0, 10.0),
        ("Interrupted", 10.0, None)]
    assert job.transitions[0]["StatusMessage"] == "Preparing the instances for training"
    assert job.status == "InProgress"
    job.move("Stopping", "Stopping", 11.0)
    job.move("MaxWaitTimeExceeded", "stopped", 12.0)
    assert (job.status, job.secondary_status) == ("Stopped", "MaxWaitTimeExceeded")
    assert job.transitions[-1]["EndTime"] == 12.0


def test_spot_attempts_bill_at_the_spot_share():
    job = record(0.0)
    job.set(attempt_started_at=100.0, training_start_time=100.0)
    spot_spec = spec()
    object.__setattr__(spot_spec, "spot", True)
    job.set(**closed_attempt(job, spot_spec, Catalog.default(), end=600.0))  # 500 s on spot
    assert job.training_seconds_done == 500.0
    assert job.billable_seconds_done == pytest.approx(150.0)  # savings (1 - 150/500) x 100 = 70 %
    assert job.describe(now=700.0).get("TrainingTimeInSeconds") is None  # not ended yet
    job.move("Completed", "Training job completed", 700.0)
    described = job.describe(now=700.0)
    assert (described["TrainingTimeInSeconds"], described["BillableTimeInSeconds"]) == (500, 150)


def test_an_older_training_table_gains_the_new_columns(tmp_path):
    from sqlalchemy import create_engine, inspect, text

    from tideserve.training.tables import add_missing_columns

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # the table as the first release of training jobs made it
        conn.execute(text("CREATE TABLE training_jobs (name_lower VARCHAR(63) PRIMARY KEY)"))
    add_missing_columns(engine)
    assert "final_metrics" in {c["name"] for c in inspect(engine).get_columns("training_jobs")}
    add_missing_columns(engine)  # idempotent
