"""SageMaker Savings Plans, pure: the rate a plan pays per instance type, how a plan's hourly
commitment covers an hour of usage, and the purchase recommendation from usage history (spec
§13.4-§13.5).

Rates. The catalog's `savings_plan_rate` is the 1-year No Upfront price as a share of on
demand (ml.m5.large 0.72: $0.0828/h). Other terms and payment options scale it by AWS's
usual spread (spec §13.5's default discount table, approx.: 1y NU 25 %, PU 28 %, AU 30 %,
3y NU 45 %, PU 50 %, AU 64 %), relative to 1y NU: factor = (1 - d) / (1 - 0.25). So ml.m5.large
on a 3-year All Upfront plan pays 0.72 x 0.36 / 0.75 = 0.3456 of on demand.

Coverage, per hour: each piece of eligible on-demand usage (every ml.* instance) costs
on_demand x rate at the plan's price; the commitment ($/h, at plan prices) is consumed by the
pieces with the highest discount first; what it cannot cover stays on demand; commitment left
unused is lost. NetSavings = OnDemandCostEquivalent (of what it covered) - TotalCommitment.

Recommendation (AWS does not publish its algorithm; spec §13.4's emulation): S_h = the
on-demand spend of hour h over the look-back (H hours, idle hours count as 0), d = the
spend-weighted discount of the chosen term and payment. A commitment c covers
min(S_h, c / (1 - d)) of hour h's on-demand spend, so savings(c) = Σ min(S_h, c/(1-d)) - c H;
that is concave and piecewise linear, so the best c is one of the breakpoints S_h (1 - d)
(ties -> the smaller). Worked: 24 h at $1/h and d = 0.28: c = 0.72 covers everything,
savings = 24 - 17.28 = $6.72 (28 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tideserve.cost.catalog import Catalog

TERMS: Final = {"ONE_YEAR": 1, "THREE_YEARS": 3}
PAYMENTS: Final = ("NO_UPFRONT", "PARTIAL_UPFRONT", "ALL_UPFRONT")
_DISCOUNT: Final = {  # spec §13.5 defaults, approx. and UNCONFIRMED
    ("ONE_YEAR", "NO_UPFRONT"): 0.25, ("ONE_YEAR", "PARTIAL_UPFRONT"): 0.28,
    ("ONE_YEAR", "ALL_UPFRONT"): 0.30, ("THREE_YEARS", "NO_UPFRONT"): 0.45,
    ("THREE_YEARS", "PARTIAL_UPFRONT"): 0.50, ("THREE_YEARS", "ALL_UPFRONT"): 0.64,
}
UPFRONT_SHARE: Final = {"NO_UPFRONT": 0.0, "PARTIAL_UPFRONT": 0.5, "ALL_UPFRONT": 1.0}
HOURS_PER_YEAR: Final = 8760.0


def rate(catalog: Catalog, instance_type: str, term: str, payment: str) -> float:
    """The plan's price as a share of on demand, for this type, term and payment."""
    base = catalog.get(instance_type).savings_plan_rate if instance_type in catalog else 0.75
    return base * (1.0 - _DISCOUNT[(term, payment)]) / (1.0 - _DISCOUNT[("ONE_YEAR",
                                                                          "NO_UPFRONT")])


@dataclass(frozen=True)
class Piece:
    """One instance type's on-demand spend in one hour (USD) and its plan rate (0..1)."""

    on_demand: float
    rate: float


@dataclass(frozen=True)
class HourCover:
    used: float  # commitment consumed, USD (plan prices)
    covered_on_demand: float  # on-demand USD it replaced
    left_on_demand: float  # on-demand USD still billed
    shares: tuple[float, ...]  # covered share of each piece, in the pieces' order


def cover_hour(pieces: Sequence[Piece], commitment: float) -> HourCover:
    left, used, covered, uncovered = commitment, 0.0, 0.0, 0.0
    shares = [0.0] * len(pieces)
    for i in sorted(range(len(pieces)), key=lambda i: pieces[i].rate):  # best discount first
        p = pieces[i]
        cost = p.on_demand * p.rate
        take = min(cost, left)
        shares[i] = take / cost if cost else 0.0
        left -= take
        used += take
        covered += p.on_demand * shares[i]
        uncovered += p.on_demand * (1.0 - shares[i])
    return HourCover(used, covered, uncovered, tuple(shares))


@dataclass(frozen=True)
class Purchase:
    hourly_commitment: float  # USD per hour
    hours: int  # H, the look-back in hours
    on_demand: float  # Σ S_h, USD
    sp_cost: float  # c x H
    left_on_demand: float  # on-demand spend the commitment does not cover
    discount: float  # d

    @property
    def savings(self) -> float:
        return self.on_demand - self.sp_cost - self.left_on_demand


def recommend(hourly: Sequence[float], discount: float) -> Purchase:
    """The commitment that saves most over these hourly on-demand spends (H = len)."""
    hours = len(hourly)
    total = sum(hourly)
    best = Purchase(0.0, hours, total, 0.0, total, discount)
    for s in sorted(set(hourly)):
        c = round(s * (1.0 - discount), 3)  # commitments are bought in $0.001 steps
        if c <= 0:
            continue
        covers = c / (1.0 - discount)
        left = sum(max(0.0, h - covers) for h in hourly)
        candidate = Purchase(c, hours, total, c * hours, left, discount)
        if candidate.savings > best.savings + 1e-12:
            best = candidate
    return best


def average_utilisation(hourly: Sequence[float], p: Purchase) -> float:
    """EstimatedAverageUtilization: Σ min(S_h (1 - d), c) / (c H) x 100."""
    if not p.sp_cost:
        return 0.0
    used = sum(min(h * (1.0 - p.discount), p.hourly_commitment) for h in hourly)
    return 100.0 * used / p.sp_cost
