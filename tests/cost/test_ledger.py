"""The ledger: a durable row per instance lifetime, closed on stop, recovered after a crash."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.cost.builders import ARNS, Fleet, at
from tideserve.clock import FakeClock
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.errors import ValidationError


def test_a_lifetime_is_recorded_open_then_closed_and_survives_a_new_ledger(
    ledger: Ledger, engine: Engine, catalog: Catalog, clock: FakeClock
) -> None:
    t0 = at("2024-03-11 10:00:00")
    assert ledger.instance_started("shop-1", ARNS.endpoint("shop"), "shop", "AllTraffic",
                                   "ml.m5.large", at=t0)
    [running] = ledger.running(t0 + 60)
    assert (running.end, running.rate_per_hour, running.purchase_option) == (None, 0.115,
                                                                             "OnDemand")

    assert ledger.instance_stopped("shop-1", at=t0 + 600)
    reopened = Ledger(engine, catalog, clock)  # what a restarted server reads
    [row] = reopened.usage(t0, t0 + 3600)
    assert (row.start, row.end) == (t0, t0 + 600)
    assert reopened.running(t0 + 601) == []


def test_starting_twice_or_stopping_twice_changes_nothing(ledger: Ledger) -> None:
    t0 = at("2024-03-11 10:00:00")
    args = ("shop-1", ARNS.endpoint("shop"), "shop", "AllTraffic", "ml.m5.large")
    assert ledger.instance_started(*args, at=t0)
    assert not ledger.instance_started(*args, at=t0 + 5)
    assert ledger.instance_stopped("shop-1", at=t0 + 60)
    assert not ledger.instance_stopped("shop-1", at=t0 + 120)
    assert not ledger.instance_stopped("never-started", at=t0)
    [row] = ledger.usage(t0, t0 + 3600)
    assert (row.start, row.end) == (t0, t0 + 60)


def test_an_unknown_instance_type_or_purchase_option_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="ml.nope"):
        ledger.instance_started("x", ARNS.endpoint("e"), "e", "v", "ml.nope.large", at=0.0)
    with pytest.raises(ValidationError, match="Reserved"):
        ledger.instance_started("x", ARNS.endpoint("e"), "e", "v", "ml.m5.large", "Reserved",
                                at=0.0)


def test_the_rate_is_fixed_at_start_by_the_purchase_option(fleet: Fleet, ledger: Ledger) -> None:
    t0 = at("2024-03-11 10:00:00")
    fleet.run("shop", "a", "ml.m5.large", t0, None, "SavingsPlan")
    fleet.run("shop", "b", "ml.m5.large", t0, None, "Spot")
    rates = {u.variant: u.rate_per_hour for u in ledger.running(t0)}
    assert rates == pytest.approx({"a": 0.115 * 0.72, "b": 0.115 * 0.3})


def test_a_restart_closes_rows_a_crash_left_open_at_the_last_sign_of_life(
    engine: Engine, catalog: Catalog, clock: FakeClock
) -> None:
    before = Ledger(engine, catalog, clock)
    fleet = Fleet(before)
    t0 = at("2024-03-11 10:00:00")
    fleet.run("shop", "AllTraffic", "ml.m5.large", t0, None)
    fleet.run("shop", "AllTraffic", "ml.m5.large", t0 + 30, None)
    fleet.run("shop", "AllTraffic", "ml.m5.large", t0, t0 + 20)  # stopped cleanly
    before.heartbeat(at=t0 + 300)  # the server's periodic loop, then the crash
    before.heartbeat(at=t0 + 200)  # a late stamp never moves the sign of life back

    clock.set(t0 + 7200)  # the server comes back two hours later
    after = Ledger(engine, catalog, clock)
    assert after.last_alive() == t0 + 300
    assert after.recover() == 2
    ends = sorted((u.start, u.end) for u in after.usage(t0, clock.now()))
    assert ends == [(t0, t0 + 20), (t0, t0 + 300), (t0 + 30, t0 + 300)]
    assert after.recover() == 0


def test_close_open_never_ends_a_row_before_it_started(fleet: Fleet, ledger: Ledger) -> None:
    t0 = at("2024-03-11 10:00:00")
    fleet.run("shop", "AllTraffic", "ml.m5.large", t0, None)
    assert ledger.close_open(t0 - 100) == 1
    [row] = ledger.usage(t0 - 1, t0 + 1)
    assert row.end == row.start == t0


def test_a_first_start_without_any_heartbeat_recovers_at_now(
    ledger: Ledger, clock: FakeClock
) -> None:
    assert ledger.last_alive() is None
    assert ledger.recover() == 0
    ledger.heartbeat()
    assert ledger.last_alive() == clock.now()
