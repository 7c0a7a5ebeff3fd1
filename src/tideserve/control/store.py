"""Reads and writes of the control plane's rows. Each function is one transaction, so the API
(in a thread pool) and the controller (in the event loop) never see half a change."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

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


class ControlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Endpoint rows are read-modify-written by the API (desired state) and the controller
        # (observed state) inside one transaction each (modify_endpoint), so neither
        # overwrites the other.
        self._endpoint_lock = threading.Lock()

    # -- models and endpoint configs: immutable rows of (name, arn, spec) -------------------

    def insert_resource(
        self, table: Any, name: str, arn: str, spec: dict[str, Any], now: float
    ) -> bool:
        with self.engine.begin() as conn:
            if conn.execute(select(table.c.name).where(table.c.name_lower == name.lower())).first():
                return False
            conn.execute(
                insert(table).values(
                    name_lower=name.lower(), name=name, arn=arn, spec=spec, creation_time=now
                )
            )
        return True

    def get_resource(self, table: Any, name: str) -> Any | None:
        with self.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.name_lower == name.lower())).first()

    def list_resources(self, table: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(table)))

    def delete_resource(self, table: Any, name: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(delete(table).where(table.c.name_lower == name.lower()))
        return res.rowcount > 0

    # -- endpoints ---------------------------------------------------------------------------

    def insert_endpoint(self, row: EndpointRow) -> bool:
        with self.engine.begin() as conn:
            found = conn.execute(
                select(t.endpoints.c.name).where(t.endpoints.c.name_lower == row.name.lower())
            ).first()
            if found:
                return False
            conn.execute(
                insert(t.endpoints).values(
                    name_lower=row.name.lower(),
                    name=row.name,
                    arn=row.arn,
                    config_name=row.config_name,
                    pending_config_name=row.pending_config_name,
                    status=row.status,
                    failure_reason=row.failure_reason,
                    variants=row.variants,
                    pending_variants=row.pending_variants or None,
                    creation_time=row.creation_time,
                    last_modified_time=row.last_modified_time,
                    generation=1,
                )
            )
        return True

    def get_endpoint(self, name: str) -> EndpointRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.endpoints).where(t.endpoints.c.name_lower == name.lower())
            ).first()
        return EndpointRow.from_row(row) if row else None

    def list_endpoints(self) -> list[EndpointRow]:
        with self.engine.connect() as conn:
            return [EndpointRow.from_row(r) for r in conn.execute(select(t.endpoints))]

    def update_endpoint(
        self, name: str, *, expect_generation: int | None = None, bump: bool = False, **values: Any
    ) -> bool:
        """Write `values` onto the endpoint's row. With `expect_generation`, only if no newer
        desired state arrived meanwhile (the controller must not overwrite an API change)."""
        with self.engine.begin() as conn:
            res = conn.execute(_endpoint_update(name, expect_generation, bump, values))
        return res.rowcount > 0

    def modify_endpoint(
        self, name: str, change: Callable[[EndpointRow], bool], *, bump: bool = False
    ) -> EndpointRow | None:
        """Apply `change` to the current row and write it back, atomically. `change` edits the
        row in place and returns False to write nothing; it may raise to abort."""
        with self._endpoint_lock, self.engine.begin() as conn:
            # One transaction: on PostgreSQL the row lock (FOR UPDATE) serialises servers
            # sharing the database; SQLite ignores it, and the thread lock serialises the one
            # process that may own a SQLite file.
            found = conn.execute(
                select(t.endpoints).where(t.endpoints.c.name_lower == name.lower())
                .with_for_update()
            ).first()
            row = EndpointRow.from_row(found) if found else None
            if row is None or not change(row):
                return row
            conn.execute(_endpoint_update(name, None, bump, dict(
                config_name=row.config_name, pending_config_name=row.pending_config_name,
                status=row.status, failure_reason=row.failure_reason, variants=row.variants,
                pending_variants=row.pending_variants or None,
                last_modified_time=row.last_modified_time,
            )))
            if bump:
                row.generation += 1
            return row

    def delete_endpoint(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t.endpoints).where(t.endpoints.c.name_lower == name.lower()))

    # -- tags --------------------------------------------------------------------------------

    def put_tags(self, arn: str, tags: Iterable[dict[str, str]]) -> None:
        with self.engine.begin() as conn:
            for tag in tags:
                conn.execute(
                    delete(t.tags).where(t.tags.c.resource_arn == arn, t.tags.c.key == tag["Key"])
                )
                conn.execute(
                    insert(t.tags).values(
                        resource_arn=arn, key=tag["Key"], value=tag.get("Value", "")
                    )
                )

    def get_tags(self, arn: str) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.tags).where(t.tags.c.resource_arn == arn).order_by(t.tags.c.key)
            )
            return [{"Key": r.key, "Value": r.value} for r in rows]

    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None:
        stmt = delete(t.tags).where(t.tags.c.resource_arn == arn)
        if keys is not None:
            stmt = stmt.where(t.tags.c.key.in_(list(keys)))
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- instances (for orphan clean-up) -----------------------------------------------------

    def record_instance(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.instances).values(**values))

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
