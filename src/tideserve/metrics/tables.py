"""The metrics tables. A series row names a metric (namespace, name, exact dimension set); a
datapoint row is one flushed period of it. Rows are append-only: a late flush for a period that
already has a row adds another, and reads merge them."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tideserve.db import metadata

metric_series = Table(
    "metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(255), nullable=False),
    Column("metric_name", String(255), nullable=False),
    # Canonical JSON [[name, value], ...] sorted by name: equality is CloudWatch's exact match.
    Column("dimensions", Text, nullable=False),
    Column("last_seen", Float, nullable=False),  # latest datapoint timestamp (epoch s)
    UniqueConstraint("namespace", "metric_name", "dimensions", name="uq_metric_series"),
)

metric_datapoints = Table(
    "metric_datapoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, ForeignKey("metric_series.id"), nullable=False),
    Column("timestamp", Float, nullable=False),  # period start, epoch s
    Column("unit", String(32), nullable=False),
    Column("sample_count", Float, nullable=False),
    Column("sum", Float, nullable=False),
    Column("minimum", Float, nullable=False),
    Column("maximum", Float, nullable=False),
    Column("sketch", LargeBinary, nullable=True),  # sketch.Sketch.to_bytes()
    Index("ix_metric_datapoints_series_time", "series_id", "timestamp"),
    Index("ix_metric_datapoints_time", "timestamp"),
)
