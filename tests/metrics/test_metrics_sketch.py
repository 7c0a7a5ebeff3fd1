"""The percentile sketch: exact where CloudWatch is exact, within 1-2 % elsewhere, mergeable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tideserve.metrics.sketch import Sketch, SketchBuilder, merge_sketches


def nearest_rank(values: np.ndarray, pct: float) -> float:
    """The reference percentile: the smallest value with pct % of the values at or below it."""
    ordered = np.sort(values)
    return float(ordered[max(math.ceil(pct / 100 * len(ordered) - 1e-9), 1) - 1])


def build(values: list[float] | np.ndarray) -> Sketch:
    b = SketchBuilder()
    for x in values:
        b.add(float(x))
    return b.freeze()


def test_a_single_value_is_exact_at_every_percentile() -> None:
    s = build([1234.567])
    for q in (0.0, 0.01, 0.5, 0.99, 1.0):
        assert s.quantile(q) == 1234.567


def test_the_last_and_first_ranks_are_the_exact_extremes() -> None:
    # five ModelLatency values of a small model, the first one cold: p99 of 5 is the maximum
    latencies = [10_051.3, 612.4, 598.0, 640.9, 605.2]
    s = build(latencies)
    assert s.quantile(0.99) == 10_051.3
    assert s.quantile(0.8) == pytest.approx(640.9, rel=0.01)
    assert s.quantile(0.1) == 598.0


def test_zero_is_counted_in_its_own_bucket() -> None:
    s = build([0.0] * 90 + [100.0] * 10)
    assert s.quantile(0.5) == 0.0
    assert s.quantile(0.95) == pytest.approx(100.0, rel=0.01)


def test_a_negative_value_makes_percentiles_unavailable() -> None:
    s = build([5.0, -1.0, 7.0])
    assert s.quantile(0.5) is None
    assert s.minimum == -1.0


def test_percentiles_of_a_lognormal_latency_distribution_within_two_percent() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=8.0, sigma=1.0, size=20_000)  # microseconds, median ~3 ms
    s = build(values)
    for pct in (10, 50, 90, 99, 99.9):
        expected = nearest_rank(values, pct)
        assert s.quantile(pct / 100) == pytest.approx(expected, rel=0.02), pct


def test_merging_period_sketches_equals_one_sketch_of_all_values() -> None:
    rng = np.random.default_rng(3)
    parts = [rng.exponential(1000.0, size=500) for _ in range(5)]
    merged = merge_sketches(build(p) for p in parts)
    whole = build(np.concatenate(parts))
    assert merged == whole


def test_serialization_round_trips_and_is_compact() -> None:
    rng = np.random.default_rng(1)
    s = build(rng.uniform(1_000, 2_000_000, size=10_000))
    data = s.to_bytes()
    assert Sketch.from_bytes(data) == s
    assert len(data) < 12 * 400 + 64  # ~345 buckets span 1 ms..2 s at 1 %


def test_statistic_sets_are_sketchable_only_without_spread() -> None:
    same = SketchBuilder()
    same.add_statistic_set(sample_count=4, minimum=9.0, maximum=9.0)
    assert same.freeze().quantile(0.5) == 9.0
    spread = SketchBuilder()
    spread.add_statistic_set(sample_count=4, minimum=1.0, maximum=9.0)
    assert spread.freeze().quantile(0.5) is None
