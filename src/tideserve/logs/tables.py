"""The logs tables. Events are append-only rows keyed by an autoincrement id, which is also
their eventId and breaks timestamp ties in ingestion order; the (group, timestamp, id) index
serves FilterLogEvents and Insights, the (stream, timestamp, id) one GetLogEvents."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tideserve.db import metadata

log_groups = Table(
    "log_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(512), nullable=False, unique=True),
    Column("creation_time", BigInteger, nullable=False),  # epoch ms
    Column("retention_days", Integer, nullable=True),  # None: never expire
    Column("stored_bytes", BigInteger, nullable=False, default=0),
)

log_streams = Table(
    "log_streams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, ForeignKey("log_groups.id"), nullable=False),
    Column("name", String(512), nullable=False),
    Column("creation_time", BigInteger, nullable=False),  # epoch ms
    Column("first_event", BigInteger, nullable=True),  # epoch ms; None while empty
    Column("last_event", BigInteger, nullable=True),
    Column("last_ingestion", BigInteger, nullable=True),
    UniqueConstraint("group_id", "name", name="uq_log_stream"),
)

log_events = Table(
    "log_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, nullable=False),
    Column("stream_id", Integer, nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # epoch ms, the event's own time
    Column("ingestion_time", BigInteger, nullable=False),  # epoch ms
    Column("message", Text, nullable=False),
    Index("ix_log_events_group_time", "group_id", "timestamp", "id"),
    Index("ix_log_events_stream_time", "stream_id", "timestamp", "id"),
)

# Files the ingester follows (an instance's stdout/stderr), with how far it has read: after a
# restart the tail written since the last poll is still ingested, exactly once.
log_sources = Table(
    "log_sources",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("group_name", String(512), nullable=False),
    Column("stream_name", String(512), nullable=False),
    Column("offset", BigInteger, nullable=False, default=0),  # bytes read and ingested
)
