"""Cost reports: per UTC period, grouped by endpoint, variant, purchase option or tag, with
cost per inference."""

from __future__ import annotations

import pytest

from tests.cost.builders import ARNS, DAY, HOUR, Fleet, at
from tideserve.clock import FakeClock
from tideserve.cost.ledger import Ledger
from tideserve.cost.report import CostRow, cost_report, no_invocations
from tideserve.errors import ValidationError

M5, C5 = 0.115, 0.204  # ml.m5.large, ml.c5.xlarge on demand, USD/h


def no_tags(arn: str) -> dict[str, str]:
    return {}


def summary(rows: list[CostRow]) -> list[tuple[str, tuple[str, ...], float]]:
    from datetime import UTC, datetime

    return [
        (datetime.fromtimestamp(r.period_start, UTC).strftime("%m-%d %H:%M"), r.keys,
         r.instance_seconds)
        for r in rows
    ]


def test_an_instance_spanning_midnight_is_billed_to_each_day(fleet: Fleet,
                                                              ledger: Ledger) -> None:
    fleet.run("shop", "AllTraffic", "ml.m5.large",
              at("2024-03-10 23:30:00"), at("2024-03-11 01:00:00"))
    rows = cost_report(ledger, no_tags, no_invocations,
                       at("2024-03-10 00:00:00"), at("2024-03-12 00:00:00"))
    assert summary(rows) == [
        ("03-10 00:00", ("shop", "AllTraffic"), 1800.0),
        ("03-11 00:00", ("shop", "AllTraffic"), 3600.0),
    ]
    assert [r.cost_usd for r in rows] == pytest.approx([M5 / 2, M5])
    assert rows[0].period_end == at("2024-03-11 00:00:00")


def test_scale_out_and_in_sums_instance_seconds_per_variant(fleet: Fleet,
                                                             ledger: Ledger) -> None:
    t0 = at("2024-03-11 08:00:00")
    # Variant a: one instance all morning; scaled out to three for 08:10-08:40.
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 4 * HOUR)
    fleet.run("shop", "a", "ml.m5.large", t0 + 600, t0 + 2400)
    fleet.run("shop", "a", "ml.m5.large", t0 + 600, t0 + 2400)
    # Variant b: a bigger instance for 15 minutes.
    fleet.run("shop", "b", "ml.c5.xlarge", t0, t0 + 900)
    rows = cost_report(ledger, no_tags, no_invocations, at("2024-03-11 00:00:00"),
                       at("2024-03-12 00:00:00"))
    by_variant = {r.keys: (r.instance_seconds, r.cost_usd) for r in rows}
    assert by_variant[("shop", "a")] == pytest.approx((4 * 3600 + 2 * 1800, 5 * M5))
    assert by_variant[("shop", "b")] == pytest.approx((900, C5 / 4))


def test_a_running_instance_is_billed_up_to_now(fleet: Fleet, ledger: Ledger,
                                                clock: FakeClock) -> None:
    clock.set(at("2024-03-11 12:00:00"))
    fleet.run("shop", "a", "ml.m5.large", at("2024-03-11 11:00:00"), None)
    [row] = cost_report(ledger, no_tags, no_invocations, at("2024-03-11 00:00:00"),
                        at("2024-03-12 00:00:00"))
    assert row.instance_seconds == 3600
    clock.advance(1800)
    [row] = cost_report(ledger, no_tags, no_invocations, at("2024-03-11 00:00:00"),
                        at("2024-03-12 00:00:00"))
    assert row.instance_seconds == 5400


def test_savings_plan_and_spot_rates_by_purchase_option(fleet: Fleet, ledger: Ledger) -> None:
    t0 = at("2024-03-11 00:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 10 * HOUR)
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 10 * HOUR, "SavingsPlan")
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 10 * HOUR, "Spot")
    rows = cost_report(ledger, no_tags, no_invocations, t0, t0 + DAY,
                       group_by=("purchase_option",))
    assert {r.keys[0]: r.cost_usd for r in rows} == pytest.approx(
        {"OnDemand": 10 * M5, "SavingsPlan": 10 * M5 * 0.72, "Spot": 10 * M5 * 0.3}
    )


