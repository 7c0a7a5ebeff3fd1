"""Alembic's environment: the engine comes from migrate.alembic_config (never a URL in a file),
and on PostgreSQL an advisory lock makes two servers starting at once migrate in turn."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import tideserve.schema  # noqa: F401 - every package's tables onto db.metadata
from tideserve.db import metadata

MIGRATION_LOCK = 0x7469_6465_6D69  # "tidemi": any constant both servers agree on

engine = context.config.attributes["engine"]
with engine.connect() as conn:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
    try:
        # render_as_batch: SQLite alters a table by copying it, Alembic's batch mode does so.
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
    finally:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
