"""The clairvoyant baseline on a hand-made trace whose answer is worked out by hand in
baseline.py's docstring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.sim.builders import scenario, write_trace
from tideserve.sim.baseline import clairvoyant, forward_max, max_wait, needed_per_period
from tideserve.sim.scenario import scenario_from_dict

# Five minutes at 3, 7, 3, 0 and 3 requests per second.
RATES = [3.0] * 60 + [7.0] * 60 + [3.0] * 60 + [0.0] * 60 + [3.0] * 60


def five_minutes(tmp_path: Path, startup: float = 90):
    trace = write_trace(tmp_path / "five.csv", RATES)
    return scenario_from_dict(scenario(trace, profile={"startup_seconds": startup}))


def test_each_minute_gets_the_fewest_instances_whose_waits_stay_within_the_slo(
        tmp_path: Path) -> None:
    scn = five_minutes(tmp_path)
    # 2 req/s per instance; SLO 1 s at p99 with a constant 0.5-s service leaves 0.5 s of wait.
    assert scn.profile.rate_per_instance == pytest.approx(2.0)
    assert max_wait(scn) == pytest.approx(0.5)
    # One instance at 3 req/s: the second second's arrivals wait 0.75 s — so two; an idle
    # minute keeps the floor of one.
    assert needed_per_period(scn, scn.arrivals()).tolist() == [2, 4, 2, 1, 2]


def test_capacity_is_billed_from_start_up_seconds_before_it_serves(tmp_path: Path) -> None:
    scn = five_minutes(tmp_path, startup=90)
    run = clairvoyant(scn, scn.arrivals())
    # 4 instances from t=0 to 120 s (minute 1's, requested 90 s ahead), then 2 to the end:
    # the dip to 1 in minute 3 is shorter than the start-up minute 4's instance needs again.
    assert run.log.billed[:120].tolist() == [4] * 120
    assert run.log.billed[120:].tolist() == [2] * 180
    assert run.summary.instance_hours * 3600 == pytest.approx(840)
    assert run.summary.cost_usd == pytest.approx(840 / 3600 * scn.endpoint.hourly_usd)
    assert run.summary.over_slo_share == 0.0 and run.summary.dropped == 0.0


def test_with_no_start_up_delay_billing_follows_the_need(tmp_path: Path) -> None:
    run = clairvoyant(five_minutes(tmp_path, startup=0), five_minutes(tmp_path).arrivals())
    assert run.summary.instance_hours * 3600 == pytest.approx(60 * (2 + 4 + 2 + 1 + 2))


def test_forward_max_is_the_maximum_over_the_next_width_steps() -> None:
    x = np.array([1, 3, 2, 0, 0, 5, 1, 1])
    for width in (1, 2, 3, 5, 8, 20):
        expected = [max(x[t:t + width]) for t in range(len(x))]
        assert forward_max(x, width).tolist() == expected
