"""The metric time-series store: flushed periods in, CloudWatch statistics out.

Rows are stored at the aggregator's period (60 s, or e.g. 2 s in development); a query with a
longer period merges rows (sketches included, so percentiles hold), and a shorter one gets the
stored granularity (see statistics.rollup). Raw rows are kept 15 days, measured from the newest
datapoint put (data time, not wall time, so the simulator's months of history prune the same
way); CloudWatch's coarser 63-day/455-day roll-ups are not kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tideserve.metrics.model import Datapoint, Dimensions
from tideserve.metrics.sketch import Sketch
from tideserve.metrics.statistics import percentile_of, rollup, statistic_value, to_cloudwatch
from tideserve.metrics.tables import metric_datapoints as dp_t
from tideserve.metrics.tables import metric_series as series_t

RETENTION_SECONDS = 15 * 86400
_PRUNE_EVERY = 3600.0  # seconds of data time between prunes: one DELETE an hour is cheap

MetricId = tuple[str, str, Dimensions]  # namespace, metric name, dimensions


def dims_key(dims: Dimensions) -> str:
    """The stored form of a dimension set; equal strings <=> CloudWatch's exact match."""
    return json.dumps([list(p) for p in dims], separators=(",", ":"))


def _dims_from_key(key: str) -> Dimensions:
    return tuple((str(n), str(v)) for n, v in json.loads(key))


