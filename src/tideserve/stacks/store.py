"""Stacks, resources, events and change sets in SQL (tables.py), as plain records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from tideserve.stacks import tables as t


@dataclass
class StackRecord:
    stack_id: str
    name: str
    status: str
    created: float
    template_text: str = ""
    parameters: dict[str, str] = field(default_factory=dict)  # as given (SSM names unresolved)
    resolved: dict[str, str] = field(default_factory=dict)  # SSM-typed parameters' values
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    description: str | None = None
    capabilities: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    disable_rollback: bool = False
    change_set_id: str | None = None
    updated: float | None = None
    deleted_at: float | None = None
    imports: list[str] = field(default_factory=list)  # export names its template imports


@dataclass
class ResourceRecord:
    logical_id: str
    type: str
    status: str
    physical_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)  # resolved, as last applied
    reason: str | None = None
    updated: float = 0.0


@dataclass
class ChangeSetRecord:
    change_set_id: str
    name: str
    stack_id: str
    stack_name: str
    change_set_type: str
    status: str
    execution_status: str
    created: float
    template_text: str
    parameters: dict[str, str]
    changes: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    description: str | None = None
    capabilities: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)


class StackStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- stacks --------------------------------------------------------------------------

    def put_stack(self, stack: StackRecord) -> None:
        doc = json.dumps(asdict(stack))
        with self.engine.begin() as conn:
            found = conn.execute(update(t.stacks).where(t.stacks.c.stack_id == stack.stack_id)
                                 .values(doc=doc, deleted=stack.deleted_at is not None))
            if not found.rowcount:
                conn.execute(insert(t.stacks).values(
                    stack_id=stack.stack_id, name=stack.name, created=stack.created, doc=doc,
                    deleted=stack.deleted_at is not None))

    def stack(self, name_or_id: str) -> StackRecord | None:
        """The live stack of that name, or any stack (deleted too) by its id."""
        if name_or_id.startswith("arn:"):
            where = t.stacks.c.stack_id == name_or_id
        else:
            where = (t.stacks.c.name == name_or_id) & (t.stacks.c.deleted.is_(False))
        with self.engine.connect() as conn:
            row = conn.execute(select(t.stacks.c.doc).where(where)
                               .order_by(t.stacks.c.created.desc())).first()
        return StackRecord(**json.loads(row.doc)) if row else None

    def stacks(self, include_deleted: bool = False) -> list[StackRecord]:
        query = select(t.stacks.c.doc).order_by(t.stacks.c.created)
        if not include_deleted:
            query = query.where(t.stacks.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return [StackRecord(**json.loads(r.doc)) for r in conn.execute(query)]

    # -- resources -----------------------------------------------------------------------

    def put_resource(self, stack_id: str, res: ResourceRecord) -> None:
        doc = json.dumps(asdict(res))
        key = (t.stack_resources.c.stack_id == stack_id) & (
            t.stack_resources.c.logical_id == res.logical_id)
        with self.engine.begin() as conn:
            if not conn.execute(update(t.stack_resources).where(key).values(doc=doc)).rowcount:
                conn.execute(insert(t.stack_resources).values(
                    stack_id=stack_id, logical_id=res.logical_id, doc=doc))

    def drop_resource(self, stack_id: str, logical_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.stack_resources).where(
                (t.stack_resources.c.stack_id == stack_id)
                & (t.stack_resources.c.logical_id == logical_id)))

    def resources(self, stack_id: str) -> dict[str, ResourceRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.stack_resources.c.doc).where(
                t.stack_resources.c.stack_id == stack_id))
            return {r.logical_id: r for r in (ResourceRecord(**json.loads(x.doc)) for x in rows)}

    # -- events --------------------------------------------------------------------------

    def add_event(self, stack_id: str, event: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.stack_events).values(stack_id=stack_id,
                                                       doc=json.dumps(event)))

    def events(self, stack_id: str) -> list[dict[str, Any]]:
        """Newest first, as DescribeStackEvents lists them."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.stack_events.c.doc).where(
                t.stack_events.c.stack_id == stack_id).order_by(t.stack_events.c.seq.desc()))
            return [json.loads(r.doc) for r in rows]

    # -- change sets ---------------------------------------------------------------------

    def put_change_set(self, cs: ChangeSetRecord) -> None:
        doc = json.dumps(asdict(cs))
        key = t.change_sets.c.change_set_id == cs.change_set_id
        with self.engine.begin() as conn:
            if not conn.execute(update(t.change_sets).where(key).values(doc=doc)).rowcount:
                conn.execute(insert(t.change_sets).values(
                    change_set_id=cs.change_set_id, stack_id=cs.stack_id, name=cs.name,
                    doc=doc))

    def change_sets(self, stack_id: str) -> list[ChangeSetRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.change_sets.c.doc).where(
                t.change_sets.c.stack_id == stack_id))
            return [ChangeSetRecord(**json.loads(r.doc)) for r in rows]

    def drop_change_set(self, change_set_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.change_sets).where(
                t.change_sets.c.change_set_id == change_set_id))
