"""SageMaker Savings Plans from the ledger: a steady ml.m5.large fleet is advised to commit what
covers it, and a recorded plan's utilisation and savings follow the catalog's plan rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cost.builders import Fleet, at
from tideserve.clock import FakeClock
from tideserve.cost import savings_plans as sp
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.cost.savings_api import SavingsPlans
from tideserve.errors import ValidationError


def test_rates_scale_the_catalogs_one_year_no_upfront_rate(catalog: Catalog) -> None:
    assert sp.rate(catalog, "ml.m5.large", "ONE_YEAR", "NO_UPFRONT") == pytest.approx(0.72)
    assert sp.rate(catalog, "ml.m5.large", "THREE_YEARS", "ALL_UPFRONT") == pytest.approx(
        0.72 * 0.36 / 0.75)


def test_the_best_commitment_covers_the_steady_base_not_the_peak() -> None:
    # 20 h at $1/h and 4 h at $3/h, d = 0.28: committing 0.72 saves 24 x 1 x 0.28 = $6.72;
    # committing 2.16 (the peak) would waste 1.44 x 20 h -> worse.
    p = sp.recommend([1.0] * 20 + [3.0] * 4, 0.28)
    assert p.hourly_commitment == pytest.approx(0.72)
    assert p.savings == pytest.approx(24 * 0.28)
    assert sp.recommend([0.0] * 24, 0.28).hourly_commitment == 0.0


def test_purchase_recommendation_for_a_steady_fleet(ledger: Ledger, fleet: Fleet,
                                                    clock: FakeClock, catalog: Catalog,
                                                    tmp_path: Path) -> None:
    # Two ml.m5.large for the whole 7-day look-back: $0.23/h on demand.
    fleet.run("shop", "AllTraffic", "ml.m5.large", at("2024-03-01 00:00:00"), None)
    fleet.run("shop", "AllTraffic", "ml.m5.large", at("2024-03-01 00:00:00"), None)
    clock.set(at("2024-03-12 00:00:00"))
    api = SavingsPlans(ledger, catalog, clock, tmp_path / "savings_plans.json")
    out = api.purchase_recommendation({"SavingsPlansType": "SAGEMAKER_SP",
                                       "TermInYears": "ONE_YEAR", "PaymentOption": "NO_UPFRONT",
                                       "LookbackPeriodInDays": "SEVEN_DAYS"})
    summary = out["SavingsPlansPurchaseRecommendation"]["SavingsPlansPurchaseRecommendationSummary"]
    assert summary["HourlyCommitmentToPurchase"] == "0.166"  # 0.23 x 0.72, in $0.001 steps
    assert float(summary["EstimatedSavingsPercentage"]) == pytest.approx(28.0, abs=0.5)
    [detail] = out["SavingsPlansPurchaseRecommendation"][
        "SavingsPlansPurchaseRecommendationDetails"]
    assert float(detail["EstimatedAverageUtilization"]) == pytest.approx(99.8, abs=0.2)
    with pytest.raises(ValidationError, match="SAGEMAKER_SP"):
        api.purchase_recommendation({"SavingsPlansType": "COMPUTE_SP", "TermInYears": "ONE_YEAR",
                                     "PaymentOption": "NO_UPFRONT",
                                     "LookbackPeriodInDays": "SEVEN_DAYS"})


def test_a_recorded_plan_shows_what_it_saved(ledger: Ledger, fleet: Fleet, clock: FakeClock,
                                             catalog: Catalog, tmp_path: Path) -> None:
    # One ml.m5.xlarge ($0.23/h) all day under a $0.1/h plan at rate 0.72: the commitment
    # buys 0.1 / 0.72 = $0.1389/h of on demand; it is used in full; net 0.0389/h saved.
    fleet.run("shop", "AllTraffic", "ml.m5.xlarge", at("2024-03-10 00:00:00"), None)
    clock.set(at("2024-03-11 00:00:00"))
    plans = tmp_path / "savings_plans.json"
    plans.write_text(json.dumps([{"savingsPlanId": "sp-1", "savingsPlanType": "SageMaker",
                                  "commitment": "0.1", "paymentOption": "No Upfront",
                                  "termDurationInSeconds": 31536000,
                                  "start": "2024-03-01T00:00:00Z"}]))
    api = SavingsPlans(ledger, catalog, clock, plans)
    out = api.utilization({"TimePeriod": {"Start": "2024-03-10", "End": "2024-03-11"},
                           "Granularity": "DAILY"})
    total = out["Total"]
    assert total["Utilization"]["TotalCommitment"] == "2.4"
    assert total["Utilization"]["UtilizationPercentage"] == "100"
    assert float(total["Savings"]["NetSavings"]) == pytest.approx(24 * (0.1 / 0.72 - 0.1))


def test_tideserve_costs_prints_what_the_plans_saved(ledger: Ledger, fleet: Fleet,
                                                     clock: FakeClock, catalog: Catalog,
                                                     tmp_path: Path) -> None:
    import io

    from tideserve.cost.cli import _savings_plans_line

    fleet.run("shop", "AllTraffic", "ml.m5.xlarge", at("2024-03-10 00:00:00"), None)
    clock.set(at("2024-03-11 00:00:00"))
    plans = tmp_path / "savings_plans.json"
    plans.write_text(json.dumps([{"commitment": "0.1", "start": "2024-03-01T00:00:00Z"}]))
    api = SavingsPlans(ledger, catalog, clock, plans)

    class CostExplorerClient:  # what the CLI's boto3 client would answer, from the handler
        def get_savings_plans_utilization(self, **params: object) -> dict:
            return api.utilization(params)

    out = io.StringIO()
    _savings_plans_line(CostExplorerClient(), {"TimePeriod": {"Start": "2024-03-10",
                                                              "End": "2024-03-11"}}, out)
    assert out.getvalue() == ("savings plans: $2.400000 committed (100.0 % used) covered "
                              "$3.333333 of on-demand usage; net saved $0.933333\n")
