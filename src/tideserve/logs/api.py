"""The CloudWatch Logs API (JSON 1.1, target Logs_20140328) over the log store: wire-level
checks that the botocore model cannot express (mutually exclusive members, enums AWS checks
itself), then the store; errors are InvalidParameterException, ResourceNotFoundException,
ResourceAlreadyExistsException and MalformedQueryException as AWS names them (spec §5.9)."""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterator
from typing import Any

from tideserve.clock import Clock
from tideserve.errors import ValidationError
from tideserve.logs import reading
from tideserve.logs.insights_eval import Record, record_of
from tideserve.logs.names import LogArns, check_group_name, check_stream_name
from tideserve.logs.queries import QueryRunner
from tideserve.logs.store import MS_PER_DAY, LogGroup, LogStore, LogStream

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)
MAX_PUT_EVENTS = 10_000
MAX_PUT_BYTES = 1_048_576
MAX_FUTURE_MS = 2 * 3_600_000
MAX_AGE_MS = 14 * MS_PER_DAY
MAX_BATCH_SPAN_MS = MS_PER_DAY

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


def invalid(message: str) -> ValidationError:
    return ValidationError(message, code="InvalidParameterException")


class LogsApi:
    def __init__(self, store: LogStore, queries: QueryRunner, arns: LogArns, clock: Clock
                 ) -> None:
        self.store = store
        self.queries = queries
        self.arns = arns
        self.clock = clock

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateLogGroup": self.create_log_group,
            "DeleteLogGroup": self.delete_log_group,
            "CreateLogStream": self.create_log_stream,
            "DeleteLogStream": self.delete_log_stream,
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "PutLogEvents": self.put_log_events,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
            "PutRetentionPolicy": self.put_retention_policy,
            "DeleteRetentionPolicy": self.delete_retention_policy,
            "StartQuery": self.start_query,
            "GetQueryResults": self.get_query_results,
            "StopQuery": self.stop_query,
        }

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _group_of(self, p: dict[str, Any]) -> LogGroup:
        """The group named by exactly one of logGroupName / logGroupIdentifier."""
        name, identifier = p.get("logGroupName"), p.get("logGroupIdentifier")
        if (name is None) == (identifier is None):
            raise invalid("Exactly one of logGroupName or logGroupIdentifier must be given.")
        return self.store.group(name if name is not None else
                                self.arns.group_name_of(str(identifier)))

    # --- groups and streams ---------------------------------------------------------------

    def create_log_group(self, p: dict[str, Any]) -> None:
        name = check_group_name(p["logGroupName"])
        if name.startswith("aws/"):
            raise invalid("Log group names starting with 'aws/' are reserved.")
        self.store.create_group(name, self._now_ms())

    def delete_log_group(self, p: dict[str, Any]) -> None:
        self.store.delete_group(p["logGroupName"])

    def create_log_stream(self, p: dict[str, Any]) -> None:
        group = self.store.group(p["logGroupName"])
        self.store.create_stream(group.id, check_stream_name(p["logStreamName"]),
                                 self._now_ms())

    def delete_log_stream(self, p: dict[str, Any]) -> None:
        group = self.store.group(p["logGroupName"])
        self.store.delete_stream(group.id, p["logStreamName"])

    def describe_log_groups(self, p: dict[str, Any]) -> dict[str, Any]:
        prefix, contains = p.get("logGroupNamePrefix"), p.get("logGroupNamePattern")
        if prefix and contains:
            raise invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive.")
        after = _decode_name_token(p["nextToken"]) if p.get("nextToken") else None
        limit = p.get("limit") or 50
        if p.get("logGroupIdentifiers"):
            wanted = {self.arns.group_name_of(i) for i in p["logGroupIdentifiers"]}
            groups = [g for g in self.store.groups(after=after, limit=10**6) if g.name in wanted]
        else:
            groups = self.store.groups(prefix, contains, after, limit + 1)
        page, more = groups[:limit], len(groups) > limit
        result: dict[str, Any] = {"logGroups": [self._group_view(g, brief=bool(contains))
                                                for g in page]}
        if more:
            result["nextToken"] = _encode_name_token(page[-1].name)
        return result

    def _group_view(self, group: LogGroup, brief: bool) -> dict[str, Any]:
        view: dict[str, Any] = {"logGroupName": group.name, "creationTime": group.creation_time,
                                "arn": self.arns.group(group.name) + ":*"}
        if brief:
            return view
        view.update(metricFilterCount=0, storedBytes=group.stored_bytes,
                    logGroupClass="STANDARD", logGroupArn=self.arns.group(group.name))
        if group.retention_days is not None:
            view["retentionInDays"] = group.retention_days
        return view

    def describe_log_streams(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self._group_of(p)
        order = p.get("orderBy") or "LogStreamName"
        prefix = p.get("logStreamNamePrefix")
        if order == "LastEventTime" and prefix:
            raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = self.store.streams(group.id, prefix)
        if order == "LastEventTime":
            streams.sort(key=lambda s: (s.last_event or 0, s.name), reverse=bool(
                p.get("descending")))
        else:
            streams.sort(key=lambda s: s.name, reverse=bool(p.get("descending")))
        offset = _decode_offset(p["nextToken"]) if p.get("nextToken") else 0
        limit = p.get("limit") or 50
        page = streams[offset:offset + limit]
        result: dict[str, Any] = {"logStreams": [self._stream_view(group, s) for s in page]}
        if offset + limit < len(streams):
            result["nextToken"] = _encode_offset(offset + limit)
        return result

    def _stream_view(self, group: LogGroup, stream: LogStream) -> dict[str, Any]:
        view: dict[str, Any] = {"logStreamName": stream.name,
                                "creationTime": stream.creation_time,
                                "arn": self.arns.stream(group.name, stream.name),
                                "storedBytes": 0}
        if stream.first_event is not None:
            view["firstEventTimestamp"] = stream.first_event
        if stream.last_event is not None:
            view["lastEventTimestamp"] = stream.last_event
        if stream.last_ingestion is not None:
            view["lastIngestionTime"] = stream.last_ingestion
        return view

    def put_retention_policy(self, p: dict[str, Any]) -> None:
        days = p["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise invalid(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(str(d) for d in RETENTION_DAYS)}]")
        self.store.set_retention(p["logGroupName"], days)

    def delete_retention_policy(self, p: dict[str, Any]) -> None:
        self.store.set_retention(p["logGroupName"], None)

    # --- events ---------------------------------------------------------------------------

    def put_log_events(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self.store.group(p["logGroupName"])
        stream_id = self.store.stream_id(group.id, p["logStreamName"])
        events = [(int(e["timestamp"]), e["message"]) for e in p["logEvents"]]
        _check_batch(events)
        now = self._now_ms()
        oldest = now - MAX_AGE_MS
        if group.retention_days is not None:
            expired_before = now - group.retention_days * MS_PER_DAY
        else:
            expired_before = -1
        rejected: dict[str, int] = {}
        kept = []
        for index, (ts, message) in enumerate(events):
            if ts > now + MAX_FUTURE_MS:
                rejected.setdefault("tooNewLogEventStartIndex", index)
            elif ts < expired_before:
                rejected["expiredLogEventEndIndex"] = index + 1
            elif ts < oldest:
                rejected["tooOldLogEventEndIndex"] = index + 1
            else:
                kept.append((ts, message))
        self.store.append(group.id, stream_id, kept, now)
        result: dict[str, Any] = {}
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return result

    def get_log_events(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self._group_of(p)
        stream_id = self.store.stream_id(group.id, p["logStreamName"])
        return reading.get_events(self.store, stream_id, p)

    def filter_log_events(self, p: dict[str, Any]) -> dict[str, Any]:
        group = self._group_of(p)
        names, prefix = p.get("logStreamNames"), p.get("logStreamNamePrefix")
        if names and prefix:
            raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        if p.get("startFromHead") is False and (p.get("startTime") or 0) < _START_OF_2024_MS:
            raise invalid("startFromHead=false needs a startTime on or after 2024-01-01.")
        all_streams = self.store.stream_names(group.id)
        stream_ids: list[int] | None = None
        if names:
            wanted = set(names)
            stream_ids = [i for i, n in all_streams.items() if n in wanted]
        elif prefix:
            stream_ids = [i for i, n in all_streams.items() if n.startswith(prefix)]
        scope = reading.FilterScope(group.id, all_streams, stream_ids)
        return reading.filter_events(self.store, scope, p)

    # --- Logs Insights --------------------------------------------------------------------

    def start_query(self, p: dict[str, Any]) -> dict[str, Any]:
        if (p.get("queryLanguage") or "CWLI") != "CWLI":
            raise invalid("tideserve runs Logs Insights QL (CWLI) queries only.")
        given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if p.get(k)]
        if len(given) != 1:
            raise invalid("Exactly one of logGroupName, logGroupNames or logGroupIdentifiers "
                          "must be given.")
        raw = p[given[0]]
        names = [raw] if isinstance(raw, str) else [self.arns.group_name_of(n) for n in raw]
        for name in names:
            self.store.group(name)  # ResourceNotFoundException for an unknown one
        # StartQuery's times are epoch seconds, both ends inclusive.
        start_ms, end_ms = int(p["startTime"]) * 1000, int(p["endTime"]) * 1000 + 1000
        query_id = self.queries.start(p["queryString"], names, start_ms, end_ms, p.get("limit"))
        return {"queryId": query_id}

    def get_query_results(self, p: dict[str, Any]) -> dict[str, Any]:
        query = self.queries.get(p["queryId"])
        outcome = query.outcome
        rows = outcome.rows if query.status == "Complete" else []
        return {
            "queryLanguage": "CWLI",
            "status": query.status,
            "statistics": {
                "recordsMatched": float(outcome.records_matched),
                "recordsScanned": float(outcome.records_scanned),
                "bytesScanned": float(outcome.bytes_scanned),
                "estimatedRecordsSkipped": 0.0, "estimatedBytesSkipped": 0.0,
                "logGroupsScanned": float(len(query.groups)),
            },
            "results": [[{"field": f, "value": v} for f, v in row] for row in rows],
        }

    def stop_query(self, p: dict[str, Any]) -> dict[str, Any]:
        self.queries.stop(p["queryId"])
        return {"success": True}

    def records(self, groups: list[str], start_ms: int, end_ms: int,
                contains: tuple[str, ...] = ()) -> Iterator[Record]:
        """Insights' input: the groups' events in the window (holding `contains`, a
        prefilter), newest first, merged."""
        streams = []
        for name in groups:
            group = self.store.group(name)
            streams.append(self._group_records(group, start_ms, end_ms, contains))
        return heapq.merge(*streams, key=lambda r: (-r["@timestamp"], -r["@ptr"]))

    def _group_records(self, group: LogGroup, start_ms: int, end_ms: int,
                       contains: tuple[str, ...]) -> Iterator[Record]:
        names = self.store.stream_names(group.id)
        for e in self.store.scan(group_id=group.id, start=start_ms, end=end_ms,
                                 descending=True, contains=contains):
            yield record_of(e.id, names.get(e.stream_id, ""), group.name, self.arns.account,
                            e.timestamp, e.ingestion_time, e.message)


_START_OF_2024_MS = 1_704_067_200_000


def _check_batch(events: list[tuple[int, str]]) -> None:
    if len(events) > MAX_PUT_EVENTS:
        raise invalid(f"A PutLogEvents request holds at most {MAX_PUT_EVENTS} events.")
    size = sum(len(m.encode()) + reading.EVENT_OVERHEAD_BYTES for _, m in events)
    if size > MAX_PUT_BYTES:
        raise invalid(f"A PutLogEvents request is at most {MAX_PUT_BYTES} bytes "
                      "(messages plus 26 bytes an event).")
    stamps = [ts for ts, _ in events]
    if stamps != sorted(stamps):
        raise invalid("Log events in a single PutLogEvents request must be in chronological "
                      "order.")
    if stamps and stamps[-1] - stamps[0] > MAX_BATCH_SPAN_MS:
        raise invalid("The batch of log events in a single PutLogEvents request cannot span "
                      "more than 24 hours.")


def _encode_name_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_name_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise reading.bad_token() from None


def _encode_offset(offset: int) -> str:
    return _encode_name_token(f"o:{offset}")


def _decode_offset(token: str) -> int:
    text = _decode_name_token(token)
    if not text.startswith("o:") or not text[2:].isdigit():
        raise reading.bad_token()
    return int(text[2:])
