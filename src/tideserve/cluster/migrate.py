"""Schema migrations with Alembic, run programmatically (no alembic.ini): `tideserve db
upgrade`, and `tideserve up` before it serves. Revisions live in migrations/versions; 0001 is
the baseline (every table of the release that introduced migrations, created where missing,
so a state directory from before it is adopted with its data), later ones change the schema
step by step and check before they alter, so a database that gained a column another way
(schema.create_all, the add_missing_columns helpers) upgrades too."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`: idempotent, and safe for two servers starting at once
    on PostgreSQL (env.py takes an advisory lock for the duration)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # no "Context impl" per start
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
