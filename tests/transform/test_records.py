"""Splitting an object into records and mini-batches: order kept, MaxPayloadInMB never
exceeded, a record over it named."""

from __future__ import annotations

import gzip
import io

import pytest

from tideserve.transform.records import RecordTooLarge, batches, open_input

MB = 1024 * 1024


def lines(n: int, width: int = 20) -> bytes:
    return b"".join(b"%0*d\n" % (width, i) for i in range(n))


def test_multi_record_batches_fill_up_to_the_payload_limit_and_keep_order():
    data = lines(200_000)  # 4.2 MB
    got = list(batches(io.BytesIO(data), split_line=True, multi=True, max_payload_mb=1))
    assert all(len(b.body) <= MB for b in got)
    assert len(got) == 5  # 4.2 MB in spans of at most 1 MiB
    assert b"\n".join(b.body for b in got) + b"\n" == data
    assert [b.first for b in got] == [1] + [sum(b.count for b in got[:i]) + 1
                                            for i in range(1, len(got))]
    assert sum(b.in_bytes for b in got) == len(data)


def test_single_record_sends_each_line_alone_and_skips_blank_lines():
    got = list(batches(io.BytesIO(b"a\n\nb\r\nc"), split_line=True, multi=False,
                       max_payload_mb=1))
    assert [(b.first, b.body) for b in got] == [(1, b"a"), (2, b"b\r"), (3, b"c")]
    assert sum(b.in_bytes for b in got) == len(b"a\n\nb\r\nc")


def test_split_none_makes_the_whole_object_one_record():
    got = list(batches(io.BytesIO(b"x\ny\n"), split_line=False, multi=True, max_payload_mb=1))
    assert [(b.count, b.body) for b in got] == [(1, b"x\ny\n")]


@pytest.mark.parametrize("multi", [True, False])
def test_a_record_over_the_limit_is_named(multi):
    data = b"a\nb\n" + b"x" * (MB + 1) + b"\nc\n"
    with pytest.raises(RecordTooLarge, match="record 3 is larger than MaxPayloadInMB"):
        list(batches(io.BytesIO(data), split_line=True, multi=multi, max_payload_mb=1))


def test_gzip_is_inflated_as_it_is_read():
    data = lines(1000)
    stream = open_input(io.BytesIO(gzip.compress(data)), gzipped=True)
    got = list(batches(stream, split_line=True, multi=True, max_payload_mb=6))
    assert got[0].count == 1000 and got[0].body + b"\n" == data


def test_a_record_without_an_end_is_never_held_past_the_limit():
    class Endless(io.RawIOBase):
        reads = 0

        def read(self, n: int = -1) -> bytes:
            self.reads += 1
            return b"y" * (1 << 20)

    endless = Endless()
    with pytest.raises(RecordTooLarge, match="record 1"):
        list(batches(endless, split_line=True, multi=False, max_payload_mb=2))  # type: ignore[arg-type]
    assert endless.reads <= 4
