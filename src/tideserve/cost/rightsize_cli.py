"""`tideserve rightsize [--days N]`: the rightsizing advice for every running endpoint variant,
over a look-back of N days (Cost Explorer's GetRightsizingRecommendation uses 14).

It reads the server's state (the ledger and the stored metrics in --state-dir's database, or
--database-url) rather than the API, because the look-back is not a member of AWS's request;
it works with the server up or down. The numbers are the same code's as the API's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from tideserve.clock import WallClock
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.cost.rightsizing import CROSS_FAMILY, HEADROOM, SAME_FAMILY, Recommendation
from tideserve.cost.rightsizing_api import Rightsizing
from tideserve.db import make_engine, sqlite_url
from tideserve.metrics.store import MetricStore


def add_rightsize_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "rightsize", help="advise each endpoint variant's instance type from its utilisation")
    p.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    p.add_argument("--database-url", help="the server's database, when not the state dir's")
    p.add_argument("--days", type=float, default=14.0, help="look-back in days (default 14)")
    p.add_argument("--cross-family", action="store_true",
                   help="consider every instance family, not only the current one")
    return p


def run_rightsize(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import sys

    out = out or sys.stdout
    engine = make_engine(args.database_url or sqlite_url(args.state_dir))
    clock = WallClock()
    catalog = Catalog.default(extra=args.state_dir / "instance_types.csv")
    advice = Rightsizing(MetricStore(engine), Ledger(engine, catalog, clock), catalog, clock,
                         "", "", lambda name: name)
    recs = advice.recommendations(args.days, CROSS_FAMILY if args.cross_family else SAME_FAMILY)
    out.write(f"look-back {args.days:g} days; a type fits when projected p95 CPU <= "
              f"{HEADROOM.cpu_p95:g} %, max memory <= {HEADROOM.memory_max:g} %, p95 GPU <= "
              f"{HEADROOM.gpu_p95:g} %\n")
    rows = [_row(r) for r in recs]
    header = ["ENDPOINT", "VARIANT", "NOW", "ADVICE", "P95_CPU", "MAX_MEM", "MONTHLY_NOW",
              "MONTHLY_SAVINGS", "SAVINGS_%"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                  + "\n")
    for rec in recs:
        out.write(f"{rec.utilisation.endpoint}/{rec.utilisation.variant}: {rec.why}\n")
    if not recs:
        out.write("no advice: every running variant is on the cheapest type that fits\n")
    return 0


def _row(r: Recommendation) -> list[str]:
    u = r.utilisation
    advice = "TERMINATE (idle)" if r.target is None else r.target.instance_type
    return [u.endpoint, u.variant, f"{u.instance_count} x {u.instance_type}", advice,
            "-" if u.cpu_p95 is None else f"{u.cpu_p95:.1f}",
            "-" if u.memory_max is None else f"{u.memory_max:.1f}", f"{r.monthly_cost:.2f}",
            f"{r.monthly_savings:.2f}", f"{r.savings_percentage:.1f}"]
