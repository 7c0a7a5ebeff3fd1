"""Restart backoff, on a clock that marches by hand: a model that dies on every request waits
1, 2, 4, ... s between restarts up to the cap; one that served a while starts over."""

from __future__ import annotations

import pytest

from tideserve.fleet.backoff import RestartPolicy, after_crash, after_healthy

POLICY = RestartPolicy(base_seconds=1.0, cap_seconds=300.0, stable_seconds=60.0)


def test_crashes_in_a_row_double_the_wait_up_to_the_cap():
    now, loop, waits = 0.0, None, []
    for _ in range(12):
        loop = after_crash(loop, now, ran_seconds=0.5, reason="exit 3.", policy=POLICY)
        waits.append(loop.wait(now))
        now = loop.next_start_at + 0.5  # the replacement starts, takes a request, dies
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def test_nine_crashes_take_minutes_not_seconds():
    now, loop = 0.0, None
    for _ in range(9):
        loop = after_crash(loop, now, ran_seconds=0.1, reason="exit 3.", policy=POLICY)
        now = loop.next_start_at
    assert now == pytest.approx(511)  # 1 + 2 + ... + 256


def test_an_instance_that_served_a_minute_resets_the_count():
    loop = after_crash(None, 0.0, 0.1, "exit 3.", POLICY)
    loop = after_crash(loop, 1.0, 0.1, "exit 3.", POLICY)
    assert loop.crashes == 2
    # The next one ran 90 s before dying: a fresh start, waiting the base again.
    loop = after_crash(loop, 100.0, 90.0, "exit 3.", POLICY)
    assert (loop.crashes, loop.wait(100.0)) == (1, 1.0)


def test_a_minute_of_service_forgets_the_loop():
    loop = after_crash(None, 0.0, 0.1, "exit 3.", POLICY)
    assert after_healthy(loop, now=30.0, serving_since=1.0, policy=POLICY) is loop
    assert after_healthy(loop, now=61.0, serving_since=1.0, policy=POLICY) is None


def test_the_status_message_says_how_long_the_wait_is():
    loop = after_crash(None, 10.0, 0.1, "it exited with status 3.", POLICY)
    loop = after_crash(loop, 11.0, 0.1, "it exited with status 3.", POLICY)
    assert loop.status_message == (
        "2 instance exit(s) in a row, the last: it exited with status 3. Waiting 2 s before "
        "starting a replacement.")
