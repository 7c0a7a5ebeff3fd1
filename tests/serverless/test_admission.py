"""serverless.admission on fake times: each case builds a worker set by a few steps, then asks
one decision. The live pool and the simulator both carry these decisions out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tideserve.serverless.admission import COLD_START, THROTTLED, WARM, WorkerSet


@dataclass(frozen=True)
class Limits:
    max_concurrency: int
    provisioned_concurrency: int = 0


def workers(max_concurrency: int = 3, provisioned: int = 0, keep_alive: float = 60.0,
            idle: tuple[tuple[str, float], ...] = (), busy: tuple[str, ...] = (),
            starting: int = 0) -> WorkerSet[str]:
    """A set at t=0.. with workers idle since the given times (released in that order), busy
    ones, and cold starts under way."""
    ws: WorkerSet[str] = WorkerSet(Limits(max_concurrency, provisioned), keep_alive, 0.0)
    for _ in range(starting):
        assert ws.admit(0.0).outcome == COLD_START
    for name in busy:
        assert ws.admit(0.0).outcome == COLD_START
        ws.started(name, 0.0, busy=True)
    for name, _ in idle:  # all busy first, so none is reused
        assert ws.admit(0.0).outcome == COLD_START
        ws.started(name, 0.0, busy=True)
    for name, since in idle:
        ws.release(name, since)
    return ws


ADMIT = [
    # (case, set, outcome, warm worker, on provisioned concurrency)
    ("no workers: a cold start", workers(), COLD_START, None, False),
    ("idle worker: warm, the most recently released",
     workers(idle=(("a", 1.0), ("b", 3.0), ("c", 5.0))), WARM, "c", False),
    ("all busy, below MaxConcurrency: a cold start", workers(busy=("a", "b")), COLD_START,
     None, False),
    ("all busy at MaxConcurrency: throttled", workers(busy=("a", "b", "c")), THROTTLED, None,
     False),
    ("starts under way count against MaxConcurrency: throttled",
     workers(busy=("a",), starting=2), THROTTLED, None, False),
    ("fewer busy than provisioned: on provisioned concurrency",
     workers(provisioned=2, idle=(("p", 0.0),), busy=("a",)), WARM, "p", True),
    ("as many busy as provisioned: a spillover",
     workers(provisioned=1, busy=("a",)), COLD_START, None, False),
    ("cold starts do not count as busy for provisioned concurrency",
     workers(provisioned=1, starting=1), COLD_START, None, True),
]


@pytest.mark.parametrize(("case", "ws", "outcome", "worker", "provisioned"), ADMIT,
                         ids=[c[0] for c in ADMIT])
def test_admit(case: str, ws: WorkerSet[str], outcome: str, worker: str | None,
               provisioned: bool) -> None:
    admission = ws.admit(10.0)
    assert (admission.outcome, admission.worker, admission.provisioned) == (
        outcome, worker, provisioned)


EXPIRED = [
    # (case, set, now, expired)
    ("none idle long enough", workers(idle=(("a", 0.0),)), 59.0, []),
    ("exactly the keep-alive: expired", workers(idle=(("a", 0.0),)), 60.0, ["a"]),
    ("longest idle first", workers(idle=(("a", 0.0), ("b", 10.0), ("c", 50.0))), 75.0,
     ["a", "b"]),
    ("never below ProvisionedConcurrency",
     workers(provisioned=2, idle=(("a", 0.0), ("b", 1.0), ("c", 2.0))), 1000.0, ["a"]),
    ("busy workers count toward ProvisionedConcurrency",
     workers(provisioned=2, idle=(("a", 0.0),), busy=("b", "c")), 1000.0, ["a"]),
    ("a busy worker never expires", workers(busy=("a",)), 1000.0, []),
    ("starts under way do not count toward ProvisionedConcurrency",
     workers(provisioned=1, idle=(("a", 0.0),), starting=1), 1000.0, []),
]


@pytest.mark.parametrize(("case", "ws", "now", "expired"), EXPIRED, ids=[c[0] for c in EXPIRED])
def test_expired(case: str, ws: WorkerSet[str], now: float, expired: list[str]) -> None:
    assert ws.expired(now) == expired


def test_release_stops_a_worker_above_max_concurrency_or_when_closing() -> None:
    ws = workers(max_concurrency=3, busy=("a", "b", "c"))
    ws.reconfigure(Limits(2), 5.0)  # all busy: none stops now
    assert ws.size == 3
    assert ws.release("a", 6.0) is True  # 3 workers > MaxConcurrency 2: a leaves
    assert ws.release("b", 7.0) is False and ws.size == 2
    assert ws.close() == ["b"]  # closing: idle ones stop now...
    assert ws.release("c", 8.0) is True and ws.size == 0  # ...busy ones when they finish


def test_provision_counts_workers_alive_and_starting() -> None:
    ws = workers(max_concurrency=8, provisioned=1, idle=(("a", 0.0),), busy=("b",),
                 starting=1)
    assert ws.provision() == 0  # 3 exist or start, 1 wanted
    ws.reconfigure(Limits(8, 5), 10.0)
    assert ws.provision() == 2 and ws.starting == 3
    ws.started("p1", 12.0, busy=False)
    ws.start_failed()
    assert ws.provision() == 1  # the failed one is asked for again


def test_reconfigure_stops_the_longest_idle_above_the_new_max_concurrency() -> None:
    ws = workers(max_concurrency=4, idle=(("a", 1.0), ("b", 2.0), ("c", 3.0)), busy=("d",))
    assert ws.reconfigure(Limits(2), 10.0) == ["a", "b"]  # idle the longest
    assert ws.size == 2 and ws.admit(10.0).outcome == WARM


def test_utilization_is_time_weighted_and_follows_the_provisioned_concurrency() -> None:
    # PC 2, MaxConcurrency 4. From t=0: one busy until 30, then none; PC raised to 4 at 30.
    ws = workers(max_concurrency=4, provisioned=2, busy=("a",))
    ws.release("a", 30.0)
    ws.reconfigure(Limits(4, 4), 30.0)
    # (1 x 30) / (4 x 60): the capacity at the time the period is taken, as live.
    assert ws.utilization(60.0) == (pytest.approx(0.125), 1)
    assert ws.concurrency_utilization(60.0) == pytest.approx(30 / 240)
    assert ws.utilization(120.0) == (0.0, 0)  # a new window
