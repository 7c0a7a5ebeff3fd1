"""The progress bar `tideserve jobs NAME` draws."""

from __future__ import annotations

from tideserve.transform.cli import progress_line


def progress(**values):
    base = {"TransformJobStatus": "InProgress", "RecordsDone": 1_204_331,
            "BytesDone": 2_100_000_000, "BytesTotal": 4_200_000_000, "ObjectsDone": 11,
            "ObjectsFailed": 0, "ObjectsTotal": 20, "ElapsedSeconds": 50.0}
    return {**base, **values}


def test_half_way_at_42_mb_per_second_has_50_seconds_left():
    line = progress_line(progress(), rate=42_000_000)
    assert line.startswith("[" + "#" * 15 + "." * 15 + "]  50.0%")
    assert "records 1,204,331" in line and "bytes 2.1 GB/4.2 GB" in line
    assert "42.0 MB/s" in line and "ETA 0:00:50" in line and "objects 11/20" in line


def test_a_finished_job_shows_its_status_and_failed_objects():
    line = progress_line(progress(TransformJobStatus="Failed", ObjectsFailed=2), rate=0)
    assert "ETA Failed" in line and "objects 11/20 (2 failed)" in line
