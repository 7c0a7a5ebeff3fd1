"""What a simulation leaves behind: a JSON summary (the figures per policy set, the baseline,
each cost as a ratio to it, and every scaling activity with its cause), a printed table, and
PNG plots a person would rather look at than read — load and capacity over time, latency
against the SLO, and cost. When a scenario compares endpoint kinds (serverless, async beside
real-time), the JSON gains `comparison` and each such set its `kind` and `figures`, the table
is followed by the comparison (compare.py), and the plots draw every kind (a serverless set's
"instances" are its workers alive; its cost is its GB-seconds).

Numbers in the JSON are rounded (USD to 1e-6, shares to 1e-6, seconds to 1e-3) so that the
golden test's diff is stable across platforms; times are seconds from the trace's start.
matplotlib is imported only when plots are drawn (Agg backend, no display needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tideserve.cost.billing import usd_for_seconds
from tideserve.sim.compare import comparison_dict, figures_dict, has_kinds, print_comparison
from tideserve.sim.kinds import ASYNC, SERVERLESS
from tideserve.sim.result import PolicyRun, SimResult, Summary


def summary_dict(result: SimResult, timing: bool = True) -> dict[str, Any]:
    scn, base = result.scenario, result.baseline
    st = scn.profile.service_time
    out: dict[str, Any] = {
        "scenario": scn.name,
        "trace": {"name": scn.trace.name, "bin_seconds": scn.trace.bin_seconds,
                  "duration_seconds": scn.trace.duration_seconds, "rate_scale": scn.rate_scale},
        "endpoint": {"resource_id": scn.endpoint.resource_id,
                     "instance_type": scn.endpoint.instance_type,
                     "hourly_usd": scn.endpoint.hourly_usd,
                     "initial_instances": scn.endpoint.initial_instances},
        "profile": {"concurrency": scn.profile.concurrency,
                    "service_seconds": {"mean": _r(st.mean), "p50": _r(st.quantile(0.5)),
                                        "p90": _r(st.quantile(0.9)),
                                        "p99": _r(st.quantile(0.99))},
                    "max_rps_per_instance": _r(scn.profile.rate_per_instance),
                    "startup_seconds": scn.profile.startup_seconds},
        "slo": {"latency_seconds": scn.slo.latency_seconds, "percentile": scn.slo.percentile},
        "simulation": {"mode": scn.options.mode, "step_seconds": scn.options.step_seconds,
                       "metric_period": scn.options.metric_period},
        "baseline": {"name": base.name, **_figures(base.summary),
                     "capacity_changes": capacity_changes(base)},
        "policy_sets": [_policy(run, scn.options.start_time, base.summary.cost_usd)
                        for run in result.runs],
    }
    if has_kinds(result):
        out["comparison"] = comparison_dict(result)
    if timing:
        out["wall_seconds"] = round(result.wall_seconds, 3)
    return out


def capacity_changes(run: PolicyRun) -> int:
    return int(np.count_nonzero(np.diff(run.log.billed)))


def _policy(run: PolicyRun, t0: float, baseline_cost: float) -> dict[str, Any]:
    ratio = run.summary.cost_usd / baseline_cost if baseline_cost > 0 else None
    return {
        "name": run.name, **_figures(run.summary),
        "cost_ratio_to_baseline": None if ratio is None else _r(ratio),
        "scaling_activities": run.scaling_activities,
        "not_scaled_records": run.not_scaled,
        "activities": [{
            "start": _r(a.start_time - t0, 3),
            "end": None if a.end_time is None else _r(a.end_time - t0, 3),
            "desired": a.desired, "status": a.status_code, "cause": a.cause,
        } for a in run.activities],
        **figures_dict(run),
    }


def _figures(s: Summary) -> dict[str, Any]:
    return {"cost_usd": _r(s.cost_usd), "instance_hours": _r(s.instance_hours),
            "mean_instances": _r(s.mean_instances), "mean_in_service": _r(s.mean_in_service),
            "requests": _r(s.requests, 3), "served": _r(s.served, 3),
            "dropped": _r(s.dropped, 3), "over_slo_share": _r(s.over_slo_share),
            "latency_seconds": {"p50": _r(s.latency_p50, 4), "p90": _r(s.latency_p90, 4),
                                "p99": _r(s.latency_p99, 4)}}


def _r(x: float, digits: int = 6) -> float:
    return round(float(x), digits)


def print_table(result: SimResult, out: TextIO) -> None:
    base = result.baseline.summary
    header = ("POLICY SET", "COST_USD", "VS_BASE", "INST_H", "MEAN_INST", "OVER_SLO",
              "P50_S", "P90_S", "P99_S", "ACTIVITIES")
    rows = []
    for run in [*result.runs, result.baseline]:
        s = run.summary
        ratio = s.cost_usd / base.cost_usd if base.cost_usd else float("nan")
        acts = run.scaling_activities if run is not result.baseline else capacity_changes(run)
        no_instances = run.kind == SERVERLESS
        rows.append((run.name, f"{s.cost_usd:.2f}", f"{ratio:.2f}x",
                     "-" if no_instances else f"{s.instance_hours:.1f}",
                     "-" if no_instances else f"{s.mean_instances:.2f}",
                     f"{100 * s.over_slo_share:.2f}%",
                     f"{s.latency_p50:.3f}", f"{s.latency_p90:.3f}", f"{s.latency_p99:.3f}",
                     str(acts)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if has_kinds(result):
        out.write("\n")
        print_comparison(result, out)


def write_report(result: SimResult, out_dir: Path, plots: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary_dict(result), indent=2) + "\n")
    written = [path]
    if plots:
        written += plot(result, out_dir)
    return written


# --- plots ----------------------------------------------------------------------------------


def _per_period(x: np.ndarray, per: int, how: str = "mean", steps: int | None = None
                ) -> np.ndarray:
    """Per plotted period; `steps` cuts a run that went on past the trace (async drain)."""
    x = x if steps is None else x[:steps]
    n = len(x) // per * per
    rows = x[:n].reshape(-1, per).astype(np.float64)
    out: np.ndarray = rows.mean(axis=1) if how == "mean" else rows.sum(axis=1)
    return out


def plot(result: SimResult, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scn = result.scenario
    dt = scn.options.step_seconds
    # One point per metric period, coarser for long traces (≤ ~4000 points per line).
    per = int(round(scn.options.metric_period / dt))
    per *= max(1, int(np.ceil(len(result.baseline.log.arrivals) / per / 4000)))
    hours = np.arange(len(result.baseline.log.arrivals) // per) * per * dt / 3600.0
    runs = [*result.runs, result.baseline]
    written = [
        _load_capacity(plt, scn, runs, per, hours, out_dir / "load_capacity.png"),
        _latency(plt, scn, runs, per, hours, out_dir / "latency.png"),
        _cost(plt, scn, result, per, hours, out_dir / "cost.png"),
    ]
    plt.close("all")
    return written


def _style(run: PolicyRun, result_runs: list[PolicyRun]) -> dict[str, Any]:
    if run is result_runs[-1]:
        return {"color": "black", "linestyle": "--", "linewidth": 1.2}
    return {"color": f"C{result_runs.index(run)}", "linewidth": 1.2}


def _unit_rate(run: PolicyRun, scn: Any) -> float:
    """Requests/s one unit of `in_service` completes: an instance; a serverless worker (one
    request at a time); an async instance (its dispatch slots)."""
    mean_s = float(scn.profile.service_time.mean)
    if run.kind == SERVERLESS:
        return 1.0 / mean_s
    spec = next((p.asynchronous for p in scn.policy_sets if p.name == run.name), None)
    if run.kind == ASYNC and spec is not None:
        slots: int = min(spec.max_concurrent_invocations_per_instance, scn.profile.concurrency)
        return slots / mean_s
    return float(scn.profile.rate_per_instance)


def _load_capacity(plt: Any, scn: Any, runs: list[PolicyRun], per: int, hours: np.ndarray,
                   path: Path) -> Path:
    dt, steps = scn.options.step_seconds, len(runs[-1].log.arrivals)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    load = _per_period(runs[-1].log.arrivals, per, "sum") / (per * dt)
    top.fill_between(hours, load, step="post", color="0.8", label="arrivals (req/s)")
    for run in runs:
        capacity = _per_period(run.log.in_service, per, steps=steps) * _unit_rate(run, scn)
        label = f"{run.name} ({run.kind})" if run.kind != "realtime" else run.name
        top.step(hours, capacity, where="post", label=f"{label} capacity", **_style(run, runs))
        bottom.step(hours, _per_period(run.log.billed, per, steps=steps), where="post",
                    label=label, **_style(run, runs))
    top.set_ylabel("requests / s")
    top.set_title(f"{scn.name}: load and serving capacity (in service × "
                  f"{scn.profile.rate_per_instance:.1f} req/s per instance)")
    top.legend(loc="upper right", fontsize=8)
    serverless = any(r.kind == SERVERLESS for r in runs)
    bottom.set_ylabel("instances billed" + (" (serverless: workers)" if serverless else ""))
    bottom.set_xlabel("hours from the start of the trace")
    bottom.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def _latency(plt: Any, scn: Any, runs: list[PolicyRun], per: int, hours: np.ndarray,
             path: Path) -> Path:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    mean_s, steps = scn.profile.service_time.mean, len(runs[-1].log.arrivals)
    for run in runs:
        served = _per_period(np.maximum(run.log.served, 0), per, "sum", steps)
        waited = _per_period(np.maximum(run.log.served, 0) * run.log.wait, per, "sum", steps)
        with np.errstate(invalid="ignore", divide="ignore"):
            latency = np.where(served > 0, waited / served + mean_s, np.nan)
            share = _per_period(run.log.over, per, "sum", steps) / _per_period(
                run.log.arrivals, per, "sum", steps)
        top.step(hours, latency, where="post", label=run.name, **_style(run, runs))
        bottom.step(hours, 100 * share, where="post", label=run.name, **_style(run, runs))
    top.axhline(scn.slo.latency_seconds, color="red", linewidth=0.8, label="SLO")
    top.set_yscale("log")
    top.set_ylabel("mean latency (s)")
    top.set_title(f"{scn.name}: latency per period against the {scn.slo.latency_seconds:g}-s SLO")
    top.legend(loc="upper right", fontsize=8)
    bottom.set_ylabel("% of requests over the SLO")
    bottom.set_xlabel("hours from the start of the trace")
    return _save(fig, path)


def _cost(plt: Any, scn: Any, result: SimResult, per: int, hours: np.ndarray,
          path: Path) -> Path:
    runs = [*result.runs, result.baseline]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=[2, 1])
    usd_per_step = usd_for_seconds(scn.options.step_seconds, scn.endpoint.hourly_usd)
    steps = len(result.baseline.log.arrivals)
    for run in runs:
        usd = run.log.billed * usd_per_step if run.usd is None else run.usd
        spent = np.cumsum(_per_period(usd, per, "sum", steps))
        left.plot(hours, spent, label=run.name, **_style(run, runs))
    left.set_xlabel("hours from the start of the trace")
    left.set_ylabel("cumulative cost (USD)")
    left.set_title(f"{scn.name}: cost on {scn.endpoint.instance_type}")
    left.legend(loc="upper left", fontsize=8)
    names = [r.name for r in runs]
    costs = [r.summary.cost_usd for r in runs]
    bars = right.barh(names, costs, color=[_style(r, runs)["color"] for r in runs])
    base = result.baseline.summary.cost_usd
    for bar, run in zip(bars, runs, strict=True):
        s = run.summary
        label = f" {s.cost_usd / base:.2f}x, {100 * s.over_slo_share:.1f}% over SLO"
        right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center",
                   fontsize=8)
    right.set_xlabel("total cost (USD)")
    right.set_xlim(0, max(costs) * 1.8 if max(costs) > 0 else 1)
    right.invert_yaxis()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
