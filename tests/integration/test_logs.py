"""CloudWatch Logs against a real `tideserve up`: what a model's instances print lands in
/aws/sagemaker/Endpoints/<name>, one stream per instance, and boto3 and the AWS CLI find it
with FilterLogEvents, page it with GetLogEvents and count it with Logs Insights; retention
prunes what a group no longer keeps."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_identity_services import _aws
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows

pytestmark = pytest.mark.integration

GROUP = "/aws/sagemaker/Endpoints/logged"


def _tracebacks_in_both_streams(logs, since_ms: int, expected: int) -> list[dict]:
    """What `aws logs tail GROUP --since ...` asks for (FilterLogEvents, interleaved, from
    `since`, paginated to the end), polled until the `expected` tracebacks are in (the server
    reads instance output four times a second)."""
    deadline = time.monotonic() + 20
    while True:
        events = []
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, interleaved=True, startTime=since_ms,
            filterPattern="Traceback")
        for page in pages:
            events.extend(page["events"])
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_an_endpoints_tracebacks_are_found_across_instances_and_counted(
        server: RunningServer, trained, tmp_path: Path):
    _, X, _, crashing = trained
    sm, rt, logs = (server.client(s) for s in ("sagemaker", "sagemaker-runtime", "logs"))
    since_ms = int(time.time() * 1000) - 1000
    deploy(sm, "logged", str(crashing), count=2)
    wait_in_service(sm, "logged")
    bad = X[:1].copy()
    bad[0, 0] = -1.0
    failures = 16  # ties between idle instances are broken at random: both get some
    for _ in range(failures):
        with pytest.raises(rt.exceptions.ModelError):
            rt.invoke_endpoint(EndpointName="logged", Body=csv_rows(bad), ContentType="text/csv")
    rt.invoke_endpoint(EndpointName="logged", Body=csv_rows(X[:1]), ContentType="text/csv")

    # Narrated: one stream per instance, named <variant>/<instance-id>.
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert len(streams) == 2
    assert all(s["logStreamName"].startswith("AllTraffic/logged-") for s in streams)
    group = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]
    assert group["logGroupName"] == GROUP and "retentionInDays" not in group

    tracebacks = _tracebacks_in_both_streams(logs, since_ms, failures)
    assert len({e["logStreamName"] for e in tracebacks}) == 2
    assert len(tracebacks) == failures
    assert all(e["message"].startswith("Traceback (most recent call last)") for e in tracebacks)
    assert len({e["eventId"] for e in tracebacks}) == failures  # `tail --follow` dedupes on it

    # The error line itself, with a phrase, an exclusion and an alternative.
    errors = logs.filter_log_events(
        logGroupName=GROUP, startTime=since_ms,
        filterPattern='"negative radius" -Traceback ?RuntimeError ?ValueError')["events"]
    assert errors and all("negative radius" in e["message"] for e in errors)

    # The AWS CLI's own filter-log-events finds the same tracebacks.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.state_dir / "credentials"),
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run(
        [*_aws(), "logs", "filter-log-events", "--log-group-name", GROUP, "--filter-pattern",
         "Traceback", "--start-time", str(since_ms), "--endpoint-url", server.url,
         "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["events"]) == failures

    # Logs Insights counts the errors per 5 minutes.
    now = int(time.time())
    query_id = logs.start_query(
        logGroupName=GROUP, startTime=now - 900, endTime=now + 60,
        queryString="filter @message like /Traceback/ | stats count(*) by bin(5m)")["queryId"]
    deadline = time.monotonic() + 20
    while (result := logs.get_query_results(queryId=query_id))["status"] in (
            "Scheduled", "Running") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result["status"] == "Complete"
    rows = [{cell["field"]: cell["value"] for cell in row} for row in result["results"]]
    assert rows and all(set(row) == {"bin(5m)", "count(*)"} for row in rows)
    assert sum(int(row["count(*)"]) for row in rows) == failures
    assert result["statistics"]["recordsMatched"] == failures


def test_user_streams_page_both_ways_and_retention_prunes(server: RunningServer):
    logs = server.client("logs")
    logs.create_log_group(logGroupName="/tideserve/test/paging")
    logs.create_log_stream(logGroupName="/tideserve/test/paging", logStreamName="app/1")
    with pytest.raises(ClientError) as exists:
        logs.create_log_group(logGroupName="/tideserve/test/paging")
    assert exists.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    base = int(time.time() * 1000) - 60_000
    logs.put_log_events(logGroupName="/tideserve/test/paging", logStreamName="app/1",
                        logEvents=[{"timestamp": base + i, "message": f"line {i}"}
                                   for i in range(25)])

    # From the head, forward tokens until the one returned is the one sent.
    seen, kwargs = [], {"startFromHead": True}
    while True:
        page = logs.get_log_events(logGroupName="/tideserve/test/paging",
                                   logStreamName="app/1", limit=10, **kwargs)
        seen.extend(e["message"] for e in page["events"])
        if kwargs.get("nextToken") == page["nextForwardToken"]:
            break
        kwargs = {"startFromHead": True, "nextToken": page["nextForwardToken"]}
    assert seen == [f"line {i}" for i in range(25)]

    # The default reads the newest page; the backward token reaches the older one.
    newest = logs.get_log_events(logGroupName="/tideserve/test/paging",
                                 logStreamName="app/1", limit=10)
    assert [e["message"] for e in newest["events"]] == [f"line {i}" for i in range(15, 25)]
    older = logs.get_log_events(logGroupName="/tideserve/test/paging", logStreamName="app/1",
                                limit=10, nextToken=newest["nextBackwardToken"])
    assert [e["message"] for e in older["events"]] == [f"line {i}" for i in range(5, 15)]

    with pytest.raises(ClientError) as both:
        logs.filter_log_events(logGroupName="/tideserve/test/paging", logStreamNames=["app/1"],
                               logStreamNamePrefix="app/")
    assert both.value.response["Error"]["Code"] == "InvalidParameterException"

    # Ten-day-old events are kept while the group never expires, pruned once it keeps seven.
    ten_days_ago = int(time.time() * 1000) - 10 * 86_400_000
    logs.put_log_events(logGroupName="/tideserve/test/paging", logStreamName="app/1",
                        logEvents=[{"timestamp": ten_days_ago, "message": "old news"}])
    assert _messages(logs, "old news") == ["old news"]
    with pytest.raises(ClientError) as bad_days:
        logs.put_retention_policy(logGroupName="/tideserve/test/paging", retentionInDays=2)
    assert bad_days.value.response["Error"]["Code"] == "InvalidParameterException"
    logs.put_retention_policy(logGroupName="/tideserve/test/paging", retentionInDays=7)
    group = logs.describe_log_groups(logGroupNamePrefix="/tideserve/test/")["logGroups"][0]
    assert group["retentionInDays"] == 7
    deadline = time.monotonic() + 10  # the prune runs once a metric period (2 s here)
    while _messages(logs, "old news") and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _messages(logs, "old news") == []
    assert len(_messages(logs, "line")) == 25  # the recent ones stay
    logs.delete_retention_policy(logGroupName="/tideserve/test/paging")
    group = logs.describe_log_groups(logGroupNamePrefix="/tideserve/test/")["logGroups"][0]
    assert "retentionInDays" not in group
    logs.delete_log_group(logGroupName="/tideserve/test/paging")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/tideserve/test/paging", logStreamName="app/1")


def _messages(logs, pattern: str) -> list[str]:
    page = logs.filter_log_events(logGroupName="/tideserve/test/paging",
                                  filterPattern=f'"{pattern}"')
    return [e["message"] for e in page["events"]]
