"""The async tables: which endpoints are async (their AsyncInferenceConfig as given) and the
durable request queue. A row is committed before the 202 is sent, so an accepted request
survives a crash."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, LargeBinary, String, Table, Text

from tideserve.db import metadata

async_endpoints = Table(
    "async_endpoints",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("config", JSON, nullable=False),  # AsyncInferenceConfig verbatim, for Describe*
)

async_requests = Table(
    "async_requests",
    metadata,
    Column("id", String(64), primary_key=True),  # ours; names the output object
    Column("endpoint_lower", String(63), nullable=False),
    Column("inference_id", String(64), nullable=False),
    Column("input_location", String(1024)),  # s3:// URI, or NULL with an inline body
    Column("body", LargeBinary),  # inline payload, <= 128 000 bytes
    Column("content_type", String(1024)),
    Column("accept", String(1024)),
    Column("custom_attributes", String(1024)),
    Column("output_location", String(2048), nullable=False),
    Column("failure_location", String(2048), nullable=False),
    Column("enqueued_at", Float, nullable=False),  # epoch seconds
    Column("ttl_seconds", Integer, nullable=False),  # queue age limit before dispatch
    Column("timeout_seconds", Integer, nullable=False),  # processing limit per attempt
    # queued -> processing -> done | failed | expired; processing -> queued on a lost lease
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),  # also the lease's fencing token
    Column("lease_until", Float),  # epoch seconds; a processing row past it is re-queued
    Column("claimed_at", Float),
    Column("finished_at", Float),
    Column("error", Text),
    Index("ix_async_requests_queue", "endpoint_lower", "state", "enqueued_at"),
    Index("ix_async_requests_state", "state"),
)
