"""Policy families: each turns a handful of parameters into one policy set in the scenario
YAML's shape (the boto3 calls' parameters, or tideserve's own `tideserve_policy`).

A family is registered by name in FAMILIES; `tideserve tune --family NAME` and
bench/simulate.py read the registry, so a new family (predictive + target tracking, once the
engine accepts PutScalingPolicy PredictiveScaling) is one `register(...)` and nothing else.
A family whose policies the engine does not accept yet reports itself unavailable
(`Family.available`), and the bench prints it as pending.

Parameters are drawn from a `Params` source: an optuna trial while searching, the fixed
values of a finished search (`Fixed`) to rebuild the chosen set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tideserve.errors import TideserveError
from tideserve.sim.scenario import Scenario, policy_set_from_dict


class Params(Protocol):
    def suggest_float(self, name: str, low: float, high: float, *,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int) -> int: ...


@dataclass(frozen=True)
class Fixed:
    """A Params source with the values already chosen (missing ones: the range's low end)."""

    values: dict[str, Any]

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return float(self.values.get(name, low))

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return int(self.values.get(name, low))


@dataclass(frozen=True)
class Context:
    """What a family sizes its ranges by."""

    max_rps: float  # requests/s one instance completes: concurrency / mean service time
    max_capacity: int

    @classmethod
    def of(cls, scenario: Scenario, max_capacity: int | None = None) -> Context:
        p = scenario.profile
        cap = max_capacity or max((int(ps.register_scalable_target.get("MaxCapacity", 0))
                                   for ps in scenario.policy_sets), default=16) or 16
        return cls(p.concurrency / p.service_time.mean, cap)


Build = Callable[[Params, Context], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    build: Build
    tunes: bool = True  # False: fixed parameters (the AWS default), nothing to search
    extension: bool = False  # tideserve's own policy: scenario YAML only, no boto3 call
    probe: Callable[[Scenario], bool] = field(default=lambda s: True)

    def policy_set(self, params: Params, ctx: Context, name: str | None = None) -> dict[str, Any]:
        raw = self.build(params, ctx)
        return {"name": name or self.name, **raw}

    def available(self, scenario: Scenario) -> bool:
        return self.probe(scenario)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def _target(params: Params, ctx: Context, tuned: bool = True) -> dict[str, int]:
    low = params.suggest_int("MinCapacity", 1, max(1, ctx.max_capacity // 2)) if tuned else 1
    return {"MinCapacity": low, "MaxCapacity": ctx.max_capacity}


def _invocations_tt(value: float, out_cd: int, in_cd: int) -> dict[str, Any]:
    return {"PolicyName": "invocations-target", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": round(value, 1), "ScaleOutCooldown": out_cd,
                "ScaleInCooldown": in_cd, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}


def aws_default(params: Params, ctx: Context) -> dict[str, Any]:
    """AWS's recommended start (spec §6.5): InvocationsPerInstance at MAX_RPS × 0.5 × 60,
    300-s cooldowns."""
    return {"register_scalable_target": _target(params, ctx, tuned=False),
            "put_scaling_policy": [_invocations_tt(ctx.max_rps * 0.5 * 60, 300, 300)]}


def target_tracking(params: Params, ctx: Context) -> dict[str, Any]:
    """The same policy with its target (as a share of MAX_RPS × 60), cooldowns (s) and
    floor searched."""
    share = params.suggest_float("target_share", 0.15, 0.95)
    out_cd = params.suggest_int("ScaleOutCooldown", 0, 600)
    in_cd = params.suggest_int("ScaleInCooldown", 0, 3600)
    return {"register_scalable_target": _target(params, ctx),
            "put_scaling_policy": [_invocations_tt(ctx.max_rps * share * 60, out_cd, in_cd)]}


def step_scaling(params: Params, ctx: Context) -> dict[str, Any]:
    """Step scaling behind two alarms on InvocationsPerInstance: thresholds (shares of
    MAX_RPS × 60), the big step's size and where it starts, cooldowns."""
    high = params.suggest_float("high_share", 0.2, 0.95)
    low = params.suggest_float("low_share", 0.05, 0.9) * high
    big_at = params.suggest_float("big_step_at_share", 0.05, 1.0)
    big = params.suggest_int("big_step", 2, 10)
    out_cd = params.suggest_int("out_cooldown", 0, 600)
    in_cd = params.suggest_int("in_cooldown", 0, 1800)
    per_min = ctx.max_rps * 60

    def alarm(name: str, threshold: float, op: str, periods: int, policy: str) -> dict[str, Any]:
        return {"AlarmName": name, "Namespace": "AWS/SageMaker",
                "MetricName": "InvocationsPerInstance",
                "Dimensions": [{"Name": "EndpointName", "Value": "${EndpointName}"},
                               {"Name": "VariantName", "Value": "${VariantName}"}],
                "Statistic": "Sum", "Period": 60, "EvaluationPeriods": periods,
                "DatapointsToAlarm": periods, "Threshold": round(threshold, 1),
                "ComparisonOperator": op, "AlarmActions": [f"${{policy:{policy}}}"]}

    edge = round(big_at * per_min, 1)
    return {
        "register_scalable_target": _target(params, ctx),
        "put_scaling_policy": [
            {"PolicyName": "step-out", "PolicyType": "StepScaling",
             "StepScalingPolicyConfiguration": {
                 "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                 "Cooldown": out_cd, "StepAdjustments": [
                     {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": edge,
                      "ScalingAdjustment": 1},
                     {"MetricIntervalLowerBound": edge, "ScalingAdjustment": big}]}},
            {"PolicyName": "step-in", "PolicyType": "StepScaling",
             "StepScalingPolicyConfiguration": {
                 "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                 "Cooldown": in_cd, "StepAdjustments": [
                     {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}]}}],
        "put_metric_alarm": [
            alarm("ipi-high", high * per_min, "GreaterThanThreshold", 1, "step-out"),
            alarm("ipi-low", low * per_min, "LessThanThreshold", 5, "step-in")],
    }


def latency_target(params: Params, ctx: Context, burst: bool = False) -> dict[str, Any]:
    """tideserve's latency target (scaling.latency_target) at the scenario's SLO: the
    utilisation the queueing model may plan for and the scale-in window (s) are searched;
    with `burst`, the burst mode's threshold and stable window too."""
    policy: dict[str, Any] = {"latency_target": {
        "max_utilization": round(params.suggest_float("max_utilization", 0.3, 0.98), 3),
        "scale_in_window": params.suggest_int("scale_in_window", 60, 3600)}}
    if burst:
        policy["burst"] = {
            "threshold": round(params.suggest_float("burst_threshold", 1.2, 4.0), 2),
            "stable_window": params.suggest_int("burst_stable_window", 30, 900)}
    return {"register_scalable_target": _target(params, ctx), "tideserve_policy": policy}


def predictive_target_tracking(params: Params, ctx: Context) -> dict[str, Any]:
    """Predictive scaling (AWS's PredictiveScaling shape) beside tuned target tracking: the
    higher capacity wins. The scheduling buffer (s) is searched with the tracking's knobs."""
    raw = target_tracking(params, ctx)
    share = params.suggest_float("predictive_target_share", 0.2, 0.95)
    raw["put_scaling_policy"].append({
        "PolicyName": "predictive", "PolicyType": "PredictiveScaling",
        "PredictiveScalingPolicyConfiguration": {
            "MetricSpecifications": [{
                "TargetValue": round(ctx.max_rps * share * 60, 1),
                "PredefinedMetricPairSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}],
            "Mode": "ForecastAndScale",
            "SchedulingBufferTime": params.suggest_int("SchedulingBufferTime", 0, 1800)}})
    return raw


def _accepted(family_build: Build) -> Callable[[Scenario], bool]:
    """Available when the engine accepts the family's calls (a probe with the low ends)."""
    def probe(scenario: Scenario) -> bool:
        raw = {"name": "probe", **family_build(Fixed({}), Context.of(scenario))}
        try:
            policy_set_from_dict(raw, scenario)
        except TideserveError:
            return False
        return True
    return probe


register(Family("aws-default", "AWS's recommended target tracking (fixed)", aws_default,
                tunes=False))
register(Family("target-tracking", "target tracking on InvocationsPerInstance, tuned",
                target_tracking))
register(Family("step", "step scaling on InvocationsPerInstance alarms, tuned", step_scaling))
register(Family("predictive+target-tracking", "predictive scaling beside target tracking",
                predictive_target_tracking, probe=_accepted(predictive_target_tracking)))
register(Family("latency-target", "tideserve: p-latency target by M/M/c, tuned",
                latency_target, extension=True))
register(Family("latency-target+burst", "tideserve: latency target with burst mode, tuned",
                lambda p, c: latency_target(p, c, burst=True), extension=True))


def max_capacity_for(peak_rps: float, max_rps: float) -> int:
    """A MaxCapacity that never binds: twice the instances the peak needs, at least 8."""
    return max(8, math.ceil(2 * peak_rps / max_rps))
