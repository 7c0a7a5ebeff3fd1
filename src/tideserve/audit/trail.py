"""The event store: `record` appends one CloudTrail event in its own transaction (committed
before it returns, so before the API's answer is sent), `lookup` reads them newest first.

What is recorded: every authenticated control-plane call, as AWS records management events,
except the calls AWS leaves out of CloudTrail (CloudWatch PutMetricData/GetMetricData/
GetMetricStatistics/ListMetrics; Logs PutLogEvents/GetLogEvents/FilterLogEvents/
GetQueryResults). The data plane is not recorded per call — a successful InvokeEndpoint never
touches the database — but a refused one is, as a data event, and so are S3 writes (AWS would
need a trail with data events for both; tideserve has no trails, so its Event history keeps the
ones that matter for an audit). Events older than 90 days are dropped, as from Event history.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from tideserve.api.ports import ApiCall
from tideserve.audit import tables as t
from tideserve.audit.records import build_record, resources, username
from tideserve.clock import Clock

RETENTION_SECONDS = 90 * 86400
_NOT_RECORDED = frozenset({
    ("monitoring", "PutMetricData"), ("monitoring", "GetMetricData"),
    ("monitoring", "GetMetricStatistics"), ("monitoring", "ListMetrics"),
    ("monitoring", "GetMetricWidgetImage"),
    ("logs", "PutLogEvents"), ("logs", "GetLogEvents"), ("logs", "FilterLogEvents"),
    ("logs", "GetQueryResults"),
})
# S3 calls that change something; reads of objects are data events nobody asked for.
_S3_WRITES = frozenset({
    "CreateBucket", "DeleteBucket", "PutObject", "DeleteObject", "DeleteObjects",
    "CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload",
})
_PRUNE_EVERY = 1000


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event_id: str
    event_name: str
    event_source: str
    event_time: float
    username: str | None
    access_key_id: str | None
    read_only: bool
    resources: tuple[tuple[str, str], ...]  # (type, name)
    record: str  # the CloudTrail record, JSON


@dataclass(frozen=True)
class Filter:
    """One LookupAttribute as a column test; `resource` ones go through the resources table."""

    column: str  # event_id | event_name | username | event_source | access_key_id | read_only
    value: str


class Trail:
    def __init__(self, engine: Engine, account: str, clock: Clock) -> None:
        self.engine = engine
        self.account = account
        self.clock = clock
        self._appends = 0
        self._lock = threading.Lock()

    def records(self, service: str, operation: str) -> bool:
        if service == "s3":
            return operation in _S3_WRITES
        return (service, operation) not in _NOT_RECORDED

    def record(self, call: ApiCall) -> None:
        now = self.clock.now()
        event_id = str(uuid.uuid4())
        record = build_record(call, event_id, now, self.account)
        identity = call.user_identity or {}
        row = {
            "event_id": event_id, "event_time": now, "event_name": call.operation,
            "event_source": record["eventSource"], "username": username(identity),
            "access_key_id": identity.get("accessKeyId") or None,
            "read_only": bool(record["readOnly"]), "record": json.dumps(record),
        }
        with self.engine.begin() as conn:
            inserted = conn.execute(insert(t.cloudtrail_events).values(**row))
            seq = inserted.inserted_primary_key[0]  # type: ignore[index]
            named = resources(call)
            if named:
                conn.execute(insert(t.cloudtrail_resources), [
                    {"seq": seq, "resource_type": r.type, "resource_name": r.name}
                    for r in named])
        with self._lock:
            self._appends += 1
            prune = self._appends % _PRUNE_EVERY == 1
        if prune:
            self.prune(now)

    def prune(self, now: float) -> None:
        cutoff = now - RETENTION_SECONDS
        with self.engine.begin() as conn:
            old = select(t.cloudtrail_events.c.seq).where(t.cloudtrail_events.c.event_time < cutoff)
            conn.execute(delete(t.cloudtrail_resources).where(
                t.cloudtrail_resources.c.seq.in_(old)))
            conn.execute(delete(t.cloudtrail_events).where(
                t.cloudtrail_events.c.event_time < cutoff))

    def lookup(self, filters: Sequence[Filter], start: float, end: float, before_seq: int | None,
               limit: int, resource_type: str | None = None,
               resource_name: str | None = None) -> list[StoredEvent]:
        """Events in [start, end] matching every filter, newest first, `limit` at most, only
        those appended before `before_seq` (paging)."""
        e = t.cloudtrail_events
        query = select(e).where(e.c.event_time >= start, e.c.event_time <= end)
        for f in filters:
            column = e.c[f.column]
            query = query.where(column == (f.value == "true") if f.column == "read_only"
                                else column == f.value)
        r = t.cloudtrail_resources
        if resource_type is not None:
            query = query.where(e.c.seq.in_(select(r.c.seq).where(r.c.resource_type ==
                                                                   resource_type)))
        if resource_name is not None:
            query = query.where(e.c.seq.in_(select(r.c.seq).where(r.c.resource_name ==
                                                                   resource_name)))
        if before_seq is not None:
            query = query.where(e.c.seq < before_seq)
        query = query.order_by(e.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            seqs = [row.seq for row in rows]
            named: dict[int, list[tuple[str, str]]] = {}
            if seqs:
                for res in conn.execute(select(r).where(r.c.seq.in_(seqs))).all():
                    named.setdefault(res.seq, []).append((res.resource_type, res.resource_name))
        return [StoredEvent(row.seq, row.event_id, row.event_name, row.event_source,
                            row.event_time, row.username, row.access_key_id, row.read_only,
                            tuple(named.get(row.seq, ())), row.record) for row in rows]
