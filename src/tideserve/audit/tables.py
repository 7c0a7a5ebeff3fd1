"""CloudTrail's Event history: one row per event (the record as JSON, plus the columns
LookupEvents filters on) and one per resource an event names."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text

from tideserve.db import metadata

cloudtrail_events = Table(
    "cloudtrail_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # append order: newest last
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_time", Float, nullable=False),  # epoch seconds
    Column("event_name", String(128), nullable=False),
    Column("event_source", String(128), nullable=False),
    Column("username", String(128), nullable=True),
    Column("access_key_id", String(128), nullable=True),
    Column("read_only", Boolean, nullable=False),
    Column("record", Text, nullable=False),  # the CloudTrail record, JSON
)
Index("cloudtrail_events_time", cloudtrail_events.c.event_time)

cloudtrail_resources = Table(
    "cloudtrail_resources",
    metadata,
    Column("seq", Integer, nullable=False, index=True),
    Column("resource_type", String(128), nullable=False),
    Column("resource_name", String(2048), nullable=False, index=True),
)
