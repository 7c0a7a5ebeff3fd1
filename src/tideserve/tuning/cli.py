"""`tideserve tune SCENARIO.yaml`: search a policy family's parameters on the scenario's
trace (training part), report the choice on the held-out part beside AWS's default, and print
the boto3 calls and the YAML that install it.

Wiring (cli.py): `add_tune_parser(sub)` then, for args.command == "tune", `run_tune(args)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from tideserve.errors import TideserveError
from tideserve.sim.scenario import load_scenario


def add_tune_parser(subparsers: Any) -> argparse.ArgumentParser:
    from tideserve.tuning.families import FAMILIES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune", help="tune a scaling policy's parameters on a traffic trace (cheapest at the "
                     "SLO), print the calls that install it")
    p.add_argument("scenario", type=Path, help="scenario YAML (its trace, profile and slo)")
    p.add_argument("--family", default="target-tracking", choices=sorted(FAMILIES),
                   help="the policy family to tune (default: target-tracking)")
    p.add_argument("--trials", type=int, default=40, help="optuna trials (default 40)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (deterministic)")
    p.add_argument("--train-fraction", type=float, default=0.5,
                   help="the trace's first part tuned on; the rest reports (default 0.5)")
    p.add_argument("--max-over-slo", type=float, default=None, metavar="PCT",
                   help="the most %% of requests over slo.latency_seconds (default: 100 − "
                        "slo.percentile, i.e. pNN latency ≤ the SLO)")
    p.add_argument("--margin", type=float, default=0.5,
                   help="tune for this share of the allowed %% on the training part (0.5)")
    p.add_argument("--max-train-days", type=float, default=7.0,
                   help="tune on at most the last this many days of the training part")
    p.add_argument("--max-capacity", type=int, default=None,
                   help="MaxCapacity of the tuned set (default: the scenario's largest)")
    return p


def run_tune(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("tideserve tune: needs optuna: pip install 'tideserve[tune]'", file=sys.stderr)
        return 2
    from tideserve.tuning.families import FAMILIES, Context
    from tideserve.tuning.install import boto3_calls, yaml_entry
    from tideserve.tuning.search import tune

    try:
        scenario = load_scenario(args.scenario)
        family = FAMILIES[args.family]
        if not family.available(scenario):
            raise TideserveError(f"family {family.name!r} is pending: the engine does not "
                                 "accept its policies yet")
        ctx = Context.of(scenario, args.max_capacity)
        common = {"seed": args.seed, "train_fraction": args.train_fraction,
                  "max_over_slo_pct": args.max_over_slo, "margin": args.margin,
                  "max_train_days": args.max_train_days, "ctx": ctx}
        tuned = tune(scenario, family, trials=args.trials, **common)
        default = tune(scenario, FAMILIES["aws-default"], **common)
    except TideserveError as exc:
        print(f"tideserve tune: {exc.message}", file=sys.stderr)
        return 2
    bound = (100 - scenario.slo.percentile) if args.max_over_slo is None else args.max_over_slo
    out.write(f"tuned {family.name} on {scenario.name} ({args.trials} trials, seed "
              f"{args.seed}): SLO ≤ {bound:g} % of requests over "
              f"{scenario.slo.latency_seconds:g} s\n")
    out.write(f"parameters: {', '.join(f'{k}={_fmt(v)}' for k, v in tuned.params.items())}\n")
    out.write("PART       POLICY                COST_VS_CLAIRVOYANT  OVER_SLO  MEAN_INST\n")
    for part in ("train", "held_out"):
        for name, t in ((family.name, tuned), ("aws-default", default)):
            m = getattr(t, part)
            out.write(f"{part:<10} {name:<21} {m.cost_ratio:>8.2f}x            "
                      f"{m.over_slo_pct:>6.2f}%  {m.summary.mean_instances:>8.2f}\n")
    held, base = tuned.held_out, default.held_out
    if base.summary.cost_usd > 0:
        out.write(f"held-out: {held.summary.cost_usd / base.summary.cost_usd:.2f}× the AWS "
                  f"default's cost, {held.over_slo_pct:.2f} % vs {base.over_slo_pct:.2f} % "
                  "over the SLO\n")
    out.write("\n# boto3 calls that install it\n" + boto3_calls(tuned.policy_set, scenario))
    out.write("\n# the scenario YAML entry\n" + yaml_entry(tuned.policy_set))
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
