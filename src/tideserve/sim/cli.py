"""`tideserve simulate SCENARIO.yaml [--out DIR]`: rehearse the scenario's policy sets on its
trace, print the table (each cost also as a ratio to the clairvoyant baseline), and write
summary.json and the plots.

Wiring (the lead's cli.py): `add_simulate_parser(sub)` then, for args.command == "simulate",
`return run_simulate(args)`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from tideserve.errors import TideserveError
from tideserve.sim.report import print_table, write_report
from tideserve.sim.run import simulate
from tideserve.sim.scenario import MODES, load_scenario


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate", help="rehearse scaling policies on a traffic trace (cost, SLO, plots)")
    p.add_argument("scenario", type=Path, help="scenario YAML (see examples/scenarios)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for summary.json and the PNG plots (default: "
                        "sim-out/<scenario name>)")
    p.add_argument("--policy", default=None, help="only the policy set of this name")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="override the scenario's serving model (requests: per request, "
                        "for traces up to about an hour)")
    p.add_argument("--no-plots", action="store_true", help="write summary.json only")
    return p


def run_simulate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        scenario = load_scenario(args.scenario)
        if args.mode is not None:
            scenario = replace(scenario, options=replace(scenario.options, mode=args.mode))
        if args.policy is not None and args.policy not in {p.name for p in scenario.policy_sets}:
            raise TideserveError(f"--policy {args.policy!r}: the scenario has policy sets "
                                 f"{', '.join(p.name for p in scenario.policy_sets)}")
        result = simulate(scenario, only=args.policy)
    except TideserveError as exc:
        print(f"tideserve simulate: {exc.message}", file=sys.stderr)
        return 2
    print_table(result, out)
    folder = args.out or Path("sim-out") / scenario.name
    written = write_report(result, folder, plots=not args.no_plots)
    out.write(f"simulated {scenario.trace.duration_seconds / 3600:.1f} h of traffic in "
              f"{result.wall_seconds:.2f} s; wrote {', '.join(str(p) for p in written)}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tideserve")
    sub = parser.add_subparsers(dest="command", required=True)
    add_simulate_parser(sub)
    return run_simulate(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
