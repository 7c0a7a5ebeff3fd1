"""The search: a family's parameters tuned on the trace's training part, the choice measured
on the held-out part (never the other way round).

- Split: the first `train_fraction` of the trace (rounded to whole metric periods and bins)
  trains; the rest is held out. Each part is run from a warm-up before it (up to
  `WARMUP_SECONDS` of the trace that precedes it, none for the training part of a trace
  that starts there) and measured on its own steps only, so the held-out part is a
  continuation, not a cold start at the scenario's initial instances. A training part
  longer than `max_train_days` keeps only its last days (as AWS's predictive scaling reads
  at most 14 days of history), which bounds a trial's time on months-long traces.
- Objective, per trial on the training part: the cost relative to the clairvoyant baseline
  of the same part, if the share of requests over the SLO latency is at most
  `margin × max_over_slo`; otherwise 10 + the excess in percentage points (so every
  feasible candidate beats every infeasible one, and among infeasible ones the nearer wins).
  The margin (default 0.5) leaves the held-out part room: a policy tuned to the edge of the
  SLO on one week misses it on the next. "p99 latency ≤ L" is the same constraint as "at
  most 1 % of requests over L", so the SLO is stated either way.
- Optimiser: optuna's TPE sampler, seeded, one trial at a time: the same seed and budget give
  the same choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tideserve.cost.billing import SECONDS_PER_HOUR, usd_for_seconds
from tideserve.errors import ValidationError
from tideserve.sim.baseline import clairvoyant
from tideserve.sim.fluid import StepLog
from tideserve.sim.result import Summary
from tideserve.sim.run import run_candidate
from tideserve.sim.scenario import Scenario, SimOptions, policy_set_from_dict
from tideserve.tuning.families import Context, Family, Fixed

INFEASIBLE = 10.0
WARMUP_SECONDS = 86400.0  # at most a day of the trace before a part, run but not measured


@dataclass(frozen=True)
class Part:
    """A part of the trace to measure: `scenario` runs from the warm-up, the figures count
    from step `skip` on."""

    scenario: Scenario
    skip: int

    @property
    def seconds(self) -> float:
        return self.scenario.trace.duration_seconds - self.skip * self.scenario.options.step_seconds


@dataclass(frozen=True)
class Measured:
    cost_ratio: float  # cost / the clairvoyant baseline's on the same part
    over_slo_pct: float  # % of requests over the SLO latency (dropped ones included)
    summary: Summary


@dataclass(frozen=True)
class Tuned:
    family: str
    params: dict[str, Any]
    policy_set: dict[str, Any]  # the chosen set, in the scenario YAML's shape
    train: Measured
    held_out: Measured
    trials: int


def split(scenario: Scenario, train_fraction: float,
          max_train_days: float | None = None) -> tuple[Part, Part]:
    """(training part, held-out part), each starting at its own time of day and week."""
    if not 0 < train_fraction < 1:
        raise ValidationError(f"train_fraction {train_fraction} must be between 0 and 1")
    trace, opts = scenario.trace, scenario.options
    unit = max(trace.bin_seconds, opts.metric_period, opts.step_seconds)
    cut = math.floor(trace.duration_seconds * train_fraction / unit) * unit
    if cut <= 0 or cut >= trace.duration_seconds:
        raise ValidationError(f"the trace ({trace.duration_seconds:g} s) is too short to split "
                              f"at {train_fraction:g} in whole {unit:g}-s units")
    start = 0.0
    if max_train_days is not None and cut > max_train_days * 86400:
        start = cut - math.floor(max_train_days * 86400 / unit) * unit
    return _part(scenario, start, cut, unit), _part(scenario, cut, None, unit)


def _part(scenario: Scenario, start: float, end: float | None, unit: float) -> Part:
    opts: SimOptions = scenario.options
    first = max(0.0, start - math.floor(WARMUP_SECONDS / unit) * unit)
    duration = None if end is None else end - first
    run = replace(scenario, trace=scenario.trace.window(first, duration),
                  options=replace(opts, start_time=opts.start_time + first))
    return Part(run, int(round((start - first) / opts.step_seconds)))


def measure(part: Part, raw_set: dict[str, Any], baseline_cost: float | None = None) -> Measured:
    """One policy set (YAML shape) on the part."""
    scenario = part.scenario
    policy_set = policy_set_from_dict(raw_set, scenario)
    run = run_candidate(scenario, policy_set, scenario.arrivals())
    s = _measured_summary(part, run.log)
    base = baseline_cost if baseline_cost is not None else part_baseline_cost(part)
    ratio = s.cost_usd / base if base > 0 else math.inf
    return Measured(ratio, 100.0 * s.over_slo_share, s)


def _measured_summary(part: Part, log: StepLog) -> Summary:
    """The figures of the part's own steps (latency percentiles are not recomputed: NaN)."""
    scn, k = part.scenario, part.skip
    dt = scn.options.step_seconds
    billed = log.billed[k:].astype(np.float64)
    requests = float(log.arrivals[k:].sum())
    served = float(log.served[k:].sum())
    instance_seconds = float(billed.sum()) * dt
    nan = float("nan")
    return Summary(usd_for_seconds(instance_seconds, scn.endpoint.hourly_usd),
                   instance_seconds / SECONDS_PER_HOUR,
                   float(billed.mean()) if len(billed) else 0.0,
                   float(log.in_service[k:].mean()) if len(billed) else 0.0,
                   requests, served, requests - served,
                   float(log.over[k:].sum()) / requests if requests else 0.0, nan, nan, nan)


def part_baseline_cost(part: Part) -> float:
    scenario = part.scenario
    return _measured_summary(part, clairvoyant(scenario, scenario.arrivals()).log).cost_usd


def score(m: Measured, bound_pct: float) -> float:
    if m.over_slo_pct <= bound_pct + 1e-12:
        return m.cost_ratio
    return INFEASIBLE + (m.over_slo_pct - bound_pct)


def tune(scenario: Scenario, family: Family, *, trials: int = 40, seed: int = 0,
         train_fraction: float = 0.5, max_over_slo_pct: float | None = None,
         margin: float = 0.5, max_train_days: float | None = 7.0,
         ctx: Context | None = None) -> Tuned:
    """Search `family` on the training part; measure the choice on the held-out part."""
    import optuna  # the `tune` extra: only the tuner needs it

    ctx = ctx or Context.of(scenario)
    bound = (100.0 - scenario.slo.percentile) if max_over_slo_pct is None else max_over_slo_pct
    train, held = split(scenario, train_fraction, max_train_days)
    train_base = part_baseline_cost(train)
    if not family.tunes:
        raw = family.policy_set(Fixed({}), ctx)
        return Tuned(family.name, {}, raw, measure(train, raw, train_base),
                     measure(held, raw, part_baseline_cost(held)), 0)

    def objective(trial: optuna.Trial) -> float:
        m = measure(train, family.policy_set(trial, ctx), train_base)
        trial.set_user_attr("over_slo_pct", m.over_slo_pct)
        return score(m, margin * bound)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, trials // 3)))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=trials, n_jobs=1)
    params = dict(study.best_trial.params)
    raw = family.policy_set(Fixed(params), ctx)
    return Tuned(family.name, params, raw, measure(train, raw, train_base),
                 measure(held, raw, part_baseline_cost(held)), trials)


def peak_rps(scenario: Scenario) -> float:
    a = scenario.arrivals()
    return float(np.max(a)) / scenario.options.step_seconds if len(a) else 0.0
