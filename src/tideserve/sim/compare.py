"""Real-time, serverless and async side by side on one trace: one row per policy set with its
cost, its share over the SLO and its latency, and what only its kind has (cold starts and
throttles; the longest queue age and expired requests) — and which is cheapest among those
that meet the SLO, or that none does.

A set meets the SLO when no more than (100 − percentile) % of its requests are over the
latency (failed ones — timed out, throttled, expired — count as over). The clairvoyant
baseline is a bound for real-time capacity, not a candidate, so it is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from tideserve.sim.kinds import (
    ON_DEMAND_USD_PER_GB_SECOND,
    PROVISIONED_DURATION_USD_PER_GB_SECOND,
    PROVISIONED_USD_PER_GB_SECOND,
    REALTIME,
)
from tideserve.sim.result import AsyncFigures, PolicyRun, ServerlessFigures, SimResult
from tideserve.sim.scenario import Slo

SERVERLESS_PRICES = {  # stated in every comparison: approximate (spec §6.1, sim.kinds)
    "on_demand_usd_per_gb_second": ON_DEMAND_USD_PER_GB_SECOND,
    "provisioned_usd_per_gb_second": PROVISIONED_USD_PER_GB_SECOND,
    "provisioned_duration_usd_per_gb_second": round(PROVISIONED_DURATION_USD_PER_GB_SECOND, 10),
    "note": "approximate us-east-1 rates; provisioned-concurrency rates UNCONFIRMED",
}


@dataclass(frozen=True)
class KindRow:
    name: str
    kind: str
    cost_usd: float
    over_slo_share: float
    meets_slo: bool
    latency_p50: float  # seconds, served requests
    latency_p99: float
    failed: float  # requests never served: timed out (real-time), throttled, expired
    cold_starts: float | None = None  # serverless
    throttled: float | None = None  # serverless
    max_queue_age_seconds: float | None = None  # async
    expired: float | None = None  # async


def has_kinds(result: SimResult) -> bool:
    """Whether a comparison of kinds belongs in the report (any set not real-time)."""
    return any(run.kind != REALTIME for run in result.runs)


def meets(over_slo_share: float, slo: Slo) -> bool:
    return over_slo_share <= (100.0 - slo.percentile) / 100.0 + 1e-12


def kind_rows(result: SimResult) -> list[KindRow]:
    return [_row(run, result.scenario.slo) for run in result.runs]


def _row(run: PolicyRun, slo: Slo) -> KindRow:
    s, f = run.summary, run.figures
    row = KindRow(run.name, run.kind, s.cost_usd, s.over_slo_share, meets(s.over_slo_share, slo),
                  s.latency_p50, s.latency_p99, s.dropped)
    if isinstance(f, ServerlessFigures):
        return KindRow(**{**row.__dict__, "cold_starts": f.cold_starts, "throttled": f.throttled})
    if isinstance(f, AsyncFigures):
        return KindRow(**{**row.__dict__, "max_queue_age_seconds": f.max_queue_age_seconds,
                          "expired": f.expired})
    return row


def cheapest(rows: list[KindRow]) -> KindRow | None:
    """The cheapest row that meets the SLO (ties: the first listed); None if none does."""
    fits = [r for r in rows if r.meets_slo]
    return min(fits, key=lambda r: r.cost_usd) if fits else None


def verdict(result: SimResult) -> str:
    slo = result.scenario.slo
    target = f"{slo.percentile:g} % of requests within {slo.latency_seconds:g} s"
    best = cheapest(kind_rows(result))
    if best is None:
        return f"none meets the SLO ({target})"
    return (f"cheapest meeting the SLO ({target}): {best.name} ({best.kind}) at "
            f"${best.cost_usd:.4f}")


def comparison_dict(result: SimResult) -> dict[str, Any]:
    rows = kind_rows(result)
    best = cheapest(rows)
    return {
        "slo": {"latency_seconds": result.scenario.slo.latency_seconds,
                "percentile": result.scenario.slo.percentile},
        "rows": [{k: _r(v) for k, v in r.__dict__.items() if v is not None} for r in rows],
        "cheapest_meeting_slo": None if best is None else best.name,
        "verdict": verdict(result),
        "serverless_prices": SERVERLESS_PRICES,
    }


def figures_dict(run: PolicyRun) -> dict[str, Any]:
    """A non-real-time run's own figures, for its entry in summary.json."""
    if run.figures is None:
        return {}
    return {"kind": run.kind, "figures": {k: _r(v) for k, v in run.figures.__dict__.items()}}


def _r(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def print_comparison(result: SimResult, out: TextIO) -> None:
    header = ("KIND", "POLICY SET", "COST_USD", "OVER_SLO", "MEETS", "P50_S", "P99_S", "FAILED",
              "COLD_STARTS", "THROTTLED", "MAX_QUEUE_AGE_S")
    lines = [header]
    for r in kind_rows(result):
        lines.append((r.kind, r.name, f"{r.cost_usd:.4f}", f"{100 * r.over_slo_share:.2f}%",
                      "yes" if r.meets_slo else "no", f"{r.latency_p50:.3f}",
                      f"{r.latency_p99:.3f}", f"{r.failed:.0f}", _opt(r.cold_starts),
                      _opt(r.throttled), _opt(r.max_queue_age_seconds)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                  + "\n")
    out.write(verdict(result) + "\n")


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
