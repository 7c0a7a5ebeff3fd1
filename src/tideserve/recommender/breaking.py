"""Where a load test breaks: pure functions of its measurement windows (spec §11.5).

A window is one slice of the test (half a metric period: 30 s as AWS runs, 1 s at --period 2)
with the users driving it, the requests it completed and their latency percentiles, and the
instance's CPU and memory over it. After each window the runner asks `verdict`, which says
whether to stop and which window carries the result:

    latency   pXX of the window > ModelLatencyThresholds' ValueInMilliseconds: stop; the
              result is the last window under the threshold (none: the type never met it)
    target    invocations/min ≥ StoppingConditions.MaxInvocations: stop at this window
    errors    more than 5 % of the window's requests failed: stop; the window before it
    plateau   (FlatInvocations=Stop) throughput grew < 5 % over the last two windows while the
              users grew: stop; the best of those three windows ("the Invocations curve first
              starts to plateau", AWS's reading of the breaking point)
    schedule  the traffic pattern ran out: the best window under the threshold

Worked example (p95 threshold 50 ms): windows at 1, 3, 5, 7 users complete 1 800, 3 300,
3 350, 3 380 inv/min with p95 12, 25, 38, 61 ms. After the third, 3 350 / 3 300 = 1.015 and
3 300 / 1 800 = 1.83, so no plateau yet; the fourth breaks the threshold (61 > 50), so the
result is the third: MaxInvocations 3 350, ModelLatency 38 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from tideserve.recommender.spec import Stopping

PLATEAU_GROWTH = 0.05  # under 5 % more throughput over two windows while users grew
MAX_ERROR_SHARE = 0.05


@dataclass(frozen=True)
class Window:
    start: float  # epoch seconds
    seconds: float  # wall seconds the window lasted
    users: int
    completed: int  # requests that answered 2xx
    errors: int  # requests that failed (non-2xx, broken, timed out)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_percent: float | None  # the instance's CPU summed over cores (0 .. 100 x vCPUs)
    memory_percent: float | None  # resident memory / the type's memory, 0..100

    @property
    def per_minute(self) -> float:
        return self.completed * 60.0 / self.seconds if self.seconds > 0 else 0.0

    def latency(self, percentile: str) -> float:
        return self.p99_ms if percentile == "P99" else self.p95_ms


@dataclass(frozen=True)
class Verdict:
    stop: bool
    reason: str  # latency | target | errors | plateau | schedule | "" (go on)
    result: Window | None  # the window whose figures the step reports
    meets_threshold: bool  # the result window is under the latency threshold (or none set)


GO_ON = Verdict(False, "", None, True)


def verdict(windows: list[Window], stopping: Stopping, schedule_done: bool) -> Verdict:
    if not windows:
        return Verdict(schedule_done, "schedule" if schedule_done else "", None, False)
    last = windows[-1]
    if _over(last, stopping):
        under = [w for w in windows[:-1] if not _over(w, stopping)]
        return Verdict(True, "latency", under[-1] if under else last, bool(under))
    total = last.completed + last.errors
    if total and last.errors / total > MAX_ERROR_SHARE:
        before = _best(windows[:-1], stopping)
        return Verdict(True, "errors", before or last, before is not None)
    if stopping.max_invocations and last.per_minute >= stopping.max_invocations:
        return Verdict(True, "target", last, True)
    if stopping.flat_stop and _plateau(windows):
        best = max(windows[-3:], key=lambda w: w.per_minute)
        return Verdict(True, "plateau", best, True)
    if schedule_done:
        fit = _best(windows, stopping)
        return Verdict(True, "schedule", fit or last, fit is not None)
    return GO_ON


def _over(w: Window, stopping: Stopping) -> bool:
    return stopping.latency_ms is not None and w.latency(stopping.percentile) > stopping.latency_ms


def _best(windows: list[Window], stopping: Stopping) -> Window | None:
    ok = [w for w in windows if not _over(w, stopping) and w.completed > 0]
    return max(ok, key=lambda w: w.per_minute) if ok else None


def _plateau(windows: list[Window]) -> bool:
    if len(windows) < 3:
        return False
    a, b, c = windows[-3:]
    grew_users = c.users > a.users
    return (grew_users and a.per_minute > 0
            and c.per_minute < a.per_minute * (1 + PLATEAU_GROWTH)
            and b.per_minute < a.per_minute * (1 + PLATEAU_GROWTH))
