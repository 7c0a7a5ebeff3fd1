"""Baseline: every table of the release that introduced migrations.

Created where missing (checkfirst), so a state directory or database from before migrations is
adopted with its data; the columns older ones lacked are added as the add_missing_columns
helpers did.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tideserve.schema  # noqa: F401 - every package's tables onto db.metadata
from tideserve.db import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, checkfirst=True)
    # On this connection (the helpers open their own, which SQLite would make wait on ours).
    for table, column in (("endpoints", "pending_variants"), ("training_jobs", "final_metrics")):
        if column not in {c["name"] for c in sa.inspect(bind).get_columns(table)}:
            op.add_column(table, sa.Column(column, sa.JSON))
