"""Autoscaling's tables on tideserve's one MetaData. Each row keeps its typed value as JSON
(`codec`), plus the columns the Describe* filters and ordering need."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, String, Table, Text, UniqueConstraint

from tideserve.db import metadata

scalable_targets = Table(
    "aas_scalable_targets",
    metadata,
    Column("service_namespace", String(32), primary_key=True),
    Column("resource_id", String(1600), primary_key=True),
    Column("scalable_dimension", String(128), primary_key=True),
    Column("arn", String(1600), nullable=False, unique=True),
    Column("creation_time", Float, nullable=False),
    Column("record", Text, nullable=False),  # TargetRecord: target, engine state, schedule mark
)

scaling_policies = Table(
    "aas_scaling_policies",
    metadata,
    Column("arn", String(1600), primary_key=True),
    Column("service_namespace", String(32), nullable=False),
    Column("resource_id", String(1600), nullable=False),
    Column("scalable_dimension", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("policy", Text, nullable=False),  # ScalingPolicy
    UniqueConstraint("resource_id", "scalable_dimension", "name"),
)

scheduled_actions = Table(
    "aas_scheduled_actions",
    metadata,
    Column("arn", String(1600), primary_key=True),
    Column("service_namespace", String(32), nullable=False),
    Column("resource_id", String(1600), nullable=False),
    Column("scalable_dimension", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("action", Text, nullable=False),  # ScheduledAction
    UniqueConstraint("resource_id", "scalable_dimension", "name"),
)

scaling_activities = Table(
    "aas_scaling_activities",
    metadata,
    Column("activity_id", String(64), primary_key=True),
    Column("service_namespace", String(32), nullable=False),
    Column("resource_id", String(1600), nullable=False),
    Column("scalable_dimension", String(128), nullable=False),
    Column("start_time", Float, nullable=False),
    Column("scaled", Boolean, nullable=False),  # False: a not-scaled decision record
    Column("open", Boolean, nullable=False),  # Pending or InProgress
    Column("activity", Text, nullable=False),  # Activity
    Index("ix_aas_activities_resource_time", "resource_id", "start_time"),
)

aas_tags = Table(
    "aas_tags",
    metadata,
    Column("resource_arn", String(1600), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

metric_alarms = Table(
    "cw_metric_alarms",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("record", Text, nullable=False),  # AlarmRecord: alarm, state, last evaluation
)

predictive_forecasts = Table(
    "aas_predictive_forecasts",
    metadata,
    Column("policy_arn", String(1600), primary_key=True),
    Column("update_time", Float, nullable=False),
    Column("forecast", Text, nullable=False),  # Forecast: the one the driver acts on
)

# tideserve extension (beyond AWS): latency-target policies, one per variant
# (autoscaling.latency_policies); the record keeps the policy and the engine's state.
latency_policies = Table(
    "ts_latency_policies",
    metadata,
    Column("resource_id", String(1600), primary_key=True),
    Column("creation_time", Float, nullable=False),
    Column("record", Text, nullable=False),  # LatencyPolicyRecord as JSON
)
