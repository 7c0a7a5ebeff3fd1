"""The cost ledger's tables: one row per instance lifetime, and the server's last sign of life
(so a restart can close the rows a crash left open; see Ledger.recover)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table

from tideserve.db import metadata

instance_usage = Table(
    "cost_instance_usage",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("endpoint_arn", String(256), nullable=False),
    Column("endpoint_name", String(63), nullable=False),
    Column("variant_name", String(63), nullable=False),
    Column("instance_type", String(64), nullable=False),
    Column("purchase_option", String(16), nullable=False),
    # USD per hour when the instance started: a later catalog edit does not reprice history.
    Column("rate_per_hour", Float, nullable=False),
    Column("start_time", Float, nullable=False),  # epoch seconds: the start was requested
    Column("end_time", Float),  # epoch seconds: stopped; NULL while the instance exists
    Index("ix_cost_instance_usage_start", "start_time"),
    Index("ix_cost_instance_usage_end", "end_time"),
)

# A single row (id 1): when this server last recorded being alive, epoch seconds.
heartbeat = Table(
    "cost_heartbeat",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alive_at", Float, nullable=False),
)