class MetricStore:
    def __init__(self, engine: Engine, retention_seconds: float = RETENTION_SECONDS) -> None:
        """`retention_seconds`: raw rows older than this (behind the newest datapoint) are
        pruned; a server with a compressed period may scale it (15 d x period / 60)."""
        self._engine = engine
        self._retention = retention_seconds
        self._ids: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()  # guards the id cache and the prune mark
        self._high_water = 0.0
        self._last_prune = 0.0

    def put(self, datapoints: Sequence[Datapoint]) -> None:
        """Insert flushed periods in one transaction, and prune what is past retention."""
        if not datapoints:
            return
        with self._lock, self._engine.begin() as conn:
            rows: list[dict[str, Any]] = []
            seen: dict[int, float] = {}
            for p in datapoints:
                sid = self._series_id(conn, p.namespace, p.metric_name, p.dimensions, p.timestamp)
                seen[sid] = max(seen.get(sid, p.timestamp), p.timestamp)
                rows.append(_row(sid, p))
            conn.execute(insert(dp_t), rows)
            conn.execute(
                update(series_t)
                .where(series_t.c.id == bindparam("sid"), series_t.c.last_seen < bindparam("ts"))
                .values(last_seen=bindparam("ts")),
                [{"sid": sid, "ts": ts} for sid, ts in seen.items()],
            )
            self._high_water = max(self._high_water, max(seen.values()))
            if self._high_water - self._last_prune >= min(_PRUNE_EVERY, self._retention / 10):
                self._prune(conn, self._high_water - self._retention)
                self._last_prune = self._high_water

    def _series_id(
        self, conn: Connection, namespace: str, name: str, dims: Dimensions, ts: float
    ) -> int:
        key = (namespace, name, dims_key(dims))
        sid = self._ids.get(key)
        if sid is None:
            sid = self._lookup(conn, key)
        if sid is None:
            try:
                with conn.begin_nested():
                    result = conn.execute(
                        insert(series_t).values(
                            namespace=namespace, metric_name=name, dimensions=key[2],
                            last_seen=ts,
                        )
                    )
                    sid = int(result.inserted_primary_key[0])  # type: ignore[index]
            except IntegrityError:  # another process created it first
                sid = self._lookup(conn, key)
        assert sid is not None
        self._ids[key] = int(sid)
        return int(sid)

    @staticmethod
    def _lookup(conn: Connection, key: tuple[str, str, str]) -> int | None:
        return conn.execute(
            select(series_t.c.id).where(
                series_t.c.namespace == key[0],
                series_t.c.metric_name == key[1],
                series_t.c.dimensions == key[2],
            )
        ).scalar_one_or_none()

    def _prune(self, conn: Connection, cutoff: float) -> None:
        conn.execute(delete(dp_t).where(dp_t.c.timestamp < cutoff))
        conn.execute(delete(series_t).where(series_t.c.last_seen < cutoff))
        self._ids.clear()

    def datapoints(
        self, namespace: str, name: str, dims: Dimensions, start: float, end: float,
        unit: str | None = None, *, with_sketch: bool = True,
    ) -> list[Datapoint]:
        """Stored rows of one metric with start <= timestamp < end, oldest first."""
        cols = [dp_t.c.timestamp, dp_t.c.unit, dp_t.c.sample_count, dp_t.c.sum,
                dp_t.c.minimum, dp_t.c.maximum]
        if with_sketch:
            cols.append(dp_t.c.sketch)
        query = (
            select(*cols)
            .join(series_t, series_t.c.id == dp_t.c.series_id)
            .where(
                series_t.c.namespace == namespace,
                series_t.c.metric_name == name,
                series_t.c.dimensions == dims_key(dims),
                dp_t.c.timestamp >= start,
                dp_t.c.timestamp < end,
            )
            .order_by(dp_t.c.timestamp)
        )
        if unit is not None:
            query = query.where(dp_t.c.unit == unit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Datapoint(
                namespace, name, dims, r[0], r[1], r[2], r[3], r[4], r[5],
                Sketch.from_bytes(r[6]) if with_sketch and r[6] is not None else None,
            )
            for r in rows
        ]

    def aggregate(
        self, namespace: str, name: str, dims: Dimensions, start: float, end: float,
        period: float, unit: str | None = None, *, with_sketch: bool = True,
    ) -> list[Datapoint]:
        """One merged datapoint per (query period, unit) that has data, oldest first."""
        rows = self.datapoints(namespace, name, dims, start, end, unit, with_sketch=with_sketch)
        return rollup(rows, start, period)

    def statistics(
        self, namespace: str, name: str, dims: Dimensions, start: float, end: float,
        period: float, statistics: Sequence[str] = (), extended_statistics: Sequence[str] = (),
        unit: str | None = None,
    ) -> list[dict[str, Any]]:
        """GetMetricStatistics' Datapoints (oldest first; CloudWatch promises no order)."""
        points = self.aggregate(
            namespace, name, dims, start, end, period, unit,
            with_sketch=bool(extended_statistics),
        )
        return [to_cloudwatch(p, statistics, extended_statistics) for p in points]

    def series(
        self, namespace: str, name: str, dims: Dimensions, stat: str, period: float,
        start: float, end: float, unit: str | None = None,
    ) -> list[tuple[float, float]]:
        """(period start, value) oldest first, for alarms and autoscaling. `stat` is
        SampleCount/Sum/Average/Minimum/Maximum/pNN; periods without data (or whose
        percentile is unavailable) are absent, which alarms read as missing data."""
        need_sketch = percentile_of(stat) is not None
        out = []
        for p in self.aggregate(namespace, name, dims, start, end, period, unit,
                                with_sketch=need_sketch):
            value = statistic_value(p, stat)
            if value is not None:
                out.append((p.timestamp, value))
        return out

    def list_metrics(
        self, namespace: str | None = None, metric_name: str | None = None,
        dimension_filters: Iterable[tuple[str, str | None]] = (),
        active_since: float | None = None,
    ) -> list[MetricId]:
        """Metrics matching every filter, sorted. A filter (name, None) needs the dimension
        present with any value; (name, value) needs that value (ListMetrics semantics)."""
        query = select(series_t.c.namespace, series_t.c.metric_name, series_t.c.dimensions)
        if namespace is not None:
            query = query.where(series_t.c.namespace == namespace)
        if metric_name is not None:
            query = query.where(series_t.c.metric_name == metric_name)
        if active_since is not None:
            query = query.where(series_t.c.last_seen >= active_since)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        filters = list(dimension_filters)
        found = []
        for ns, name, key in rows:
            dims = _dims_from_key(key)
            present = dict(dims)
            if all(n in present and (v is None or present[n] == v) for n, v in filters):
                found.append((ns, name, dims))
        return sorted(found)


def _row(sid: int, p: Datapoint) -> dict[str, Any]:
    return {
        "series_id": sid, "timestamp": p.timestamp, "unit": p.unit,
        "sample_count": p.sample_count, "sum": p.sum, "minimum": p.minimum,
        "maximum": p.maximum, "sketch": p.sketch.to_bytes() if p.sketch is not None else None,
    }
