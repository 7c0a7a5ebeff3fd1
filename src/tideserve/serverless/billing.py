"""Serverless billing: GB-seconds of request duration (memory GB x duration), no per-request
fee and nothing while idle (spec §6.1), at cost.catalog.SERVERLESS_USD_PER_GB_SECOND.

Durations are summed in memory per variant on the hot path and written to the cost ledger once
per metric period, as rows of the synthetic instance type `ml.serverless.<N>gb` (priced per
second of duration at N GB). So `tideserve costs` and GetCostAndUsage show serverless beside
instances with no change of their own: grouped by instance type, a row's instance-seconds are
seconds of request duration at that memory size (GB-seconds = seconds x N), and Cost
Explorer's UsageQuantity is those seconds in hours.

The ledger bills whole seconds (start rounded down, end rounded up). To keep the cost exact at
AWS's millisecond granularity, each row's rate is scaled by duration / billed seconds: 0.25 s
at 2 GB in one period is one billed second at 0.25 x 2 x $0.00002 = $0.00001. The reported
seconds are thus rounded up by under a second per variant per period; the cost is not.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from tideserve.cost.billing import SECONDS_PER_HOUR
from tideserve.cost.catalog import SERVERLESS_USD_PER_GB_SECOND
from tideserve.cost.ledger import Ledger, Usage
from tideserve.serverless.config import usage_type_name


@dataclass(frozen=True)
class Metered:
    """Who a duration is billed to."""

    endpoint_arn: str
    endpoint: str
    variant: str
    memory_mb: int


def usage_rows(who: Metered, seconds: float, start: float, period: float) -> list[Usage]:
    """`seconds` of request duration in the period starting at `start`, as closed ledger rows
    inside that period: one per `period` seconds of duration (concurrent requests add up to
    more than the period), the last one partial."""
    rows: list[Usage] = []
    left = seconds
    base_rate = who.memory_mb / 1024 * SERVERLESS_USD_PER_GB_SECOND * SECONDS_PER_HOUR
    while left > 1e-9:
        length = min(period, left)
        billed = math.ceil(start + length) - math.floor(start)
        rows.append(Usage(
            instance_id=f"sl-{uuid.uuid4().hex}", endpoint_arn=who.endpoint_arn,
            endpoint_name=who.endpoint, variant=who.variant,
            instance_type=usage_type_name(who.memory_mb), purchase_option="OnDemand",
            rate_per_hour=base_rate * length / billed, start=start, end=start + length,
        ))
        left -= length
    return rows


class ServerlessBilling:
    def __init__(self, ledger: Ledger, period: float) -> None:
        self.ledger = ledger
        self.period = period
        self._seconds: dict[Metered, float] = {}

    def add(self, who: Metered, seconds: float) -> None:
        """One request's duration (hot path: a dict update)."""
        self._seconds[who] = self._seconds.get(who, 0.0) + seconds

    def flush(self, now: float) -> list[Usage]:
        """Write what accrued into the last closed period's rows; returns them."""
        pending, self._seconds = self._seconds, {}
        start = now - now % self.period - self.period
        rows = [r for who, s in sorted(pending.items(), key=lambda kv: kv[0].endpoint)
                for r in usage_rows(who, s, start, self.period)]
        for row in rows:
            self.ledger.record_usage(row)
        return rows
