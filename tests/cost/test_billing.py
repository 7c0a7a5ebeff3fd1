"""Billing math: per-second, clipped to windows, split at UTC boundaries, rates by purchase
option."""

from __future__ import annotations

import pytest

from tests.cost.builders import DAY, HOUR, at
from tideserve.cost.billing import (
    Interval,
    billed_seconds,
    cost_of,
    hourly_rate,
    periods,
)
from tideserve.cost.catalog import Catalog
from tideserve.errors import ValidationError

M5_LARGE = 0.115  # USD/h on demand, data/instance_types.csv


def test_the_worked_example_an_instance_spanning_midnight_is_split_across_the_two_days() -> None:
    life = Interval(at("2024-03-10 23:59:30.4"), at("2024-03-11 00:10:00"))
    day1 = Interval(at("2024-03-10 00:00:00"), at("2024-03-11 00:00:00"))
    day2 = Interval(day1.end, day1.end + DAY)

    assert billed_seconds(life, day1) == 30  # 23:59:30.4 is billed from 23:59:30
    assert billed_seconds(life, day2) == 600
    assert cost_of(life, M5_LARGE, day1) == pytest.approx(30 * M5_LARGE / 3600)
    assert cost_of(life, M5_LARGE, day2) == pytest.approx(0.0191666667)
    whole = Interval(day1.start, day2.end)
    assert cost_of(life, M5_LARGE, day1) + cost_of(life, M5_LARGE, day2) == pytest.approx(
        cost_of(life, M5_LARGE, whole)
    ) == pytest.approx(0.020125)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        pytest.param(10.0, 70.0, 60, id="whole seconds are billed as they are"),
        pytest.param(10.2, 10.7, 1, id="a sub-second life is billed one second"),
        pytest.param(10.9, 12.1, 3, id="partial seconds at both ends count"),
        pytest.param(100.0, 100.0, 0, id="a life of no time costs nothing"),
        pytest.param(-50.0, 5.0, 5, id="clipped at the window's start"),
        pytest.param(995.0, 2000.0, 5, id="clipped at the window's end"),
        pytest.param(2000.0, 3000.0, 0, id="outside the window costs nothing"),
    ],
)
def test_billed_seconds(start: float, end: float, seconds: float) -> None:
    assert billed_seconds(Interval(start, end), Interval(0.0, 1000.0)) == seconds


def test_rates_by_purchase_option() -> None:
    m5 = Catalog.default().get("ml.m5.large")
    assert hourly_rate(m5) == M5_LARGE
    assert hourly_rate(m5, "SavingsPlan") == pytest.approx(M5_LARGE * 0.72)
    assert hourly_rate(m5, "Spot") == pytest.approx(M5_LARGE * 0.3)
    with pytest.raises(ValidationError, match="Reserved"):
        hourly_rate(m5, "Reserved")


def test_hourly_periods_are_cut_at_utc_hours_and_clipped_to_the_window() -> None:
    window = Interval(at("2024-03-10 22:30:00"), at("2024-03-11 01:00:00"))
    assert periods(window, "HOURLY") == [
        Interval(window.start, at("2024-03-10 23:00:00")),
        Interval(at("2024-03-10 23:00:00"), at("2024-03-11 00:00:00")),
        Interval(at("2024-03-11 00:00:00"), window.end),
    ]
    assert all(p.end - p.start <= HOUR for p in periods(window, "HOURLY"))


def test_monthly_periods_follow_the_calendar() -> None:
    window = Interval(at("2024-01-15 00:00:00"), at("2024-03-02 00:00:00"))
    assert [(p.start, p.end) for p in periods(window, "MONTHLY")] == [
        (window.start, at("2024-02-01 00:00:00")),
        (at("2024-02-01 00:00:00"), at("2024-03-01 00:00:00")),  # 29 days: 2024 is a leap year
        (at("2024-03-01 00:00:00"), window.end),
    ]


def test_daily_periods_and_an_unknown_granularity() -> None:
    window = Interval(at("2024-12-31 00:00:00"), at("2025-01-02 00:00:00"))
    assert len(periods(window, "DAILY")) == 2
    with pytest.raises(ValidationError, match="WEEKLY"):
        periods(window, "WEEKLY")
