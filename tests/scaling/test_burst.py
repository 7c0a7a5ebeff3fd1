"""The burst mode (Knative's panic window) on a fake clock: enter when the short window
needs threshold × the capacity, scale out at once, hold scale-in, leave after the stable
window without a trigger."""

from __future__ import annotations

import pytest

from tideserve.errors import ValidationError
from tideserve.scaling.burst import BurstConfig, BurstState, burst_needed, decide_burst

CONFIG = BurstConfig(window_seconds=6.0, threshold=2.0, stable_window=60.0, utilization=1.0,
                     max_capacity=64)


def step(state: BurstState, rate: float, current: int, base: int, now: float):  # type: ignore[no-untyped-def]
    return decide_burst(CONFIG, state, rate, service_mean=1.0, concurrency=8,
                        current=current, base=base, now=now)


def test_needed_is_the_short_windows_load_in_instances() -> None:
    assert burst_needed(CONFIG, 75.0, 1.0, 8) == 10  # 75 busy slots / 8
    assert burst_needed(CONFIG, 0.0, 1.0, 8) == 0


def test_worked_example_enter_hold_leave() -> None:
    state = BurstState()
    # t=0: 6 s at 30 req/s need 4 = current: no burst, the base policy decides
    d = step(state, 30.0, current=4, base=4, now=0.0)
    assert not d.active and d.desired == 4
    # t=3: 450 requests in 6 s = 75 req/s need 10 ≥ 2 × 4: burst, 10 at once
    d = step(d.state, 75.0, current=4, base=4, now=3.0)
    assert d.active and d.desired == 10 and "at once" in d.reason
    # t=13: the burst is over (20 req/s need 3) and the base asks for 3: held at 10
    d = step(d.state, 20.0, current=10, base=3, now=13.0)
    assert d.active and d.desired == 10 and "held" in d.reason
    # t=62: 59 s after the trigger: still held
    d = step(d.state, 20.0, current=10, base=3, now=62.0)
    assert d.active and d.desired == 10
    # t=63: 60 s without a trigger: burst mode ends, the base policy's 3 goes through
    d = step(d.state, 20.0, current=10, base=3, now=63.0)
    assert not d.active and d.desired == 3


def test_a_new_burst_restarts_the_stable_window() -> None:
    d = step(BurstState(), 80.0, current=4, base=4, now=0.0)
    d = step(d.state, 200.0, current=10, base=4, now=50.0)  # 25 needed ≥ 20: again
    assert d.desired == 25
    assert step(d.state, 1.0, current=25, base=1, now=100.0).desired == 25
    assert step(d.state, 1.0, current=25, base=1, now=110.0).desired == 1


def test_a_higher_base_proposal_wins_in_burst_mode() -> None:
    d = step(BurstState(), 80.0, current=4, base=12, now=0.0)
    assert d.desired == 12


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="threshold"):
        BurstConfig(threshold=1.0)
