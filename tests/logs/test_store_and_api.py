"""The logs API over a real SQLite store, on a fake clock: GetLogEvents' tokens and time
bounds, PutLogEvents' rejections, retention, stream ordering, and the file ingester's
exactly-once offsets across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tideserve.clock import FakeClock
from tideserve.db import make_engine, metadata
from tideserve.errors import TideserveError
from tideserve.logs import names
from tideserve.logs.service import Logs

NOW = 1_796_000_000.0  # epoch s
NOW_MS = int(NOW * 1000)
DAY_MS = 86_400_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def engine(tmp_path: Path):
    import tideserve.logs.tables  # noqa: F401  (registers the tables)

    engine = make_engine(f"sqlite:///{tmp_path / 'logs.db'}")
    metadata.create_all(engine)
    return engine


@pytest.fixture
def logs(engine, clock: FakeClock) -> Logs:
    return Logs(engine, clock, "us-east-1", "123456789012")


def a_stream(logs: Logs, messages: list[tuple[int, str]], group: str = "/app",
             stream: str = "s") -> None:
    api = logs.api
    api.create_log_group({"logGroupName": group})
    api.create_log_stream({"logGroupName": group, "logStreamName": stream})
    api.put_log_events({"logGroupName": group, "logStreamName": stream,
                        "logEvents": [{"timestamp": t, "message": m} for t, m in messages]})


def get(logs: Logs, **params) -> dict:
    return logs.api.get_log_events({"logGroupName": "/app", "logStreamName": "s", **params})


def test_get_log_events_start_is_inclusive_end_exclusive(logs: Logs) -> None:
    a_stream(logs, [(NOW_MS - 3000 + i * 1000, f"m{i}") for i in range(3)])
    page = get(logs, startTime=NOW_MS - 2000, endTime=NOW_MS - 1000, startFromHead=True)
    assert [e["message"] for e in page["events"]] == ["m1"]


def test_backward_tokens_end_where_the_stream_begins(logs: Logs) -> None:
    a_stream(logs, [(NOW_MS - 10_000 + i, f"m{i}") for i in range(5)])
    newest = get(logs, limit=2)
    assert [e["message"] for e in newest["events"]] == ["m3", "m4"]
    middle = get(logs, limit=2, nextToken=newest["nextBackwardToken"])
    first = get(logs, limit=2, nextToken=middle["nextBackwardToken"])
    assert [e["message"] for e in first["events"]] == ["m0"]
    end = get(logs, limit=2, nextToken=first["nextBackwardToken"])
    assert end["events"] == [] and end["nextBackwardToken"] == first["nextBackwardToken"]


def test_a_forward_token_at_the_end_sees_later_events(logs: Logs) -> None:
    a_stream(logs, [(NOW_MS - 1000, "before")])
    tail = get(logs, startFromHead=True)
    again = get(logs, startFromHead=True, nextToken=tail["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == tail["nextForwardToken"]
    logs.api.put_log_events({"logGroupName": "/app", "logStreamName": "s",
                             "logEvents": [{"timestamp": NOW_MS, "message": "after"}]})
    later = get(logs, startFromHead=True, nextToken=tail["nextForwardToken"])
    assert [e["message"] for e in later["events"]] == ["after"]


def test_a_forged_token_is_an_invalid_parameter(logs: Logs) -> None:
    a_stream(logs, [(NOW_MS, "x")])
    with pytest.raises(TideserveError) as caught:
        get(logs, nextToken="f/123")
    assert caught.value.code == "InvalidParameterException"


def test_put_log_events_rejects_too_old_too_new_and_unordered(logs: Logs) -> None:
    a_stream(logs, [])

    def put(*events: tuple[int, str]) -> dict:
        return logs.api.put_log_events({"logGroupName": "/app", "logStreamName": "s",
                                        "logEvents": [{"timestamp": t, "message": m}
                                                      for t, m in events]})

    hour = 3_600_000
    old = put((NOW_MS - 14 * DAY_MS - hour, "too old"),
              (NOW_MS - 14 * DAY_MS + hour, "old but kept"))
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    new = put((NOW_MS, "fine"), (NOW_MS + 3 * 3_600_000, "too new"))
    assert new["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert [e["message"] for e in get(logs)["events"]] == ["old but kept", "fine"]
    with pytest.raises(TideserveError, match="24 hours"):
        put((NOW_MS - 2 * DAY_MS, "a"), (NOW_MS, "b"))
    with pytest.raises(TideserveError, match="chronological"):
        logs.api.put_log_events({"logGroupName": "/app", "logStreamName": "s", "logEvents": [
            {"timestamp": NOW_MS, "message": "b"}, {"timestamp": NOW_MS - 1, "message": "a"}]})


def test_retention_prunes_on_the_clock(logs: Logs, clock: FakeClock) -> None:
    a_stream(logs, [(NOW_MS - 2 * DAY_MS, "two days old")])
    logs.api.put_log_events({"logGroupName": "/app", "logStreamName": "s",
                             "logEvents": [{"timestamp": NOW_MS, "message": "today"}]})
    assert logs.prune() == 0  # never expires until a policy says otherwise
    logs.api.put_retention_policy({"logGroupName": "/app", "retentionInDays": 3})
    assert logs.prune() == 0  # both are within three days
    clock.advance(1.5 * 86_400)  # the older one is now 3.5 days old
    assert logs.prune() == 1
    assert [e["message"] for e in get(logs)["events"]] == ["today"]
    stream = logs.api.describe_log_streams({"logGroupName": "/app"})["logStreams"][0]
    assert stream["firstEventTimestamp"] == NOW_MS


def test_describe_log_streams_orders_and_pages(logs: Logs) -> None:
    api = logs.api
    api.create_log_group({"logGroupName": "/app"})
    for name, at in (("b", 3), ("a", 1), ("c", 2)):
        api.create_log_stream({"logGroupName": "/app", "logStreamName": name})
        api.put_log_events({"logGroupName": "/app", "logStreamName": name,
                            "logEvents": [{"timestamp": NOW_MS - 10 + at, "message": name}]})
    first = api.describe_log_streams({"logGroupName": "/app", "limit": 2})
    rest = api.describe_log_streams({"logGroupName": "/app", "nextToken": first["nextToken"]})
    assert [s["logStreamName"] for s in first["logStreams"] + rest["logStreams"]] == \
        ["a", "b", "c"]
    assert "nextToken" not in rest
    recent = api.describe_log_streams({"logGroupName": "/app", "orderBy": "LastEventTime",
                                       "descending": True})
    assert [s["logStreamName"] for s in recent["logStreams"]] == ["b", "c", "a"]
    with pytest.raises(TideserveError):
        api.describe_log_streams({"logGroupName": "/app", "orderBy": "LastEventTime",
                                  "logStreamNamePrefix": "a"})


def test_filter_pages_follow_next_token_to_the_end(logs: Logs) -> None:
    a_stream(logs, [(NOW_MS - 100 + i, f"{'ERROR' if i % 3 == 0 else 'INFO'} {i}")
                    for i in range(30)])
    found, token = [], None
    while True:
        page = logs.api.filter_log_events({"logGroupName": "/app", "filterPattern": "ERROR",
                                           "limit": 4, **({"nextToken": token} if token else {})})
        found.extend(e["message"] for e in page["events"])
        token = page.get("nextToken")
        if token is None:
            break
    assert found == [f"ERROR {i}" for i in range(0, 30, 3)]


def test_the_ingester_reads_each_line_once_across_a_restart(logs: Logs, engine,
                                                             clock: FakeClock,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "instance.log"
    target = names.endpoint_instance("ep", "AllTraffic", "ep-1")
    path.write_bytes(b"first line\nsecond li")
    logs.follow(path, target)
    assert logs.ingester.poll() == 1  # the partial line waits for its newline
    with open(path, "ab") as f:
        f.write(b"ne\nthird line\n")
    # The server restarts: a new ingester resumes from the recorded offset.
    restarted = Logs(engine, clock, "us-east-1", "123456789012")
    restarted.ingester.resume()
    assert restarted.ingester.poll() == 2
    assert restarted.ingester.followed() == []  # its writer died with the old server
    page = restarted.api.get_log_events({"logGroupName": "/aws/sagemaker/Endpoints/ep",
                                         "logStreamName": "AllTraffic/ep-1",
                                         "startFromHead": True})
    assert [e["message"] for e in page["events"]] == ["first line", "second line",
                                                       "third line"]


def test_a_closed_file_is_drained_with_its_last_partial_line(logs: Logs,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    target = names.training_job_host("job", 1, 1_796_000_000)
    assert target.stream == "job/algo-1-1796000000"
    logs.follow(path, target)
    path.write_bytes(b"epoch 1\nno newline at the end")
    logs.close(path)
    assert logs.ingester.poll() == 2
    assert logs.ingester.followed() == []


def test_a_jobs_writer_and_the_sdks_stream_lookup(logs: Logs) -> None:
    """The SageMaker SDK finds a job's streams by prefix, ordered by name (spec §5.1)."""
    for host in (2, 1):
        logs.writer(names.training_job_host("job", host, 1_796_000_000)).write(
            [f"algo-{host} epoch 1", ""])
    logs.writer(names.training_job_host("job-b", 1, 1_796_000_000)).write(["other job"])
    found = logs.api.describe_log_streams({
        "logGroupName": names.TRAINING_JOBS, "logStreamNamePrefix": "job/",
        "orderBy": "LogStreamName", "limit": 2})["logStreams"]
    assert [s["logStreamName"] for s in found] == ["job/algo-1-1796000000",
                                                   "job/algo-2-1796000000"]
    assert logs.api.describe_log_streams({"logGroupName": names.TRAINING_JOBS,
                                          "logStreamNamePrefix": "JOB/"})["logStreams"] == []
    group = logs.api.describe_log_groups({"logGroupNamePrefix": "/aws/sagemaker/"})
    assert [g["logGroupName"] for g in group["logGroups"]] == [names.TRAINING_JOBS]
    assert group["logGroups"][0]["arn"].endswith(":log-group:/aws/sagemaker/TrainingJobs:*")


