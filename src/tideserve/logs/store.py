"""Log groups, streams and events in the shared database (SQLite or PostgreSQL).

Writes come in batches (the ingester's poll, one PutLogEvents): one transaction inserts the
events and moves the stream's first/last timestamps and the group's stored bytes. Reads walk
the (group|stream, timestamp, id) indexes in chunks, so a scan of a large group holds no more
than a chunk in memory and a caller can stop early (FilterLogEvents' scan budget).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from tideserve.errors import AlreadyExistsError, NotFoundError
from tideserve.logs.tables import log_events, log_groups, log_streams

MS_PER_DAY = 86_400_000
SCAN_CHUNK = 2000


def group_not_found() -> NotFoundError:
    return NotFoundError("The specified log group does not exist.",
                         code="ResourceNotFoundException")


def stream_not_found() -> NotFoundError:
    return NotFoundError("The specified log stream does not exist.",
                         code="ResourceNotFoundException")


@dataclass(frozen=True)
class LogGroup:
    id: int
    name: str
    creation_time: int  # epoch ms
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True)
class LogStream:
    id: int
    name: str
    creation_time: int  # epoch ms
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None


@dataclass(frozen=True)
class LogEvent:
    id: int  # the eventId, and the tie-break after timestamp
    stream_id: int
    timestamp: int  # epoch ms
    ingestion_time: int  # epoch ms
    message: str


@dataclass(frozen=True)
class Position:
    """A point between events in (timestamp, id) order: `after` it means strictly later."""

    timestamp: int
    id: int


class LogStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        # name -> id caches for the ingester's hot path; cleared when anything is deleted.
        self._group_ids: dict[str, int] = {}
        self._stream_ids: dict[tuple[int, str], int] = {}

    # --- groups and streams ---------------------------------------------------------------

    def create_group(self, name: str, now_ms: int) -> LogGroup:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(log_groups).values(
                    name=name, creation_time=now_ms, retention_days=None, stored_bytes=0))
        except IntegrityError:
            raise AlreadyExistsError("The specified log group already exists",
                                     code="ResourceAlreadyExistsException") from None
        return self.group(name)

    def group(self, name: str) -> LogGroup:
        with self.engine.connect() as conn:
            row = conn.execute(select(log_groups).where(log_groups.c.name == name)).first()
        if row is None:
            raise group_not_found()
        return LogGroup(row.id, row.name, row.creation_time, row.retention_days,
                        row.stored_bytes)

    def ensure_group(self, name: str, now_ms: int) -> int:
        """The group's id, created (never-expire, as SageMaker's are) when missing."""
        cached = self._group_ids.get(name)
        if cached is not None:
            return cached
        with self._lock:
            try:
                group_id = self.group(name).id
            except NotFoundError:
                try:
                    group_id = self.create_group(name, now_ms).id
                except AlreadyExistsError:
                    group_id = self.group(name).id
            self._group_ids[name] = group_id
            return group_id

    def create_stream(self, group_id: int, name: str, now_ms: int) -> int:
        try:
            with self.engine.begin() as conn:
                result = conn.execute(insert(log_streams).values(
                    group_id=group_id, name=name, creation_time=now_ms))
        except IntegrityError:
            raise AlreadyExistsError("The specified log stream already exists",
                                     code="ResourceAlreadyExistsException") from None
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def stream_id(self, group_id: int, name: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(select(log_streams.c.id).where(
                log_streams.c.group_id == group_id, log_streams.c.name == name)).scalar()
        if found is None:
            raise stream_not_found()
        return int(found)

    def ensure_stream(self, group_id: int, name: str, now_ms: int) -> int:
        key = (group_id, name)
        cached = self._stream_ids.get(key)
        if cached is not None:
            return cached
        with self._lock:
            try:
                stream_id = self.stream_id(group_id, name)
            except NotFoundError:
                try:
                    stream_id = self.create_stream(group_id, name, now_ms)
                except AlreadyExistsError:
                    stream_id = self.stream_id(group_id, name)
            self._stream_ids[key] = stream_id
            return stream_id

    def delete_group(self, name: str) -> None:
        group = self.group(name)
        with self.engine.begin() as conn:
            conn.execute(delete(log_events).where(log_events.c.group_id == group.id))
            conn.execute(delete(log_streams).where(log_streams.c.group_id == group.id))
            conn.execute(delete(log_groups).where(log_groups.c.id == group.id))
        self._forget()

    def delete_stream(self, group_id: int, name: str) -> None:
        stream_id = self.stream_id(group_id, name)
        with self.engine.begin() as conn:
            stored = conn.execute(select(func.coalesce(func.sum(func.length(
                log_events.c.message)), 0)).where(log_events.c.stream_id == stream_id)).scalar()
            conn.execute(delete(log_events).where(log_events.c.stream_id == stream_id))
            conn.execute(delete(log_streams).where(log_streams.c.id == stream_id))
            conn.execute(update(log_groups).where(log_groups.c.id == group_id).values(
                stored_bytes=_minus(int(stored or 0))))
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._group_ids.clear()
            self._stream_ids.clear()

    def groups(self, prefix: str | None = None, contains: str | None = None,
               after: str | None = None, limit: int = 50) -> list[LogGroup]:
        """Groups in name order (ASCII), the first `limit` after the name `after`."""
        query = select(log_groups).order_by(log_groups.c.name).limit(limit)
        if prefix:
            query = query.where(_starts_with(log_groups.c.name, prefix))
        if contains:
            query = query.where(log_groups.c.name.contains(contains, autoescape=True))
        if after is not None:
            query = query.where(log_groups.c.name > after)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        # LIKE ignores ASCII case on SQLite; AWS's pattern match does not.
        return [LogGroup(r.id, r.name, r.creation_time, r.retention_days, r.stored_bytes)
                for r in rows if not contains or contains in r.name]

    def streams(self, group_id: int, prefix: str | None = None) -> list[LogStream]:
        query = select(log_streams).where(log_streams.c.group_id == group_id)
        if prefix:
            query = query.where(_starts_with(log_streams.c.name, prefix))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [LogStream(r.id, r.name, r.creation_time, r.first_event, r.last_event,
                          r.last_ingestion) for r in rows]

    def stream_names(self, group_id: int) -> dict[int, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(log_streams.c.id, log_streams.c.name).where(
                log_streams.c.group_id == group_id)).all()
        return {r.id: r.name for r in rows}

    def set_retention(self, name: str, days: int | None) -> None:
        group = self.group(name)
        with self.engine.begin() as conn:
            conn.execute(update(log_groups).where(log_groups.c.id == group.id).values(
                retention_days=days))

    # --- events ---------------------------------------------------------------------------

    def append(self, group_id: int, stream_id: int, events: Sequence[tuple[int, str]],
               ingestion_ms: int, then: Callable[[Connection], object] | None = None) -> None:
        """Store (timestamp ms, message) events of one stream, in one transaction, with
        `then` (the ingester moving its file offset) in the same one."""
        if not events:
            if then is not None:
                with self.engine.begin() as conn:
                    then(conn)
            return
        rows = [{"group_id": group_id, "stream_id": stream_id, "timestamp": ts,
                 "ingestion_time": ingestion_ms, "message": message} for ts, message in events]
        first = min(ts for ts, _ in events)
        last = max(ts for ts, _ in events)
        size = sum(len(message.encode()) for _, message in events)
        s = log_streams.c
        with self.engine.begin() as conn:
            conn.execute(insert(log_events), rows)
            conn.execute(update(log_streams).where(s.id == stream_id).values(
                first_event=case((or_(s.first_event.is_(None), s.first_event > first), first),
                                 else_=s.first_event),
                last_event=case((or_(s.last_event.is_(None), s.last_event < last), last),
                                else_=s.last_event),
                last_ingestion=ingestion_ms))
            conn.execute(update(log_groups).where(log_groups.c.id == group_id).values(
                stored_bytes=log_groups.c.stored_bytes + size))
            if then is not None:
                then(conn)

    def scan(self, *, group_id: int | None = None, stream_ids: Iterable[int] | None = None,
             start: int | None = None, end: int | None = None, after: Position | None = None,
             before: Position | None = None, descending: bool = False,
             contains: Sequence[str] = ()) -> Iterator[LogEvent]:
        """Events of a group (or of some of its streams) with start <= timestamp < end,
        strictly after `after` / before `before`, in (timestamp, id) order (or its reverse),
        read a chunk at a time. `contains` is a prefilter (substrings every message must
        hold; LIKE, so case-blind on SQLite): callers still match exactly."""
        e = log_events.c
        base = []
        if group_id is not None:
            base.append(e.group_id == group_id)
        ids = list(stream_ids) if stream_ids is not None else None
        if ids is not None:
            if not ids:
                return
            base.append(e.stream_id.in_(ids))
        if start is not None:
            base.append(e.timestamp >= start)
        if end is not None:
            base.append(e.timestamp < end)
        for text in contains:
            base.append(e.message.contains(text, autoescape=True))
        order = (e.timestamp.desc(), e.id.desc()) if descending else (e.timestamp, e.id)
        cursor_after, cursor_before = after, before
        while True:
            where = list(base)
            if cursor_after is not None:
                where.append(_after(cursor_after))
            if cursor_before is not None:
                where.append(_before(cursor_before))
            query = (select(e.id, e.stream_id, e.timestamp, e.ingestion_time, e.message)
                     .where(and_(*where)).order_by(*order).limit(SCAN_CHUNK))
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield LogEvent(row.id, row.stream_id, row.timestamp, row.ingestion_time,
                               row.message)
            if len(rows) < SCAN_CHUNK:
                return
            last = Position(rows[-1].timestamp, rows[-1].id)
            if descending:
                cursor_before = last
            else:
                cursor_after = last

    def prune(self, now_ms: int) -> int:
        """Delete the events older than their group's retention; how many went."""
        deleted = 0
        with self.engine.connect() as conn:
            groups = conn.execute(select(log_groups.c.id, log_groups.c.retention_days).where(
                log_groups.c.retention_days.is_not(None))).all()
        for group_id, days in groups:
            cutoff = now_ms - days * MS_PER_DAY
            e = log_events.c
            old = and_(e.group_id == group_id, e.timestamp < cutoff)
            with self.engine.begin() as conn:
                size = conn.execute(select(func.coalesce(func.sum(func.length(e.message)), 0))
                                    .where(old)).scalar()
                result = conn.execute(delete(log_events).where(old))
                conn.execute(update(log_groups).where(log_groups.c.id == group_id).values(
                    stored_bytes=_minus(int(size or 0))))
                self._refresh_stream_bounds(conn, group_id)
            deleted += result.rowcount or 0
        return deleted

    @staticmethod
    def _refresh_stream_bounds(conn: Connection, group_id: int) -> None:
        """After a prune, first_event is the oldest event that remains."""
        e = log_events.c
        oldest = (select(func.min(e.timestamp)).where(e.stream_id == log_streams.c.id)
                  .scalar_subquery())
        conn.execute(update(log_streams).where(
            log_streams.c.group_id == group_id).values(first_event=oldest))


def _starts_with(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """Case-sensitive on SQLite too (its LIKE ignores ASCII case; AWS's prefixes do not)."""
    return func.substr(column, 1, len(prefix)) == prefix


def _after(pos: Position) -> ColumnElement[bool]:
    e = log_events.c
    return or_(e.timestamp > pos.timestamp, and_(e.timestamp == pos.timestamp, e.id > pos.id))


def _before(pos: Position) -> ColumnElement[bool]:
    e = log_events.c
    return or_(e.timestamp < pos.timestamp, and_(e.timestamp == pos.timestamp, e.id < pos.id))


def _minus(size: int) -> object:
    """stored_bytes less `size`, never below zero (SQLite and PostgreSQL alike)."""
    stored = log_groups.c.stored_bytes
    return case((stored > size, stored - size), else_=0)
