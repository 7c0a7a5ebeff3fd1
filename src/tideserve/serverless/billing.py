"""Serverless billing: GB-seconds of request duration (memory GB x duration), no per-request
fee and nothing while idle (spec §6.1), at cost.catalog.SERVERLESS_USD_PER_GB_SECOND; plus,
where ProvisionedConcurrency is configured, provisioned GB-seconds (units x memory GB x the
time they are configured, busy or not) at SERVERLESS_PROVISIONED_USD_PER_GB_SECOND, metered
as `ml.serverless.<N>gb.provisioned` rows the same way.

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
from tideserve.cost.catalog import (
    SERVERLESS_PROVISIONED_USD_PER_GB_SECOND,
    SERVERLESS_USD_PER_GB_SECOND,
)
from tideserve.cost.ledger import Ledger, Usage
from tideserve.serverless.config import usage_type_name


@dataclass(frozen=True)
class Metered:
    """Who a duration is billed to."""

    endpoint_arn: str
    endpoint: str
    variant: str
    memory_mb: int


def usage_rows(who: Metered, seconds: float, start: float, period: float,
               provisioned: bool = False) -> list[Usage]:
    """`seconds` of request duration (or, `provisioned`, of provisioned concurrency units) in
    the period starting at `start`, as closed ledger rows inside that period: one per `period`
    seconds (concurrent requests, or several units, add up to more than the period), the last
    one partial."""
    rows: list[Usage] = []
    left = seconds
    usd = SERVERLESS_PROVISIONED_USD_PER_GB_SECOND if provisioned else SERVERLESS_USD_PER_GB_SECOND
    base_rate = who.memory_mb / 1024 * usd * SECONDS_PER_HOUR
    instance_type = provisioned_type_name(who.memory_mb) if provisioned else usage_type_name(
        who.memory_mb)
    while left > 1e-9:
        length = min(period, left)
        billed = math.ceil(start + length) - math.floor(start)
        rows.append(Usage(
            instance_id=f"sl-{uuid.uuid4().hex}", endpoint_arn=who.endpoint_arn,
            endpoint_name=who.endpoint, variant=who.variant,
            instance_type=instance_type, purchase_option="OnDemand",
            rate_per_hour=base_rate * length / billed, start=start, end=start + length,
        ))
        left -= length
    return rows


def provisioned_type_name(memory_mb: int) -> str:
    """`ml.serverless.2gb.provisioned`: the type provisioned concurrency is metered under."""
    return f"{usage_type_name(memory_mb)}.provisioned"


@dataclass
class ProvisionedMeter:
    """Provisioned concurrency units configured over time, integrated into unit-seconds.
    Worked example: 1 unit from t=0, raised to 3 at t=20, taken at t=60 -> 1 x 20 + 3 x 40
    = 140 unit-seconds (at 2 GB, 280 provisioned GB-seconds)."""

    since: float  # epoch seconds up to which `accrued` counts
    units: int = 0
    accrued: float = 0.0  # unit-seconds not yet billed

    def set(self, now: float, units: int) -> None:
        self._advance(now)
        self.units = units

    def take(self, until: float) -> float:
        """Unit-seconds up to `until` (the end of the period being billed), then zero. A
        change a few ms after `until` (between the period's end and its flush) is counted in
        this period: an error of milliseconds, never a lost or double-billed second."""
        self._advance(until)
        out, self.accrued = self.accrued, 0.0
        return out

    def _advance(self, now: float) -> None:
        if now > self.since:
            self.accrued += self.units * (now - self.since)
            self.since = now


class ServerlessBilling:
    def __init__(self, ledger: Ledger, period: float) -> None:
        self.ledger = ledger
        self.period = period
        self._seconds: dict[Metered, float] = {}
        self._provisioned: dict[Metered, ProvisionedMeter] = {}

    def add(self, who: Metered, seconds: float) -> None:
        """One request's duration (hot path: a dict update)."""
        self._seconds[who] = self._seconds.get(who, 0.0) + seconds

    def provision(self, who: Metered, units: int, now: float) -> None:
        """ProvisionedConcurrency is `units` from `now` on (0: none, e.g. the endpoint went)."""
        meter = self._provisioned.get(who)
        if meter is None:
            if not units:
                return
            meter = self._provisioned[who] = ProvisionedMeter(now)
        meter.set(now, units)

    def flush(self, now: float) -> list[Usage]:
        """Write what accrued into the last closed period's rows; returns them."""
        pending, self._seconds = self._seconds, {}
        start = now - now % self.period - self.period
        rows = [r for who, s in sorted(pending.items(), key=lambda kv: kv[0].endpoint)
                for r in usage_rows(who, s, start, self.period)]
        for who, meter in sorted(self._provisioned.items(), key=lambda kv: kv[0].endpoint):
            rows += usage_rows(who, meter.take(start + self.period), start, self.period,
                               provisioned=True)
            if not meter.units:
                del self._provisioned[who]
        for row in rows:
            self.ledger.record_usage(row)
        return rows