def test_a_follow_poll_from_the_newest_timestamp_repeats_only_known_event_ids(
        logs: Logs) -> None:
    """`aws logs tail --follow` polls again from the newest timestamp it printed and drops
    the eventIds it has seen (spec §5.10): startTime is inclusive, eventIds are stable."""
    a_stream(logs, [(NOW_MS - 5, "a"), (NOW_MS, "b"), (NOW_MS, "c")])
    first = logs.api.filter_log_events({"logGroupName": "/app", "startTime": NOW_MS - 60_000,
                                        "interleaved": True})
    assert "nextToken" not in first
    seen = {e["eventId"] for e in first["events"]}
    logs.api.put_log_events({"logGroupName": "/app", "logStreamName": "s",
                             "logEvents": [{"timestamp": NOW_MS + 1, "message": "d"}]})
    again = logs.api.filter_log_events({"logGroupName": "/app", "startTime": NOW_MS,
                                        "interleaved": True})
    assert [e["message"] for e in again["events"]] == ["b", "c", "d"]
    assert [e["message"] for e in again["events"] if e["eventId"] not in seen] == ["d"]


def test_unknown_groups_and_streams_are_not_found(logs: Logs) -> None:
    with pytest.raises(TideserveError) as group:
        logs.api.filter_log_events({"logGroupName": "/nope"})
    assert (group.value.code, group.value.message) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    a_stream(logs, [])
    with pytest.raises(TideserveError) as stream:
        logs.api.get_log_events({"logGroupName": "/app", "logStreamName": "nope"})
    assert stream.value.message == "The specified log stream does not exist."


def test_a_job_instance_from_the_fleet_logs_to_its_own_stream(logs: Logs,
                                                              tmp_path: Path) -> None:
    from dataclasses import astuple

    from tideserve.cost.catalog import Catalog
    from tideserve.fleet.base import InstanceSpec

    target = names.transform_job_instance("tx", "tx-t0-ab12", 1_796_000_000)
    spec = InstanceSpec("tx-t0-ab12", "tx", "AllTraffic", Catalog.default().get("ml.m5.large"),
                        tmp_path, "sklearn", log_stream=astuple(target))
    path = tmp_path / "tx.log"
    path.write_bytes(b"record 1 done\n")
    logs.instance_logs.opened(spec, path)
    logs.instance_logs.closed(path)
    logs.ingester.poll()
    page = logs.api.get_log_events({"logGroupName": names.TRANSFORM_JOBS,
                                    "logStreamName": "tx/tx-t0-ab12-1796000000",
                                    "startFromHead": True})
    assert [e["message"] for e in page["events"]] == ["record 1 done"]
