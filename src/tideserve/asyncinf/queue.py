"""The durable async queue: each method is one transaction on the async_requests table.

Life of a request:  queued --claim--> processing --finish--> done | failed | expired
A claim takes a lease (the attempt's timeout plus a margin) and bumps `attempts`, which then
fences the attempt: finish/release only act on the row if `attempts` still matches, so a
stale attempt cannot overwrite a newer one. A restarted server owns no attempt in flight, so
`recover` puts every processing row back in the queue; `requeue_lost` does the same for rows
whose lease ran out while the server lived (an attempt that never came back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, select, update

from tideserve.asyncinf.tables import async_requests as q

LEASE_MARGIN_SECONDS = 60.0  # beyond the invocation timeout: reading input, writing output
BACKLOG_STATES = ("queued", "processing")


@dataclass(frozen=True)
class QueuedRequest:
    id: str
    endpoint_lower: str
    inference_id: str
    input_location: str | None
    body: bytes | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    output_location: str
    failure_location: str
    enqueued_at: float
    ttl_seconds: int
    timeout_seconds: int
    state: str = "queued"
    attempts: int = 0
    lease_until: float | None = None
    claimed_at: float | None = None
    finished_at: float | None = None
    error: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> QueuedRequest:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def expired(self, now: float) -> bool:
        """Past its RequestTTLSeconds before an instance took it (§3.3)."""
        return now - self.enqueued_at > self.ttl_seconds


@dataclass(frozen=True)
class Backlog:
    size: int  # queued + processing
    oldest_enqueued_at: float | None  # of those; None when empty


class AsyncQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, request: QueuedRequest) -> None:
        values = {f.name: getattr(request, f.name) for f in fields(QueuedRequest)}
        with self.engine.begin() as conn:
            conn.execute(insert(q).values(**values))

    def get(self, request_id: str) -> QueuedRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(q).where(q.c.id == request_id)).first()
        return QueuedRequest.from_row(row) if row else None

    def claim(self, endpoint_lower: str, now: float) -> QueuedRequest | None:
        """Take the oldest queued request of the endpoint, with a lease."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(q.c.id).where(q.c.endpoint_lower == endpoint_lower, q.c.state == "queued")
                .order_by(q.c.enqueued_at, q.c.id).limit(1)
            ).first()
            if row is None:
                return None
            return self._take(conn, row.id, now)

    def claim_expired(self, now: float, limit: int = 100) -> list[QueuedRequest]:
        """Take queued requests past their TTL (any endpoint, capacity or not), to fail them."""
        with self.engine.begin() as conn:
            ids = [r.id for r in conn.execute(
                select(q.c.id).where(q.c.state == "queued", q.c.enqueued_at + q.c.ttl_seconds < now)
                .order_by(q.c.enqueued_at).limit(limit)
            )]
            taken = [self._take(conn, i, now) for i in ids]
        return [r for r in taken if r is not None]

    def _take(self, conn: Any, request_id: str, now: float) -> QueuedRequest | None:
        row = conn.execute(select(q).where(q.c.id == request_id)).first()
        lease = now + row.timeout_seconds + LEASE_MARGIN_SECONDS
        res = conn.execute(
            update(q).where(q.c.id == request_id, q.c.state == "queued").values(
                state="processing", attempts=q.c.attempts + 1, lease_until=lease, claimed_at=now)
        )
        if res.rowcount != 1:
            return None
        row = conn.execute(select(q).where(q.c.id == request_id)).first()
        return QueuedRequest.from_row(row)

    def finish(self, req: QueuedRequest, state: str, now: float, error: str | None = None
               ) -> bool:
        """Mark the claimed attempt `req` done, failed or expired. False if it lost the lease."""
        assert state in ("done", "failed", "expired"), state
        with self.engine.begin() as conn:
            res = conn.execute(
                update(q).where(*self._fence(req)).values(
                    state=state, finished_at=now, lease_until=None, error=error, body=None)
            )
        return res.rowcount == 1

    def release(self, req: QueuedRequest) -> bool:
        """Put the claimed attempt back in the queue (its instance went away)."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(q).where(*self._fence(req)).values(state="queued", lease_until=None)
            )
        return res.rowcount == 1

    @staticmethod
    def _fence(req: QueuedRequest) -> tuple[Any, ...]:
        return (q.c.id == req.id, q.c.state == "processing", q.c.attempts == req.attempts)

    def recover(self) -> int:
        """At start-up: nothing is in flight any more, so every processing row is re-queued."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(q).where(q.c.state == "processing").values(state="queued", lease_until=None)
            )
        return res.rowcount

    def requeue_lost(self, now: float) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(
                update(q).where(q.c.state == "processing", q.c.lease_until < now)
                .values(state="queued", lease_until=None)
            )
        return res.rowcount

    def backlogs(self) -> dict[str, Backlog]:
        """endpoint (lower-cased) -> its backlog, for endpoints that have one."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(q.c.endpoint_lower, func.count(), func.min(q.c.enqueued_at))
                .where(q.c.state.in_(BACKLOG_STATES)).group_by(q.c.endpoint_lower)
            )
            return {r[0]: Backlog(int(r[1]), r[2]) for r in rows}

    def has_queued(self, endpoint_lower: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(q.c.id).where(and_(q.c.endpoint_lower == endpoint_lower,
                                          q.c.state == "queued")).limit(1)
            ).first() is not None

    def purge(self, endpoints_lower: Iterable[str]) -> int:
        """Forget every request of these endpoints (deleted, or a new endpoint took the name)."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(q).where(q.c.endpoint_lower.in_(list(endpoints_lower))))
        return res.rowcount

    def states(self, endpoint_lower: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(q.c.state, func.count()).where(q.c.endpoint_lower == endpoint_lower)
                .group_by(q.c.state)
            )
            return {r[0]: int(r[1]) for r in rows}
