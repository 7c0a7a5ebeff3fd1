"""Spot capacity: each instance's reclaim notice is drawn from the type's interruption rate
(Poisson arrivals, AWS hours scaled by the time scale); an on-demand interruption gives the
notice now; the reclaim comes the scaled two minutes after the notice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tideserve.fleet.spot import DEFAULT_INTERRUPTIONS_PER_HOUR, SpotCapacity, read_rates


def test_rate_zero_never_reclaims_and_interrupt_notices_now():
    spot = SpotCapacity({"*": 0.0}, time_scale=1 / 30)
    instance = spot.acquire("ml.m5.large", "job-a", now=100.0)
    assert instance.notice_at is None and not instance.noticed(1e12)
    noticed = spot.interrupt("JOB-A", now=150.0)  # by holder, names case-insensitive
    assert noticed is not None and noticed.instance_id == instance.instance_id
    # Two minutes at a 1/30 time scale (--period 2) is 4 s.
    assert (noticed.notice_at, noticed.reclaim_at) == (150.0, pytest.approx(154.0))
    again = spot.interrupt(instance.instance_id, now=152.0)  # an earlier notice stands
    assert again is not None and again.notice_at == 150.0
    spot.release(instance.instance_id)
    assert spot.interrupt("job-a", now=160.0) is None


def test_a_holder_of_several_is_interrupted_one_instance_at_a_time():
    spot = SpotCapacity({"*": 0.0}, time_scale=1 / 30)
    first = spot.acquire("ml.m5.large", "transform-a", now=0.0)
    second = spot.acquire("ml.m5.large", "transform-a", now=0.0)
    hit = [spot.interrupt("transform-a", now=t) for t in (10.0, 11.0, 12.0)]
    assert [i.instance_id for i in hit if i] == [first.instance_id, second.instance_id,
                                                 first.instance_id]  # all noticed: the first


def test_random_reclaims_arrive_at_the_configured_rate():
    # 2 interruptions per instance-hour, AWS time 1:1: mean time to notice 30 min.
    spot = SpotCapacity({"ml.g4dn.xlarge": 2.0}, time_scale=1.0, rng=random.Random(7))
    waits = [spot.acquire("ml.g4dn.xlarge", f"j{i}", 0.0).notice_at for i in range(4000)]
    mean = sum(w for w in waits if w is not None) / len(waits)
    assert mean == pytest.approx(1800.0, rel=0.05)


def test_default_rate_is_the_advisors_lowest_bucket():
    # "<5%" interrupted per month, as a hazard: -ln(0.95) / 730 h.
    assert DEFAULT_INTERRUPTIONS_PER_HOUR == pytest.approx(7.03e-5, rel=0.01)
    assert SpotCapacity().rate("ml.m5.large") == DEFAULT_INTERRUPTIONS_PER_HOUR


def test_rates_file_per_type_with_a_wildcard(tmp_path: Path):
    path = tmp_path / "spot_interruption_rates.csv"
    path.write_text("instance_type,per_hour\n# a comment\nml.p3.2xlarge,0.2\n*,0\n")
    spot = SpotCapacity(read_rates(path))
    assert (spot.rate("ml.p3.2xlarge"), spot.rate("ml.m5.large")) == (0.2, 0.0)
    path.write_text("ml.m5.large,-1\n")
    with pytest.raises(ValueError, match="must be a number >= 0"):
        read_rates(path)
    assert read_rates(tmp_path / "absent.csv") == {}
