"""Cost as metrics, so a scaling policy or an alarm can use it: per variant, in namespace
tideserve/Cost with dimensions {EndpointName, VariantName},

    HourlyCost        USD per hour of the variant's instances at the end of the period
    CostPerInference  USD billed in the period / Invocations in it (absent without any)

Both are published for the last closed period, [end - period, end) with `end` the latest
period boundary at or before `now`, and stamped with that period's start, so they line up
with the period's Invocations. The lead's loop calls this once per period, after flushing
the closed period's metrics to the store (Invocations are read from there). CloudWatch has no
currency unit; AWS's own EstimatedCharges metric uses "None", and so do these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tideserve.cost.billing import Interval, cost_of
from tideserve.cost.ledger import Ledger
from tideserve.cost.report import Invocations
from tideserve.metrics import catalogue
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions

NAMESPACE: Final = catalogue.COST
HOURLY_COST: Final = catalogue.HOURLY_COST.name
COST_PER_INFERENCE: Final = catalogue.COST_PER_INFERENCE.name


@dataclass(frozen=True)
class VariantCost:
    endpoint: str
    variant: str
    period_start: float  # epoch seconds
    hourly_cost: float  # USD per hour at the period's end
    cost_usd: float  # billed in the period
    invocations: float
    cost_per_inference: float | None  # USD; None without invocations


def variant_costs(
    ledger: Ledger, invocations: Invocations, now: float, period: float
) -> list[VariantCost]:
    """Per variant with instances in the last closed period: what publish_cost_metrics
    records, as values (pure apart from reading the ledger and the invocations source)."""
    end = now - now % period
    window = Interval(end - period, end)
    rates: dict[tuple[str, str], float] = {}
    costs: dict[tuple[str, str], float] = {}
    for u in ledger.usage(window.start, window.end):
        key = (u.endpoint_name, u.variant)
        costs[key] = costs.get(key, 0.0) + cost_of(u.interval(now), u.rate_per_hour, window)
        alive_at_end = u.start <= end and (u.end is None or u.end > end)
        rates[key] = rates.get(key, 0.0) + (u.rate_per_hour if alive_at_end else 0.0)
    out = []
    for (endpoint, variant), cost in sorted(costs.items()):
        calls = invocations(endpoint, variant, window.start, window.end)
        out.append(VariantCost(
            endpoint, variant, window.start, rates[(endpoint, variant)], cost, calls,
            cost / calls if calls > 0 else None,
        ))
    return out


def publish_cost_metrics(
    aggregator: MetricAggregator,
    ledger: Ledger,
    invocations: Invocations,
    now: float,
    period: float,
) -> list[VariantCost]:
    """Record HourlyCost and CostPerInference for the last closed period; returns them."""
    published = variant_costs(ledger, invocations, now, period)
    for c in published:
        dims = dimensions(EndpointName=c.endpoint, VariantName=c.variant)
        aggregator.put(catalogue.HOURLY_COST, dims, c.hourly_cost, timestamp=c.period_start)
        if c.cost_per_inference is not None:
            aggregator.put(catalogue.COST_PER_INFERENCE, dims, c.cost_per_inference,
                           timestamp=c.period_start)
    return published
