"""The transform tables. A job row holds the request as given (for Describe), its status and
its counters; one object row per input object records which instance it was dealt to and
whether its output is published, so a restarted server resumes a job where it stood and
never writes an output twice."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, String, Table, Text

from tideserve.db import metadata

transform_jobs = Table(
    "transform_jobs",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("request", JSON, nullable=False),  # CreateTransformJob's input as given
    # What output names are relative to (the S3Prefix, or the manifest's prefix); set with the
    # listing, so a resumed job neither lists again nor depends on the manifest still existing.
    Column("input_base", String(2048)),
    Column("status", String(16), nullable=False),  # InProgress Completed Failed Stopping Stopped
    Column("failure_reason", Text),
    Column("creation_time", Float, nullable=False),  # epoch seconds
    Column("start_time", Float),
    Column("end_time", Float),
    Column("last_modified_time", Float, nullable=False),
    Index("ix_transform_jobs_status", "status"),
)

# state: pending -> staged (output complete in the temp area) -> done | failed
transform_objects = Table(
    "transform_objects",
    metadata,
    Column("job_lower", String(63), primary_key=True),
    Column("seq", Integer, primary_key=True),  # position in the sorted input listing
    Column("uri", String(2048), nullable=False),
    Column("size", BigInteger, nullable=False),  # bytes as stored (compressed, if gzip)
    Column("instance", Integer, nullable=False),  # 0-based index among the job's instances
    Column("state", String(16), nullable=False),
    Column("staged_path", String(2048)),  # the finished temp file, while state = staged
    Column("records", BigInteger, nullable=False, default=0),
    Column("reason", Text),
)
