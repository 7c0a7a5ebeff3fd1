"""The stacks' tables on db.metadata. Each row keeps its queryable keys as columns and the rest
of the record as JSON (`doc`): stacks, their resources, their events (in order) and change
sets."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text

from tideserve.db import metadata

stacks = Table(
    "cfn_stacks", metadata,
    Column("stack_id", String, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
    Column("doc", Text, nullable=False),
)

stack_resources = Table(
    "cfn_stack_resources", metadata,
    Column("stack_id", String, primary_key=True),
    Column("logical_id", String, primary_key=True),
    Column("doc", Text, nullable=False),
)

stack_events = Table(
    "cfn_stack_events", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("stack_id", String, nullable=False, index=True),
    Column("doc", Text, nullable=False),
)

change_sets = Table(
    "cfn_change_sets", metadata,
    Column("change_set_id", String, primary_key=True),
    Column("stack_id", String, nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("doc", Text, nullable=False),
)
