"""Budgets' storage: budgets, actions and events as JSON documents (tables.py)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from tideserve.budgets.tables import budget_actions, budget_docs, budget_events


class BudgetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def budget(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            doc = conn.execute(select(budget_docs.c.doc).where(budget_docs.c.name == name)
                               ).scalar()
        return None if doc is None else dict(json.loads(doc))

    def budgets(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(budget_docs.c.doc).order_by(budget_docs.c.name)).all()
        return [json.loads(r[0]) for r in rows]

    def put_budget(self, name: str, doc: dict[str, Any]) -> None:
        text = json.dumps(doc)
        with self.engine.begin() as conn:
            done = conn.execute(update(budget_docs).where(budget_docs.c.name == name)
                                .values(doc=text)).rowcount
            if not done:
                conn.execute(insert(budget_docs).values(name=name, doc=text))

    def delete_budget(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(budget_docs).where(budget_docs.c.name == name))
            conn.execute(delete(budget_actions).where(budget_actions.c.budget_name == name))
            conn.execute(delete(budget_events).where(budget_events.c.budget_name == name))

    def action(self, action_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            doc = conn.execute(select(budget_actions.c.doc)
                               .where(budget_actions.c.action_id == action_id)).scalar()
        return None if doc is None else dict(json.loads(doc))

    def actions(self, budget_name: str | None = None) -> list[dict[str, Any]]:
        query = select(budget_actions.c.doc).order_by(budget_actions.c.action_id)
        if budget_name is not None:
            query = query.where(budget_actions.c.budget_name == budget_name)
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(query).all()]

    def put_action(self, action: dict[str, Any]) -> None:
        text = json.dumps(action)
        with self.engine.begin() as conn:
            done = conn.execute(update(budget_actions)
                                .where(budget_actions.c.action_id == action["ActionId"])
                                .values(doc=text)).rowcount
            if not done:
                conn.execute(insert(budget_actions).values(
                    action_id=action["ActionId"], budget_name=action["BudgetName"], doc=text))

    def delete_action(self, action_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(budget_actions).where(budget_actions.c.action_id == action_id))

    def add_event(self, budget_name: str, time: float, doc: dict[str, Any],
                  action_id: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(budget_events).values(
                budget_name=budget_name, action_id=action_id, time=time, doc=json.dumps(doc)))

    def events(self, budget_name: str | None = None, action_id: str | None = None,
               actions_only: bool = False) -> list[dict[str, Any]]:
        query = select(budget_events.c.doc).order_by(budget_events.c.id)
        if budget_name is not None:
            query = query.where(budget_events.c.budget_name == budget_name)
        if action_id is not None:
            query = query.where(budget_events.c.action_id == action_id)
        elif actions_only:
            query = query.where(budget_events.c.action_id.is_not(None))
        else:
            query = query.where(budget_events.c.action_id.is_(None))
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(query).all()]
