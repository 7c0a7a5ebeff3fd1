"""The metering ledger: one durable row per instance lifetime, from the moment its start was
requested until it stopped, as SageMaker bills instance-seconds (spec §6.1).

The controller calls `instance_started` just before it asks the fleet provider for an
instance and `instance_stopped` once the provider has stopped it (or found it dead). Rows
carry the rate in force at the start, so reports never reprice the past.

Crash recovery: a server that dies leaves rows open (end NULL). On restart, `recover()`
closes them at the time the server last recorded being alive (`heartbeat`, which the lead's
periodic loop calls, and which every ledger write also stamps). That bills no time after the
server's last sign of life: local instances are children of the server and go down with it,
and a restarted controller starts fresh ones (with fresh rows). Its error is at most one
heartbeat interval of under-billing, never billing for downtime nobody could use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, case, insert, literal, or_, select, update
from sqlalchemy.engine import Connection

from tideserve.clock import Clock
from tideserve.cost.billing import Interval, hourly_rate
from tideserve.cost.catalog import Catalog
from tideserve.cost.tables import heartbeat as hb_t
from tideserve.cost.tables import instance_usage as usage_t


@dataclass(frozen=True)
class Usage:
    """One instance lifetime. `end` is None while the instance exists."""

    instance_id: str
    endpoint_arn: str
    endpoint_name: str
    variant: str
    instance_type: str
    purchase_option: str
    rate_per_hour: float  # USD per hour
    start: float  # epoch seconds
    end: float | None

    def interval(self, now: float) -> Interval:
        """The lifetime so far: a running instance is billed up to `now`."""
        return Interval(self.start, now if self.end is None else self.end)


class Ledger:
    def __init__(self, engine: Engine, catalog: Catalog, clock: Clock) -> None:
        self.engine = engine
        self.catalog = catalog
        self.clock = clock

    # -- writes ------------------------------------------------------------------------------

    def instance_started(
        self,
        instance_id: str,
        endpoint_arn: str,
        endpoint_name: str,
        variant: str,
        instance_type: str,
        purchase_option: str = "OnDemand",
        at: float | None = None,
    ) -> bool:
        """Open a row for a new instance; False if `instance_id` already has one (a retried
        call is harmless). Raises ValidationError for an unknown type or purchase option."""
        at = self.clock.now() if at is None else at
        rate = hourly_rate(self.catalog.get(instance_type), purchase_option)
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(usage_t.c.instance_id).where(usage_t.c.instance_id == instance_id)
            ).first()
            if exists is None:
                conn.execute(insert(usage_t).values(
                    instance_id=instance_id, endpoint_arn=endpoint_arn,
                    endpoint_name=endpoint_name, variant_name=variant,
                    instance_type=instance_type, purchase_option=purchase_option,
                    rate_per_hour=rate, start_time=at, end_time=None,
                ))
            _stamp(conn, at)
        return exists is None

    def instance_stopped(self, instance_id: str, at: float | None = None) -> bool:
        """Close the instance's row at `at` (never before its start); False if there is no
        open row for it (already stopped, or never metered)."""
        at = self.clock.now() if at is None else at
        with self.engine.begin() as conn:
            result = conn.execute(
                update(usage_t)
                .where(usage_t.c.instance_id == instance_id, usage_t.c.end_time.is_(None))
                .values(end_time=_not_before_start(at))
            )
            _stamp(conn, at)
        return bool(result.rowcount)

    def record_usage(self, usage: Usage) -> None:
        """Insert a closed row for metered compute that is not an instance lifetime (serverless
        duration, see tideserve.serverless.billing): its rate is given, not the catalog's."""
        assert usage.end is not None, "a recorded usage is closed"
        with self.engine.begin() as conn:
            conn.execute(insert(usage_t).values(
                instance_id=usage.instance_id, endpoint_arn=usage.endpoint_arn,
                endpoint_name=usage.endpoint_name, variant_name=usage.variant,
                instance_type=usage.instance_type, purchase_option=usage.purchase_option,
                rate_per_hour=usage.rate_per_hour, start_time=usage.start, end_time=usage.end,
            ))

    def heartbeat(self, at: float | None = None) -> None:
        """Record that the server is alive at `at` (call once per metric period)."""
        with self.engine.begin() as conn:
            _stamp(conn, self.clock.now() if at is None else at)

    def close_open(self, at: float) -> int:
        """Close every open row at `at` (or at its own start, if later); how many closed."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(usage_t)
                .where(usage_t.c.end_time.is_(None))
                .values(end_time=_not_before_start(at))
            )
        return int(result.rowcount)

    def recover(self) -> int:
        """At start-up, before the controller starts instances: close the rows a crash left
        open, at the last recorded sign of life (now, if there is none)."""
        alive = self.last_alive()
        return self.close_open(self.clock.now() if alive is None else alive)

    # -- reads -------------------------------------------------------------------------------

    def last_alive(self) -> float | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(hb_t.c.alive_at).where(hb_t.c.id == 1)).scalar()
        return None if value is None else float(value)

    def usage(self, start: float, end: float) -> list[Usage]:
        """Lifetimes that overlap [start, end), oldest first."""
        return self._select(usage_t.c.start_time < end, _open_after(start))

    def running(self, at: float) -> list[Usage]:
        """Instances that exist at `at` (started at or before it, not stopped by then)."""
        return self._select(usage_t.c.start_time <= at, _open_after(at))

    def _select(self, *where: ColumnElement[bool]) -> list[Usage]:
        query = select(usage_t).where(*where).order_by(
            usage_t.c.start_time, usage_t.c.instance_id
        )
        with self.engine.connect() as conn:
            return [_usage(row) for row in conn.execute(query)]


def _open_after(t: float) -> ColumnElement[bool]:
    return or_(usage_t.c.end_time.is_(None), usage_t.c.end_time > t)


def _not_before_start(at: float) -> ColumnElement[float]:
    # CASE rather than SQLite's two-argument max(), which PostgreSQL spells greatest().
    return case((usage_t.c.start_time > at, usage_t.c.start_time), else_=literal(at))


def _usage(row: object) -> Usage:
    r = row._mapping  # type: ignore[attr-defined]
    return Usage(
        instance_id=r["instance_id"], endpoint_arn=r["endpoint_arn"],
        endpoint_name=r["endpoint_name"], variant=r["variant_name"],
        instance_type=r["instance_type"], purchase_option=r["purchase_option"],
        rate_per_hour=float(r["rate_per_hour"]), start=float(r["start_time"]),
        end=None if r["end_time"] is None else float(r["end_time"]),
    )


def _stamp(conn: Connection, at: float) -> None:
    """Move the heartbeat forward to `at` (never back: a late write is not a later life)."""
    result = conn.execute(
        update(hb_t).where(hb_t.c.id == 1, hb_t.c.alive_at < at).values(alive_at=at)
    )
    if not result.rowcount and conn.execute(select(hb_t.c.id)).first() is None:
        conn.execute(insert(hb_t).values(id=1, alive_at=at))
