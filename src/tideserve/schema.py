"""Every package's tables, created at once on one engine. Wiring, like server.py: it imports the
packages' tables.py modules (each declares its tables on db.metadata) so that db.py imports
none of them."""

from __future__ import annotations

from sqlalchemy import Engine

import tideserve.access.tables
import tideserve.asyncinf.tables
import tideserve.audit.tables
import tideserve.autoscaling.tables
import tideserve.budgets.tables
import tideserve.control.tables
import tideserve.cost.tables
import tideserve.logs.tables
import tideserve.metrics.tables
import tideserve.stacks.tables
import tideserve.training.tables
import tideserve.transform.tables
from tideserve.db import metadata

TABLE_MODULES = (
    tideserve.access.tables,
    tideserve.audit.tables,
    tideserve.asyncinf.tables,
    tideserve.autoscaling.tables,
    tideserve.budgets.tables,
    tideserve.control.tables,
    tideserve.cost.tables,
    tideserve.logs.tables,
    tideserve.metrics.tables,
    tideserve.stacks.tables,
    tideserve.transform.tables,
    tideserve.training.tables,
)


def create_all(engine: Engine) -> None:
    """Create every table that does not exist yet, and the columns added since (idempotent)."""
    metadata.create_all(engine)
    tideserve.control.tables.add_missing_columns(engine)
