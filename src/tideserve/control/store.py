"""Reads and writes of the control plane's rows. Each ControlStore method is one transaction,
so the API (in a thread pool), the controller (in the event loop) and other servers on the
same database never see half a change; an operation that reads and writes several rows does
it inside one `begin()` transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tideserve.control import tables as t


@dataclass
class EndpointRow:
    name: str
    arn: str
    config_name: str
    pending_config_name: str | None
    status: str
    failure_reason: str | None
    variants: list[dict[str, Any]]
    creation_time: float
    last_modified_time: float
    generation: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The variants of pending_config_name while a blue/green UpdateEndpoint brings them up;
    # `variants` keeps describing the fleet that serves until traffic shifts.
    pending_variants: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Any) -> EndpointRow:
        # Rows written before pending_variants had a column carried the pending fleet inside
        # `variants`, each entry marked "Pending": True; they read as the new shape.
        variants = [v for v in row.variants if not v.get("Pending")]
        pending = [{k: val for k, val in v.items() if k != "Pending"}
                   for v in row.variants if v.get("Pending")]
        return cls(
            name=row.name,
            arn=row.arn,
            config_name=row.config_name,
            pending_config_name=row.pending_config_name,
            status=row.status,
            failure_reason=row.failure_reason,
            variants=variants,
            creation_time=row.creation_time,
            last_modified_time=row.last_modified_time,
            generation=row.generation or 0,
            pending_variants=list(row.pending_variants or []) + pending,
        )

    def variant(self, name: str) -> dict[str, Any] | None:
        return next((v for v in self.variants if v["VariantName"] == name), None)


class Transaction:
    """One database transaction over the control plane's rows: what an operation reads and
    writes inside it is one change, serialised with every other writer (ControlStore.begin)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- models and endpoint configs: immutable rows of (name, arn, spec) -------------------

    def resource(self, table: Any, name: str, *, for_update: bool = False) -> Any | None:
        stmt = select(table).where(table.c.name_lower == name.lower())
        return self.conn.execute(stmt.with_for_update() if for_update else stmt).first()

    def insert_resource(
        self, table: Any, name: str, arn: str, spec: dict[str, Any], now: float
    ) -> bool:
        """False if the name (case-insensitively) is taken: the caller raises, which rolls the
        transaction back (on PostgreSQL a racing insert fails on the primary key instead)."""
        if self.resource(table, name) is not None:
            return False
        return self._insert(insert(table).values(
            name_lower=name.lower(), name=name, arn=arn, spec=spec, creation_time=now))

    def delete_resource(self, table: Any, name: str) -> bool:
        res = self.conn.execute(delete(table).where(table.c.name_lower == name.lower()))
        return res.rowcount > 0

    # -- endpoints ---------------------------------------------------------------------------

    def endpoint(self, name: str, *, for_update: bool = False) -> EndpointRow | None:
        stmt = select(t.endpoints).where(t.endpoints.c.name_lower == name.lower())
        found = self.conn.execute(stmt.with_for_update() if for_update else stmt).first()
        return EndpointRow.from_row(found) if found else None

    def insert_endpoint(self, row: EndpointRow) -> bool:
        if self.endpoint(row.name) is not None:
            return False
        return self._insert(insert(t.endpoints).values(
            name_lower=row.name.lower(), name=row.name, arn=row.arn,
            config_name=row.config_name, pending_config_name=row.pending_config_name,
            status=row.status, failure_reason=row.failure_reason, variants=row.variants,
            pending_variants=row.pending_variants or None,
            creation_time=row.creation_time, last_modified_time=row.last_modified_time,
            generation=1,
        ))

    def write_endpoint(self, row: EndpointRow, *, bump: bool = False) -> None:
        """Write back a row read `for_update` in this transaction."""
        self.conn.execute(_endpoint_update(row.name, None, bump, dict(
            config_name=row.config_name, pending_config_name=row.pending_config_name,
            status=row.status, failure_reason=row.failure_reason, variants=row.variants,
            pending_variants=row.pending_variants or None,
            last_modified_time=row.last_modified_time,
        )))
        if bump:
            row.generation += 1

    def update_endpoint(self, name: str, expect_generation: int | None, bump: bool,
                        values: dict[str, Any]) -> bool:
        res = self.conn.execute(_endpoint_update(name, expect_generation, bump, values))
        return res.rowcount > 0

    def delete_endpoint(self, name: str) -> None:
        self.conn.execute(delete(t.endpoints).where(t.endpoints.c.name_lower == name.lower()))

    # -- tags --------------------------------------------------------------------------------

    def put_tags(self, arn: str, tags: Iterable[dict[str, str]]) -> None:
        for tag in tags:
            self.conn.execute(
                delete(t.tags).where(t.tags.c.resource_arn == arn, t.tags.c.key == tag["Key"])
            )
            self.conn.execute(
                insert(t.tags).values(resource_arn=arn, key=tag["Key"], value=tag.get("Value", ""))
            )

    def tags(self, arn: str) -> list[dict[str, str]]:
        rows = self.conn.execute(
            select(t.tags).where(t.tags.c.resource_arn == arn).order_by(t.tags.c.key)
        )
        return [{"Key": r.key, "Value": r.value} for r in rows]

    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None:
        stmt = delete(t.tags).where(t.tags.c.resource_arn == arn)
        if keys is not None:
            stmt = stmt.where(t.tags.c.key.in_(list(keys)))
        self.conn.execute(stmt)

    def _insert(self, stmt: Any) -> bool:
        try:
            self.conn.execute(stmt)
        except IntegrityError:
            return False
        return True


class ControlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Not the guard (the transaction is): this process's writers queue here instead of
        # polling SQLite's busy handler, whose back-off left a change waiting up to 440 ms
        # behind three other threads making 1 ms changes (25 ms when queued). Re-entrant, so
        # a nested begin() fails on SQLite's timeout rather than hanging.
        self._queue = threading.RLock()

    @contextmanager
    def begin(self) -> Iterator[Transaction]:
        """A read-modify-write transaction. On PostgreSQL rows read `for_update` are locked
        until it ends; SQLite has no row locks, so there the transaction takes the database's
        write lock at its start (BEGIN IMMEDIATE): two servers, or two stores, on one file
        then see each other's changes whole and in turn, never a stale read."""
        with self._queue, self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield Transaction(conn)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """Reads that need no lock: each statement sees committed rows."""
        with self.engine.connect() as conn:
            yield Transaction(conn)

    # -- models and endpoint configs ---------------------------------------------------------

    def insert_resource(
        self, table: Any, name: str, arn: str, spec: dict[str, Any], now: float
    ) -> bool:
        with self.begin() as tx:
            return tx.insert_resource(table, name, arn, spec, now)

    def get_resource(self, table: Any, name: str) -> Any | None:
        with self.read() as tx:
            return tx.resource(table, name)

    def list_resources(self, table: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(table)))

    def delete_resource(self, table: Any, name: str) -> bool:
        with self.begin() as tx:
            return tx.delete_resource(table, name)

    # -- endpoints ---------------------------------------------------------------------------

    def insert_endpoint(self, row: EndpointRow) -> bool:
        with self.begin() as tx:
            return tx.insert_endpoint(row)

    def get_endpoint(self, name: str) -> EndpointRow | None:
        with self.read() as tx:
            return tx.endpoint(name)

    def list_endpoints(self) -> list[EndpointRow]:
        with self.engine.connect() as conn:
            return [EndpointRow.from_row(r) for r in conn.execute(select(t.endpoints))]

    def update_endpoint(
        self, name: str, *, expect_generation: int | None = None, bump: bool = False, **values: Any
    ) -> bool:
        """Write `values` onto the endpoint's row. With `expect_generation`, only if no newer
        desired state arrived meanwhile (the controller must not overwrite an API change)."""
        with self.begin() as tx:
            return tx.update_endpoint(name, expect_generation, bump, values)

    def modify_endpoint(
        self, name: str, change: Callable[[EndpointRow], bool], *, bump: bool = False
    ) -> EndpointRow | None:
        """Apply `change` to the current row and write it back, in one transaction. `change`
        edits the row in place and returns False to write nothing; it may raise to abort. It
        must not use the store itself: the transaction holds the write lock."""
        with self.begin() as tx:
            row = tx.endpoint(name, for_update=True)
            if row is not None and change(row):
                tx.write_endpoint(row, bump=bump)
            return row

    def delete_endpoint(self, name: str) -> None:
        with self.begin() as tx:
            tx.delete_endpoint(name)

    # -- tags --------------------------------------------------------------------------------

    def put_tags(self, arn: str, tags: Iterable[dict[str, str]]) -> None:
        with self.begin() as tx:
            tx.put_tags(arn, tags)

    def get_tags(self, arn: str) -> list[dict[str, str]]:
        with self.read() as tx:
            return tx.tags(arn)

    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None:
        with self.begin() as tx:
            tx.delete_tags(arn, keys)

    # -- instances (for orphan clean-up) -----------------------------------------------------

    def record_instance(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.instances).values(**values))

    def instance_serving(self, instance_id: str) -> None:
        """It passed its ping check: servers that share this database route to it too."""
        with self.engine.begin() as conn:
            conn.execute(update(t.instances).where(t.instances.c.instance_id == instance_id)
                         .values(serving=True))

    def forget_instance(self, instance_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.instances).where(t.instances.c.instance_id == instance_id))

    def recorded_instances(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.instances)))


def _endpoint_update(name: str, expect_generation: int | None, bump: bool,
                     values: dict[str, Any]) -> Any:
    """UPDATE of one endpoint row; with `expect_generation`, only if it is still that one."""
    stmt = update(t.endpoints).where(t.endpoints.c.name_lower == name.lower())
    if expect_generation is not None:
        stmt = stmt.where(t.endpoints.c.generation == expect_generation)
    if bump:
        values = {**values, "generation": t.endpoints.c.generation + 1}
    return stmt.values(**values)
