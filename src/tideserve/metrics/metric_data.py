"""GetMetricData (§5.6): parse the request once into typed queries, then run them against the
store. MetricStat queries and arithmetic metric math (expression.py) are supported; other
statistics and math functions answer StatusCode InternalError with a message, per result.

Pagination: the returned datapoints of all results, in query order and ScanBy order within a
result, form one list; a page is the next MaxDatapoints of it. A result cut by the page says
PartialData, and NextToken carries the offset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tideserve.metrics import validation as v
from tideserve.metrics.expression import (
    ExpressionError,
    Series,
    UnsupportedExpression,
    evaluate,
)
from tideserve.metrics.model import Dimensions
from tideserve.metrics.statistics import is_statistic
from tideserve.metrics.store import MetricStore

MAX_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100_800
# Statistics CloudWatch has that we do not compute yet (trimmed/winsorized means, ranks, IQM).
_UNSUPPORTED_STAT = re.compile(r"^(?:(?:tm|wm|tc|ts|pr)\d|(?:TM|WM|TC|TS|PR)\(|IQM$)")


@dataclass(frozen=True)
class MetricQuery:
    id: str
    label: str
    return_data: bool
    # A MetricStat query has metric/stat/period/unit/start; an expression query has expression.
    metric: tuple[str, str, Dimensions] | None = None
    stat: str = ""
    period: int = 0  # seconds
    unit: str | None = None
    start: float = 0.0  # StartTime rounded for this query's period (epoch s)
    expression: str | None = None


@dataclass(frozen=True)
class MetricDataRequest:
    queries: tuple[MetricQuery, ...]
    start: float  # epoch s, inclusive
    end: float  # epoch s, exclusive
    descending: bool  # ScanBy TimestampDescending (the default)
    max_datapoints: int
    offset: int  # from NextToken

    @staticmethod
    def parse(params: Mapping[str, Any], now: float, storage_period: float) -> MetricDataRequest:
        raw = v.required(params, "MetricDataQueries")
        if not raw or len(raw) > MAX_QUERIES:
            raise v.invalid(f"The collection MetricDataQueries must have 1 to {MAX_QUERIES} "
                            "members.")
        start, end = v.time_range(params)
        queries = tuple(
            _query(q, i, start, now, storage_period) for i, q in enumerate(raw, 1)
        )
        ids = [q.id for q in queries]
        if len(set(ids)) != len(ids):
            raise v.invalid("The values of MetricDataQueries.member.N.Id must be unique.")
        scan_by = params.get("ScanBy") or "TimestampDescending"
        if scan_by not in ("TimestampDescending", "TimestampAscending"):
            raise v.invalid(f"The value {scan_by!r} for parameter ScanBy is invalid.")
        max_dp = params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS
        if not isinstance(max_dp, int) or max_dp < 1:
            raise v.invalid("The parameter MaxDatapoints must be a positive integer.")
        return MetricDataRequest(queries, start, end, scan_by == "TimestampDescending",
                                 max_dp, v.page_offset(params.get("NextToken"), "InvalidNextToken"))


def _query(q: Mapping[str, Any], i: int, start: float, now: float,
           storage_period: float) -> MetricQuery:
    prefix = f"MetricDataQueries.member.{i}."
    qid = v.query_id(v.required(q, "Id", prefix), prefix + "Id")
    kind = v.one_of(q, ("MetricStat", "Expression"), prefix)
    return_data = q.get("ReturnData", True) is not False
    if kind == "Expression":
        expr = q["Expression"]
        if not isinstance(expr, str) or not 1 <= len(expr) <= 2048:
            raise v.invalid(f"The parameter {prefix}Expression must be 1 to 2048 characters.")
        return MetricQuery(qid, q.get("Label") or qid, return_data, expression=expr)
    ms = q["MetricStat"]
    sp = prefix + "MetricStat."
    metric = v.required(ms, "Metric", sp)
    namespace = v.namespace(v.required(metric, "Namespace", sp + "Metric."))
    name = v.metric_name(v.required(metric, "MetricName", sp + "Metric."))
    dims = v.dimensions(metric.get("Dimensions"), sp + "Metric.Dimensions")
    period = v.period(v.required(ms, "Period", sp), start, now, storage_period, sp + "Period")
    stat = v.required(ms, "Stat", sp)
    if not isinstance(stat, str) or not (is_statistic(stat) or _UNSUPPORTED_STAT.match(stat)):
        raise v.invalid(f"The value {stat!r} for parameter {sp}Stat is invalid.")
    return MetricQuery(
        qid, q.get("Label") or name, return_data, metric=(namespace, name, dims), stat=stat,
        period=period, unit=v.unit(ms.get("Unit"), sp + "Unit"),
        start=v.round_start(start, period, now),
    )


def run_metric_data(store: MetricStore, request: MetricDataRequest) -> dict[str, Any]:
    runner = _Runner(store, request)
    outcomes = [(q, runner.resolve(q.id)) for q in request.queries if q.return_data]
    return _page(outcomes, request)


@dataclass
class _Outcome:
    series: Series
    error: str | None = None  # an InternalError message


class _Runner:
    """Resolves queries by id, memoised, so expressions may name any query in the request."""

    def __init__(self, store: MetricStore, request: MetricDataRequest) -> None:
        self._store = store
        self._request = request
        self._by_id = {q.id: q for q in request.queries}
        self._done: dict[str, _Outcome] = {}
        self._active: set[str] = set()

    def resolve(self, qid: str) -> _Outcome:
        if qid in self._done:
            return self._done[qid]
        if qid in self._active:
            raise v.invalid(f"Circular reference through metric id {qid!r}.")
        self._active.add(qid)
        q = self._by_id[qid]
        outcome = self._expression(q) if q.expression is not None else self._metric(q)
        self._active.discard(qid)
        self._done[qid] = outcome
        return outcome

    def _metric(self, q: MetricQuery) -> _Outcome:
        if _UNSUPPORTED_STAT.match(q.stat):
            return _Outcome({}, f"Statistic {q.stat} is not supported yet.")
        assert q.metric is not None
        namespace, name, dims = q.metric
        points = self._store.series(namespace, name, dims, q.stat, q.period, q.start,
                                    self._request.end, q.unit)
        return _Outcome(dict(points))

    def _expression(self, q: MetricQuery) -> _Outcome:
        assert q.expression is not None
        names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", q.expression))
        inputs: dict[str, Series] = {}
        for name in names & self._by_id.keys():
            dep = self.resolve(name)
            if dep.error is not None:
                return _Outcome({}, dep.error)
            inputs[name] = dep.series
        try:
            return _Outcome(evaluate(q.expression, inputs))
        except UnsupportedExpression as e:
            return _Outcome({}, str(e))
        except ExpressionError as e:
            raise v.invalid(f"Error in expression {q.id}: {e}") from None


def _page(outcomes: list[tuple[MetricQuery, _Outcome]],
          request: MetricDataRequest) -> dict[str, Any]:
    lo, hi = request.offset, request.offset + request.max_datapoints
    seen = 0
    results = []
    for q, outcome in outcomes:
        stamps = sorted(outcome.series, reverse=request.descending)
        mine = stamps[max(lo - seen, 0):max(hi - seen, 0)]
        cut = seen + len(stamps) > hi
        seen += len(stamps)
        result: dict[str, Any] = {
            "Id": q.id, "Label": q.label,
            "Timestamps": [datetime.fromtimestamp(t, UTC) for t in mine],
            "Values": [outcome.series[t] for t in mine],
            "StatusCode": "PartialData" if cut else "Complete",
        }
        if outcome.error is not None:
            result["StatusCode"] = "InternalError"
            result["Messages"] = [{"Code": "InternalError", "Value": outcome.error}]
        results.append(result)
    out: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
    if seen > hi:
        out["NextToken"] = v.page_token(hi)
    return out
