"""An input object as a stream of mini-batches, in bounded memory (pure: reads a file object).

SplitType None: the whole object is one record. SplitType Line: each non-empty line is a
record (its `\\n` is not part of it; blank lines are skipped). BatchStrategy SingleRecord sends
one record per request; MultiRecord as many whole records as fit in MaxPayloadInMB, joined by
`\\n`. A record larger than MaxPayloadInMB fails the object (RecordTooLarge), as on AWS.

MultiRecord without filters is the fast path: a batch is a span of the buffer cut at the last
newline that fits, so the cost per batch is a few C-level scans whatever the record count.
Memory: the buffer holds at most MaxPayloadInMB plus one read chunk, so a 10 GB object is read
with ~MaxPayloadInMB + 1 MiB resident.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

READ_CHUNK = 1 << 20  # bytes per read from the object store


class RecordTooLarge(Exception):
    def __init__(self, record: int, limit_mb: int) -> None:
        super().__init__(
            f"record {record} is larger than MaxPayloadInMB ({limit_mb} MB): the size of a "
            "single record must not exceed MaxPayloadInMB")
        self.record = record


@dataclass(frozen=True)
class Batch:
    """One request's worth of records: `first` is the 1-based number of its first record."""

    seq: int  # 0-based batch number within the object
    first: int
    count: int
    body: bytes
    in_bytes: int  # input bytes it consumed (newlines and skipped blank lines included)

    def records(self) -> list[bytes]:
        return self.body.split(b"\n") if self.count > 1 else [self.body]


def open_input(raw: BinaryIO, gzipped: bool) -> BinaryIO:
    """The object's bytes as the model sees them: gzip is inflated as it is read."""
    return gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw  # type: ignore[return-value]


def batches(stream: BinaryIO, *, split_line: bool, multi: bool,
            max_payload_mb: int) -> Iterator[Batch]:
    limit = max_payload_mb * 1024 * 1024
    if not split_line:
        yield from _whole(stream, limit, max_payload_mb)
    elif multi:
        yield from _spans(stream, limit, max_payload_mb)
    else:
        yield from _single(stream, limit, max_payload_mb)


def _whole(stream: BinaryIO, limit: int, limit_mb: int) -> Iterator[Batch]:
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RecordTooLarge(1, limit_mb)
    if body:
        yield Batch(0, 1, 1, body, len(body))


def _lines(stream: BinaryIO, limit: int, limit_mb: int) -> Iterator[tuple[bytes, int]]:
    """(record, input bytes it took) for each non-empty line; a line is never held past the
    limit plus one chunk, even when it has no end."""
    buf = bytearray()
    record, skipped = 0, 0  # skipped: bytes of blank lines, counted with the next record
    eof = False
    while True:
        newline = buf.find(b"\n")
        if newline < 0 and not eof:
            if len(buf) > limit:
                raise RecordTooLarge(record + 1, limit_mb)
            chunk = stream.read(READ_CHUNK)
            if chunk:
                buf += chunk
            else:
                eof = True
            continue
        end = newline if newline >= 0 else len(buf)
        line = bytes(buf[:end])
        taken = end + 1 if newline >= 0 else end
        del buf[:taken]
        if line.strip():
            record += 1
            if len(line) > limit:
                raise RecordTooLarge(record, limit_mb)
            yield line, taken + skipped
            skipped = 0
        else:
            skipped += taken
        if newline < 0 and eof:
            return


def _single(stream: BinaryIO, limit: int, limit_mb: int) -> Iterator[Batch]:
    seq = 0
    for line, taken in _lines(stream, limit, limit_mb):
        yield Batch(seq, seq + 1, 1, line, taken)
        seq += 1


def _spans(stream: BinaryIO, limit: int, limit_mb: int) -> Iterator[Batch]:
    buf = bytearray()
    seq, done, eof = 0, 0, False
    while buf or not eof:
        while not eof and len(buf) <= limit:
            chunk = stream.read(READ_CHUNK)
            if chunk:
                buf += chunk
            else:
                eof = True
        if eof and len(buf) <= limit:
            cut, sep = len(buf), 0  # the rest fits: the last record needs no newline
        else:
            cut, sep = buf.rfind(b"\n", 0, limit + 1), 1  # the body stops before it
            if cut < 0:
                raise RecordTooLarge(done + 1, limit_mb)
        body = _drop_blank_lines(bytes(buf[:cut]))
        del buf[:cut + sep]
        if body:
            count = body.count(b"\n") + 1
            yield Batch(seq, done + 1, count, body, cut + sep)
            seq += 1
            done += count


def _drop_blank_lines(span: bytes) -> bytes:
    """The span without empty lines (rare: a fast check first)."""
    if (b"\n\n" not in span and not span.startswith(b"\n") and not span.endswith(b"\n")
            and span.strip()):
        return span
    return b"\n".join(line for line in span.split(b"\n") if line.strip())