def test_tag_grouping_puts_untagged_endpoints_under_an_empty_value(fleet: Fleet,
                                                                    ledger: Ledger) -> None:
    tags = {ARNS.endpoint("shop"): {"team": "retail"},
            ARNS.endpoint("search"): {"team": "retail", "env": "prod"}}
    t0 = at("2024-03-11 00:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + HOUR)
    fleet.run("search", "a", "ml.m5.large", t0, t0 + 2 * HOUR)
    fleet.run("lab", "a", "ml.m5.large", t0, t0 + 4 * HOUR)
    rows = cost_report(ledger, lambda arn: tags.get(arn, {}), no_invocations, t0, t0 + DAY,
                       group_by=("tag:team",))
    assert {r.keys: r.instance_seconds for r in rows} == {("retail",): 3 * 3600,
                                                          ("",): 4 * 3600}
    rows = cost_report(ledger, lambda arn: tags.get(arn, {}), no_invocations, t0, t0 + DAY,
                       group_by=("tag:env", "endpoint"))
    assert [r.keys for r in rows] == [("", "lab"), ("", "shop"), ("prod", "search")]


def test_hourly_granularity_splits_at_each_hour(fleet: Fleet, ledger: Ledger) -> None:
    fleet.run("shop", "a", "ml.m5.large", at("2024-03-11 09:45:00"), at("2024-03-11 11:15:00"))
    rows = cost_report(ledger, no_tags, no_invocations, at("2024-03-11 09:00:00"),
                       at("2024-03-11 12:00:00"), granularity="HOURLY", group_by=("variant",))
    assert summary(rows) == [("03-11 09:00", ("a",), 900.0), ("03-11 10:00", ("a",), 3600.0),
                             ("03-11 11:00", ("a",), 900.0)]


def test_cost_per_inference_from_the_period_invocations(fleet: Fleet, ledger: Ledger) -> None:
    t0 = at("2024-03-11 00:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 2 * DAY)
    fleet.run("shop", "b", "ml.m5.large", t0, t0 + DAY)
    asked = []

    def invocations(endpoint: str, variant: str, start: float, end: float) -> float:
        asked.append((variant, start, end))
        # variant a served 23,000 requests on the 11th and none on the 12th; b served none
        return 23_000.0 if (variant, start) == ("a", t0) else 0.0

    rows = cost_report(ledger, no_tags, invocations, t0, t0 + 2 * DAY)
    first = {r.keys[1]: r for r in rows if r.period_start == t0}
    assert first["a"].invocations == 23_000
    # A day of ml.m5.large is 24 x 0.115 = $2.76; 2.76 / 23,000 = $0.00012 per inference.
    assert first["a"].cost_per_inference == pytest.approx(0.00012)
    assert first["b"].cost_per_inference is None
    assert [r.cost_per_inference for r in rows if r.period_start > t0] == [None]
    assert len(asked) == len(set(asked)) == 3  # each variant-period asked once


def test_a_variant_split_across_groups_shares_its_invocations_by_instance_seconds(
    fleet: Fleet, ledger: Ledger
) -> None:
    t0 = at("2024-03-11 00:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0, t0 + 3 * HOUR)  # blue fleet
    fleet.run("shop", "a", "ml.c5.xlarge", t0 + 2 * HOUR, t0 + 3 * HOUR)  # green, 1 h
    rows = cost_report(ledger, no_tags, lambda *a: 400.0, t0, t0 + DAY,
                       group_by=("instance_type",))
    assert {r.keys[0]: r.invocations for r in rows} == {"ml.m5.large": 300.0,
                                                        "ml.c5.xlarge": 100.0}


def test_bad_report_arguments() -> None:
    with pytest.raises(ValidationError, match="after its start"):
        cost_report(None, no_tags, no_invocations, 10.0, 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="colour"):
        cost_report(None, no_tags, no_invocations, 0.0, DAY,  # type: ignore[arg-type]
                    group_by=("colour",))
