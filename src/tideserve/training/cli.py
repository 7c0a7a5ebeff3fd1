"""`tideserve spot interrupt INSTANCE-OR-JOB`: give a spot instance EC2's two-minute notice
now, through tideserve's InterruptSpotInstance operation (the same call any client makes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from tideserve.client import default_url, tideserve_client


def add_spot_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "spot", help="spot capacity: interrupt a spot instance (or a job's) on demand")
    actions = p.add_subparsers(dest="spot_action", required=True)
    interrupt = actions.add_parser(
        "interrupt", help="give the two-minute reclaim notice now (scaled by --period)")
    interrupt.add_argument("target", metavar="INSTANCE-OR-JOB",
                           help="a spot instance id (i-spot-...), or the name of a training "
                           "job or spot transform job (then one of its instances not yet "
                           "noticed)")
    interrupt.add_argument("--no-capacity-for", type=float, default=0.0, metavar="SECONDS",
                           help="and no spot capacity of its type for this long after the "
                           "reclaim (AWS seconds, scaled like the notice)")
    for q in (interrupt,):
        q.add_argument("--url", default=default_url())
        q.add_argument("--state-dir", type=Path, default=Path(".tideserve"))
    return p


def run_spot(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import sys

    out = out or sys.stdout
    answer = tideserve_client(args.url, args.state_dir).interrupt_spot_instance(
        InstanceOrJob=args.target, CapacityUnavailableSeconds=args.no_capacity_for)
    print(f"{answer['InstanceId']} ({answer['InstanceType']}, held by {answer['Holder']}): "
          f"reclaimed in {answer['NoticeSeconds']:.1f} s, at "
          f"{answer['ReclaimTime']:%Y-%m-%dT%H:%M:%SZ}", file=out)
    return 0
