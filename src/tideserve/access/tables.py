"""IAM's tables: users, their inline policies, and the status of access keys (the keys
themselves, with sealed secrets, are control.tables.access_keys). A key with no status row is
Active, so the keys an older tideserve issued keep working."""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table, Text

from tideserve.db import metadata

iam_users = Table(
    "iam_users",
    metadata,
    Column("name_lower", String(64), primary_key=True),  # unique case-insensitively, as IAM
    Column("name", String(64), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("path", String(512), nullable=False),
    Column("create_date", Float, nullable=False),
)

iam_user_policies = Table(
    "iam_user_policies",
    metadata,
    Column("user_lower", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),  # the JSON exactly as put
)

access_key_status = Table(
    "access_key_status",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("status", String(16), nullable=False),  # Active | Inactive
)
