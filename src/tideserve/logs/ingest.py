"""Following files that processes write (an instance's stdout and stderr) into log streams.

Each poll reads what every followed file gained since the last one, turns its complete lines
into events stamped with the time they were read (the files carry no timestamps; at the
0.25 s poll that is within a quarter second of when they were written), and records the new
offset in the same transaction as the events, so a restart neither loses nor repeats a line.
A partial last line waits for its newline, unless the file is closing or the line passes
MAX_EVENT_BYTES (then it is cut, as AWS's agent cuts events at its size limit).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select, update

from tideserve.clock import Clock
from tideserve.logs.names import LogTarget
from tideserve.logs.store import LogStore
from tideserve.logs.tables import log_sources

log = logging.getLogger("tideserve.logs")

MAX_EVENT_BYTES = 256 * 1024
# Bytes read from one file per poll: a flood from one instance cannot stall the others.
MAX_READ_BYTES = 8 * 1024 * 1024


@dataclass
class _Source:
    path: Path
    target: LogTarget
    offset: int
    closing: bool = False


class FileIngester:
    def __init__(self, store: LogStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._sources: dict[Path, _Source] = {}
        self._lock = threading.Lock()
        self._polling = threading.Lock()

    def resume(self) -> None:
        """Take up the files a previous run followed. Their writers died with it (the server
        kills orphaned instances at start), so each is drained once more and dropped."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(log_sources)).all()
        with self._lock:
            for row in rows:
                path = Path(row.path)
                self._sources[path] = _Source(path, LogTarget(row.group_name, row.stream_name),
                                              row.offset, closing=True)

    def follow(self, path: Path, target: LogTarget) -> None:
        """Ingest `path` from its start (or from where a previous follow of it stopped)."""
        # The stream exists from the start, as a container's does, before it prints.
        now_ms = int(self.clock.now() * 1000)
        self.store.ensure_stream(self.store.ensure_group(target.group, now_ms), target.stream,
                                 now_ms)
        with self._lock:
            if path in self._sources:
                self._sources[path].closing = False
                return
            source = _Source(path, target, 0)
            self._sources[path] = source
        with self.store.engine.begin() as conn:
            known = conn.execute(select(log_sources.c.offset).where(
                log_sources.c.path == str(path))).scalar()
            if known is None:
                conn.execute(insert(log_sources).values(
                    path=str(path), group_name=target.group, stream_name=target.stream,
                    offset=0))
            else:
                source.offset = int(known)

    def close(self, path: Path) -> None:
        """The writer has stopped: the next poll ingests the rest and forgets the file."""
        with self._lock:
            source = self._sources.get(path)
            if source is not None:
                source.closing = True

    def poll(self) -> int:
        """Ingest what every followed file gained; how many events that made."""
        with self._polling:
            with self._lock:
                sources = list(self._sources.values())
            total = 0
            for source in sources:
                try:
                    total += self._drain(source)
                except Exception:
                    log.exception("could not ingest %s", source.path)
            return total

    def _drain(self, source: _Source) -> int:
        closing = source.closing  # read once: a close after this poll's read waits a poll
        try:
            size = os.stat(source.path).st_size
        except FileNotFoundError:
            size = source.offset
        if size < source.offset:  # truncated or replaced: start over
            source.offset = 0
        data = b""
        if size > source.offset:
            with open(source.path, "rb") as f:
                f.seek(source.offset)
                data = f.read(min(size - source.offset, MAX_READ_BYTES))
        lines, used = split_lines(data, final=closing and size - source.offset <= len(data))
        now_ms = int(self.clock.now() * 1000)
        new_offset = source.offset + used
        if lines or used:
            group = self.store.ensure_group(source.target.group, now_ms)
            stream = self.store.ensure_stream(group, source.target.stream, now_ms)
            self.store.append(group, stream, [(now_ms, line) for line in lines], now_ms,
                              then=lambda conn: _save_offset(conn, source.path, new_offset))
            source.offset = new_offset
        if closing and source.offset >= size:
            self._forget(source)
        return len(lines)

    def _forget(self, source: _Source) -> None:
        with self._lock:
            if self._sources.get(source.path) is source and source.closing:
                del self._sources[source.path]
        with self.store.engine.begin() as conn:
            conn.execute(delete(log_sources).where(log_sources.c.path == str(source.path)))

    def followed(self) -> list[Path]:
        with self._lock:
            return sorted(self._sources)


def split_lines(data: bytes, final: bool) -> tuple[list[str], int]:
    """The complete lines in `data` as messages (blank ones dropped: an event needs a
    character), and how many bytes they used. With `final` a partial last line counts too."""
    end = len(data) if final else data.rfind(b"\n") + 1
    if end == 0 and len(data) >= MAX_EVENT_BYTES:
        end = MAX_EVENT_BYTES  # one endless line: cut it
    messages = []
    for raw in data[:end].split(b"\n"):
        for start in range(0, len(raw), MAX_EVENT_BYTES):
            text = raw[start:start + MAX_EVENT_BYTES].decode("utf-8", "replace").rstrip("\r")
            if text.strip():
                messages.append(text)
    return messages, end


def _save_offset(conn: Connection, path: Path, offset: int) -> None:
    conn.execute(update(log_sources).where(log_sources.c.path == str(path)).values(
        offset=offset))
