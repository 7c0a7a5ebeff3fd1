"""Logs Insights queries as AWS runs them: StartQuery parses at once (a malformed query fails
the call) and runs the query on a worker thread; GetQueryResults reports Scheduled, Running,
then Complete with the rows (or Failed, Cancelled); StopQuery cancels a query still running.
Finished queries are kept for RESULTS_KEPT_SECONDS (AWS keeps results 7 days), at most
MAX_KEPT of them, in memory: a restart forgets them, as it would a query in flight."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tideserve.clock import Clock
from tideserve.errors import LimitExceededError, NotFoundError, ValidationError
from tideserve.logs import insights_eval
from tideserve.logs.insights_parse import Command, parse_query

log = logging.getLogger("tideserve.logs")

MAX_CONCURRENT = 100  # AWS's current quota of concurrent queries per account
MAX_KEPT = 1000
RESULTS_KEPT_SECONDS = 7 * 86_400
QUERY_WORKERS = 2

# (group names, start ms inclusive, end ms exclusive, substrings every @message holds: a
# prefilter) -> records newest first
RecordSource = Callable[[list[str], int, int, tuple[str, ...]],
                        Iterable[insights_eval.Record]]


@dataclass
class Query:
    id: str
    commands: list[Command]
    groups: list[str]
    start_ms: int
    end_ms: int
    limit: int | None
    created: float  # epoch s
    status: str = "Scheduled"
    outcome: insights_eval.QueryOutcome = field(default_factory=insights_eval.QueryOutcome)
    cancel: threading.Event = field(default_factory=threading.Event)


class QueryRunner:
    def __init__(self, records: RecordSource, clock: Clock) -> None:
        self.records = records
        self.clock = clock
        self._queries: OrderedDict[str, Query] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(QUERY_WORKERS, thread_name_prefix="logs-insights")

    def start(self, query_string: str, groups: list[str], start_ms: int, end_ms: int,
              limit: int | None) -> str:
        commands = parse_query(query_string)
        if end_ms < start_ms:
            raise ValidationError("endTime must not be before startTime",
                                  code="InvalidParameterException")
        with self._lock:
            self._expire()
            running = sum(q.status in ("Scheduled", "Running") for q in self._queries.values())
            if running >= MAX_CONCURRENT:
                raise LimitExceededError(
                    f"Account maximum query concurrency limit of [{MAX_CONCURRENT}] reached.",
                    code="LimitExceededException")
            query = Query(str(uuid.uuid4()), commands, groups, start_ms, end_ms, limit,
                          self.clock.now())
            self._queries[query.id] = query
        self._pool.submit(self._run, query)
        return query.id

    def _run(self, query: Query) -> None:
        if query.cancel.is_set():
            return
        query.status = "Running"
        try:
            records: Iterator[insights_eval.Record] = iter(
                self.records(query.groups, query.start_ms, query.end_ms,
                             insights_eval.required_substrings(query.commands)))
            outcome = insights_eval.run(query.commands, records, query.limit,
                                        cancelled=query.cancel.is_set)
        except Exception:
            log.exception("Logs Insights query %s failed", query.id)
            query.status = "Failed"
            return
        if query.cancel.is_set():
            query.status = "Cancelled"
            return
        query.outcome = outcome
        query.status = "Complete"

    def get(self, query_id: str) -> Query:
        with self._lock:
            query = self._queries.get(query_id)
        if query is None:
            raise NotFoundError(f"Query does not exist: {query_id}",
                                code="ResourceNotFoundException")
        return query

    def stop(self, query_id: str) -> None:
        query = self.get(query_id)
        if query.status not in ("Scheduled", "Running"):
            raise ValidationError(f"Query {query_id} is not running (it is {query.status}).",
                                  code="InvalidParameterException")
        query.cancel.set()
        query.status = "Cancelled"

    def _expire(self) -> None:
        cutoff = self.clock.now() - RESULTS_KEPT_SECONDS
        for query_id, query in list(self._queries.items()):
            finished = query.status not in ("Scheduled", "Running")
            if finished and (query.created < cutoff or len(self._queries) > MAX_KEPT):
                del self._queries[query_id]

    def close(self) -> None:
        for query in list(self._queries.values()):
            query.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
