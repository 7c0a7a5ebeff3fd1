"""The training jobs' table: the request as accepted, and what the runner observed, so a job
is described from here alone and resumes after a restart from here alone."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Engine, Float, Integer, String, Table, Text, inspect
from sqlalchemy import text as sql

from tideserve.db import metadata

training_jobs = Table(
    "training_jobs",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("spec", JSON, nullable=False),  # CreateTrainingJob's input, verbatim
    Column("status", String(16), nullable=False),  # TrainingJobStatus
    Column("secondary_status", String(32), nullable=False),
    # [{Status, StartTime, EndTime?, StatusMessage}], times as epoch seconds
    Column("transitions", JSON, nullable=False),
    Column("failure_reason", Text),
    Column("creation_time", Float, nullable=False),  # epoch seconds, as every time here
    Column("last_modified_time", Float, nullable=False),
    Column("training_start_time", Float),  # the first instance started (billing starts)
    Column("training_end_time", Float),
    # Seconds on instances in attempts that ended; the running attempt's since its start.
    Column("training_seconds_done", Float, nullable=False, default=0.0),
    Column("attempt_started_at", Float),  # NULL between attempts
    Column("attempts", Integer, nullable=False, default=0),
    Column("interruptions", Integer, nullable=False, default=0),
    Column("instance_id", String(64)),  # the instance of the running attempt
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("model_artifacts", String(1024)),
    # [{MetricName, Value, Timestamp}] from AlgorithmSpecification.MetricDefinitions
    Column("final_metrics", JSON),
    # Billable seconds of attempts that ended (spot: at the discounted share).
    Column("billable_seconds_done", Float, nullable=False, default=0.0),
)


def add_missing_columns(engine: Engine) -> None:
    """Columns added after a database was created (create_all makes missing tables only), so
    a state directory from an older tideserve gains them: all nullable."""
    if not inspect(engine).has_table(training_jobs.name):
        return
    have = {c["name"] for c in inspect(engine).get_columns(training_jobs.name)}
    if "final_metrics" not in have:
        with engine.begin() as conn:
            conn.execute(sql("ALTER TABLE training_jobs ADD COLUMN final_metrics JSON"))
