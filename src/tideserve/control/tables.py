"""The control plane's tables: what the API has accepted (desired state) and what the
controller observed. JSON columns keep AWS's request shapes verbatim, so Describe* echoes what
was asked for."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    false,
    inspect,
    text,
)

from tideserve.db import metadata

models = Table(
    "models",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("creation_time", Float, nullable=False),
)

endpoint_configs = Table(
    "endpoint_configs",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("creation_time", Float, nullable=False),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("name_lower", String(63), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("arn", String(256), nullable=False),
    Column("config_name", String(63), nullable=False),
    # Set while an UpdateEndpoint deploys a new fleet; cleared when traffic has shifted.
    Column("pending_config_name", String(63)),
    Column("status", String(32), nullable=False),
    Column("failure_reason", Text),
    # [{VariantName, ModelName, InstanceType, DesiredInstanceCount, CurrentInstanceCount,
    #   DesiredWeight, CurrentWeight, Images, DesiredServerlessConfig?, ...}] — written by
    #   control/service_endpoints.py (desired) and the controller (observed)
    Column("variants", JSON, nullable=False),
    Column("creation_time", Float, nullable=False),
    Column("last_modified_time", Float, nullable=False),
    # Bumped on every desired-state change so the controller can tell what is new.
    Column("generation", Integer, nullable=False, default=0),
    # The variants a blue/green UpdateEndpoint is bringing up (pending_config_name's), same
    # shape as `variants`; NULL when no deployment is under way.
    Column("pending_variants", JSON),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(256), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("secret_access_key", String(128), nullable=False),
    Column("user", String(128), nullable=False),
    Column("creation_time", Float, nullable=False),
)

# Instance processes the fleet started, so a restarted server can stop orphans.
instances = Table(
    "instances",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("endpoint_name", String(63), nullable=False),
    Column("variant_name", String(63), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("url", String(256), nullable=False),
    Column("start_time", Float, nullable=False),
    # What a follower server routes with (cluster/routes.py): the instance token, and True
    # once the instance passed its ping check and serves.
    Column("token", String(128)),
    Column("serving", Boolean, nullable=False, default=False, server_default=false()),
)


def add_missing_columns(engine: Engine) -> None:
    """Columns added after a database was created: create_all makes missing tables only, so a
    state directory from an older tideserve gains them here (all nullable)."""
    if not inspect(engine).has_table("endpoints"):
        return
    have = {c["name"] for c in inspect(engine).get_columns("endpoints")}
    if "pending_variants" not in have:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE endpoints ADD COLUMN pending_variants JSON"))
