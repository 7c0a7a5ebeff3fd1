"""Budgets' tables: each budget (with its notifications, subscribers and their states), each
budget action, and each event it recorded (notifications sent, action history), as JSON
documents keyed by name or id: the shapes are AWS's and are read whole."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from tideserve.db import metadata

budget_docs = Table(
    "budgets_budget",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("doc", Text, nullable=False),  # {"Budget": ..., "Notifications": [...]}
)

budget_actions = Table(
    "budgets_action",
    metadata,
    Column("action_id", String(36), primary_key=True),
    Column("budget_name", String(100), nullable=False),
    Column("doc", Text, nullable=False),  # the Action shape, Status included
)

budget_events = Table(
    "budgets_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("budget_name", String(100), nullable=False),
    Column("action_id", String(36)),  # set for action history entries
    Column("time", Float, nullable=False),  # epoch seconds
    Column("doc", Text, nullable=False),
    Index("ix_budgets_event_budget", "budget_name", "time"),
)
