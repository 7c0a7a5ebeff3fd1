"""`tideserve costs`: a table of cost per period, grouped by endpoint, variant, tag or instance
type, read through Cost Explorer's GetCostAndUsage with a boto3 `ce` client (the same call a
boto3 user makes). Grouped by endpoint and variant, it adds cost per inference from
CloudWatch's AWS/SageMaker Invocations.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from tideserve.client import client, default_url
from tideserve.cost.attribution import ENDPOINT_TAG, VARIANT_TAG

_GROUPS: dict[str, dict[str, str]] = {
    "endpoint": {"Type": "TAG", "Key": ENDPOINT_TAG},
    "variant": {"Type": "TAG", "Key": VARIANT_TAG},
    "instance-type": {"Type": "DIMENSION", "Key": "INSTANCE_TYPE"},
    "purchase-type": {"Type": "DIMENSION", "Key": "PURCHASE_TYPE"},
}
_SECONDS = {"HOURLY": 3600, "DAILY": 86400}


def add_costs_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "costs", help="cost per day or hour by endpoint, variant or tag (Cost Explorer)"
    )
    p.add_argument("--url", default=default_url())
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--by", action="append", default=None,
                   help="endpoint | variant | tag:KEY | instance-type | purchase-type; "
                        "at most twice (default: endpoint and variant)")
    p.add_argument("--granularity", choices=["HOURLY", "DAILY", "MONTHLY"], default="DAILY")
    p.add_argument("--days", type=float, default=7.0, help="how far back from now (default 7)")
    p.add_argument("--start", help="YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (overrides --days)")
    p.add_argument("--end", help="exclusive; default: the end of the current day or hour")
    p.add_argument("--endpoint", help="only this endpoint")
    return p


def run_costs(args: argparse.Namespace, out: TextIO | None = None,
              now: datetime | None = None) -> int:
    """Print the table; 0 on success. `out` and `now` are for tests."""
    import sys

    out = out or sys.stdout
    by = list(args.by or ["endpoint", "variant"])
    request = cost_request(args, by, now or datetime.now(UTC))
    ce = client("ce", args.url, args.state_dir)
    response = ce.get_cost_and_usage(**request)
    per_inference = _invocations_lookup(args, by, request)
    rows = table_rows(response, by, per_inference)
    _print(out, ["PERIOD", *(b.upper() for b in by), "INSTANCE_HOURS", "COST_USD",
                 *(["COST_PER_INFERENCE"] if per_inference else [])], rows)
    _savings_plans_line(ce, request, out)
    return 0


def _savings_plans_line(ce: Any, request: dict[str, Any], out: TextIO) -> None:
    """What the recorded savings plans saved over the same days (GetSavingsPlansUtilization);
    nothing when no plan is recorded. The table's costs are on demand."""
    period = {k: v[:10] for k, v in request["TimePeriod"].items()}
    try:
        total = ce.get_savings_plans_utilization(TimePeriod=period, Granularity="DAILY")["Total"]
    except (ClientError, BotoCoreError):
        return
    saved, used = total["Savings"], total["Utilization"]
    out.write(f"savings plans: ${float(used['TotalCommitment']):.6f} committed "
              f"({float(used['UtilizationPercentage']):.1f} % used) covered "
              f"${float(saved['OnDemandCostEquivalent']):.6f} of on-demand usage; "
              f"net saved ${float(saved['NetSavings']):.6f}\n")


def cost_request(args: argparse.Namespace, by: Sequence[str], now: datetime) -> dict[str, Any]:
    if len(by) > 2:
        raise ValueError("--by may be given at most twice (Cost Explorer groups by two keys)")
    hourly = args.granularity == "HOURLY"
    if hourly:
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    else:
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=args.days)
    if not hourly:
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M:%SZ" if hourly else "%Y-%m-%d"
    request: dict[str, Any] = {
        "TimePeriod": {"Start": args.start or start.strftime(fmt),
                       "End": args.end or end.strftime(fmt)},
        "Granularity": args.granularity,
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "GroupBy": [_group(b) for b in by],
    }
    if args.endpoint:
        request["Filter"] = {"Tags": {"Key": ENDPOINT_TAG, "Values": [args.endpoint]}}
    return request


def _group(by: str) -> dict[str, str]:
    if by.startswith("tag:") and len(by) > 4:
        return {"Type": "TAG", "Key": by[4:]}
    if by not in _GROUPS:
        raise ValueError(f"cannot group by {by!r}: use endpoint, variant, tag:KEY, "
                         "instance-type or purchase-type")
    return _GROUPS[by]


Lookup = Callable[[str, str, str], float | None]  # (period start, endpoint, variant) -> calls


def table_rows(response: dict[str, Any], by: Sequence[str],
               invocations: Lookup | None) -> list[list[str]]:
    rows = []
    hours_total = cost_total = 0.0
    for result in response["ResultsByTime"]:
        period = result["TimePeriod"]["Start"]
        for group in result["Groups"]:
            keys = [k.split("$", 1)[1] if "$" in k else k for k in group["Keys"]]
            hours = float(group["Metrics"]["UsageQuantity"]["Amount"])
            cost = float(group["Metrics"]["UnblendedCost"]["Amount"])
            hours_total += hours
            cost_total += cost
            row = [period, *(k or "(untagged)" for k in keys), f"{hours:.3f}", f"{cost:.6f}"]
            if invocations is not None:
                named = dict(zip(by, keys, strict=True))
                calls = invocations(period, named["endpoint"], named["variant"])
                row.append(f"{cost / calls:.8f}" if calls else "-")
            rows.append(row)
    blanks = [""] * (len(by) + (1 if invocations is not None else 0))
    total = ["TOTAL", *blanks[: len(by)], f"{hours_total:.3f}", f"{cost_total:.6f}"]
    rows.append(total + blanks[len(by):])
    return rows


def _invocations_lookup(args: argparse.Namespace, by: Sequence[str],
                        request: dict[str, Any]) -> Lookup | None:
    """Invocations per (period, endpoint, variant) from CloudWatch, when the table is by
    endpoint and variant at DAILY or HOURLY granularity; None otherwise."""
    seconds = _SECONDS.get(args.granularity)
    if seconds is None or sorted(by) != ["endpoint", "variant"]:
        return None
    cw = client("cloudwatch", args.url, args.state_dir)
    span = [_parse(request["TimePeriod"]["Start"]), _parse(request["TimePeriod"]["End"])]
    fmt = "%Y-%m-%dT%H:%M:%SZ" if args.granularity == "HOURLY" else "%Y-%m-%d"
    cache: dict[tuple[str, str], dict[str, float]] = {}

    def lookup(period: str, endpoint: str, variant: str) -> float | None:
        if (endpoint, variant) not in cache:
            try:
                points = cw.get_metric_statistics(
                    Namespace="AWS/SageMaker", MetricName="Invocations",
                    Dimensions=[{"Name": "EndpointName", "Value": endpoint},
                                {"Name": "VariantName", "Value": variant}],
                    StartTime=span[0], EndTime=span[1], Period=seconds, Statistics=["Sum"],
                )["Datapoints"]
            except (ClientError, BotoCoreError):
                points = []  # no figures beats no table
            cache[(endpoint, variant)] = {
                p["Timestamp"].astimezone(UTC).strftime(fmt): p["Sum"] for p in points
            }
        return cache[(endpoint, variant)].get(period)

    return lookup


def _parse(text: str) -> datetime:
    fmt = "%Y-%m-%dT%H:%M:%SZ" if "T" in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def _print(out: TextIO, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        out.write("\n")
