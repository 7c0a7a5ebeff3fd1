"""What a follower server routes with: an instance's token and whether it serves.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("instances")}
    with op.batch_alter_table("instances") as batch:
        if "token" not in have:
            batch.add_column(sa.Column("token", sa.String(128)))
        if "serving" not in have:
            batch.add_column(sa.Column("serving", sa.Boolean, nullable=False,
                                       server_default=sa.false()))
