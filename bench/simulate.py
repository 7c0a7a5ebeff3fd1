"""Simulator benchmark: prints figures, never passes or fails on time.

1. Speed: a 30-day trace with 1-second bins (the Azure code trace's real per-second bursts,
   repeated end to end) and one policy set (AWS-default target tracking), fluid model.
2. AWS-default target tracking against the clairvoyant baseline on the real traces in
   examples/traces (and any `--traces DIR` given, looked in after it; a trace found in none
   is skipped: the Twitter and Wikipedia ones are not shipped, see examples/traces/README.md).
   The policy is InvocationsPerInstance at AWS's recommended target MAX_RPS × 0.5 × 60
   (spec §6.5) with 300-s cooldowns, where MAX_RPS = concurrency / mean service time of the
   profile. Each trace's rate is scaled so that its mean load needs four fully busy instances.
3. Every policy family of tideserve.tuning (AWS default, tuned target tracking, tuned step,
   predictive + target tracking — pending until the engine accepts PredictiveScaling —,
   tideserve's latency target and latency target + burst mode), each tuned on the first half
   of each trace (at most its last 7 days) at ≤ 0.5 % of requests over the SLO, measured on
   the second half: cost relative to the clairvoyant baseline of that half, and the share of
   requests over the SLO.

    .venv/bin/python bench/simulate.py [--traces DIR ...] [--days 30] [--trials 25]
    .venv/bin/python bench/simulate.py --traces DIR --json FILE   # every CSV in DIR, rows
        {"trace", "policy", "cost_ratio", "over_slo_pct"} (held-out part) to FILE
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tideserve.sim.baseline import clairvoyant
from tideserve.sim.run import run_policy_set
from tideserve.sim.scenario import scenario_from_dict
from tideserve.sim.trace import load_trace

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "examples" / "traces"
PROFILE = {"service_time": {"p50": 0.8, "p90": 1.8, "p99": 3.5}, "concurrency": 8,
           "startup_seconds": 300}
MEAN_INSTANCES = 4.0  # the mean load, in fully busy instances
NAMES = ("azure_llm_code_2023_1s", "azure_llm_conv_2023_1s", "mooncake_conversation_3s",
         "servegen_mlarge_all_clients_10min", "twitter_2021_08_1min",
         "wikipedia_en_2010_11_to_2011_05_1h")


def raw_scenario(trace: Path, rate_scale: float, target: float, max_capacity: int,
                 step: float, **trace_extra: Any) -> dict[str, Any]:
    return {
        "name": trace.stem,
        "trace": {"path": str(trace), "rate_scale": rate_scale, **trace_extra},
        "endpoint": {"name": "bench", "instance_type": "ml.g5.xlarge", "initial_instances": 4},
        "profile": PROFILE,
        "slo": {"latency_seconds": 8.0, "percentile": 99},
        "simulation": {"step_seconds": step},
        "policy_sets": [{
            "name": "aws-default",
            "register_scalable_target": {"MinCapacity": 1, "MaxCapacity": max_capacity},
            "put_scaling_policy": [{
                "PolicyName": "invocations", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": target, "ScaleOutCooldown": 300, "ScaleInCooldown": 300,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}]}],
    }


def aws_target() -> tuple[float, float]:
    """(MAX_RPS, AWS's recommended InvocationsPerInstance target) for PROFILE."""
    from tideserve.sim.profile import service_time_from

    max_rps = PROFILE["concurrency"] / service_time_from(PROFILE["service_time"]).mean
    return max_rps, max_rps * 0.5 * 60


def find_trace(folders: list[Path], name: str) -> Path | None:
    """The first `name.csv` among the folders, in order."""
    return next((f / f"{name}.csv" for f in folders if (f / f"{name}.csv").is_file()), None)


def speed(traces: list[Path], days: float) -> None:
    path = find_trace(traces, "azure_llm_code_2023_1s")
    if path is None:
        print(f"speed: azure_llm_code_2023_1s.csv is in none of {traces}, skipped")
        return
    max_rps, target = aws_target()
    rate = load_trace(path).counts.mean()
    raw = raw_scenario(path, MEAN_INSTANCES * max_rps / rate, target, 64, 1.0,
                       tile_to_seconds=days * 86400)
    scn = scenario_from_dict(raw)
    started = time.perf_counter()
    arrivals = scn.arrivals()
    run = run_policy_set(scn, scn.policy_sets[0], arrivals)
    took = time.perf_counter() - started
    started = time.perf_counter()
    clairvoyant(scn, arrivals)
    base = time.perf_counter() - started
    print(f"speed: {days:g} days of 1-s steps ({len(arrivals):,} steps, "
          f"{run.scaling_activities} scaling activities), one policy set, fluid model: "
          f"{took:.2f} s  (clairvoyant baseline: {base:.2f} s)")


def table(traces: list[Path]) -> None:
    max_rps, target = aws_target()
    print(f"\nAWS-default target tracking vs the clairvoyant baseline (ml.g5.xlarge, MAX_RPS "
          f"{max_rps:.2f} req/s, target {target:.1f} invocations/instance/min, cooldowns "
          f"300/300 s, start-up {PROFILE['startup_seconds']} s, SLO 8 s at p99)")
    header = ("trace", "scale", "req/s", "TT inst", "base inst", "cost ratio", "TT over SLO",
              "base over SLO", "activities", "sim s")
    rows = []
    for name in NAMES:
        path = find_trace(traces, name)
        if path is None:
            continue
        trace = load_trace(path)
        mean = trace.counts.mean() / trace.bin_seconds
        scale = MEAN_INSTANCES * max_rps / mean
        peak = trace.counts.max() / trace.bin_seconds * scale
        step = 1.0 if trace.bin_seconds <= 600 else 60.0
        scn = scenario_from_dict(raw_scenario(path, scale, target,
                                              max(8, math.ceil(2 * peak / max_rps)), step))
        scn = replace(scn, options=replace(scn.options, step_seconds=step))
        started = time.perf_counter()
        arrivals = scn.arrivals()
        run = run_policy_set(scn, scn.policy_sets[0], arrivals)
        took = time.perf_counter() - started
        base = clairvoyant(scn, arrivals)
        s, b = run.summary, base.summary
        rows.append((name, f"{scale:.3g}", f"{np.sum(arrivals) / len(arrivals) / step:.1f}",
                     f"{s.mean_instances:.2f}", f"{b.mean_instances:.2f}",
                     f"{s.cost_usd / b.cost_usd:.2f}x", f"{100 * s.over_slo_share:.2f}%",
                     f"{100 * b.over_slo_share:.2f}%", str(run.scaling_activities),
                     f"{took:.1f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


MAX_OVER_SLO_PCT = 0.5  # the goal: at most 0.5 % of requests over the SLO


def trace_scenario(path: Path) -> Any:
    """The bench's scenario for one trace (rate scaled to MEAN_INSTANCES busy instances)."""
    max_rps, target = aws_target()
    trace = load_trace(path)
    mean = trace.counts.mean() / trace.bin_seconds
    scale = MEAN_INSTANCES * max_rps / mean if mean > 0 else 1.0
    peak = trace.counts.max() / trace.bin_seconds * scale
    step = 1.0 if trace.bin_seconds <= 600 else 60.0
    if trace.bin_seconds < 1 or abs(trace.bin_seconds - round(trace.bin_seconds)) > 1e-9:
        step = trace.bin_seconds if 60 % trace.bin_seconds == 0 else 60.0
    raw = raw_scenario(path, scale, target, max(8, math.ceil(2 * peak / max_rps)), step)
    scn = scenario_from_dict(raw)
    return replace(scn, options=replace(scn.options, step_seconds=step))


def family_rows(path: Path, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """Every family on one trace, tuned on its first half, measured on the second."""
    from tideserve.tuning.families import FAMILIES, Context
    from tideserve.tuning.search import tune

    scn = trace_scenario(path)
    ctx = Context.of(scn)
    rows = []
    for family in FAMILIES.values():
        started = time.perf_counter()
        if not family.available(scn):
            rows.append({"trace": path.stem, "policy": family.name, "cost_ratio": None,
                         "over_slo_pct": None, "pending": True})
            continue
        t = tune(scn, family, trials=trials, seed=seed, max_over_slo_pct=MAX_OVER_SLO_PCT,
                 ctx=ctx)
        name = family.name + (" (tuned)" if family.tunes else "")
        rows.append({"trace": path.stem, "policy": name,
                     "cost_ratio": round(t.held_out.cost_ratio, 4),
                     "over_slo_pct": round(t.held_out.over_slo_pct, 4),
                     "seconds": round(time.perf_counter() - started, 1), "params": t.params})
        print(f"  {path.stem} {name}: {t.held_out.cost_ratio:.2f}x, "
              f"{t.held_out.over_slo_pct:.2f} % over SLO ({rows[-1]['seconds']} s; "
              f"{t.params})", file=sys.stderr, flush=True)
    return rows


def print_family_rows(rows: list[dict[str, Any]]) -> None:
    print(f"\nEvery policy family, tuned on each trace's first half at ≤ {MAX_OVER_SLO_PCT} % "
          "over the SLO, measured on the second half (cost vs the clairvoyant baseline of "
          "that half; vs AWS = cost / the AWS default's)")
    header = ("trace", "policy", "cost ratio", "over SLO", "vs AWS", "tune s")
    out = []
    aws = {r["trace"]: r["cost_ratio"] for r in rows if r["policy"].startswith("aws-default")}
    for r in rows:
        if r.get("pending"):
            out.append((r["trace"], r["policy"], "pending", "pending", "", ""))
            continue
        vs = r["cost_ratio"] / aws[r["trace"]] if aws.get(r["trace"]) else float("nan")
        out.append((r["trace"], r["policy"], f"{r['cost_ratio']:.2f}x",
                    f"{r['over_slo_pct']:.2f}%", f"{vs:.2f}", f"{r['seconds']:.0f}"))
    widths = [max(len(str(r[i])) for r in [header, *out]) for i in range(len(header))]
    for row in [header, *out]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, action="append", default=[],
                        help="another folder of traces, looked in after examples/traces")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--trials", type=int, default=25, help="optuna trials per family")
    parser.add_argument("--json", type=Path, default=None,
                        help="every t_seconds,requests CSV in the --traces folders: every "
                             "family's held-out figures as a JSON list to this file")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    folders = [TRACES, *args.traces]
    if args.json is not None:
        paths = sorted(p for f in args.traces for p in f.glob("*.csv"))
        rows = [r for p in paths for r in family_rows(p, args.trials)]
        print_family_rows(rows)
        shaped = [{k: r[k] for k in ("trace", "policy", "cost_ratio", "over_slo_pct")}
                  for r in rows if not r.get("pending")]
        args.json.write_text(json.dumps(shaped, indent=1) + "\n")
        print(f"wrote {len(shaped)} rows to {args.json} (pending families left out)")
        return
    if not args.skip_speed:
        speed(folders, args.days)
    table(folders)
    paths = [p for p in (find_trace(folders, n) for n in NAMES) if p is not None]
    print_family_rows([r for p in paths for r in family_rows(p, args.trials)])


if __name__ == "__main__":
    main()
